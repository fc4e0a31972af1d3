/**
 * The performance targets, judged from one run: each is a ratio of medians
 * measured side by side, with its spread (the half-ranges of the two
 * medians' repetitions, added). A ratio whose spread reaches across the
 * bound says nothing either way: its verdict is "noisy", not met or short.
 * Where a row also bounds CPU, CPU per unit of work must be ≤ 1.5× C's.
 */
import type { Case } from './plan.js';
import { halfRange, med, values, type Collected, type Key } from './report.js';

/** A measured ratio and how far the repetitions let it move (relative, 0.1 = ±10%). */
export interface Ratio {
  value: number;
  spread: number;
}

export interface Target {
  name: string;
  ratio: Ratio | undefined;
  bound: number;
  /** Latency and CPU: the ratio must stay at or below the bound. */
  atMost?: boolean;
  /** Why it could not be measured, when that is known. */
  missing?: string;
}

export type Verdict = 'met' | 'short' | 'noisy' | 'not measured';

const CPU_BOUND = 1.5;

export function verdict(t: Target): Verdict {
  if (!t.ratio) return 'not measured';
  const { value, spread } = t.ratio;
  if (spread > 0 && value * (1 - spread) <= t.bound && t.bound <= value * (1 + spread)) return 'noisy';
  return (t.atMost ? value <= t.bound : value >= t.bound) ? 'met' : 'short';
}

function ratioOf(a: Collected | undefined, b: Collected | undefined, k: Key): Ratio | undefined {
  const x = med(a, k);
  const y = med(b, k);
  if (x === undefined || y === undefined || !y) return undefined;
  return { value: x / y, spread: halfRange(values(a, k)) + halfRange(values(b, k)) };
}

export function targets(all: Collected[]): { text: string; list: Target[] } {
  const MiB = 1 << 20;
  const find = (scenario: Case['scenario'], impl: string, api: string, w: number, r: number) =>
    all.find((x) => x.c.scenario === scenario && x.c.impl === impl && x.c.api === api && x.c.writeSize === w && x.c.ringSize === r);
  const bulk = (impl: string, api: string, w: number) => find('bulk', impl, api, w, MiB);
  const ping = (impl: string) => find('pingpong', impl, impl === 'c-c' ? 'c' : 'vchan', 64, 65536);
  const list: Target[] = [];
  const add = (name: string, ratio: Ratio | undefined, bound: number, atMost = false, missing?: string) =>
    list.push({ name, ratio, bound, atMost, missing });
  add('ping-pong 64 B, TS↔TS (Vchan), p50 ≤ 1.0× C↔C', ratioOf(ping('ts-ts'), ping('c-c'), 'latencyUsP50'), 1.0, true);
  add('  … its CPU per round trip ≤ 1.5× C↔C', ratioOf(ping('ts-ts'), ping('c-c'), 'cpuUsPerRoundTrip'), CPU_BOUND, true);
  add('ping-pong 64 B, TS→C (C client), p50 ≤ 1.0× C↔C', ratioOf(ping('ts-c'), ping('c-c'), 'latencyUsP50'), 1.0, true);
  add('ping-pong 64 B, C→TS (TS client), p50 ≤ 1.0× C↔C', ratioOf(ping('c-ts'), ping('c-c'), 'latencyUsP50'), 1.0, true);
  for (const w of [64, 512]) {
    add(`bulk ${w} B writes, 1 MiB ring, VchanStream TS↔TS ≥ 1.0× C↔C`, ratioOf(bulk('ts-ts', 'stream', w), bulk('c-c', 'c', w), 'mbps'), 1.0);
    add('  … its CPU per GiB ≤ 1.5× C↔C', ratioOf(bulk('ts-ts', 'stream', w), bulk('c-c', 'c', w), 'cpuSecPerGiB'), CPU_BOUND, true);
  }
  add('bulk 64 KiB writes, 1 MiB ring, Vchan TS↔TS ≥ 1.0× C↔C', ratioOf(bulk('ts-ts', 'vchan', 65536), bulk('c-c', 'c', 65536), 'mbps'), 1.0);
  add('  … its CPU per GiB ≤ 1.5× C↔C', ratioOf(bulk('ts-ts', 'vchan', 65536), bulk('c-c', 'c', 65536), 'cpuSecPerGiB'), CPU_BOUND, true);
  add('bulk 64 KiB writes, 1 MiB ring, VchanStream with onread ≥ 0.9× Vchan', undefined, 0.9, false, 'no onread option yet');
  add('bulk 64 KiB writes, 1 MiB ring, VchanStream without onread ≥ 0.5× Vchan', ratioOf(bulk('ts-ts', 'stream', 65536), bulk('ts-ts', 'vchan', 65536), 'mbps'), 0.5);
  add('real Xen under TCG, every case ≥ 0.5× C', undefined, 0.5, false, 'measured by npm run test:xen (bench.ts-vs-c.dom0)');

  const lines = ['### Targets (ratios of medians ± their spread; never asserted)', '', '| target | measured | verdict |', '|---|---|---|'];
  for (const t of list) {
    const shown = t.ratio ? `${t.ratio.value.toFixed(2)}× ±${Math.round(t.ratio.spread * 100)}%` : '—';
    const v = verdict(t);
    lines.push(`| ${t.name} | ${shown} | ${v === 'not measured' && t.missing ? `not measured: ${t.missing}` : `**${v}**`} |`);
  }
  return { text: lines.join('\n') + '\n', list };
}
