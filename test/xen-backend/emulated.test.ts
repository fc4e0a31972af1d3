/**
 * XenBackend end to end under the emulator (xensim): the library's own
 * device calls go through libxensim.so exactly as they would go to the
 * kernel. TS server ↔ C libxenvchan client, C server ↔ TS client, and
 * TS ↔ TS, byte-exact (pattern hashes), and nothing held afterwards.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureCPeers, REPO_ROOT } from '../support/c-peer.js';
import { patternHash } from '../support/pattern.js';
import { NOTHING_HELD, TestSim } from './sim.js';

interface Line {
  ok?: boolean;
  pid?: number;
  wallMs?: number;
  viaEvent?: boolean;
  liveByte?: number;
  event?: string;
  error?: string;
  txHash?: string;
  rxHash?: string;
  sent?: number;
  received?: number;
  leftOrder?: number;
  rightOrder?: number;
  readSize?: number;
  writeSize?: number;
}

interface Run {
  code: number | null;
  lines: Line[];
  stderr: string;
}

/** The Node peer, bundled inside the repo so it finds the addon (binding.gyp) above it. */
function bundleNodePeer(): string {
  const outfile = join(REPO_ROOT, '.cache/xen-backend/node-peer.mjs');
  mkdirSync(join(REPO_ROOT, '.cache/xen-backend'), { recursive: true });
  buildSync({ entryPoints: [join(import.meta.dirname, 'node-peer.ts')], outfile, bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'error' });
  return outfile;
}

interface Started {
  done: Promise<Run>;
  lines: Line[];
  first(event: string): Promise<void>;
}

/** The pid a peer reported (the Node peer on every line, the C peer via cWithPid). */
function serverPid(p: Started): number {
  const pid = p.lines.find((l) => l.pid !== undefined)?.pid;
  if (pid === undefined) throw new Error(`the peer did not report its pid: ${JSON.stringify(p.lines)}`);
  return pid;
}

function run(argv: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Started {
  const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Line[] = [];
  const waiting = new Map<string, () => void>();
  let stderr = '';
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    partial += d;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const text = partial.slice(0, nl).trim();
      partial = partial.slice(nl + 1);
      if (!text.startsWith('{')) continue;
      const line = JSON.parse(text) as Line;
      lines.push(line);
      if (line.event) waiting.get(line.event)?.();
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<Run>((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, lines, stderr });
    }),
  );
  return {
    done,
    lines,
    first: (event) =>
      new Promise<void>((resolve, reject) => {
        if (lines.some((l) => l.event === event)) return resolve();
        waiting.set(event, resolve);
        void done.then((r) => reject(new Error(`${argv.join(' ')} exited (${r.code}) before "${event}": ${JSON.stringify(r.lines)} ${r.stderr}`)));
      }),
  };
}

function result(r: Run): Line {
  const last = r.lines.at(-1);
  // A failure shows the peer's own words (e.g. an emulator that refuses libuv's FIONBIO on the evtchn fd).
  expect({ code: r.code, last, stderr: r.stderr.slice(0, 2000) }).toMatchObject({ code: 0, last: { ok: true } });
  return last!;
}

let sim: TestSim;
let nodePeer: string;
let cPeer: string;
let env: NodeJS.ProcessEnv;
const BYTES = 4_000_000;
const serverTx = patternHash(1, BYTES);
const clientTx = patternHash(2, BYTES);

beforeAll(async () => {
  nodePeer = bundleNodePeer();
  cPeer = (await ensureCPeers()).vchanPeer;
  sim = await TestSim.start();
  env = sim.env;
});

afterAll(async () => {
  await sim?.stop();
});

let nextPort = 2000;
const node = (...args: (string | number)[]) => [process.execPath, nodePeer, ...args.map(String)];
const c = (...args: (string | number)[]) => [cPeer, ...args.map(String)];

async function pair(server: string[], client: string[]): Promise<{ server: Line; client: Line }> {
  const s = run([...sim.runArgs(0), ...server], env);
  await s.first('listening');
  const cl = run([...sim.runArgs(5), ...client], env);
  const [sr, cr] = await Promise.all([s.done, cl.done]);
  return { server: result(sr), client: result(cr) };
}

function expectExact(r: { server: Line; client: Line }): void {
  expect(r.server).toMatchObject({ sent: BYTES, received: BYTES, txHash: serverTx, rxHash: clientTx });
  expect(r.client).toMatchObject({ sent: BYTES, received: BYTES, txHash: clientTx, rxHash: serverTx });
}

