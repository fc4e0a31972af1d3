/**
 * Builds and runs our C test peers (test/c/), linked dynamically to Debian's
 * real libxenvchan.so.4.17 fetched by scripts/debian-packages.sh.
 *
 * Never skips: if the packages or the compiler are missing, ensureCPeers()
 * rejects with a message saying what is missing.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const C_DIR = join(REPO_ROOT, 'test/c');

export interface CPeers {
  /** Root of the extracted Debian packages (usr/include, usr/lib/...). */
  root: string;
  /** Directory holding libxenvchan.so.4.17 and its dependencies. */
  libDir: string;
  vchanPeer: string;
  hostilePeer: string;
  /** process.env plus LD_LIBRARY_PATH pointing at libDir. */
  env: NodeJS.ProcessEnv;
}

interface Target {
  out: string;
  sources: string[];
  args: (root: string, libDir: string) => string[];
}

function targets(cacheDir: string): Record<'vchanPeer' | 'hostilePeer', Target> {
  const common = (root: string) => ['-O2', '-g', '-Wall', '-Wextra', '-std=gnu11', `-I${join(root, 'usr/include')}`];
  // -rpath-link resolves libxenvchan's own dependencies at link time only; at
  // run time LD_LIBRARY_PATH finds them, so nothing is baked into the binary.
  const link = (libDir: string, libs: string[]) => [`-L${libDir}`, `-Wl,-rpath-link,${libDir}`, ...libs];
  return {
    vchanPeer: {
      out: join(cacheDir, 'vchan-peer'),
      sources: ['vchan-peer.c', 'pattern.h'],
      args: (root, libDir) => [...common(root), join(C_DIR, 'vchan-peer.c'), ...link(libDir, ['-lxenvchan', '-lxentoollog'])],
    },
    hostilePeer: {
      out: join(cacheDir, 'hostile-peer'),
      sources: ['hostile-peer.c'],
      args: (root, libDir) => [
        ...common(root),
        join(C_DIR, 'hostile-peer.c'),
        // it kicks the event channel itself after each scribble
        ...link(libDir, ['-lxenvchan', '-lxenevtchn', '-lxentoollog']),
      ],
    },
  };
}

async function fetchDebianRoot(): Promise<string> {
  const script = join(REPO_ROOT, 'scripts/debian-packages.sh');
  try {
    const { stdout } = await execFileP('bash', [script], { cwd: REPO_ROOT, maxBuffer: 1 << 20 });
    const root = stdout.trim().split('\n').pop() ?? '';
    if (!root || !existsSync(root)) throw new Error(`script printed no usable root: ${JSON.stringify(stdout)}`);
    return root;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(
      `Debian's Xen packages (libxen-dev, libxenmisc4.17, ...) could not be fetched by scripts/debian-packages.sh; ` +
        `the C interop tests need them and are not skipped.\n${e.stderr?.trim() || e.message}`,
    );
  }
}

function newerThan(out: string, sources: string[]): boolean {
  if (!existsSync(out)) return false;
  const built = statSync(out).mtimeMs;
  return sources.every((s) => statSync(join(C_DIR, s)).mtimeMs <= built);
}

