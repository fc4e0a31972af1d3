/**
 * A fuzz campaign: sessions from consecutive seeds for a time budget, kept
 * seeds first, CPU probes at the start and end, shrinking of any finding
 * (steps removed while it still fails), and a summary.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { makePlan, type Plan } from './plan.js';
import { sessionSeed } from './rng.js';
import { runSession, threadCpuMs, type SessionResult } from './session.js';

export const KEPT_SEEDS_FILE = fileURLToPath(new URL('./kept-seeds.json', import.meta.url));

export interface Finding {
  seed: number;
  findings: string[];
  /** The smallest plan found that still fails (the race may not repeat). */
  shrunk?: Plan;
}

export interface CpuProbe {
  /** Fractions of one core over each window, for this thread. */
  idle: number;
  silent: number;
  flood: number;
}

export interface Summary {
  runSeed: number;
  sessions: number;
  mutations: number;
  outcomes: Record<string, number>;
  closeLatencyMs: { p50: number; p99: number; max: number; count: number };
  probes: CpuProbe[];
  heapStartMb: number;
  heapEndMb: number;
  findings: Finding[];
  strays: string[];
}

export function keptSeeds(): Array<{ seed: number; found: string }> {
  return JSON.parse(readFileSync(KEPT_SEEDS_FILE, 'utf8')) as Array<{ seed: number; found: string }>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const PROBE_MS = 1000;

/**
 * CPU of this thread: idle (no channel), then with a connected attacker
 * that is silent, then one that floods its event channel without pause.
 */
export async function probeCpu(api: 'stream' | 'vchan'): Promise<CpuProbe> {
  let t = threadCpuMs();
  let w = performance.now();
  await sleep(PROBE_MS);
  const idle = (threadCpuMs() - t) / (performance.now() - w);
  const windows: Record<string, number> = {};
  let phase: string | undefined;
  const plan: Plan = {
    seed: 1,
    api,
    role: 'server',
    readMin: 4096,
    writeMin: 4096,
    steps: [{ k: 'silent', ms: 200 }, { k: 'mark', name: 'silent' }, { k: 'silent', ms: PROBE_MS }, { k: 'mark', name: 'flood' }, { k: 'flood', ms: PROBE_MS }, { k: 'mark', name: 'end' }],
    death: 'close',
    honest: false,
    victimBytes: 0,
    attackerBytes: 0,
  };
  const result = await runSession(plan, (name) => {
    const now = performance.now();
    const cpu = threadCpuMs();
    if (phase !== undefined) windows[phase] = (cpu - t) / (now - w);
    phase = name;
    t = cpu;
    w = now;
  });
  if (result.findings.length > 0) throw new Error(`the CPU probe's own session failed: ${result.findings.join('; ')}`);
  return { idle, silent: windows.silent!, flood: windows.flood! };
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Removes steps (halves, then one by one) while the plan still fails; a few tries each. */
async function shrink(plan: Plan): Promise<Plan | undefined> {
  const fails = async (p: Plan) => (await runSession(p)).findings.length > 0;
  if (!(await fails(plan))) return undefined;
  let best = plan;
  for (let size = Math.floor(best.steps.length / 2); size >= 1; size = Math.floor(size / 2)) {
    for (let at = 0; at + size <= best.steps.length; ) {
      const candidate = { ...best, steps: [...best.steps.slice(0, at), ...best.steps.slice(at + size)] };
      if (await fails(candidate)) best = candidate;
      else at += size;
    }
  }
  return best;
}

export interface CampaignOptions {
  ms: number;
  runSeed: number;
  /** Only these session seeds (a replay), else kept seeds then the run's own. */
  only?: number[];
  log?: (line: string) => void;
  /**
   * Another kind of session (the fuzzer under xensim): it runs the seed's own plan, with its own
   * kept seeds; no CPU probes (it checks CPU per session) and no shrinking.
   */
  other?: { session: (seed: number) => Promise<SessionResult>; keptSeeds: number[]; replayVar: string };
}

export async function campaign(options: CampaignOptions): Promise<Summary> {
  const log = options.log ?? (() => undefined);
  const strays: string[] = [];
  const onStray = (error: unknown) => void strays.push(String((error as Error)?.stack ?? error));
  process.on('unhandledRejection', onStray);
  process.on('uncaughtException', onStray);
  const heapStartMb = process.memoryUsage().heapUsed / 2 ** 20;
  const outcomes: Record<string, number> = {};
  const latencies: number[] = [];
  const findings: Finding[] = [];
  const probes: CpuProbe[] = [];
  let sessions = 0;
  let mutations = 0;
  const started = performance.now();
  try {
    const probing = options.only === undefined && options.other === undefined;
    if (probing) probes.push(await probeCpu('stream'));
    const seeds = options.only ?? options.other?.keptSeeds ?? keptSeeds().map((k) => k.seed);
    const budgetLeft = () => options.ms - (performance.now() - started);
    for (let i = 0; options.only !== undefined ? i < seeds.length : i < seeds.length || budgetLeft() > 0; i++) {
      const seed = i < seeds.length ? seeds[i]! : sessionSeed(options.runSeed, i - seeds.length);
      const plan = options.other ? undefined : makePlan(seed);
      const straysBefore = strays.length;
      let result: SessionResult;
      try {
        result = options.other ? await options.other.session(seed) : await runSession(plan!);
      } catch (error) {
        result = { outcome: 'harness-error', findings: [`the session itself threw: ${String((error as Error)?.stack ?? error)}`], mutations: 0 };
      }
      if (strays.length > straysBefore) result.findings.push(...strays.slice(straysBefore).map((s) => `uncaught: ${s}`));
      sessions++;
      mutations += result.mutations;
      outcomes[result.outcome] = (outcomes[result.outcome] ?? 0) + 1;
      if (result.closeLatencyMs !== undefined) latencies.push(result.closeLatencyMs);
      if (result.findings.length > 0) {
        log(`FINDING seed ${seed} (replay: ${options.other?.replayVar ?? 'FUZZ_SEED'}=${seed}): ${result.findings.join('; ')}`);
        const shrunk = options.only === undefined && plan ? await shrink(plan) : undefined;
        if (shrunk) log(`  shrunk to ${JSON.stringify(shrunk)}`);
        findings.push({ seed, findings: result.findings, shrunk });
      }
      if (sessions % (options.other ? 20 : 200) === 0) log(`${sessions} sessions, ${mutations} mutations, ${Math.round((performance.now() - started) / 1000)} s`);
    }
    if (probing) probes.push(await probeCpu('vchan'));
  } finally {
    process.off('unhandledRejection', onStray);
    process.off('uncaughtException', onStray);
  }
  latencies.sort((a, b) => a - b);
  return {
    runSeed: options.runSeed,
    sessions,
    mutations,
    outcomes,
    closeLatencyMs: { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), max: latencies.at(-1) ?? 0, count: latencies.length },
    probes,
    heapStartMb,
    heapEndMb: process.memoryUsage().heapUsed / 2 ** 20,
    findings,
    strays,
  };
}

export function formatSummary(s: Summary): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
  return [
    `fuzz run seed ${s.runSeed}: ${s.sessions} sessions, ${s.mutations} mutations, ${s.findings.length} findings`,
    `outcomes: ${Object.entries(s.outcomes).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `close latency after the attacker died (${s.closeLatencyMs.count} sessions): p50 ${s.closeLatencyMs.p50.toFixed(1)} ms, p99 ${s.closeLatencyMs.p99.toFixed(1)} ms, max ${s.closeLatencyMs.max.toFixed(1)} ms`,
    ...s.probes.map((p, i) => `CPU probe ${i + 1} (victim thread, one core = 100 %): idle ${pct(p.idle)}, attacker silent ${pct(p.silent)}, attacker flooding ${pct(p.flood)}`),
    `heap: ${s.heapStartMb.toFixed(1)} MiB at start, ${s.heapEndMb.toFixed(1)} MiB at end`,
  ].join('\n');
}