describe('XenBackend under xensim', () => {
  it('TS server ↔ C libxenvchan client, default ring sizes', async () => {
    const port = nextPort++;
    const r = await pair(node('server', 5, `data/vchan/5/${port}`, '--bytes', BYTES), c('client', 0, `/local/domain/0/data/vchan/5/${port}`, '--bytes', BYTES));
    expectExact(r);
    expect(r.client).toMatchObject({ leftOrder: 16, rightOrder: 16 });
    expect(await sim.idle()).toEqual(NOTHING_HELD);
  });

  it('TS server with in-page rings (10, 11) ↔ C client', async () => {
    const port = nextPort++;
    const r = await pair(
      node('server', 5, `data/vchan/5/${port}`, '--bytes', BYTES, '--left-min', 1000, '--right-min', 2000),
      c('client', 0, `/local/domain/0/data/vchan/5/${port}`, '--bytes', BYTES),
    );
    expectExact(r);
    expect(r.client).toMatchObject({ leftOrder: 10, rightOrder: 11 });
    expect(await sim.idle()).toEqual(NOTHING_HELD);
  });

  it('C libxenvchan server (orders 12, 20) ↔ TS client', async () => {
    const port = nextPort++;
    const r = await pair(
      c('server', 5, `data/vchan/5/${port}`, '--bytes', BYTES, '--left-min', 4096, '--right-min', 1 << 20),
      node('client', 0, `/local/domain/0/data/vchan/5/${port}`, '--bytes', BYTES),
    );
    expectExact(r);
    expect(r.client).toMatchObject({ writeSize: 4096, readSize: 1 << 20 });
    expect(await sim.idle()).toEqual(NOTHING_HELD);
  });

  it('TS server ↔ TS client', async () => {
    const port = nextPort++;
    const r = await pair(node('server', 5, `data/vchan/5/${port}`, '--bytes', BYTES), node('client', 0, `/local/domain/0/data/vchan/5/${port}`, '--bytes', BYTES));
    expectExact(r);
    expect(await sim.idle()).toEqual(NOTHING_HELD);
  });
});

/** Runs the C peer through sh so that it prints its own pid first (exec keeps the pid). */
const cWithPid = (...args: (string | number)[]) => ['sh', '-c', 'echo "{\\"event\\":\\"pid\\",\\"pid\\":$$}"; exec "$0" "$@"', cPeer, ...args.map(String)];
const BIG = 4_000_000_000;

describe('XenBackend under xensim: peer death', () => {
  it('kill -9 of the Node server: the C client sees the close at once (unmap notification armed by us)', async () => {
    const port = nextPort++;
    const s = run([...sim.runArgs(0), ...node('server', 5, `data/vchan/5/${port}`, '--bytes', BIG)], env);
    await s.first('listening');
    const cl = run([...sim.runArgs(5), ...c('client', 0, `/local/domain/0/data/vchan/5/${port}`, '--mode', 'hold')], env);
    await cl.first('open');
    await new Promise((r) => setTimeout(r, 200));
    const pid = serverPid(s);
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    const r = await cl.done;
    const closed = r.lines.at(-1);
    expect(closed).toMatchObject({ event: 'closed', viaEvent: true, liveByte: 0 });
    expect(closed!.wallMs! - killedAt).toBeLessThan(500);
    await s.done;
    expect(await sim.idle()).toEqual(NOTHING_HELD);
  });

  it('kill -9 of the C server: the TS client ends with ERR_VCHAN_PEER_CLOSED at once', async () => {
    const port = nextPort++;
    const s = run([...sim.runArgs(0), ...cWithPid('server', 5, `data/vchan/5/${port}`, '--bytes', BIG)], env);
    await s.first('listening');
    const cl = run([...sim.runArgs(5), ...node('client', 0, `/local/domain/0/data/vchan/5/${port}`, '--bytes', BIG)], env);
    await cl.first('open');
    await new Promise((r) => setTimeout(r, 200));
    const killedAt = Date.now();
    process.kill(serverPid(s), 'SIGKILL');
    const r = await cl.done;
    const last = r.lines.at(-1);
    expect(last).toMatchObject({ ok: false });
    expect(last!.error).toMatch(/ERR_VCHAN_PEER_CLOSED/);
    expect(last!.wallMs! - killedAt).toBeLessThan(500);
    await s.done;
    expect(await sim.idle()).toEqual(NOTHING_HELD);
  });
});

describe('XenBackend under xensim: resources', () => {
  it('1000 loopback listen/connect/transfer/close cycles in one process leak no fds, mappings, xenstore keys or heap', async () => {
    const script = join(REPO_ROOT, '.cache/xen-backend/cycles.mjs');
    buildSync({ entryPoints: [join(import.meta.dirname, 'fixtures/cycles.ts')], outfile: script, bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'error' });
    const r = await run([...sim.runArgs(0), process.execPath, '--expose-gc', script, '1000'], env, 120_000).done;
    const last = result(r) as Line & { before: { fds: number; maps: number; heap: number }; after: { fds: number; maps: number; heap: number }; xenstoreLeft: string[] };
    expect(last.after.fds).toBe(last.before.fds);
    expect(last.after.maps).toBe(last.before.maps);
    expect(last.after.heap - last.before.heap).toBeLessThan(4 << 20);
    expect(last.xenstoreLeft).toEqual([]);
    expect(await sim.idle()).toEqual(NOTHING_HELD);
  });
});

describe('XenBackend under xensim: kernel limits', () => {
  it('two 1 MiB rings over a gntalloc limit below 513 pages fail with ENOSPC, the limit named, nothing leaked', async () => {
    const limited = await TestSim.start({ XENSIM_GNTALLOC_LIMIT: '300' });
    try {
      const s = run([...limited.runArgs(0), ...node('server', 5, 'data/vchan/5/3000', '--left-min', 1 << 20, '--right-min', 1 << 20)], limited.env);
      const r = await s.done;
      expect(r.code).toBe(1);
      const last = r.lines.at(-1);
      expect(last?.ok).toBe(false);
      expect(last?.error).toMatch(/^ENOSPC sharing 256 pages with domain 5: ENOSPC from ioctl\(GNTALLOC_ALLOC_GREF\): gntalloc limit reached: raise \/sys\/module\/xen_gntalloc\/parameters\/limit/);
      expect(await limited.idle()).toEqual(NOTHING_HELD);
    } finally {
      await limited.stop();
    }
  });
});
