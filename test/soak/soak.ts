/**
 * The soak: a long-lived survivor process (survivor.ts, domain 1) and a peer
 * (peer.ts, domain 2) under one private xensim, streaming both ways, the
 * peer restarted over and over (kill -9 or a clean exit, at random, after a
 * random life). After each peer is gone and the survivor has ended both of
 * its sessions, one sample: the survivor's RSS and heap (after a GC), its
 * open fds and memory mappings (/proc), xensim's held grants, pages, mapped
 * pages, ports, watches and xenstore nodes, and the broker's own memory.
 * Every REPORT interval one row is printed; at the end a metric that keeps
 * growing (growth.ts) fails the run.
 *
 * Per cycle it also checks: the survivor ends each session within HANG_MS of
 * the peer's death, with a clean end or ERR_VCHAN_PEER_CLOSED only; what
 * arrived is the other side's pattern; after a clean exit every byte the
 * peer sent arrived.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ControlClient } from '../../sim/broker/control.js';
import type { BrokerStatus } from '../../sim/broker/broker.js';
import { Rng } from '../fuzz/rng.js';
import { bundle } from '../interop/harness.js';
import { TestSim } from '../xen-backend/sim.js';
import { judge, type Margin, type Verdict } from './growth.js';
import type { SessionReport } from './traffic.js';

const SURVIVOR_DOM = 1;
const PEER_DOM = 2;
export const HANG_MS = 2000;
/** A peer that needs longer than this to connect (a loaded machine) is a failure, not a wait. */
const CONNECT_MS = 15_000;
const MiB = 2 ** 20;

export interface Sample {
  /** Seconds since the start. */
  t: number;
  cycle: number;
  rss: number;
  heap: number;
  fds: number;
  /** Memory mappings of the emulator's page and event files (grants mapped or shared). */
  xenMaps: number;
  /** Every other memory mapping (heap segments, code, libraries). */
  maps: number;
  grants: number;
  pages: number;
  mappedPages: number;
  ports: number;
  watches: number;
  nodes: number;
  brokerRss: number;
  brokerHeap: number;
}

type Metric = Exclude<keyof Sample, 't' | 'cycle'>;

/** How much a metric may rise before it counts as growth: counts exactly, memory with slack for the allocator. */
/**
 * Metrics that count as growing only when another grows with them. V8 keeps
 * mapping 256 KiB heap pages as it compacts and reserves (seen: 142 → 280 over
 * 21 minutes with RSS flat at 105 MiB and the heap at 5.7 MiB): a mapping
 * leak that costs memory shows in RSS too, and our own are xenMaps, exact.
 */
export const JUDGED_ALONG: Partial<Record<Metric, Metric>> = { maps: 'rss' };

export const MARGINS: Record<Metric, Margin> = {
  rss: { abs: 8 * MiB, rel: 0.1 },
  heap: { abs: 2 * MiB, rel: 0.1 },
  fds: { abs: 0, rel: 0 },
  xenMaps: { abs: 0, rel: 0 },
  // V8 maps heap and code segments as the heap settles and the JIT warms up
  // (seen: 142 → 169 in a 60 s run on a loaded machine); our own mappings
  // are xenMaps, counted exactly.
  maps: { abs: 32, rel: 0.1 },
  grants: { abs: 0, rel: 0 },
  pages: { abs: 0, rel: 0 },
  mappedPages: { abs: 0, rel: 0 },
  ports: { abs: 0, rel: 0 },
  watches: { abs: 0, rel: 0 },
  nodes: { abs: 0, rel: 0 },
  brokerRss: { abs: 8 * MiB, rel: 0.1 },
  brokerHeap: { abs: 2 * MiB, rel: 0.1 },
};

export interface SoakOptions {
  ms: number;
  /** A row every this many ms (the issue asks for every minute). */
  reportMs: number;
  /** Samples before this are not judged (JIT, heap sizing, first allocations). */
  warmupMs: number;
  seed: number;
  /** The survivor leaks a granted page per server session: the soak must catch it. */
  leakGrant?: boolean;
  /** The peer lives this long (uniform range, ms) once connected. */
  lifeMs?: [number, number];
  log?: (line: string) => void;
}

