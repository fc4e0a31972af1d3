/**
 * The fuzzer under xensim (see session.ts here): FUZZ_XEN_MS of sessions
 * (60 s by default; `npm run fuzz -- --minutes N` sets it), its kept seeds
 * first, or only FUZZ_XEN_SEED (comma-separated) to replay findings. Any
 * finding fails the run with its seed.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TestSim } from '../../xen-backend/sim.js';
import { campaign, formatSummary } from '../campaign.js';
import { makeXenPlan } from './plan.js';
import { runXenSession } from './session.js';

const ms = Number(process.env.FUZZ_XEN_MS ?? process.env.FUZZ_MS ?? 60_000);
const only = process.env.FUZZ_XEN_SEED?.split(',').map(Number);
const runSeed = Number(process.env.FUZZ_RUN_SEED ?? Date.now() % 2 ** 31);
const kept = (JSON.parse(readFileSync(new URL('./kept-seeds.json', import.meta.url), 'utf8')) as Array<{ seed: number }>).map((k) => k.seed);

let sim: TestSim;
beforeAll(async () => {
  sim = await TestSim.start();
});
afterAll(async () => {
  await sim?.stop();
});

it(`fuzz under xensim: a C attacker on Debian's libxenvchan against XenBackend victims, ${only ? `seeds ${only.join(',')}` : `${ms} ms, run seed ${runSeed}`}`, { timeout: ms + 180_000 }, async () => {
  const summary = await campaign({
    ms,
    runSeed,
    only,
    log: (line) => process.stdout.write(`${line}\n`),
    other: { session: (seed) => runXenSession(sim, makeXenPlan(seed)), keptSeeds: kept, replayVar: 'FUZZ_XEN_SEED' },
  });
  process.stdout.write(`\n${formatSummary(summary)}\n`);
  expect(summary.strays).toEqual([]);
  expect(summary.findings.map((f) => `seed ${f.seed}: ${f.findings.join('; ')}`)).toEqual([]);
  expect(summary.sessions).toBeGreaterThan(0);
});
