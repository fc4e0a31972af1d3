/**
 * The Node side of the real-Xen scenarios, built on the package as shipped
 * (dist/), bundled by test/xen/build.sh and run in dom0 and in the domU.
 *
 *   peer server|client <peer> <path> [--bytes N] [--left-min N] [--right-min N] [--mode both|hold] [--stay]
 *   peer unix <socket> [--bytes N]          the client's half of `both`, over a unix socket
 *   peer hostile <server-domid> <path> <give-up-ms> [<baseline-path>]
 *   peer keeper <server-domid>              one client for many servers, see keeper()
 *
 * both: send N pattern bytes and check N arriving ones, byte by byte, at
 * once; with --stay the channel then stays open (until the process is
 * killed) instead of closing. hold: connect and wait for the peer to go; a
 * line "mark" on stdin starts the clock that the "closed" line reports
 * (msSinceMark), and the process then lingers (until stdin closes) so the
 * harness can look at what it still holds. upMs fields are /proc/uptime's
 * clock, which the harness's shell reads too. JSON lines on stdout; the
 * last says ok true|false.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { createInterface } from 'node:readline';
import type { Duplex } from 'node:stream';
import { connect, listen, type VchanStream } from '../../dist/index.js';
import { DEFAULT_SEEDS, fillPattern, PatternChecker } from '../support/pattern.js';

// uptime-ish stamps (ms since this process began) let a log be read as a timeline
const print = (o: object): void => void process.stdout.write(`${JSON.stringify({ ...o, pid: process.pid, at: Math.round(performance.now()) })}\n`);
const [cmd = '', ...args] = process.argv.slice(2);
/** Milliseconds since boot: CLOCK_MONOTONIC, which is /proc/uptime's clock in a guest that never suspends. */
const upMs = (): number => Number(process.hrtime.bigint() / 1000n) / 1000;

function option(name: string, fallback?: number): number | undefined {
  const i = args.indexOf(`--${name}`);
  return i < 0 ? fallback : Number(args[i + 1]);
}

/** The first of `events` to fire (events.once would reject on 'error'); removes its listeners. */
function first(s: Duplex, events: string[]): Promise<[string, unknown]> {
  return new Promise((resolve) => {
    const handlers = events.map((e) => {
      const h = (arg: unknown): void => {
        events.forEach((ev, i) => s.off(ev, handlers[i]!));
        resolve([e, arg]);
      };
      s.on(e, h);
      return h;
    });
  });
}

function open(role: string): VchanStream {
  const [peer, path] = [Number(args[0]), args[1] ?? ''];
  const hwm = { writableHighWaterMark: 1 << 20 };
  if (role === 'server') {
    const s = listen({ peer, path, readMin: option('left-min'), writeMin: option('right-min'), ...hwm });
    s.on('listening', () => print({ event: 'listening', path }));
    return s;
  }
  // The other domain may still be starting its peer on a loaded machine.
  return connect({ peer, path, timeout: 60_000, ...hwm });
}

/**
 * Sends `bytes` of our pattern and checks `bytes` of the other's, at once.
 * holdLast: our last byte goes only after all of the peer's arrived, so a
 * peer that has everything knows we have everything too and may hang up.
 */
async function exchange(s: Duplex, seeds: { tx: number; rx: number }, bytes: number, holdLast = false): Promise<object> {
  const checker = new PatternChecker(seeds.rx);
  const started = performance.now();
  let failure: Error | undefined;
  const received = new Promise<void>((resolve, reject) => {
    const fail = (e: Error): void => reject((failure ??= e));
    s.on('data', (chunk: Buffer) => {
      try {
        checker.push(chunk);
      } catch (e) {
        return fail(e as Error);
      }
      if (checker.received > bytes) fail(new Error(`more than ${bytes} bytes arrived`));
      else if (checker.received === bytes) resolve();
    });
    s.on('error', fail);
    s.on('end', () => checker.received < bytes && fail(new Error(`ended after ${checker.received} of ${bytes} bytes`)));
  });
  received.catch(() => {});
  // A write's callback runs once its bytes are in the ring (or the kernel, for a socket).
  let txSeconds = 0;
  let flushed = (): void => {};
  const allWritten = new Promise<void>((resolve) => (flushed = resolve));
  const last = (): void => {
    txSeconds = (performance.now() - started) / 1000;
    flushed();
  };
  const early = holdLast ? bytes - 1 : bytes;
  let sent = 0;
  while (sent < early && !failure) {
    const chunk = fillPattern(seeds.tx, sent, Buffer.allocUnsafeSlow(Math.min(65536, early - sent)));
    sent += chunk.length;
    if (!s.write(chunk, sent === bytes ? last : undefined)) await first(s, ['drain', 'error', 'close']);
  }
  if (failure) throw failure;
  await received;
  const rxSeconds = (performance.now() - started) / 1000;
  if (sent < bytes) s.write(fillPattern(seeds.tx, sent, Buffer.alloc(bytes - sent)), last);
  const [how, error] = await Promise.race([allWritten.then((): [string, unknown] => ['written', undefined]), first(s, ['error', 'close'])]);
  if (how !== 'written') throw (error as Error | undefined) ?? new Error(`the stream closed before our writes were in the ring`);
  const seconds = (performance.now() - started) / 1000;
  return { sent: bytes, received: checker.received, seconds, txSeconds, rxSeconds, mbps: bytes / 1e6 / seconds };
}