export interface SoakResult {
  cycles: number;
  kills: number;
  exits: number;
  /** Sessions the survivor ended, by how (clean end or error code). */
  outcomes: Record<string, number>;
  bytes: number;
  samples: Sample[];
  verdicts: Partial<Record<Metric, Verdict>>;
  growing: string[];
  findings: string[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** JSON lines of a child's stdout; each line is taken at most once. */
class Lines {
  readonly all: Record<string, unknown>[] = [];
  private readonly taken = new Set<number>();
  private waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (i: number) => void }[] = [];
  constructor(child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (text) => {
      if (!text.startsWith('{')) return;
      const index = this.all.push(JSON.parse(text) as Record<string, unknown>) - 1;
      const w = this.waiters.find((x) => x.pred(this.all[index]!));
      if (w) {
        this.waiters = this.waiters.filter((x) => x !== w);
        w.resolve(index);
      }
    });
  }
  private take(i: number): Record<string, unknown> {
    this.taken.add(i);
    return this.all[i]!;
  }
  /** Every untaken line matching `pred`, taken. */
  drain(pred: (l: Record<string, unknown>) => boolean): Record<string, unknown>[] {
    return this.all.flatMap((l, i) => (!this.taken.has(i) && pred(l) ? [this.take(i)] : []));
  }
  /** The first untaken line matching `pred`, or the next to come, or undefined after `ms`. */
  async next(pred: (l: Record<string, unknown>) => boolean, ms: number): Promise<Record<string, unknown> | undefined> {
    const at = this.all.findIndex((l, i) => !this.taken.has(i) && pred(l));
    if (at >= 0) return this.take(at);
    let timer: NodeJS.Timeout | undefined;
    const index = await new Promise<number | undefined>((resolve) => {
      const w = { pred, resolve };
      this.waiters.push(w);
      timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve(undefined);
      }, ms);
    });
    clearTimeout(timer);
    return index === undefined ? undefined : this.take(index);
  }
}

const event = (name: string) => (l: Record<string, unknown>) => l.event === name;

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

async function status(sim: TestSim): Promise<BrokerStatus> {
  const c = await ControlClient.open(join(sim.dir, 'ctl.sock'));
  try {
    return await c.request<BrokerStatus>({ op: 'status' });
  } finally {
    c.close();
  }
}

function describeSession(s: SessionReport): string {
  return `${s.role} session: sent ${s.sent}, received ${s.received}${s.intact ? '' : ' (corrupt)'}${s.code ? `, ${s.code}: ${s.message}` : ''}`;
}

const COLUMNS: Array<[Metric | 't' | 'cycle', string, (v: number) => string]> = [
  ['t', 'min', (v) => (v / 60).toFixed(1)],
  ['cycle', 'cycles', String],
  ['rss', 'rss MiB', (v) => (v / MiB).toFixed(1)],
  ['heap', 'heap MiB', (v) => (v / MiB).toFixed(2)],
  ['fds', 'fds', String],
  ['xenMaps', 'xen maps', String],
  ['maps', 'other maps', String],
  ['grants', 'grants', String],
  ['pages', 'pages', String],
  ['mappedPages', 'mapped', String],
  ['ports', 'ports', String],
  ['watches', 'watches', String],
  ['nodes', 'xs nodes', String],
  ['brokerRss', 'broker rss', (v) => (v / MiB).toFixed(1)],
  ['brokerHeap', 'broker heap', (v) => (v / MiB).toFixed(2)],
];

/** Lines of /proc/<pid>/maps: those of the emulator's page and event files (sim/broker/pages.ts names them), and the rest. */
function countMaps(text: string): { xenMaps: number; maps: number } {
  const lines = text.split('\n').filter((l) => l.length > 0);
  const xenMaps = lines.filter((l) => /\/xensim-\d+-[0-9a-f]+\.(pages|events)\b/.test(l)).length;
  return { xenMaps, maps: lines.length - xenMaps };
}

export function header(): string {
  return COLUMNS.map(([, name]) => name.padStart(11)).join('');
}

export function row(s: Sample): string {
  return COLUMNS.map(([key, , fmt]) => fmt(s[key]).padStart(11)).join('');
}

