/** VchanStreams over the memory backend in one thread, against net.Sockets. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { memoryTarget } from './memory-target.js';
import { netTarget, type Target } from './net-target.js';
import { assertConforms } from './run.js';

let reference: Target;
let memory: Target;
beforeAll(async () => {
  reference = await netTarget();
  memory = memoryTarget();
});
afterAll(async () => {
  await reference.close();
  await memory.close();
});

it('VchanStream (memory backend, one thread) behaves as net.Socket', { timeout: 600_000 }, async () => {
  expect(await assertConforms(reference, memory, 5000)).toBeGreaterThan(0);
});
