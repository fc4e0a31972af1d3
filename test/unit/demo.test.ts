import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);
const cwd = new URL('../..', import.meta.url);

// `npm test` builds dist/ first; the demos import the package by its own name.
const built = () => expect(existsSync(new URL('../../dist/index.js', import.meta.url)), 'dist/ is missing: run npm run build').toBe(true);

it('the README demo (npm run demo): a Node server and a C libxenvchan client under xensim, byte-exact, with MB/s', async () => {
  built();
  const { stdout } = await run(process.execPath, ['examples/demo-xensim.mjs', '64'], { cwd });
  expect(stdout).toMatch(/a Node server \(listen, domain 0\) and a C libxenvchan client \(domain 5\)/);
  expect(stdout).toContain('Node → C: 67108864 bytes, every byte as sent (checked by the C client)');
  expect(stdout).toContain('C → Node: 67108864 bytes, every byte as sent (checked by the Node server)');
  expect(stdout).toMatch(/[0-9]+ MB\/s each way/);
}, 120_000);

it('on a host with /dev/xen the emulator demo says it needs two domains instead of pretending', async () => {
  built();
  // Simulated by pointing the check at a directory that exists here.
  const { stdout } = await run(process.execPath, ['examples/demo-xensim.mjs'], { cwd, env: { ...process.env, XEN_VCHAN_DEMO_XEN_DIR: '/tmp' } });
  expect(stdout).toMatch(/^This host has \/dev\/xen: a real vchan needs two domains/);
  expect(stdout).not.toMatch(/MB\/s/);
});

it('the in-memory demo (npm run demo:memory) runs on the built package and verifies its transfer', async () => {
  built();
  const { stdout } = await run(process.execPath, ['examples/demo.mjs'], { cwd });
  expect(stdout).toMatch(/received 67108864 bytes in [0-9.]+ s: [0-9]+ MB\/s/);
  expect(stdout).toMatch(/sha256 [0-9a-f]{64} matches the file/);
}, 60_000);
