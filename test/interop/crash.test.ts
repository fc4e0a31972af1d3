/**
 * kill -9 of either side under xensim, against Debian's libxenvchan: the
 * survivor learns through the liveness byte the dead side's unmap
 * notification clears (its domain stays alive, so no @releaseDomain), within
 * 100 ms of the kill — or, on a host so loaded that C itself is slow to see
 * a kill, within 3× what C ↔ C takes in the same run (the baseline below), so
 * the test fails on a regression, not on a busy machine. Times are wall
 * clock: taken just before kill() here, and by the survivor when it saw the close.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPeer, vchanPeerArgs, type PeerLine, type StartedPeer } from '../support/c-peer.js';
import { NOTHING_HELD, TestSim } from '../xen-backend/sim.js';
import { nodePeerCommand } from './harness.js';

const MiB = 1 << 20;
const ENDLESS = 64 * 1024 * MiB;
const FLOOR_MS = 100;
/** max(FLOOR_MS, 3 × the slowest C ↔ C kill notice of this run), set by beforeAll. */
let BOUND_MS = FLOOR_MS;

let sim: TestSim;
let envs: Record<1 | 2, NodeJS.ProcessEnv>;

beforeAll(async () => {
  nodePeerCommand();
  sim = await TestSim.start();
  envs = { 1: await sim.domainEnv(1), 2: await sim.domainEnv(2) };
  const baseline = Math.max(await cKillsC(), await cKillsC());
  BOUND_MS = Math.max(FLOOR_MS, 3 * baseline);
  console.log(`kill notice C ↔ C in this run: ${baseline.toFixed(1)} ms (worst of 2); bound ${BOUND_MS.toFixed(0)} ms`);
}, 120_000);

afterAll(async () => {
  await sim?.stop();
});

type Line = PeerLine & { wallMs?: number; received?: number; code?: string; liveByte?: number; viaEvent?: boolean };

const event = (name: string) => (l: PeerLine) => 'event' in l && l.event === name;
const result = (l: PeerLine) => 'ok' in l;

let port = 500;
/** Server in dom1 for a client in dom2, on a fresh port. */
function addresses() {
  const path = `data/vchan/2/${port++}`;
  return { server: path, client: `/local/domain/1/${path}` };
}

function node(args: string[], domid: 1 | 2, stdin = false): Promise<StartedPeer> {
  return startPeer(args, { command: nodePeerCommand(), env: envs[domid], timeoutMs: 60_000, stdin });
}

function c(args: string[], domid: 1 | 2): Promise<StartedPeer> {
  return startPeer(args, { env: envs[domid], timeoutMs: 60_000 });
}

async function killNow(p: StartedPeer): Promise<number> {
  const at = Date.now();
  p.child.kill('SIGKILL');
  return at;
}

/** The baseline: a C server killed mid-transfer, how long until its C client's is_open() is 0. */
async function cKillsC(): Promise<number> {
  const a = addresses();
  const server = await c(vchanPeerArgs({ role: 'server', peer: 2, path: a.server, mode: 'send', bytes: ENDLESS, leftMin: MiB, rightMin: MiB }), 1);
  await server.waitFor(event('listening'));
  const client = await c(vchanPeerArgs({ role: 'client', peer: 1, path: a.client, mode: 'hold', leftMin: MiB, rightMin: MiB }), 2);
  await client.waitFor(event('open'));
  await new Promise((r) => setTimeout(r, 300));
  const killedAt = await killNow(server);
  const closed = (await client.waitFor(event('closed'))) as Line;
  await settle(server, client);
  return closed.wallMs! - killedAt;
}

async function settle(...peers: StartedPeer[]): Promise<void> {
  await Promise.all(peers.map((p) => p.done));
  expect(await sim.idle()).toEqual(NOTHING_HELD);
}

