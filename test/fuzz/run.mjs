#!/usr/bin/env node
// `npm run fuzz -- --minutes N [--seed S] [--replay a,b]`: a long fuzz run through the suite's own test file.
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '10' }, seed: { type: 'string' }, replay: { type: 'string' } } });
const minutes = Number(values.minutes);
if (!(minutes > 0)) throw new RangeError(`--minutes must be a positive number, not ${values.minutes}`);
const env = { ...process.env, FUZZ_MS: String(Math.round(minutes * 60_000)) };
if (values.seed !== undefined) env.FUZZ_RUN_SEED = values.seed;
if (values.replay !== undefined) env.FUZZ_SEED = values.replay;
const result = spawnSync('npx', ['vitest', 'run', 'test/fuzz/fuzz.test.ts'], { stdio: 'inherit', env });
process.exit(result.status ?? 1);
