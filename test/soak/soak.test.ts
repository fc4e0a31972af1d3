/**
 * The soak in the suite: SOAK_MS of peer restarts (120 s by default, as the suite runs it; `npm run
 * soak -- --minutes N` sets it) with a row every SOAK_REPORT_MS. Fails on a
 * per-cycle finding or on any metric that keeps growing after the warm-up.
 * SOAK_LEAK=grant makes the survivor leak a granted page per session: the
 * run must then fail on grants, pages and maps.
 */
import { expect, it } from 'vitest';
import { formatResult, soak } from './soak.js';

const ms = Number(process.env.SOAK_MS ?? 120_000);
const reportMs = Number(process.env.SOAK_REPORT_MS ?? (ms >= 600_000 ? 60_000 : 10_000));
const seed = Number(process.env.SOAK_SEED ?? Date.now() % 2 ** 31);
const leakGrant = process.env.SOAK_LEAK === 'grant';

it(`soak: a survivor under xensim while its peer is restarted (kill -9 and clean exits), ${ms} ms, seed ${seed}${leakGrant ? ', leaking a grant per session' : ''}`, { timeout: ms + 120_000 }, async () => {
  const result = await soak({ ms, reportMs, warmupMs: Math.min(30_000, ms / 3), seed, leakGrant, log: (line) => process.stdout.write(`${line}\n`) });
  process.stdout.write(`\n${formatResult(result)}\n`);
  expect(result.findings).toEqual([]);
  expect(result.kills).toBeGreaterThan(0);
  expect(result.exits).toBeGreaterThan(0);
  expect(result.growing).toEqual([]);
});
