#!/usr/bin/env node
// The main xen-vchan demo: a Node server (listen) in domain 0 and a C client
// built on Debian's real libxenvchan.so.4.17 (test/c/vchan-peer.c) in domain
// 5, under the xensim emulator. Both send 256 MiB of a keyed pattern at the
// same time and check every byte they receive; we print MB/s.
//
//   node examples/demo-xensim.mjs [MiB]     (default 256 each way)
//
// The C client needs apt-get (to fetch Debian's Xen libraries into .cache/,
// nothing installed) and a C compiler; where either is missing the demo says
// why in one line and runs a Node client instead. On a real Xen host it
// explains what to run.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist/sim/cli.js');
const PORT = 1000;
const RING = 1 << 20;

// ---- the pattern both sides speak (test/c/pattern.h) ----
function fillPattern(seed, pos, out) {
  // pos and out.byteOffset are multiples of 4 here; little-endian host
  const words = new Uint32Array(out.buffer, out.byteOffset, out.length >>> 2);
  let lo = (pos / 4) | 0;
  const hiTerm = Math.imul(Math.floor(pos / 4 / 2 ** 32) ^ seed, 0x85ebca77);
  for (let i = 0; i < words.length; i++, lo = (lo + 1) | 0) {
    let x = (Math.imul(lo, 0x9e3779b1) + hiTerm) | 0;
    x ^= x >>> 16;
    x = Math.imul(x, 0x7feb352d);
    x ^= x >>> 15;
    x = Math.imul(x, 0x846ca68b);
    words[i] = x ^ (x >>> 16);
  }
  return out;
}

// ---- the Node sides, run by `xensim run` ----
/** Checks what arrives against `seed`'s pattern; `bad` is the first wrong byte's position, or -1. */
function checker(seed) {
  const expect = Buffer.alloc(RING + 8);
  const state = { received: 0, bad: -1 };
  state.check = (chunk) => {
    // regenerate from the word boundary below and compare
    const lead = state.received % 4;
    const want = fillPattern(seed, state.received - lead, expect.subarray(0, (lead + chunk.length + 3) & ~3)).subarray(lead, lead + chunk.length);
    if (state.bad < 0 && !want.equals(chunk)) state.bad = state.received;
    state.received += chunk.length;
  };
  return state;
}

/** Sends `bytes` of `seed`'s pattern and checks `bytes` of `peerSeed`'s; prints a JSON summary. */
async function exchange(stream, seed, peerSeed, bytes) {
  const { once } = await import('node:events');
  const started = performance.now();
  const incoming = checker(peerSeed);
  const gotAll = new Promise((resolve) =>
    stream.on('data', (chunk) => {
      incoming.check(chunk);
      if (incoming.received >= bytes) resolve();
    }),
  );
  for (let sent = 0; sent < bytes; sent += RING) {
    if (!stream.write(fillPattern(seed, sent, Buffer.allocUnsafeSlow(Math.min(RING, bytes - sent))))) await once(stream, 'drain');
  }
  await gotAll;
  const seconds = (performance.now() - started) / 1000;
  stream.end();
  await once(stream, 'close');
  const { received, bad } = incoming;
  process.stdout.write(`${JSON.stringify({ ok: received === bytes && bad < 0, received, bad, mbps: bytes / 1e6 / seconds })}\n`);
}

function failOn(stream, role) {
  stream.on('error', (e) => {
    console.error(`${role}: ${e.code} ${e.message}`);
    process.exit(1);
  });
}

// domain 0: sends pattern 1, expects pattern 2
async function serve(bytes) {
  const { listen } = await import('xen-vchan');
  const { once } = await import('node:events');
  const server = listen({ peer: 5, port: PORT, readMin: RING, writeMin: RING, writableHighWaterMark: RING });
  failOn(server, 'server');
  await once(server, 'listening');
  process.stdout.write('listening\n');
  await once(server, 'connect');
  await exchange(server, 1, 2, bytes);
}

// domain 5, when the C client cannot be built: sends pattern 2, expects pattern 1
async function client(bytes) {
  const { connect } = await import('xen-vchan');
  const { once } = await import('node:events');
  const stream = connect({ peer: 0, port: PORT, timeout: 30_000, writableHighWaterMark: RING });
  failOn(stream, 'client');
  await once(stream, 'connect');
  await exchange(stream, 2, 1, bytes);
}

