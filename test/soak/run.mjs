#!/usr/bin/env node
// `npm run soak -- --minutes N [--seed S] [--leak grant]`: a long soak through the suite's own test file.
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '30' }, seed: { type: 'string' }, leak: { type: 'string' } } });
const minutes = Number(values.minutes);
if (!(minutes > 0)) throw new RangeError(`--minutes must be a positive number, not ${values.minutes}`);
const env = { ...process.env, SOAK_MS: String(Math.round(minutes * 60_000)) };
if (values.seed !== undefined) env.SOAK_SEED = values.seed;
if (values.leak !== undefined) env.SOAK_LEAK = values.leak;
const result = spawnSync('npx', ['vitest', 'run', 'test/soak/soak.test.ts'], { stdio: 'inherit', env });
process.exit(result.status ?? 1);
