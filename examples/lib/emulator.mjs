// What the examples' run.mjs scripts share: a xensim broker for the length
// of one run, programs started in emulated domains (their output shown with
// the domain as a prefix), and the checks that decide the exit code.
//
// Only run.mjs uses this file. The programs it starts (server.mjs,
// client.mjs, ...) import nothing but 'xen-vchan' and Node itself, so they
// run unchanged in two real Xen domains.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'dist/sim/cli.js');

/** Gives up on a program that has printed nothing useful for this long. */
const WAIT_MS = 30_000;

/**
 * Runs `body({ run })` with a broker. XENSIM_DIR picks the broker's state
 * directory (a test sets it); without it we use a fresh temporary one. We
 * stop only a broker we started and remove only a directory we created.
 */
export async function withEmulator(body) {
  if (existsSync('/dev/xen') && !process.env.XENSIM_SOCKET) {
    console.log('This host has /dev/xen: run the two programs in two domains instead (see examples/README.md).');
    process.exit(0);
  }
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  const ownDir = !process.env.XENSIM_DIR;
  // Short path: the broker's unix sockets must fit in 108 bytes.
  const dir = process.env.XENSIM_DIR || mkdtempSync(join(tmpdir(), 'xve-'));
  const env = { ...process.env, XENSIM_DIR: dir };
  const started = !execFileSync(process.execPath, [CLI, 'start'], { env, encoding: 'utf8' }).includes('already running');
  const programs = [];
  try {
    return await body({
      run(domid, label, argv, extraEnv = {}) {
        const program = startInDomain(domid, label, argv, { ...env, ...extraEnv });
        programs.push(program);
        return program;
      },
    });
  } finally {
    for (const p of programs) p.kill();
    await Promise.all(programs.map((p) => p.exit));
    if (started) execFileSync(process.execPath, [CLI, 'stop'], { env, stdio: 'ignore' });
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  }
}

/** `xensim run --domid N -- argv…`, echoing its output as "label | line". */
function startInDomain(domid, label, argv, env) {
  const child = spawn(process.execPath, [CLI, 'run', '--domid', String(domid), '--', ...argv], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = [];
  const watchers = new Set();
  const follow = (stream, sink) => {
    let partial = '';
    stream.setEncoding('utf8').on('data', (text) => {
      partial += text;
      let nl;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        sink.write(`${label} | ${line}\n`);
        if (sink === process.stdout) {
          lines.push(line);
          for (const w of watchers) w(line);
        }
      }
    });
  };
  follow(child.stdout, process.stdout);
  follow(child.stderr, process.stderr);
  const exit = new Promise((resolve) => child.on('close', (code, signal) => resolve(code ?? signal)));

  return {
    lines,
    exit,
    kill: () => child.exitCode === null && child.signalCode === null && child.kill('SIGTERM'),
    /** The first output line matching `pattern` (its match), or an error if the program exits or stalls first. */
    waitFor(pattern, ms = WAIT_MS) {
      const seen = lines.map((l) => l.match(pattern)).find(Boolean);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => done(new Error(`${label}: no line matching ${pattern} within ${ms} ms`)), ms);
        const watch = (line) => {
          const m = line.match(pattern);
          if (m) done(null, m);
        };
        const done = (error, match) => {
          clearTimeout(timer);
          watchers.delete(watch);
          if (error) reject(error);
          else resolve(match);
        };
        watchers.add(watch);
        exit.then((code) => done(new Error(`${label} exited (${code}) without printing a line matching ${pattern}`)));
      });
    },
  };
}

/** Collects pass/fail lines and sets the exit code. */
export function checker() {
  let failed = 0;
  return {
    check(ok, what) {
      console.log(`${ok ? 'ok    ' : 'FAILED'} ${what}`);
      if (!ok) failed++;
    },
    finish(summary) {
      console.log(failed ? `${failed} check(s) failed` : summary);
      if (failed) process.exitCode = 1;
    },
  };
}