describe('kill -9 of the C peer: the TS stream ends within 100 ms (or 3× C ↔ C)', () => {
  it('C server killed mid-transfer: the TS client stream delivers what arrived and ends', async () => {
    const a = addresses();
    const server = await c(vchanPeerArgs({ role: 'server', peer: 2, path: a.server, mode: 'send', bytes: ENDLESS, leftMin: MiB, rightMin: MiB }), 1);
    await server.waitFor(event('listening'));
    const client = await node(['client', '1', a.client, '--mode', 'recv', '--bytes', String(ENDLESS)], 2);
    await client.waitFor(event('open'));
    await new Promise((r) => setTimeout(r, 300));
    const killedAt = await killNow(server);
    const end = (await client.waitFor(event('end'))) as Line;
    const last = (await client.waitFor(result)) as Line;
    expect(end.wallMs! - killedAt).toBeLessThan(BOUND_MS);
    // Every byte that arrived was the pattern, checked as it came; then the stream just ended.
    expect(last).toMatchObject({ ok: false, code: 'ERR_VCHAN_PEER_CLOSED' });
    expect(end.received).toBeGreaterThan(8 * MiB);
    expect(last.received).toBe(end.received);
    console.log(`C server killed: TS stream ended ${end.wallMs! - killedAt} ms after the kill, ${end.received} bytes in`);
    await settle(server, client);
  });

  it('C client killed with data still in the ring: the TS server stream delivers all of it, then ends', async () => {
    const a = addresses();
    const sent = 1_000_000; // fits the 1 MiB ring the server reads
    const server = await node(['server', '2', a.server, '--mode', 'recv', '--bytes', String(ENDLESS), '--left-min', String(MiB), '--read-on-stdin', '1'], 1, true);
    await server.waitFor(event('listening'));
    const client = await c(vchanPeerArgs({ role: 'client', peer: 1, path: a.client, mode: 'send', bytes: sent, lingerMs: 60_000 }), 2);
    // The C client wrote everything into the ring and stays connected; the server has read nothing.
    expect(await client.waitFor(result)).toMatchObject({ ok: true, sent });
    const killedAt = await killNow(client);
    server.child.stdin!.write('read now\n');
    const end = (await server.waitFor(event('end'))) as Line;
    expect(end.received).toBe(sent);
    expect(end.wallMs! - killedAt).toBeLessThan(BOUND_MS);
    console.log(`C client killed: TS stream delivered ${end.received} bytes from the ring and ended ${end.wallMs! - killedAt} ms after the kill`);
    expect(await server.waitFor(result)).toMatchObject({ ok: false, code: 'ERR_VCHAN_PEER_CLOSED', received: sent });
    await settle(server, client);
  });
});

describe("kill -9 of the Node process: the C peer's libxenvchan_is_open() is 0 within 100 ms (or 3× C ↔ C)", () => {
  for (const victim of ['server', 'client'] as const) {
    it(`Node ${victim} killed mid-transfer`, async () => {
      const a = addresses();
      const nodeArgs = (role: 'server' | 'client') =>
        role === 'server'
          ? ['server', '2', a.server, '--mode', 'send', '--bytes', String(ENDLESS), '--right-min', String(MiB)]
          : ['client', '1', a.client, '--mode', 'send', '--bytes', String(ENDLESS)];
      const cArgs = (role: 'server' | 'client') =>
        vchanPeerArgs({ role, peer: role === 'server' ? 2 : 1, path: role === 'server' ? a.server : a.client, mode: 'hold', leftMin: MiB, rightMin: MiB });
      const server = victim === 'server' ? await node(nodeArgs('server'), 1) : await c(cArgs('server'), 1);
      await server.waitFor(event('listening'));
      const client = victim === 'client' ? await node(nodeArgs('client'), 2) : await c(cArgs('client'), 2);
      const [doomed, survivor] = victim === 'server' ? [server, client] : [client, server];
      await survivor.waitFor(event('open'));
      await new Promise((r) => setTimeout(r, 300));
      const killedAt = await killNow(doomed);
      const closed = (await survivor.waitFor(event('closed'))) as Line;
      expect(closed).toMatchObject({ liveByte: 0, viaEvent: true });
      expect(closed.received).toBeGreaterThan(MiB); // it was mid-transfer
      expect(closed.wallMs! - killedAt).toBeLessThan(BOUND_MS);
      console.log(`Node ${victim} killed: C is_open() == 0 after ${(closed.wallMs! - killedAt).toFixed(1)} ms`);
      expect((await survivor.done).code).toBe(0);
      await settle(server, client);
    });
  }
});
