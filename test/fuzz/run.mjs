#!/usr/bin/env node
// `npm run fuzz -- --minutes N [--seed S] [--replay a,b] [--replay-xen a,b] [--only memory|xen]`:
// a long fuzz run through the suite's own test files, in memory and under xensim at once.
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { minutes: { type: 'string', default: '10' }, seed: { type: 'string' }, replay: { type: 'string' }, 'replay-xen': { type: 'string' }, only: { type: 'string' } },
});
const minutes = Number(values.minutes);
if (!(minutes > 0)) throw new RangeError(`--minutes must be a positive number, not ${values.minutes}`);
const FILES = { memory: 'test/fuzz/fuzz.test.ts', xen: 'test/fuzz/xen/fuzz-xen.test.ts' };
if (values.only !== undefined && !(values.only in FILES)) throw new RangeError(`--only must be memory or xen, not ${values.only}`);
const env = { ...process.env, FUZZ_MS: String(Math.round(minutes * 60_000)) };
if (values.seed !== undefined) env.FUZZ_RUN_SEED = values.seed;
if (values.replay !== undefined) env.FUZZ_SEED = values.replay;
if (values['replay-xen'] !== undefined) env.FUZZ_XEN_SEED = values['replay-xen'];
const files = values.only ? [FILES[values.only]] : Object.values(FILES);
const result = spawnSync('npx', ['vitest', 'run', ...files], { stdio: 'inherit', env });
process.exit(result.status ?? 1);
