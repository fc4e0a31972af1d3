import { expect, it } from 'vitest';
import { runExample, transcript } from './run-example.js';

it('json-rpc: vscode-jsonrpc between domains 0 and 5: a notification, requests, and an error response', async () => {
  const run = await runExample('json-rpc');
  expect(run.code, transcript(run)).toBe(0);
  const out = run.stdout;
  expect(out).toContain('dom0 server | note: "hello from the client"');
  expect(out).toContain('dom5 client | add(2, 40) = 42');
  expect(out).toContain('dom5 client | divide(1, 8) = 0.125');
  expect(out).toContain('dom5 client | divide(1, 0) -> error -32001: cannot divide 1 by zero');
  expect(out).toContain('dom5 client | notes() = ["hello from the client"]');
  expect(out).toContain('dom5 client | notification delivered, 4 requests answered (1 with an error), all checked');
  expect(out).toContain('dom0 server | connection closed after 1 note(s)');
  expect(run.brokerLeftRunning).toBe(false);
});
