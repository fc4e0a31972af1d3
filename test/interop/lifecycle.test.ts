/**
 * connect() to nobody and listen() for nobody under xensim: the errors are
 * the documented ones, and once they arrive the process holds nothing in
 * the emulator (no grant, page, port or watch) although it is still alive.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPeer, vchanPeerArgs, type StartedPeer } from '../support/c-peer.js';
import { NOTHING_HELD, TestSim } from '../xen-backend/sim.js';
import { bundle } from './harness.js';

let sim: TestSim;
let fixture: string;

beforeAll(async () => {
  fixture = bundle(join(import.meta.dirname, 'fixtures/lifecycle.ts'), 'lifecycle');
  sim = await TestSim.start();
});

afterAll(async () => {
  await sim?.stop();
});

function start(step: string, peer: number): Promise<StartedPeer> {
  return startPeer([fixture, step, String(peer)], { command: [process.execPath], wrapper: sim.runArgs(3), env: sim.env, stdin: true, timeoutMs: 30_000 });
}

async function finish(p: StartedPeer): Promise<void> {
  p.child.stdin!.end('exit\n');
  expect((await p.done).code).toBe(0);
}

describe('connect with no server', () => {
  it('timeout: ERR_VCHAN_TIMEOUT, nothing held afterwards', async () => {
    const p = await start('timeout', 1);
    const line = await p.waitFor((l) => 'step' in l);
    expect(line).toMatchObject({ name: 'VchanError', code: 'ERR_VCHAN_TIMEOUT' });
    expect((line as unknown as { ms: number }).ms).toBeGreaterThanOrEqual(290);
    expect(await sim.idle()).toEqual(NOTHING_HELD); // measured while the process lives
    await finish(p);
  });

  it('signal: an AbortError (ERR_VCHAN_ABORTED), nothing held afterwards', async () => {
    const p = await start('abort', 1);
    const line = await p.waitFor((l) => 'step' in l);
    expect(line).toMatchObject({ name: 'AbortError', code: 'ERR_VCHAN_ABORTED' });
    expect(await sim.idle()).toEqual(NOTHING_HELD);
    await finish(p);
  });
});

describe('connect before the server publishes', () => {
  it('waits (its reads are refused with EACCES until then), and connects once the C server is up', async () => {
    const p = await start('early', 1);
    await p.waitFor((l) => 'phase' in l && l.phase === 'waiting');
    await new Promise((r) => setTimeout(r, 500));
    const server = await startPeer(vchanPeerArgs({ role: 'server', peer: 3, path: 'data/vchan/3/4244', mode: 'hold' }), { wrapper: sim.runArgs(1), env: sim.env, timeoutMs: 30_000 });
    expect(await p.waitFor((l) => 'phase' in l && l.phase === 'done')).toMatchObject({ connected: true });
    expect((await server.done).result).toMatchObject({ event: 'closed', liveByte: 0 });
    await finish(p);
    expect(await sim.idle()).toEqual(NOTHING_HELD);
  });
});

describe('a server whose client never comes', () => {
  it('publishes, holds its pages and port while listening, and on close removes its entries and holds nothing', async () => {
    const p = await start('lonely', 7);
    const listening = await p.waitFor((l) => 'phase' in l && l.phase === 'listening');
    expect(listening).toMatchObject({ keys: expect.arrayContaining(['ring-ref', 'event-channel']) });
    const during = await sim.held();
    expect(during.grants).toBeGreaterThan(0);
    expect(during.ports).toBeGreaterThan(0);
    p.child.stdin!.write('close\n');
    const closed = await p.waitFor((l) => 'phase' in l && l.phase === 'closed');
    expect(closed).toMatchObject({ keys: null });
    expect(await sim.idle()).toEqual(NOTHING_HELD);
    await finish(p);
  });
});
