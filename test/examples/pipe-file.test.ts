import { expect, it } from 'vitest';
import { runExample, transcript } from './run-example.js';

it('pipe-file: a 4 MiB file goes from domain 5 to domain 0 with pipeline(), and both sha256 sums match', async () => {
  const run = await runExample('pipe-file');
  expect(run.code, transcript(run)).toBe(0);
  const sent = run.stdout.match(/^dom5 send {4}\| sent (\d+) bytes .*sha256 ([0-9a-f]{64})$/m);
  const received = run.stdout.match(/^dom0 receive \| received (\d+) bytes .*sha256 ([0-9a-f]{64})$/m);
  expect(sent, transcript(run)).not.toBeNull();
  expect(received, transcript(run)).not.toBeNull();
  expect(Number(sent![1])).toBe(4 * 1024 * 1024 + 1);
  expect(received![1]).toBe(sent![1]);
  expect(received![2]).toBe(sent![2]);
  expect(run.stdout).toContain('the file arrived intact: sha256 match');
  expect(run.brokerLeftRunning).toBe(false);
});

it('pipe-file: a sender that fails makes run.mjs fail, and it still stops its broker', async () => {
  const run = await runExample('pipe-file', ['/nonexistent/input.bin']);
  expect(run.code, transcript(run)).toBe(1);
  expect(run.stderr).toMatch(/send: ENOENT/);
  expect(run.stdout).toMatch(/^FAILED /m);
  expect(run.stdout).not.toContain('sha256 match');
  expect(run.brokerLeftRunning).toBe(false);
});
