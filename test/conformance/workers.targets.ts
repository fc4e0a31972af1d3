/** VchanStreams in two worker threads, against net.Sockets. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { netTarget, type Target } from './net-target.js';
import { assertConforms } from './run.js';
import { workerTarget } from './worker-target.js';

let reference: Target;
let workers: Target;
beforeAll(async () => {
  reference = await netTarget();
  workers = await workerTarget();
});
afterAll(async () => {
  await reference.close();
  await workers.close();
});

it('VchanStream (memory backend, two worker threads) behaves as net.Socket', { timeout: 600_000 }, async () => {
  expect(await assertConforms(reference, workers, 500)).toBeGreaterThan(0);
});