async function both(role: 'server' | 'client'): Promise<void> {
  const s = open(role);
  await once(s, 'connect');
  const v = s.vchan!;
  print({ event: 'open', readSize: v.readSize, writeSize: v.writeSize });
  // --linger: the peer hangs up first (it is a proxy that must drain the ring).
  const linger = args.includes('--linger');
  const ended = linger ? once(s, 'end') : undefined;
  const result = await exchange(s, DEFAULT_SEEDS[role], option('bytes', 1 << 20)!, linger);
  if (args.includes('--stay')) {
    // The harness kills us with the channel open.
    print({ event: 'exchanged', role, ...result });
    setInterval(() => {}, 1 << 30);
    return;
  }
  await ended;
  // Flushes our bytes into the ring; the peer may still read them. (Without
  // allowHalfOpen the stream may have ended itself already, the peer gone.)
  if (!s.writableFinished) {
    const finished = once(s, 'finish');
    s.end();
    await finished;
  }
  print({ ok: true, role, readSize: v.readSize, writeSize: v.writeSize, ...result });
  s.destroy();
  process.exit(0);
}

async function hold(role: 'server' | 'client'): Promise<void> {
  const s = open(role);
  let mark = 0;
  process.stdin.setEncoding('utf8').on('data', (d: string) => d.includes('mark') && (mark = performance.now()));
  await once(s, 'connect');
  print({ event: 'open' });
  s.resume();
  const [event, error] = await first(s, ['end', 'error']);
  const noticed = upMs();
  const how = event === 'end' ? 'end' : (error as { code?: string }).code;
  const msSinceMark = mark ? performance.now() - mark : null;
  s.destroy();
  await once(s, 'close');
  print({ ok: true, event: 'closed', how, msSinceMark, upMs: noticed });
  // Stay until stdin closes, so the harness can inspect /proc/<pid>.
  if (process.stdin.readableEnded) process.exit(0);
  process.stdin.on('end', () => process.exit(0));
}

async function unix(): Promise<void> {
  const s = netConnect(args[0] ?? '');
  await once(s, 'connect');
  const result = await exchange(s, DEFAULT_SEEDS.client, option('bytes', 1 << 20)!);
  s.end(); // everything arrived, so the far end has ours too (it held its last byte back)
  await once(s, 'close');
  print({ ok: true, role: 'unix', ...result });
  process.exit(0);
}

/** Faces one test/c/hostile-peer.c server: how the channel ended, and the CPU and wake-ups meanwhile. */
async function face(path: string, giveUpMs: number): Promise<object> {
  const s = connect({ peer: Number(args[0]), path, timeout: 60_000 });
  // A write of ours caught by the peer's close fails after 'end' (as a socket's
  // EPIPE); the outcome is already recorded by then.
  s.on('error', () => undefined);
  let cpu = process.cpuUsage();
  let since = performance.now();
  let received = 0;
  let connected = false;
  let wakeups = 0;
  s.on('connect', () => {
    connected = true;
    [cpu, since] = [process.cpuUsage(), performance.now()];
    s.vchan?.onEvent(() => wakeups++);
    print({ event: 'open', path });
  });
  s.on('data', (d: Buffer) => (received += d.length));
  // A little writing keeps our writer reading the counters the peer scribbles on.
  const writer = setInterval(() => connected && !s.destroyed && !s.writableEnded && s.write(Buffer.alloc(100, 0x5a)), 50);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const giveUp = new Promise<[string, unknown]>((r) => (timer = setTimeout(() => r(['still-open', undefined]), giveUpMs)));
  const [event, e] = await Promise.race([first(s, ['end', 'error']), giveUp]);
  clearTimeout(timer);
  const error = e as (Error & { code?: string }) | undefined;
  const outcome = { outcome: event, code: error?.code, message: error?.message };
  clearInterval(writer);
  const used = process.cpuUsage(cpu);
  const wallMs = performance.now() - since;
  s.destroy();
  return { ...outcome, connected, received, wallMs, cpuMs: (used.user + used.system) / 1000, wakeups };
}

