import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

it('npm run demo where apt-get cannot reach Debian: one line says why, then the Node ↔ Node demo runs, exit 0', async () => {
  built();
  // apt-get and apt-cache that fail as they do without a network, and an empty package cache
  const bin = mkdtempSync(join(tmpdir(), 'no-apt-'));
  for (const tool of ['apt-get', 'apt-cache']) {
    writeFileSync(join(bin, tool), '#!/bin/sh\necho "E: Failed to fetch: Temporary failure resolving the package servers" >&2\nexit 100\n', { mode: 0o755 });
  }
  const cache = mkdtempSync(join(tmpdir(), 'no-apt-cache-'));
  try {
    const { stdout, stderr } = await run(process.execPath, ['examples/demo-xensim.mjs', '16'], {
      cwd,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, XEN_VCHAN_CACHE: cache },
    });
    const lines = stdout.split('\n');
    expect(lines[0]).toMatch(/^demo: Debian's Xen packages cannot be fetched: apt-get update failed \(see .*\); running the Node ↔ Node demo instead$/);
    expect(stdout).toContain('a Node server (listen, domain 0) and a Node client (connect, domain 5)');
    expect(stdout).toContain('Node server → Node client: 16777216 bytes, every byte as sent (checked by the Node client)');
    expect(stdout).toContain('Node client → Node server: 16777216 bytes, every byte as sent (checked by the Node server)');
    expect(stdout).toMatch(/[0-9]+ MB\/s each way/);
    expect(stderr).toBe('');
  } finally {
    rmSync(bin, { recursive: true, force: true });
    rmSync(cache, { recursive: true, force: true });
  }
}, 120_000);
