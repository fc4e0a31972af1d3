/**
 * The Node twin of test/c/vchan-peer.c: same roles, pattern streams and JSON
 * lines, so a test can pair it with the C peer or with itself. Bundled by
 * esbuild and run in an emulated domain; never imported by the library.
 *
 *   node-peer server|client <peer> <path> [--bytes N] [--left-min N] [--right-min N]
 *     [--api stream|vchan] [--mode both|send|recv] [--chunk N] [--stall-ms N] [--read-on-stdin 1]
 *
 * --api stream (default) goes through the public listen()/connect() and the
 * VchanStream; --api vchan through the C-shaped Vchan. The received stream is
 * checked byte by byte against the pattern (no hash: JS hashing would be the
 * bottleneck at 1 GiB). --read-on-stdin: (stream) read nothing until a line
 * arrives on stdin, so data can sit in the ring while the test kills the peer.
 *
 * Every line carries our pid (to kill us) and the wall clock (to time events
 * against a kill). The last line is {"ok":true|false,...}; exit 0 or 1.
 */
import { once } from 'node:events';
import { connect, listen } from '../../src/net.js';
import { Vchan } from '../../src/channel.js';
import type { VchanStream } from '../../src/stream.js';
import { XenBackend } from '../../src/xen/backend.js';
import { DEFAULT_SEEDS, fillPattern, PatternChecker, PatternMismatchError } from '../support/pattern.js';

function print(line: object): void {
  process.stdout.write(`${JSON.stringify({ ...line, pid: process.pid, wallMs: Date.now() })}\n`);
}

type Role = 'server' | 'client';
interface Options {
  role: Role;
  peer: number;
  path: string;
  bytes: number;
  leftMin?: number;
  rightMin?: number;
  api: 'stream' | 'vchan';
  mode: 'both' | 'send' | 'recv';
  chunk: number;
  stallMs: number;
  readOnStdin: boolean;
}

const USAGE = 'usage: node-peer server|client <peer> <path> [--bytes N] [--left-min N] [--right-min N] [--api stream|vchan] [--mode both|send|recv] [--chunk N] [--stall-ms N] [--read-on-stdin 1]';

function parse(argv: string[]): Options {
  const [role, peer, path, ...rest] = argv;
  if ((role !== 'server' && role !== 'client') || peer === undefined || path === undefined) throw new Error(USAGE);
  const o: Options = { role, peer: Number(peer), path, bytes: 1 << 20, api: 'stream', mode: 'both', chunk: 65536, stallMs: 10_000, readOnStdin: false };
  for (let i = 0; i < rest.length; i += 2) {
    const [key, value] = [rest[i], rest[i + 1] ?? ''];
    const n = Number(value);
    if (key === '--api' && (value === 'stream' || value === 'vchan')) o.api = value;
    else if (key === '--mode' && (value === 'both' || value === 'send' || value === 'recv')) o.mode = value;
    else if (!Number.isSafeInteger(n)) throw new Error(`bad option ${key} ${value}\n${USAGE}`);
    else if (key === '--bytes') o.bytes = n;
    else if (key === '--left-min') o.leftMin = n;
    else if (key === '--right-min') o.rightMin = n;
    else if (key === '--chunk') o.chunk = n;
    else if (key === '--stall-ms') o.stallMs = n;
    else if (key === '--read-on-stdin') o.readOnStdin = n !== 0;
    else throw new Error(`unknown option ${key}\n${USAGE}`);
  }
  return o;
}

/** Progress shared by both APIs, reported in the last line. */
class Progress {
  sent = 0;
  received = 0;
  readSize = 0;
  writeSize = 0;
  private start = 0;
  private cpu = process.cpuUsage();
  private lastMove = Date.now();
  readonly txTotal: number;
  readonly rxTotal: number;
  readonly checker: PatternChecker;

  constructor(readonly o: Options) {
    const seeds = DEFAULT_SEEDS[o.role];
    this.txTotal = o.mode === 'recv' ? 0 : o.bytes;
    this.rxTotal = o.mode === 'send' ? 0 : o.bytes;
    this.checker = new PatternChecker(seeds.rx);
  }

  opened(readSize: number, writeSize: number): void {
    this.readSize = readSize;
    this.writeSize = writeSize;
    this.start = performance.now();
    this.cpu = process.cpuUsage();
    print({ event: 'open', readSize, writeSize });
  }

  moved(): void {
    this.lastMove = Date.now();
  }

  stalled(): boolean {
    return Date.now() - this.lastMove > this.o.stallMs;
  }

  get done(): boolean {
    return this.sent >= this.txTotal && this.received >= this.rxTotal;
  }

  result(): object {
    const seconds = (performance.now() - this.start) / 1000;
    const cpu = process.cpuUsage(this.cpu);
    return {
      ok: true,
      role: this.o.role,
      api: this.o.api,
      sent: this.sent,
      received: this.received,
      mbps: Math.max(this.sent, this.received) / 1e6 / seconds,
      seconds,
      cpuMs: (cpu.user + cpu.system) / 1000,
      readSize: this.readSize,
      writeSize: this.writeSize,
    };
  }
}

const txSeed = (o: Options): number => DEFAULT_SEEDS[o.role].tx;

function peerClosed(what: string): Error {
  return Object.assign(new Error(what), { code: 'ERR_VCHAN_PEER_CLOSED' });
}

