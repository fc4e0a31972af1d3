/**
 * connect() meeting a taken offer under xensim (XenBackend, Debian's C
 * libxenvchan servers): a C client holds the offer, our client's bind
 * fails with EINVAL, and it waits — until the C server is replaced by a
 * fresh one at the same path, which it then connects to; or, when the
 * entries never change, until its timeout, ending in the named EINVAL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodePeerCommand } from '../interop/harness.js';
import { startPeer, vchanPeerArgs, type PeerLine, type StartedPeer } from '../support/c-peer.js';
import { Sim } from '../sim/helpers.js';

let sim: Sim;
/** Every peer started, killed at the end whatever happened (a failed test must leave no process behind). */
const started: StartedPeer[] = [];
beforeAll(async () => {
  sim = await Sim.start();
});
afterAll(async () => {
  for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await Promise.all(started.map((p) => p.done.catch(() => undefined)));
  await sim?.stop();
});

async function track(peer: Promise<StartedPeer>): Promise<StartedPeer> {
  const p = await peer;
  started.push(p);
  return p;
}

const SERVER = 21;
const CLIENT = 22;
const isEvent = (name: string) => (l: PeerLine) => (l as { event?: string }).event === name;

async function cServer(path: string, mode: 'hold' | 'both'): Promise<StartedPeer> {
  const server = await track(
    startPeer(vchanPeerArgs({ role: 'server', peer: CLIENT, path, mode, bytes: 4096, timeoutMs: 20_000 }), {
      env: await sim.domainEnv(SERVER),
      timeoutMs: 30_000,
    }),
  );
  await server.waitFor(isEvent('listening'));
  return server;
}

async function takenOffer(path: string): Promise<{ server: StartedPeer; holder: StartedPeer }> {
  const server = await cServer(path, 'hold');
  const holder = await track(
    startPeer(vchanPeerArgs({ role: 'client', peer: SERVER, path: `/local/domain/${SERVER}/${path}`, mode: 'hold', timeoutMs: 20_000 }), {
      env: await sim.domainEnv(CLIENT),
      timeoutMs: 30_000,
    }),
  );
  await Promise.all([server.waitFor(isEvent('open')), holder.waitFor(isEvent('open'))]);
  return { server, holder };
}

describe('connect() and a taken offer (xensim)', () => {
  it('waits while the offer is taken and connects to the fresh one at the same path', async () => {
    const path = 'data/vchan/22/5';
    const { server, holder } = await takenOffer(path);
    const env = await sim.domainEnv(CLIENT);
    const [node, script] = nodePeerCommand();
    const client = await track(
      startPeer([script!, 'client', String(SERVER), `/local/domain/${SERVER}/${path}`, '--bytes', '4096', '--stall-ms', '10000'], {
        command: [node!],
        env,
        timeoutMs: 30_000,
      }),
    );
    await new Promise((r) => setTimeout(r, 700));
    expect(client.child.exitCode, JSON.stringify(client.lines)).toBeNull();
    holder.child.kill('SIGKILL');
    await holder.done;
    await server.done;
    const fresh = await cServer(path, 'both');
    const [ours, theirs] = await Promise.all([client.done, fresh.done]);
    expect(ours.result, JSON.stringify(ours.lines)).toMatchObject({ ok: true, received: 4096 });
    expect(theirs.result, theirs.stderr).toMatchObject({ ok: true, received: 4096 });
  }, 60_000);

  it('entries that never change end at the timeout in the EINVAL, saying so', async () => {
    const path = 'data/vchan/22/6';
    const { server, holder } = await takenOffer(path);
    const env = await sim.domainEnv(CLIENT);
    const [node, script] = nodePeerCommand();
    const started = Date.now();
    const run = await (
      await track(
        startPeer([script!, 'client', String(SERVER), `/local/domain/${SERVER}/${path}`, '--bytes', '4096', '--stall-ms', '800'], {
          command: [node!],
          env,
          timeoutMs: 30_000,
        }),
      )
    ).done;
    expect(Date.now() - started).toBeGreaterThanOrEqual(700);
    expect(JSON.stringify(run.result)).toMatch(/EINVAL.*did not change before the timeout/);
    holder.child.kill('SIGKILL');
    server.child.kill('SIGKILL');
    await Promise.all([holder.done, server.done]);
  }, 60_000);
});
