/**
 * The fuzzer in the suite (see campaign.ts): FUZZ_MS of sessions (60 s by
 * default; `npm run fuzz -- --minutes N` sets it), the kept seeds first, or
 * only FUZZ_SEED (comma-separated) to replay findings. Any finding fails the
 * run with its seed; CPU while the attacker is silent or floods must stay
 * within 2 % / 10 % of a core of this thread's idle baseline, measured in
 * the same run.
 */
import { expect, it } from 'vitest';
import { campaign, formatSummary } from './campaign.js';

const ms = Number(process.env.FUZZ_MS ?? 60_000);
const only = process.env.FUZZ_SEED?.split(',').map(Number);
const runSeed = Number(process.env.FUZZ_RUN_SEED ?? Date.now() % 2 ** 31);

it(`fuzz: a hostile peer in a worker against both APIs and roles, ${only ? `seeds ${only.join(',')}` : `${ms} ms, run seed ${runSeed}`}`, { timeout: ms + 180_000 }, async () => {
  const summary = await campaign({ ms, runSeed, only, log: (line) => process.stdout.write(`${line}\n`) });
  process.stdout.write(`\n${formatSummary(summary)}\n`);
  expect(summary.strays).toEqual([]);
  expect(summary.findings.map((f) => `seed ${f.seed}: ${f.findings.join('; ')}`)).toEqual([]);
  expect(summary.sessions).toBeGreaterThan(0);
  for (const p of summary.probes) {
    expect(p.silent - p.idle, formatSummary(summary)).toBeLessThan(0.02);
    expect(p.flood - p.idle, formatSummary(summary)).toBeLessThan(0.1);
  }
});