async function runStream(o: Options, p: Progress): Promise<void> {
  const stream: VchanStream =
    o.role === 'server'
      ? listen({ peer: o.peer, path: o.path, readMin: o.leftMin, writeMin: o.rightMin, writableHighWaterMark: 1 << 20 })
      : connect({ peer: o.peer, path: o.path, timeout: o.stallMs, writableHighWaterMark: 1 << 20 });
  let failure: Error | undefined;
  let wake: () => void = () => {};
  const wakeUp = (): void => wake();
  const nap = (): Promise<void> => new Promise<void>((resolve) => (wake = resolve));
  stream.on('error', (e: Error) => {
    failure ??= e;
    wakeUp();
  });
  stream.on('listening', () => print({ event: 'listening', path: o.path }));
  let ended = false;
  stream.on('end', () => {
    ended = true;
    print({ event: 'end', received: p.received });
    wakeUp();
  });
  stream.on('drain', wakeUp);
  const stall = setInterval(() => {
    if (p.stalled()) failure ??= new Error(`stalled: nothing moved for ${o.stallMs} ms`);
    if (failure) wakeUp();
  }, 100);
  try {
    await Promise.race([once(stream, 'connect'), nap()]);
    if (failure) throw failure;
    p.opened(stream.vchan!.readSize, stream.vchan!.writeSize);
    p.moved();
    const consume = (): void => {
      stream.on('data', (chunk: Buffer) => {
        try {
          if (p.received + chunk.length > p.rxTotal) throw new Error(`received more than ${p.rxTotal} bytes`);
          p.checker.push(chunk);
        } catch (e) {
          failure ??= e as Error;
          wakeUp();
          return;
        }
        p.received += chunk.length;
        p.moved();
        if (p.received === p.rxTotal) wakeUp();
      });
    };
    if (o.readOnStdin) process.stdin.once('data', consume);
    else consume();
    while (!failure && !p.done) {
      if (p.sent < p.txTotal) {
        const chunk = fillPattern(txSeed(o), p.sent, Buffer.allocUnsafeSlow(Math.min(o.chunk, p.txTotal - p.sent)));
        p.sent += chunk.length;
        if (stream.write(chunk, () => p.moved())) continue;
      }
      if (ended && p.received < p.rxTotal) throw peerClosed(`the stream ended after ${p.received} of ${p.rxTotal} bytes`);
      await nap();
    }
    if (failure) throw failure;
    stream.end(); // flush our writes into the ring, then close
    await Promise.race([once(stream, 'finish'), nap()]);
    if (failure) throw failure;
  } finally {
    clearInterval(stall);
    stream.destroy();
    process.stdin.destroy();
  }
}

async function runVchan(o: Options, p: Progress): Promise<void> {
  const backend = new XenBackend();
  let vchan: Vchan | undefined;
  try {
    vchan =
      o.role === 'server'
        ? await Vchan.server({ peer: o.peer, path: o.path, backend, ...(o.leftMin ? { readMin: o.leftMin } : {}), ...(o.rightMin ? { writeMin: o.rightMin } : {}) })
        : await Vchan.client({ peer: o.peer, path: o.path, backend, signal: AbortSignal.timeout(o.stallMs) });
    const v = vchan;
    if (o.role === 'server') print({ event: 'listening', path: o.path });
    const tx = new Uint8Array(o.chunk);
    const rx = new Uint8Array(o.chunk);
    let txHave = 0;
    let txOff = 0;
    let opened = false;
    while (!p.done) {
      if (!opened && v.isOpen() === 1) {
        opened = true;
        p.opened(v.readSize, v.writeSize);
      }
      let progress = false;
      if (p.sent < p.txTotal) {
        if (txOff === txHave) {
          txHave = Math.min(o.chunk, p.txTotal - p.sent);
          txOff = 0;
          fillPattern(txSeed(o), p.sent, tx.subarray(0, txHave));
        }
        const n = v.write(tx, txOff, txHave - txOff);
        txOff += n;
        p.sent += n;
        progress ||= n > 0;
      }
      if (p.received < p.rxTotal) {
        const n = v.read(rx, 0, Math.min(rx.length, p.rxTotal - p.received));
        if (n > 0) {
          p.checker.push(rx.subarray(0, n));
          p.received += n;
          progress = true;
        }
      }
      if (progress) {
        p.moved();
        continue;
      }
      if (v.isOpen() === 0) throw peerClosed('peer closed before the transfer finished');
      await v.wait(AbortSignal.timeout(o.stallMs));
    }
    // libvchan has no half-close: let the peer drain what we wrote before closing.
    while (v.isOpen() !== 0 && v.bufferSpace() < v.writeSize) await v.wait(AbortSignal.timeout(o.stallMs)).catch(() => undefined);
  } finally {
    await vchan?.close().catch(() => undefined);
    backend.close();
  }
}

async function main(): Promise<void> {
  let o: Options;
  try {
    o = parse(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  const p = new Progress(o);
  try {
    await (o.api === 'stream' ? runStream(o, p) : runVchan(o, p));
    print(p.result());
  } catch (error) {
    const e = error as Error & { code?: string };
    print({
      ok: false,
      role: o.role,
      code: e.code,
      error: `${e.code ?? e.name} ${e.message}`,
      sent: p.sent,
      received: p.received,
      ...(e instanceof PatternMismatchError ? { mismatchAt: e.position } : {}),
    });
    process.exitCode = 1;
  }
}

void main();
