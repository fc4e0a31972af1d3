/**
 * Turns repetitions into records (median of each figure, the runs kept)
 * and the markdown tables with ratios to C↔C (targets.ts judges them).
 * Ratios are always "ours / C↔C": above 1 is faster for
 * throughput and slower for latency or setup time.
 */
import type { Figures } from './runner.js';
import { groupKey, type Case } from './plan.js';

export interface BenchRecord extends Case, Omit<Figures, 'brokerSecPerGiB'> {
  /** Every repetition's figures, in run order; failed repetitions are left out. */
  runs: Figures[];
}

export interface Collected {
  c: Case;
  runs: Figures[];
  errors: string[];
}

const KEYS = ['mbps', 'latencyUsP50', 'latencyUsP99', 'opsPerSec', 'cpuSecPerGiB', 'cpuUsPerRoundTrip', 'brokerSecPerGiB'] as const;
export type Key = (typeof KEYS)[number];

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Half the min–max range, relative to the median (0.08 for "±8%"). */
export function halfRange(xs: number[]): number {
  if (xs.length < 2) return 0;
  return (Math.max(...xs) - Math.min(...xs)) / 2 / median(xs);
}

function spread(xs: number[]): string {
  return xs.length < 2 ? '' : ` ±${Math.round(halfRange(xs) * 100)}%`;
}

export function toRecord(x: Collected): BenchRecord {
  const rec: BenchRecord = { ...x.c, runs: x.runs.map((r) => ({ ...r })) };
  for (const k of KEYS) {
    if (k === 'brokerSecPerGiB') continue;
    const vals = x.runs.map((r) => r[k]).filter((v): v is number => v !== undefined);
    if (vals.length) rec[k] = median(vals);
  }
  for (const r of rec.runs) delete r.brokerSecPerGiB;
  return rec;
}

const size = (n: number): string => (n === 0 ? '—' : n >= 1 << 20 ? `${n >> 20} MiB` : n >= 1024 ? `${n >> 10} KiB` : `${n} B`);
const IMPL: Record<string, string> = { 'c-c': 'C↔C', 'ts-ts': 'TS↔TS', 'ts-c': 'TS→C', 'c-ts': 'C→TS', 'shm-limit': 'shm limit', 'unix-socket': 'unix socket' };
const fmt = (v: number | undefined, digits = 0): string => (v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits));

/** The C↔C collection this one is compared with (the socket has no ring: it meets the 1 MiB / 64 KiB group). */
export function reference(all: Collected[], c: Case): Collected | undefined {
  const ring = c.ringSize || (c.scenario === 'bulk' || c.scenario === 'bidir' ? 1 << 20 : 1 << 16);
  return all.find((x) => x.c.impl === 'c-c' && groupKey(x.c) === groupKey({ ...c, ringSize: ring }));
}

/** A figure's values over the repetitions. */
export function values(x: Collected | undefined, k: Key): number[] {
  return x ? x.runs.map((r) => r[k]).filter((v): v is number => v !== undefined) : [];
}

export function med(x: Collected | undefined, k: Key): number | undefined {
  const vals = values(x, k);
  return vals.length ? median(vals) : undefined;
}

function cell(x: Collected, k: Key, digits = 0): string {
  const vals = x.runs.map((r) => r[k]).filter((v): v is number => v !== undefined);
  if (!vals.length) return x.errors.length ? 'failed' : '—';
  return `${fmt(median(vals), digits)}${spread(vals)}`;
}

function ratio(a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined || !b ? '—' : `${(a / b).toFixed(2)}×`;
}

export function tables(all: Collected[]): string {
  const out: string[] = [];
  const of = (s: Case['scenario']) => all.filter((x) => x.c.scenario === s);
  for (const s of ['bulk', 'bidir'] as const) {
    if (!of(s).length) continue;
    out.push(`### ${s === 'bulk' ? 'Bulk, one way' : 'Both directions at once'} (MB/s = 10^6 B/s; ratio = ours / C↔C)`, '');
    out.push('| write | ring | impl | api | MB/s | × C↔C | CPU s/GiB | broker s/GiB |', '|---|---|---|---|---|---|---|---|');
    for (const x of of(s)) {
      out.push(
        `| ${size(x.c.writeSize)} | ${size(x.c.ringSize)} | ${IMPL[x.c.impl]} | ${x.c.api} | ${cell(x, 'mbps')} | ${ratio(med(x, 'mbps'), med(reference(all, x.c), 'mbps'))} | ${cell(x, 'cpuSecPerGiB', 2)} | ${fmt(med(x, 'brokerSecPerGiB'), 2)} |`,
      );
    }
    out.push('');
  }
  if (of('pingpong').length) {
    out.push('### Ping-pong, 64-byte messages (µs per round trip; ratio = ours / C↔C, lower is better)', '');
    out.push('| impl | api | p50 µs | p99 µs | × C↔C p50 | round trips/s | CPU µs per round trip (both ends) |', '|---|---|---|---|---|---|---|');
    for (const x of of('pingpong')) {
      out.push(
        `| ${IMPL[x.c.impl]} | ${x.c.api} | ${cell(x, 'latencyUsP50', 1)} | ${cell(x, 'latencyUsP99', 1)} | ${ratio(med(x, 'latencyUsP50'), med(reference(all, x.c), 'latencyUsP50'))} | ${cell(x, 'opsPerSec')} | ${cell(x, 'cpuUsPerRoundTrip', 1)} |`,
      );
    }
    out.push('');
  }
  if (of('connect').length) {
    out.push('### Connect + 1 byte + close, server and client in separate processes (ratio = our time / C↔C time)', '');
    out.push('| impl | api | cycles/s | µs per cycle | × C↔C time |', '|---|---|---|---|---|');
    for (const x of of('connect')) {
      const ops = med(x, 'opsPerSec');
      const ref = med(reference(all, x.c), 'opsPerSec');
      out.push(`| ${IMPL[x.c.impl]} | ${x.c.api} | ${cell(x, 'opsPerSec')} | ${fmt(ops && 1e6 / ops)} | ${ratio(ref, ops)} |`);
    }
    out.push('');
  }
  const failed = all.filter((x) => x.errors.length);
  if (failed.length) {
    out.push('### Failed repetitions', '');
    for (const x of failed) out.push(`- ${x.c.scenario} ${x.c.impl} ${x.c.api} ${size(x.c.writeSize)}/${size(x.c.ringSize)}: ${x.errors[0]}`);
    out.push('');
  }
  return out.join('\n');
}
