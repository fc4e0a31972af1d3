import { expect, it } from 'vitest';
import { runExample, transcript } from './run-example.js';

it('http: an http.Server in domain 0 answers 4 keep-alive requests (a POST among them) over one vchan from domain 5', async () => {
  const run = await runExample('http');
  expect(run.code, transcript(run)).toBe(0);
  const out = run.stdout;
  expect(out).toContain('dom5 client | GET /hello -> 200 "hello over a vchan\\n" (request 1)');
  // The server's sha256 of the 300000-byte body, checked by the client against its own.
  expect(out).toMatch(/^dom5 client \| POST \/sha256 \(300000 bytes\) -> 200 \{"length":300000,"sha256":"[0-9a-f]{64}"\} \(request 2\)$/m);
  expect(out).toContain('dom5 client | GET /nowhere -> 404 (request 3)');
  expect(out).toContain('dom5 client | GET /stats -> 200 {"requests":4} (request 4)');
  expect(out).toContain('dom5 client | 4 requests over 1 vchan, every response checked');
  expect(out).toContain('dom0 server | channel closed after 4 requests');
  expect(out).toContain('HTTP keep-alive over one vchan: 4 requests, all answered correctly');
  expect(run.brokerLeftRunning).toBe(false);
});
