import { expect, it } from 'vitest';
import { runExample, transcript } from './run-example.js';

// run.mjs builds test/c/vchan-peer.c against Debian's libxenvchan itself; if
// the packages or a compiler are missing it fails, and so does this test.
it('c-interop: a Node server (Vchan API, domain 0) and the C libxenvchan client (domain 5), 1 MiB each way, each side checking', async () => {
  const run = await runExample('c-interop');
  expect(run.code, transcript(run)).toBe(0);
  const out = run.stdout;
  const verdict = JSON.parse(out.match(/^dom5 C {4}\| (\{"ok".*\})$/m)?.[1] ?? '{}');
  expect(verdict, transcript(run)).toMatchObject({ ok: true, role: 'client', sent: 1 << 20, received: 1 << 20 });
  expect(out).toContain('dom0 node | Node -> C: sent 1048576 bytes of pattern 1');
  expect(out).toContain("dom0 node | C -> Node: received 1048576 bytes, every one as the C client's pattern 2 says");
  expect(out).toContain('Node and C libxenvchan: 1048576 bytes each way, every byte checked on arrival');
  expect(run.brokerLeftRunning).toBe(false);
});
