/**
 * One server kind at one N: the phases of the scale benchmark. `ts` is one
 * Node process with createServer() offering to domains 1..N; `c` is what a
 * user runs today, one Debian vchan-socket-proxy -m server per domain
 * forwarding to a Node unix-socket echo server. The clients are the same C
 * programs on Debian's libxenvchan, each in its own domain, for both.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { XenStore } from '../../src/index.js';
import { procCpu } from '../lib/setup.js';
import { percentile, rss, start, stopAll, type Proc } from './procs.js';

export type Kind = 'ts' | 'c';

export interface World {
  /** Environment of a process in domain `domid`. */
  envOf(domid: number): NodeJS.ProcessEnv;
  /** CPU seconds the emulator's broker has used so far. */
  brokerCpu(): number;
  /** Watches held by domain `domid` now (xensim status). */
  watches(domid: number): Promise<number>;
  /** A xenstore connection of dom0, to see the C proxies' offers appear. */
  store: XenStore;
  scratch: string;
  node: string;
  echo: string;
  vchanPeer: string;
  benchPeer: string;
  proxy: string;
  /** Seconds of the connect phase; of the ping. */
  seconds: number;
  pingSeconds: number;
  /** Every process started, so an interrupted run can end them. */
  live: Set<Proc>;
}

export interface Result {
  kind: Kind;
  n: number;
  connections: number;
  failures: number;
  firstFailure?: string;
  connPerSec: number;
  connectP50Ms: number;
  connectP99Ms: number;
  serverCpuMsPerConn: number;
  /** The emulator's broker (event channels, xenstore) over the connect phase, per connection. */
  brokerCpuMsPerConn: number;
  rssIdle: number;
  rssOpen: number;
  watchesIdle: number;
  watchesOpen: number;
  /** ts only: server CPU per 64-byte round trip on one channel with N-1 idle ones, and the round trip's p50. */
  cpuUsPerRoundTrip?: number;
  roundTripUsP50?: number;
}

const BYTES = 1 << 20;
let nextPort = 100;

const track = (w: World, p: Proc): Proc => {
  w.live.add(p);
  void p.done.then(() => w.live.delete(p));
  return p;
};

const offerPath = (d: number, port: number) => `/local/domain/0/data/vchan/${d}/${port}`;

/** `measured`: the processes whose memory and CPU are the server's (ts: the one; c: the proxies, not the unix echo server). */
interface Servers {
  measured: Proc[];
  all: Proc[];
}

