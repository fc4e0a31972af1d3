import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

// `npm run conformance`: the conformance harness's target runs (test/conformance/*.targets.ts),
// kept out of `npm test` while they still find open differences (see README, Conformance).
// The base's settings, with its include replaced (mergeConfig would append to it).
export default defineConfig({ test: { ...base.test, include: ['test/conformance/*.targets.ts'] } });
