/**
 * The bench modes over a node:stream Duplex: a VchanStream, or a net.Socket
 * on a unix socket (what a user would pick instead of a vchan). The same
 * code drives both, so the difference is the transport.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Vchan, VchanStream, type XenBackend } from '../../src/index.js';
import { batchFor, cpuSince, latencyResult, now, print, ringMins, type PeerArgs } from './common.js';

/** Resolves on the first of `events` (an 'error' resolves too: the caller looks at the state). */
function first(s: Duplex | Server, events: string[]): Promise<string> {
  return new Promise((resolve) => {
    const handlers = events.map((e) => {
      const h = (): void => {
        events.forEach((name, i) => s.off(name, handlers[i]!));
        resolve(e);
      };
      s.on(e, h);
      return h;
    });
  });
}

let unixServer: Server | undefined;
/** Accepted sockets not yet taken: a client may connect again before we ask. */
const accepted: Socket[] = [];
let onAccept: (() => void) | undefined;

async function accept(path: string): Promise<Socket> {
  if (!unixServer) {
    unixServer = createServer((c) => {
      accepted.push(c);
      onAccept?.();
    });
    unixServer.listen(path);
    await first(unixServer, ['listening']);
    print({ event: 'listening' });
  }
  while (accepted.length === 0) await new Promise<void>((r) => (onAccept = r));
  return accepted.shift()!;
}

/** Opens our end: serves (relative xenstore path, or the socket's listener) or connects. */
async function open(a: PeerArgs, backend: XenBackend | undefined, serve: boolean, path = a.path): Promise<Duplex> {
  if (a.transport === 'unix') {
    path = path.replace(/^listen:/, '');
    if (serve) return accept(path);
    const s = createConnection(path);
    await first(s, ['connect', 'error']);
    return s;
  }
  const vchan = serve ? Vchan.server({ peer: a.peer, path, backend: backend!, ...ringMins(a.ring) }) : Vchan.client({ peer: a.peer, path, backend: backend! });
  const s = new VchanStream(vchan);
  if (serve) {
    await first(s, ['listening', 'error']);
    print({ event: 'listening' });
  }
  await first(s, ['connect', 'error']);
  return s;
}

/** Writes `buf` pieces for `seconds` (or until the stream fails); returns the bytes accepted. */
async function writeFor(s: Duplex, buf: Buffer, seconds: number, stop: () => boolean): Promise<number> {
  const k = batchFor(buf.length);
  const t0 = now();
  let tx = 0;
  while (!stop() && now() - t0 < seconds) {
    for (let i = 0; i < k; i++) {
      tx += buf.length;
      if (!s.write(buf)) {
        await first(s, ['drain', 'close', 'error']);
        break;
      }
    }
  }
  return tx;
}

async function send(a: PeerArgs, backend?: XenBackend): Promise<object> {
  const s = await open(a, backend, true);
  s.resume(); // nothing comes our way, but the readable side must be able to end
  const c0 = process.cpuUsage();
  const t0 = now();
  const tx = await writeFor(s, Buffer.alloc(a.size, 0x5a), a.seconds, () => s.destroyed);
  const t = now();
  const cpu = cpuSince(c0);
  s.end();
  await first(s, ['finish', 'close', 'error']);
  return { tx, seconds: t - t0, cpu };
}

async function recv(a: PeerArgs, backend?: XenBackend): Promise<object> {
  const s = await open(a, backend, false);
  const c0 = process.cpuUsage();
  let rx = 0;
  let start = 0;
  s.on('data', (chunk: Buffer) => {
    if (rx === 0) start = now();
    rx += chunk.length;
  });
  await first(s, ['end', 'close', 'error']);
  const last = now();
  const cpu = cpuSince(c0);
  s.destroy();
  return { rx, seconds: last - start, cpu };
}

async function bidir(a: PeerArgs, backend?: XenBackend): Promise<object> {
  const s = await open(a, backend, isServer(a));
  let rx = 0;
  let over = false;
  s.on('data', (chunk: Buffer) => (rx += chunk.length));
  const stop = (): void => {
    over = true;
  };
  s.once('end', stop).once('close', stop).on('error', stop);
  const c0 = process.cpuUsage();
  const t0 = now();
  const tx = await writeFor(s, Buffer.alloc(a.size, 0x5a), a.seconds, () => over);
  const t = now();
  const cpu = cpuSince(c0);
  s.destroy();
  return { tx, rx, seconds: t - t0, cpu };
}

/** bidir runs on both ends: the server gets a relative xenstore path, or `listen:` before the socket path. */
function isServer(a: PeerArgs): boolean {
  return a.transport === 'unix' ? a.path.startsWith('listen:') : !a.path.startsWith('/');
}

async function echo(a: PeerArgs, backend?: XenBackend): Promise<object> {
  const s = await open(a, backend, true);
  const c0 = process.cpuUsage();
  s.on('data', (chunk: Buffer) => {
    if (!s.write(chunk)) {
      s.pause();
      s.once('drain', () => s.resume());
    }
  });
  await first(s, ['end', 'close', 'error']);
  const cpu = cpuSince(c0);
  s.destroy();
  return { cpu };
}

async function ping(a: PeerArgs, backend?: XenBackend): Promise<object> {
  const s = await open(a, backend, false);
  let got = 0;
  let want = 0;
  let wake: (() => void) | undefined;
  s.on('data', (chunk: Buffer) => {
    got += chunk.length;
    if (got >= want && wake) {
      const w = wake;
      wake = undefined;
      w();
    }
  });
  const out = Buffer.alloc(a.size, 0x5a);
  const rtts: number[] = [];
  const c0 = process.cpuUsage();
  const t0 = now();
  let t = t0;
  while (t - t0 < a.seconds) {
    const start = now();
    want += a.size;
    s.write(out);
    if (got < want) await new Promise<void>((r) => (wake = r));
    t = now();
    rtts.push(t - start);
  }
  const cpu = cpuSince(c0);
  s.destroy();
  return { ...latencyResult(rtts), seconds: t - t0, cpu };
}

async function cserver(a: PeerArgs, backend?: XenBackend): Promise<object> {
  if (a.transport === 'vchan') throw new Error('connect cycles use the Vchan API (api vchan)');
  const t0 = now();
  let t = t0;
  let i = 0;
  for (let last = false; !last; i++) {
    const s = await open(a, backend, true);
    last = now() - t0 >= a.seconds;
    s.resume();
    s.end(last ? 'E' : 'C');
    await first(s, ['close']);
    t = now();
  }
  unixServer?.close();
  return { cycles: i, seconds: t - t0 };
}

async function cclient(a: PeerArgs, backend?: XenBackend): Promise<object> {
  if (a.transport === 'vchan') throw new Error('connect cycles use the Vchan API (api vchan)');
  let i = 0;
  for (let mark = ''; mark !== 'E'; i++) {
    const s = await open(a, backend, false);
    mark = await new Promise<string>((r) => s.once('data', (d: Buffer) => r(d.toString('latin1', 0, 1))));
    s.destroy();
    await first(s, ['close']);
  }
  return { cycles: i };
}

export const streamModes = { send, recv, bidir, echo, ping, cserver, cclient };