/** The server processes of `kind` for domains 1..n; resolves once every offer is published. */
async function servers(w: World, kind: Kind, n: number, port: number): Promise<Servers> {
  if (kind === 'ts') {
    const s = track(w, start([w.node, '--expose-gc', w.echo, 'vchan', '1', String(n), String(port)], w.envOf(0), true));
    await s.event('listening');
    return { measured: [s], all: [s] };
  }
  const sock = join(w.scratch, `echo${port}.sock`);
  const echo = track(w, start([w.node, w.echo, 'unix', sock], w.envOf(0), true));
  await echo.event('listening');
  const proxies = Array.from({ length: n }, (_, i) =>
    track(w, start([w.proxy, '-m', 'server', String(i + 1), `data/vchan/${i + 1}/${port}`, sock], w.envOf(0))),
  );
  const end = Date.now() + 30_000;
  for (let d = 1; d <= n; d++) {
    while ((await w.store.read(`${offerPath(d, port)}/event-channel`)) === undefined) {
      if (Date.now() > end) throw new Error(`vchan-socket-proxy for domain ${d} published nothing in 30 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return { measured: proxies, all: [echo, ...proxies] };
}

const cpuOf = (ps: Proc[]) => ps.reduce((a, p) => a + procCpu(p.pid), 0);
const rssOf = (ps: Proc[]) => ps.reduce((a, p) => a + rss(p.pid), 0);

/** Node servers collect garbage first, so their RSS is not whatever the last burst left. */
async function settle(ps: Proc[]): Promise<void> {
  await Promise.all(
    ps.filter((p) => p.child.stdin).map((p) => {
      const seen = p.lines.length;
      p.send('gc\n');
      return new Promise<void>((r) => {
        const poll = () => (p.lines.slice(seen).some((l) => l.event === 'gc') ? r() : setTimeout(poll, 5));
        poll();
      });
    }),
  );
}

/** Clients that connect, echo 1 MiB (checked) and exit, one after another per domain, for w.seconds. */
async function connectPhase(w: World, s: Servers, n: number, port: number) {
  const latencies: number[] = [];
  let connections = 0;
  let failures = 0;
  let firstFailure: string | undefined;
  const cpu0 = cpuOf(s.measured);
  const broker0 = w.brokerCpu();
  const t0 = performance.now();
  const end = t0 + w.seconds * 1000;
  let elapsed = 0;
  let cpu = 0;
  let broker = 0;
  try {
    // every domain's loop runs to the end; a failed client is counted, not thrown
    await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const d = i + 1;
        while (performance.now() < end) {
          const argv = [w.vchanPeer, 'client', '0', offerPath(d, port), '--bytes', String(BYTES), '--seed-tx', String(d), '--seed-rx', String(d), '--timeout-ms', '30000'];
          const p = track(w, start(argv, w.envOf(d)));
          const r = await p.done;
          const l = r.last;
          if (r.code === 0 && l?.ok && l.received === BYTES && l.sent === BYTES && l.txHash === l.rxHash && p.openMs !== undefined) {
            connections++;
            latencies.push(p.openMs);
          } else {
            failures++;
            firstFailure ??= `domain ${d}: exit ${r.code} ${JSON.stringify(l ?? null)} ${r.stderr.trim().slice(-200)}`;
          }
        }
      }),
    );
  } finally {
    elapsed = (performance.now() - t0) / 1000;
    cpu = cpuOf(s.measured) - cpu0;
    broker = w.brokerCpu() - broker0;
  }
  latencies.sort((a, b) => a - b);
  return {
    connections,
    failures,
    firstFailure,
    connPerSec: connections / elapsed,
    connectP50Ms: percentile(latencies, 0.5),
    connectP99Ms: percentile(latencies, 0.99),
    serverCpuMsPerConn: connections ? (cpu / connections) * 1000 : NaN,
    brokerCpuMsPerConn: connections ? (broker / connections) * 1000 : NaN,
  };
}

/** Holds open idle channels to domains `from`..`to`; resolves once each client says it is open. */
async function holdAll(w: World, from: number, to: number, port: number): Promise<Proc[]> {
  const holds: Proc[] = [];
  for (let d = from; d <= to; d++) {
    holds.push(track(w, start([w.vchanPeer, 'client', '0', offerPath(d, port), '--mode', 'hold', '--timeout-ms', '30000'], w.envOf(d))));
  }
  try {
    await Promise.all(holds.map((h) => h.event('open')));
  } catch (e) {
    await stopAll(holds);
    throw e;
  }
  return holds;
}

/**
 * Memory and watches with no client, then with N idle channels held open,
 * on a server warmed by one short echo (so what a channel costs is not
 * confused with the code its first connection compiled).
 */
async function memoryPhase(w: World, s: Servers, n: number, port: number) {
  const warm = await track(w, start([w.vchanPeer, 'client', '0', offerPath(1, port), '--bytes', '65536', '--seed-tx', '1', '--seed-rx', '1', '--timeout-ms', '30000'], w.envOf(1))).done;
  if (warm.code !== 0) throw new Error(`the warm-up client failed: exit ${warm.code} ${JSON.stringify(warm.last ?? null)} ${warm.stderr.slice(-200)}`);
  await settle(s.measured);
  const rssIdle = rssOf(s.measured);
  const watchesIdle = await w.watches(0);
  const holds = await holdAll(w, 1, n, port);
  try {
    await settle(s.measured);
    return { rssIdle, rssOpen: rssOf(s.measured), watchesIdle, watchesOpen: await w.watches(0) };
  } finally {
    await stopAll(holds);
  }
}

/**
 * Server CPU per 64-byte round trip on domain 1's channel while the other
 * N-1 are open and idle: the median of three pings (one burst of load on a
 * shared machine must not make the figure).
 */
async function pingPhase(w: World, s: Servers, n: number, port: number) {
  const holds = await holdAll(w, 2, n, port);
  try {
    const runs: { cpuUsPerRoundTrip: number; roundTripUsP50: number }[] = [];
    for (let rep = 0; rep < 3; rep++) {
      const cpu0 = cpuOf(s.measured);
      const r = await track(w, start([w.benchPeer, 'ping', '0', offerPath(1, port), '0', '64', String(w.pingSeconds)], w.envOf(1))).done;
      const cpu = cpuOf(s.measured) - cpu0;
      if (r.code !== 0 || !r.last?.ok) throw new Error(`ping on domain 1 failed: exit ${r.code} ${JSON.stringify(r.last ?? null)} ${r.stderr.slice(-200)}`);
      runs.push({ cpuUsPerRoundTrip: (cpu / r.last.count!) * 1e6, roundTripUsP50: r.last.p50 as number });
    }
    const median = (k: keyof (typeof runs)[number]) => runs.map((x) => x[k]).sort((a, b) => a - b)[1]!;
    return { cpuUsPerRoundTrip: median('cpuUsPerRoundTrip'), roundTripUsP50: median('roundTripUsP50') };
  } finally {
    await stopAll(holds);
  }
}

/** Each phase on servers of its own, at a port of its own (no stale offer from the last one). */
async function withServers<T>(w: World, kind: Kind, n: number, phase: (s: Servers, port: number) => Promise<T>): Promise<T> {
  const port = nextPort++;
  const s = await servers(w, kind, n, port);
  try {
    return await phase(s, port);
  } finally {
    await stopAll(s.all);
  }
}

export async function measure(w: World, kind: Kind, n: number): Promise<Result> {
  const c = await withServers(w, kind, n, (s, port) => connectPhase(w, s, n, port));
  const m = await withServers(w, kind, n, (s, port) => memoryPhase(w, s, n, port));
  const p = kind === 'ts' ? await withServers(w, kind, n, (s, port) => pingPhase(w, s, n, port)) : {};
  return { kind, n, ...c, ...m, ...p };
}