export async function soak(options: SoakOptions): Promise<SoakResult> {
  const log = options.log ?? (() => undefined);
  const [minLife, maxLife] = options.lifeMs ?? [150, 900];
  const survivorJs = bundle(join(import.meta.dirname, 'survivor.ts'), 'soak-survivor');
  const peerJs = bundle(join(import.meta.dirname, 'peer.ts'), 'soak-peer');
  const sim = await TestSim.start();
  const rng = new Rng(options.seed);
  const result: SoakResult = { cycles: 0, kills: 0, exits: 0, outcomes: {}, bytes: 0, samples: [], verdicts: {}, growing: [], findings: [] };
  let survivor: ChildProcess | undefined;
  let peer: ChildProcess | undefined;
  let sv: Lines | undefined;
  let pl: Lines | undefined;
  try {
    const survivorEnv = await sim.domainEnv(SURVIVOR_DOM);
    const peerEnv = await sim.domainEnv(PEER_DOM);
    const args = [String(SURVIVOR_DOM), String(PEER_DOM), String(options.seed), ...(options.leakGrant ? ['--leak-grant'] : [])];
    survivor = spawn(process.execPath, ['--expose-gc', survivorJs, ...args], { env: survivorEnv, stdio: ['pipe', 'pipe', 'inherit'] });
    sv = new Lines(survivor);
    const pid = Number((await sv.next(event('started'), CONNECT_MS))?.pid);
    if (!pid) throw new Error('the survivor did not start');
    const started = performance.now();
    let nextReport = 0;
    log(header());
    const elapsed = () => performance.now() - started;
    while (elapsed() < options.ms && result.findings.length === 0) {
      const cycle = ++result.cycles;
      peer = spawn(process.execPath, [peerJs, String(PEER_DOM), String(SURVIVOR_DOM), String(rng.u32())], { env: peerEnv, stdio: ['pipe', 'pipe', 'inherit'] });
      pl = new Lines(peer);
      if (!(await pl.next(event('connected'), CONNECT_MS))) {
        result.findings.push(`cycle ${cycle}: the peer did not connect both channels within ${CONNECT_MS} ms`);
        break;
      }
      await sleep(minLife + rng.below(maxLife - minLife));
      const kill = rng.chance(0.5);
      let peerReport: { server: SessionReport; client: SessionReport } | undefined;
      if (kill) {
        result.kills++;
        peer.kill('SIGKILL');
        await exited(peer);
      } else {
        result.exits++;
        peer.stdin!.write('exit\n');
        const line = await pl.next(event('exited'), CONNECT_MS);
        if (!line) result.findings.push(`cycle ${cycle}: the peer's clean exit did not complete within ${CONNECT_MS} ms`);
        else peerReport = line as unknown as typeof peerReport;
        await exited(peer);
        if (peer.exitCode !== 0) result.findings.push(`cycle ${cycle}: the peer exited with ${peer.exitCode ?? peer.signalCode}`);
      }
      const goneAt = performance.now();
      // Within HANG_MS of the peer's death the survivor has ended (and reported) every session it had.
      for (;;) {
        survivor.stdin!.write('state\n');
        const state = (await sv.next(event('state'), CONNECT_MS)) as { live: Record<string, boolean>; server: string; client: string } | undefined;
        if (!state) throw new Error('the survivor did not answer a state request');
        if (!state.live.server && !state.live.client) break;
        if (performance.now() - goneAt > HANG_MS) {
          for (const role of ['server', 'client'] as const) {
            if (!state.live[role]) continue;
            const late = await sv.next((l) => l.event === 'session' && l.role === role, 5000);
            result.findings.push(
              `cycle ${cycle}: the survivor's ${role} session had not ended ${HANG_MS} ms after the peer ${kill ? 'was killed' : 'exited'} (${late ? `it ended ${Math.round(performance.now() - goneAt)} ms after` : 'nor 5 s later'}); its stream: ${state[role]}`,
            );
          }
          break;
        }
        await sleep(20);
      }
      for (const a of sv.drain(event('attempt'))) {
        // A client setup that met a dead peer's entries, or a peer that died under it: a named error.
        const outcome = `connect failed: ${String(a.code)}`;
        result.outcomes[outcome] = (result.outcomes[outcome] ?? 0) + 1;
        if (typeof a.code !== 'string' || !/^(E[A-Z0-9]+|ERR_VCHAN_[A-Z_]+)$/.test(a.code)) result.findings.push(`cycle ${cycle}: a client setup failed with ${JSON.stringify(a)}`);
      }
      const ours: Partial<Record<'server' | 'client', SessionReport>> = {};
      // The session with this peer is the one that received the most; see below for the others.
      const reported = sv.drain(event('session')).map((l) => l as unknown as SessionReport).sort((a, b) => b.received - a.received);
      for (const s of reported) {
        if (!ours[s.role]) ours[s.role] = s;
        else {
          // Our client may map an offer whose server has just closed (its entries go a moment later):
          // it connects, finds the server gone, and ends, having received nothing (this cycle's or the last's).
          const outcome = `connected to a closed offer`;
          result.outcomes[outcome] = (result.outcomes[outcome] ?? 0) + 1;
          if (s.received !== 0 || (s.code !== undefined && s.code !== 'ERR_VCHAN_PEER_CLOSED')) result.findings.push(`cycle ${cycle}: a second ${describeSession(s)}`);
        }
      }
      for (const role of ['server', 'client'] as const) {
        const s = ours[role];
        const theirs = peerReport?.[role === 'server' ? 'client' : 'server'];
        if (!s) {
          // Our client's setup may have failed on this peer (stale entries, a peer that went at once): then nothing may have reached the peer.
          if (theirs && theirs.received > 0) result.findings.push(`cycle ${cycle}: the peer's ${describeSession(theirs)}, but the survivor reported no ${role} session`);
          continue;
        }
        result.bytes += s.received;
        const outcome = s.code ?? 'end';
        result.outcomes[outcome] = (result.outcomes[outcome] ?? 0) + 1;
        if (s.code !== undefined && s.code !== 'ERR_VCHAN_PEER_CLOSED') result.findings.push(`cycle ${cycle}: ${describeSession(s)}`);
        if (!s.intact) result.findings.push(`cycle ${cycle}: corrupt bytes: ${describeSession(s)}`);
        // After a clean exit, the peer's end() flushed everything it wrote into the ring.
        if (theirs && (theirs.sent !== s.received || !theirs.intact)) {
          result.findings.push(`cycle ${cycle}: after a clean exit: ${describeSession(s)}; the peer's ${describeSession(theirs)}`);
        }
      }
      // The broker frees a dead process's devices when its sockets close: wait for that.
      let st = await status(sim);
      for (const until = performance.now() + HANG_MS; st.processes.some((p) => p.domid === PEER_DOM) && performance.now() < until; ) {
        await sleep(10);
        st = await status(sim);
      }
      survivor.stdin!.write('sample\n');
      const m = await sv.next(event('sample'), CONNECT_MS);
      if (!m) throw new Error('the survivor did not answer a sample');
      const sample: Sample = {
        t: elapsed() / 1000,
        cycle,
        rss: Number(m.rss),
        heap: Number(m.heapUsed),
        fds: readdirSync(`/proc/${pid}/fd`).length,
        ...countMaps(readFileSync(`/proc/${pid}/maps`, 'utf8')),
        grants: st.grants,
        pages: st.pages,
        mappedPages: st.mappedPages,
        ports: st.ports,
        watches: st.watches,
        nodes: st.xenstore.nodes,
        brokerRss: st.memory.rss,
        brokerHeap: st.memory.heapUsed,
      };
      result.samples.push(sample);
      if (sample.t * 1000 >= nextReport) {
        log(row(sample));
        nextReport += options.reportMs;
      }
    }
    if (result.samples.length > 0) log(row(result.samples.at(-1)!));
    if (result.findings.length > 0) {
      const tail = (l: Lines | undefined) => (l?.all ?? []).slice(-12).map((x) => JSON.stringify(x)).join('\n  ');
      log(`the survivor's last lines:\n  ${tail(sv)}\nthe last peer's lines:\n  ${tail(pl)}`);
    }
  } finally {
    peer?.kill('SIGKILL');
    survivor?.stdin?.end();
    if (survivor) await Promise.race([exited(survivor), sleep(2000)]);
    survivor?.kill('SIGKILL');
    await sim.stop();
  }
  const judged = result.samples.filter((s) => s.t * 1000 >= options.warmupMs);
  if (result.findings.length === 0) {
    for (const metric of Object.keys(MARGINS) as Metric[]) {
      const v = judge(
        judged.map((s) => s[metric]),
        MARGINS[metric],
      );
      result.verdicts[metric] = v;
    }
    for (const metric of Object.keys(MARGINS) as Metric[]) {
      const v = result.verdicts[metric]!;
      const along = JUDGED_ALONG[metric];
      if (v.grows && along !== undefined && !result.verdicts[along]!.grows) continue;
      if (v.grows) result.growing.push(`${metric}: the last third's minimum ${v.lastMin} is above the first third's maximum ${v.firstMax} (${v.count} samples after the warm-up)`);
    }
  }
  return result;
}

export function formatResult(r: SoakResult): string {
  return [
    `soak: ${r.cycles} peer restarts (${r.kills} kill -9, ${r.exits} clean exits), ${(r.bytes / MiB).toFixed(1)} MiB received by the survivor`,
    `survivor sessions ended: ${Object.entries(r.outcomes).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `growing: ${r.growing.length === 0 ? 'nothing' : r.growing.join('; ')}`,
    ...(r.findings.length ? [`findings: ${r.findings.join('; ')}`] : []),
  ].join('\n');
}