/**
 * hostile <server-domid> <path> <give-up-ms> [<baseline-path>]: first, when
 * given, the baseline server (an honest one: {"event":"baseline",...}), then
 * the hostile one, back to back in this one process.
 */
async function hostile(): Promise<void> {
  const giveUpMs = Number(args[2] ?? 10_000);
  if (args[3]) print({ event: 'baseline', ...(await face(args[3], giveUpMs)) });
  print({ ok: true, ...(await face(args[1] ?? '', giveUpMs)) });
  process.exit(0);
}

/** Our mappings of peers' pages, as the harness counts them in /proc/<pid>/maps. */
function gntdevMappings(): number {
  return readFileSync('/proc/self/maps', 'utf8').split('\n').filter((line) => line.includes('/dev/xen/gntdev')).length;
}

/**
 * One client process that outlives many servers. Each stdin line
 * "<path> <bytes> [half|default]" connects to a fresh server there and
 * exchanges <bytes> each way (checked); then the stream is only kept: it
 * stays in `kept` and nothing here ever ends, destroys or closes it (half:
 * allowHalfOpen true, so not even Node closes it when the peer is gone). So
 * whatever the process still holds after a server died is what the library
 * failed to release by itself. Lines, per stream n:
 *   {"event":"exchanged","n":N,"before":B,"mapped":M,...}  B, M: our gntdev
 *     mappings before connect() and once connected (before a byte moved)
 *   {"event":"end"|"close"|"error","n":N,...}                as they come
 *   {"event":"released","n":N,"lastMappedUpMs":T1,"goneUpMs":T2}  our own
 *     look every 50 ms: a look begun at T1 still saw more than B mappings,
 *     the one that ended at T2 saw B again
 * and {"ok":true,"kept":N} once stdin ends.
 */
async function keeper(): Promise<void> {
  const peer = Number(args[0]);
  const kept: VchanStream[] = [];
  for await (const line of createInterface({ input: process.stdin })) {
    const [path = '', bytes = '0', open = 'default'] = line.trim().split(/\s+/);
    const n = kept.length + 1;
    const halfOpen = open === 'half' ? { allowHalfOpen: true } : {};
    const before = gntdevMappings();
    const s = connect({ peer, path, timeout: 60_000, writableHighWaterMark: 1 << 20, ...halfOpen });
    kept.push(s);
    s.on('end', () => print({ event: 'end', n, upMs: upMs() }));
    s.on('close', () => print({ event: 'close', n, upMs: upMs() }));
    s.on('error', (e: Error & { code?: string }) => print({ event: 'error', n, code: e.code, message: e.message }));
    try {
      await once(s, 'connect');
      // Counted before a byte moves, so the server cannot have been killed yet.
      const mapped = gntdevMappings();
      const result = await exchange(s, DEFAULT_SEEDS.client, Number(bytes));
      print({ event: 'exchanged', n, before, mapped, readSize: s.vchan?.readSize, writeSize: s.vchan?.writeSize, ...result });
      watchRelease(n, before);
    } catch (e) {
      const error = e as Error & { code?: string };
      print({ event: 'failed', n, error: error.message, code: error.code });
    }
  }
  print({ ok: true, kept: kept.length });
  process.exit(0);
}

/** Looks at our own mappings every 50 ms until they are back to `before`, then says when. */
function watchRelease(n: number, before: number): void {
  let lastMappedUpMs = upMs();
  const timer = setInterval(() => {
    const began = upMs();
    if (gntdevMappings() > before) {
      lastMappedUpMs = began;
      return;
    }
    clearInterval(timer);
    print({ event: 'released', n, lastMappedUpMs, goneUpMs: upMs() });
  }, 50);
}

const run: Record<string, () => Promise<void>> = {
  server: () => (args.includes('hold') ? hold('server') : both('server')),
  client: () => (args.includes('hold') ? hold('client') : both('client')),
  unix,
  hostile,
  keeper,
};
const main = run[cmd];
if (!main) {
  print({ ok: false, error: `unknown command ${cmd}` });
  process.exit(2);
}
main().catch((e: Error & { code?: string }) => {
  print({ ok: false, error: e.message, code: e.code });
  process.exit(1);
});
