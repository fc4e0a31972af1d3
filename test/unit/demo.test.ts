import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);

it('the README demo runs on the built package and verifies its transfer', async () => {
  // `npm test` builds dist/ first; the demo imports the package by its own name.
  expect(existsSync(new URL('../../dist/index.js', import.meta.url)), 'dist/ is missing: run npm run build').toBe(true);
  const { stdout } = await run(process.execPath, ['examples/demo.mjs'], { cwd: new URL('../..', import.meta.url) });
  expect(stdout).toMatch(/received 67108864 bytes in [0-9.]+ s: [0-9]+ MB\/s/);
  expect(stdout).toMatch(/sha256 [0-9a-f]{64} matches the file/);
}, 60_000);