// ---- the orchestration ----
/** The C client, built against Debian's libxenvchan; or why it cannot be, in one line. */
function cPeer() {
  let root;
  try {
    const out = execFileSync('bash', [join(ROOT, 'scripts/debian-packages.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    root = out.trim().split('\n').pop();
  } catch (error) {
    const said = String(error.stderr ?? '').trim().split('\n').pop() || error.message;
    return { reason: `Debian's Xen packages cannot be fetched: ${said.replace(/^debian-packages: (error: )?/, '')}` };
  }
  const libDir = join(root, 'usr/lib/x86_64-linux-gnu');
  const out = join(ROOT, '.cache/c/vchan-peer-demo');
  const src = join(ROOT, 'test/c/vchan-peer.c');
  if (!existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs) {
    mkdirSync(dirname(out), { recursive: true });
    const cc = process.env.CC ?? 'cc';
    try {
      execFileSync(cc, ['-O2', `-I${join(root, 'usr/include')}`, src, `-L${libDir}`, `-Wl,-rpath-link,${libDir}`, '-lxenvchan', '-lxentoollog', '-o', out], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (error) {
      return { reason: `the C client cannot be built: ${error.code === 'ENOENT' ? `no C compiler (${cc})` : `${cc} exited with ${error.status}`}` };
    }
  }
  return { bin: out, libDir };
}

function run(argv, env) {
  const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const lines = [];
  let onLine = () => {};
  child.stdout.setEncoding('utf8').on('data', (d) => {
    out += d;
    let nl;
    while ((nl = out.indexOf('\n')) >= 0) {
      lines.push(out.slice(0, nl));
      out = out.slice(nl + 1);
      onLine();
    }
  });
  const done = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  const line = (pred) =>
    new Promise((resolve, reject) => {
      const look = () => {
        const l = lines.find(pred);
        if (l !== undefined) resolve(l);
      };
      onLine = look;
      look();
      done.then(() => reject(new Error(`${argv.join(' ')} exited without the expected output`)));
    });
  return { done, lines, line };
}

async function main() {
  const mib = Number(process.argv[2] ?? 256);
  // (XEN_VCHAN_DEMO_XEN_DIR: where to look for the Xen devices; lets a test fake a Xen host)
  const xenDir = process.env.XEN_VCHAN_DEMO_XEN_DIR ?? '/dev/xen';
  if (existsSync(xenDir) && !process.env.XENSIM_SOCKET) {
    console.log(
      'This host has /dev/xen: a real vchan needs two domains, so this demo will not pretend on one.\n' +
        `  in domain 0:  node -e "import('xen-vchan').then(({listen}) => process.stdin.pipe(listen({ peer: <domU id>, port: ${PORT} })))"\n` +
        `  in the domU:  node -e "import('xen-vchan').then(({connect}) => connect({ peer: 0, port: ${PORT} }).pipe(process.stdout))"\n` +
        'See "Running on a real Xen host" in README.md. `node examples/demo.mjs` runs the in-memory demo anywhere.',
    );
    return;
  }
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  const bytes = mib * 2 ** 20;
  const peer = cPeer();
  if (peer.reason) console.log(`demo: ${peer.reason}; running the Node ↔ Node demo instead`);
  const other = peer.reason ? 'Node' : 'C';
  const dir = mkdtempSync(join(tmpdir(), 'xvd-'));
  const env = { ...process.env, XENSIM_DIR: dir };
  if (peer.libDir) env.LD_LIBRARY_PATH = [peer.libDir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':');
  const xensim = (...args) => [process.execPath, CLI, ...args];
  execFileSync(xensim('start')[0], xensim('start').slice(1), { env, stdio: 'ignore' });
  try {
    const who = peer.reason ? 'a Node client (connect, domain 5)' : 'a C libxenvchan client (domain 5)';
    console.log(`xen-vchan demo on the xensim emulator: a Node server (listen, domain 0) and ${who}`);
    console.log(`send ${mib} MiB each way at the same time over 1 MiB rings${peer.reason ? '' : ', 64 KiB writes on the C side'}, every byte checked`);
    const self = fileURLToPath(import.meta.url);
    const server = run(xensim('run', '--domid', '0', '--', process.execPath, self, 'serve', String(bytes)), env);
    await server.line((l) => l === 'listening');
    const clientArgv = peer.reason
      ? [process.execPath, self, 'client', String(bytes)]
      : [peer.bin, 'client', '0', `/local/domain/0/data/vchan/5/${PORT}`, '--bytes', String(bytes)];
    const client = run(xensim('run', '--domid', '5', '--', ...clientArgv), env);
    const [serverCode, clientCode] = await Promise.all([server.done, client.done]);
    const s = JSON.parse(server.lines.at(-1) ?? '{}');
    const c = JSON.parse(client.lines.at(-1) ?? '{}');
    const ok = serverCode === 0 && clientCode === 0 && c.ok === true && c.received === bytes && s.ok === true;
    const [toClient, toServer] = peer.reason ? ['Node server → Node client', 'Node client → Node server'] : ['Node → C', 'C → Node'];
    console.log(`${toClient}: ${c.received ?? 0} bytes, ${c.ok ? `every byte as sent (checked by the ${other} client)` : `FAILED: ${c.error ?? `at byte ${c.bad}`}`}`);
    console.log(`${toServer}: ${s.received ?? 0} bytes, ${s.ok ? 'every byte as sent (checked by the Node server)' : `FAILED at byte ${s.bad}`}`);
    console.log(`${(s.mbps ?? 0).toFixed(0)} MB/s each way (the server's view), ${(c.mbps ?? 0).toFixed(0)} MB/s (the client's)`);
    if (!ok) process.exitCode = 1;
  } finally {
    execFileSync(xensim('stop')[0], xensim('stop').slice(1), { env, stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'serve') await serve(Number(process.argv[3]));
else if (process.argv[2] === 'client') await client(Number(process.argv[3]));
else
  await main().catch((error) => {
    // a reason, not a stack trace
    console.error(`demo: ${error.message}`);
    process.exitCode = 1;
  });
