// `vchan proxy` against Debian's vchan-socket-proxy (xen-utils-4.17) as the
// other end, in both modes, under the emulator: a unix socket in one domain
// reaches an echo server's socket in another, so every byte goes through
// both proxies there and back.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTools, Sim } from '../sim/helpers.js';
import { startCli, waitFor, type RunningCli } from './helpers.js';

let sim: Sim;
let echo: Server;
let target: string;
/** Connections the echo server holds open: the far proxy closes its one when its vchan session ends. */
let echoOpen = 0;
const children: ChildProcess[] = [];

beforeAll(async () => {
  sim = await Sim.start();
  target = join(sim.dir, 'echo.sock');
  echo = createServer((s) => {
    echoOpen++;
    s.once('close', () => echoOpen--);
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(target, r));
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  echo?.close();
  await sim?.stop();
});

/** Debian's vchan-socket-proxy in `domid`. */
async function debianProxy(domid: number, args: string[]): Promise<{ child: ChildProcess; log: () => string }> {
  const tools = await ensureTools();
  const child = spawn(tools.proxy, args, { env: await sim.domainEnv(domid), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let log = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (log += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
  return { child, log: () => log };
}

async function ourProxy(domid: number, args: string[]): Promise<RunningCli> {
  const p = await startCli(sim, domid, ['proxy', ...args]);
  children.push(p.child);
  p.child.stdin!.end();
  p.child.stdout!.resume();
  return p;
}

/** Sends `data` into the socket while reading; resolves with the same number of bytes back. */
function roundTrip(path: string, data: Buffer, ms = 15_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`round trip of ${data.length} bytes: ${n} came back within ${ms} ms`));
    }, ms);
    s.once('close', () => clearTimeout(timer));
    const got: Buffer[] = [];
    let n = 0;
    s.on('error', reject);
    s.on('data', (d: Buffer) => {
      got.push(d);
      n += d.length;
      if (n >= data.length) {
        s.destroy();
        resolve(Buffer.concat(got));
      }
    });
    s.on('close', () => n < data.length && reject(new Error(`socket closed after ${n} of ${data.length} bytes`)));
    s.write(data);
  });
}

/**
 * Several connections, one after another, each once the previous session is
 * gone at both ends (`ready`): both tools serve one connection at a time and
 * set up the next vchan session only after the last one is torn down.
 */
async function checkRoundTrips(front: string, ready: () => Promise<void>): Promise<void> {
  for (const size of [1, 65536, 8 << 20, 100_000, 100_001]) {
    await ready();
    const data = randomBytes(size);
    const back = await roundTrip(front, data);
    expect(back.length, `round trip of ${size} bytes`).toBe(size);
    expect(back.equals(data), `round trip of ${size} bytes`).toBe(true);
  }
}

async function stopped(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
}

describe('vchan proxy with Debian vchan-socket-proxy', () => {
  it('ours in server mode (dom1) <- theirs in client mode (dom2): byte-exact both ways, connection after connection', async () => {
    const front = join(sim.dir, 'front-a.sock');
    const server = await ourProxy(1, ['-v', '-m', 'server', '2', 'data/vchan/2/7', target]);
    // offered in xenstore before the C client looks (it would wait for it anyway)
    const client = await debianProxy(2, ['-m', 'client', '1', '/local/domain/1/data/vchan/2/7', front]);
    await waitFor(() => existsSync(front), `the C proxy's socket (logs: ${server.stderr()} ${client.log()})`);
    let sessions = 0;
    await checkRoundTrips(front, async () => {
      // our proxy offers the vchan again after each session (-v logs it)
      sessions++;
      await waitFor(() => echoOpen === 0 && server.stderr().split('offering').length > sessions, `session ${sessions} offered (log: ${server.stderr()})`);
    });
    await stopped(client.child);
    await stopped(server.child);
    expect((await server.exited).code).toBe(128 + 15);
    expect(await sim.idle()).toMatchObject({ grants: 0, pages: 0, mappedPages: 0, ports: 0 });
  });

  it('theirs in server mode (dom1) <- ours in client mode (dom2) with -s: byte-exact both ways, connection after connection', async () => {
    const front = join(sim.dir, 'front-b.sock');
    const server = await debianProxy(1, ['-m', 'server', '2', 'data/vchan/2/8', target]);
    const client = await ourProxy(2, ['-m', 'client', '-s', 'data/proxy-state', '1', '/local/domain/1/data/vchan/2/8', front]);
    await waitFor(() => existsSync(front), `our proxy's socket (logs: ${server.log()} ${client.stderr()})`);
    await checkRoundTrips(front, async () => {
      // the C server closed its echo connection, then it drops what is left in the ring: give that a moment
      await waitFor(() => echoOpen === 0, 'the C server to end its session');
      await new Promise((r) => setTimeout(r, 50));
    });
    // -s wrote "running" under our domain's home, as the C tool does
    const tools = await ensureTools();
    const dom0 = await sim.domainEnv(0);
    const state = await new Promise<string>((resolve, reject) => {
      const read = spawn(join(tools.xenstoreBin, 'xenstore-read'), ['/local/domain/2/data/proxy-state'], { env: dom0 });
      let out = '';
      read.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      read.once('error', reject);
      read.once('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`xenstore-read exited ${code}`))));
    });
    expect(state).toBe('running');
    await stopped(client.child);
    await stopped(server.child);
    expect((await client.exited).code).toBe(128 + 15);
  });
});