async function compile(t: Target, root: string, libDir: string): Promise<void> {
  if (newerThan(t.out, t.sources)) return;
  // Build beside the target and rename: parallel test workers may race here,
  // and a rename never exposes a half-written binary.
  const tmp = `${t.out}.${process.pid}.tmp`;
  const cc = process.env.CC ?? 'cc';
  try {
    await execFileP(cc, [...t.args(root, libDir), '-o', tmp], { maxBuffer: 4 << 20 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`compiling ${t.sources[0]} failed (${cc}):\n${e.stderr?.trim() || e.message}`);
  }
  renameSync(tmp, t.out);
}

let cached: Promise<CPeers> | undefined;

export function ensureCPeers(): Promise<CPeers> {
  cached ??= (async () => {
    const root = await fetchDebianRoot();
    const libDir = join(root, 'usr/lib/x86_64-linux-gnu');
    if (!existsSync(join(libDir, 'libxenvchan.so.4.17'))) throw new Error(`libxenvchan.so.4.17 missing under ${libDir}`);
    const cacheDir = join(process.env.XEN_VCHAN_CACHE ?? join(REPO_ROOT, '.cache'), 'c');
    mkdirSync(cacheDir, { recursive: true });
    const t = targets(cacheDir);
    await Promise.all([compile(t.vchanPeer, root, libDir), compile(t.hostilePeer, root, libDir)]);
    const ld = process.env.LD_LIBRARY_PATH;
    return {
      root,
      libDir,
      vchanPeer: t.vchanPeer.out,
      hostilePeer: t.hostilePeer.out,
      env: { ...process.env, LD_LIBRARY_PATH: ld ? `${libDir}:${ld}` : libDir },
    };
  })();
  cached.catch(() => {
    cached = undefined; // let a later call retry
  });
  return cached;
}

// ---- running a peer ----

export type PeerRole = 'server' | 'client';
export type PeerMode = 'both' | 'send' | 'recv' | 'echo' | 'hold';

export interface VchanPeerOptions {
  role: PeerRole;
  peer: number;
  path: string;
  bytes?: number;
  leftMin?: number;
  rightMin?: number;
  api?: 'rw' | 'sendrecv';
  chunk?: number;
  seedTx?: number;
  seedRx?: number;
  timeoutMs?: number;
  stallMs?: number;
  mode?: PeerMode;
  reportOpenMs?: number;
  lingerMs?: number;
}

/** Command line for vchan-peer from named options. */
export function vchanPeerArgs(o: VchanPeerOptions): string[] {
  const args = [o.role, String(o.peer), o.path];
  const add = (flag: string, v: number | string | undefined) => {
    if (v !== undefined) args.push(flag, String(v));
  };
  add('--bytes', o.bytes);
  add('--left-min', o.leftMin);
  add('--right-min', o.rightMin);
  add('--api', o.api);
  add('--chunk', o.chunk);
  add('--seed-tx', o.seedTx);
  add('--seed-rx', o.seedRx);
  add('--timeout-ms', o.timeoutMs);
  add('--stall-ms', o.stallMs);
  add('--mode', o.mode);
  add('--report-open-ms', o.reportOpenMs);
  add('--linger-ms', o.lingerMs);
  return args;
}

export interface PeerOk {
  ok: true;
  role: PeerRole;
  mode: PeerMode;
  api: 'rw' | 'sendrecv';
  sent: number;
  received: number;
  txHash: string;
  rxHash: string;
  /** MB/s (10^6 bytes) of the busier direction, timed from connection. */
  mbps: number;
  seconds: number;
  leftOrder: number;
  rightOrder: number;
}

export interface PeerFail {
  ok: false;
  role: string;
  error: string;
  sent?: number;
  received?: number;
  mismatchAt?: number;
  leftOrder?: number;
  rightOrder?: number;
}

/** Non-final lines: listening, open, closed (hold), scribble (hostile). */
export interface PeerEvent {
  event: string;
  [key: string]: unknown;
}

export type PeerLine = PeerOk | PeerFail | PeerEvent | { ok: true; role: 'hostile'; [key: string]: unknown };

export interface PeerRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last JSON line (a result, or hold's closed event), if any. */
  result: PeerLine | undefined;
  lines: PeerLine[];
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface RunPeerOptions {
  /** Which program: our vchan peer (default) or the hostile server. */
  program?: 'vchan' | 'hostile';
  /** Run this command instead of a C peer (e.g. [node, node-peer.mjs]); args follow it. */
  command?: string[];
  /** Extra environment (merged over the peers' env with LD_LIBRARY_PATH). */
  env?: NodeJS.ProcessEnv;
  /** Run under this wrapper, e.g. ['xensim', 'run', '--domid', '1', '--']. */
  wrapper?: string[];
  /** SIGKILL the peer after this long (default 120 s); the run reports timedOut. */
  timeoutMs?: number;
  /** Give the peer a stdin pipe (child.stdin) instead of /dev/null. */
  stdin?: boolean;
  /** Called for every JSON line as it arrives. */
  onLine?: (line: PeerLine, child: ChildProcess) => void;
}

export interface StartedPeer {
  child: ChildProcess;
  lines: PeerLine[];
  /** Resolves with the first line matching pred (rejects if the peer exits first). */
  waitFor(pred: (line: PeerLine) => boolean): Promise<PeerLine>;
  done: Promise<PeerRun>;
}

/** Spawns a peer and follows its JSON lines; see runPeer for the one-shot form. */
export async function startPeer(args: string[], opts: RunPeerOptions = {}): Promise<StartedPeer> {
  const peers = await ensureCPeers();
  const bin = opts.program === 'hostile' ? peers.hostilePeer : peers.vchanPeer;
  const argv = [...(opts.wrapper ?? []), ...(opts.command ?? [bin]), ...args];
  const child = spawn(argv[0]!, argv.slice(1), {
    env: { ...peers.env, ...opts.env },
    stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  const lines: PeerLine[] = [];
  const waiters: { pred: (l: PeerLine) => boolean; resolve: (l: PeerLine) => void; reject: (e: Error) => void }[] = [];
  let stdout = '';
  let stderr = '';
  let partial = '';
  let timedOut = false;

  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    partial += chunk;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const text = partial.slice(0, nl).trim();
      partial = partial.slice(nl + 1);
      if (!text.startsWith('{')) continue;
      let line: PeerLine;
      try {
        line = JSON.parse(text) as PeerLine;
      } catch {
        continue;
      }
      lines.push(line);
      opts.onLine?.(line, child);
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (waiters[i]!.pred(line)) waiters.splice(i, 1)[0]!.resolve(line);
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });

  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? 120_000);

  const done = new Promise<PeerRun>((resolveDone, rejectDone) => {
    child.on('error', (err) => {
      clearTimeout(timer);
      rejectDone(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      for (const w of waiters.splice(0)) {
        w.reject(new Error(`peer exited (code ${code}, signal ${signal}) before the awaited line; stderr: ${stderr.trim()}`));
      }
      resolveDone({ code, signal, result: lines[lines.length - 1], lines, stdout, stderr, timedOut });
    });
  });
  done.catch(() => {});

  return {
    child,
    lines,
    done,
    waitFor(pred) {
      const seen = lines.find(pred);
      if (seen) return Promise.resolve(seen);
      if (child.exitCode !== null || child.signalCode !== null) {
        return Promise.reject(new Error('peer already exited'));
      }
      return new Promise((resolveLine, rejectLine) => waiters.push({ pred, resolve: resolveLine, reject: rejectLine }));
    },
  };
}

/** Runs a peer to completion and returns its exit and its last JSON line. */
export async function runPeer(args: string[], opts: RunPeerOptions = {}): Promise<PeerRun> {
  return (await startPeer(args, opts)).done;
}

export function isResult(line: PeerLine | undefined): line is PeerOk | PeerFail {
  return !!line && 'ok' in line;
}
