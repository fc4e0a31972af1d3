/**
 * A C server (Debian's libxenvchan) whose *domain* is destroyed
 * (`xensim destroy`) while our client sets up, stopped before a chosen setup
 * call (fixtures/paused-client.ts). A destroyed domain runs no unmap
 * notification: the client must learn it from xenstore or from the calls
 * that now fail. Either way the stream ends or fails with a named error
 * within 2 s of going on, and the client, still running, holds nothing.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startPeer, vchanPeerArgs, type PeerLine } from '../support/c-peer.js';
import { NOTHING_HELD, TestSim } from '../xen-backend/sim.js';
import { bundle } from './harness.js';

const execFileP = promisify(execFile);
const CLI = join(REPO_ROOT, 'dist/sim/cli.js');
/**
 * dom0: only a privileged domain can tell a destroyed domain from a live one
 * in xenstore (to others both /local/domain/<id>/domid and its absence read
 * EACCES, and @releaseDomain is not sent to them since XSA-115).
 */
const CLIENT = 0;
const BOUND_MS = 2000;

let sim: TestSim;
let clientEnv: NodeJS.ProcessEnv;
let fixture: string;

beforeAll(async () => {
  fixture = bundle(join(import.meta.dirname, 'fixtures/paused-client.ts'), 'paused-client');
  sim = await TestSim.start();
  clientEnv = await sim.domainEnv(CLIENT);
});

afterAll(async () => {
  await sim?.stop();
});

type Line = PeerLine & { event?: string; code?: string; message?: string; args?: unknown[] };
const isEvent = (...names: string[]) => (l: PeerLine) => 'event' in l && names.includes(String(l.event));

/** A fresh server domain each time: a destroyed domain is gone for good. */
let nextServer = 20;

async function destroyServerDomainAt(at: string) {
  const domid = nextServer++;
  const path = `data/vchan/${CLIENT}/1`;
  const server = await startPeer(
    vchanPeerArgs({ role: 'server', peer: CLIENT, path, mode: 'hold', leftMin: 1 << 16, rightMin: 1 << 16, timeoutMs: 20_000 }),
    { env: await sim.domainEnv(domid), timeoutMs: 30_000 },
  );
  await server.waitFor(isEvent('listening'));
  const client = await startPeer([fixture, String(domid), `/local/domain/${domid}/${path}`, at], {
    command: [process.execPath],
    env: clientEnv,
    stdin: true,
    timeoutMs: 30_000,
  });
  const paused = (await client.waitFor(isEvent('paused', 'closed'))) as Line;
  expect(paused, JSON.stringify(client.lines)).toMatchObject({ event: 'paused' });

  await execFileP(process.execPath, [CLI, 'destroy', '--domid', String(domid)], { env: sim.env });
  client.child.stdin!.write('go\n');
  const closed = await Promise.race([
    client.waitFor(isEvent('closed')),
    new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), BOUND_MS).unref()),
  ]);
  const story = JSON.stringify(client.lines);
  server.child.kill('SIGKILL');
  await server.done;
  if (closed === 'hung') {
    client.child.kill('SIGKILL');
    await client.done;
  }
  expect(closed, `client still open ${BOUND_MS} ms after its server's domain was destroyed: ${story}`).not.toBe('hung');
  // The client is still running: whatever the emulator still holds would be its leak.
  expect(await sim.idle()).toEqual(NOTHING_HELD);
  client.child.stdin!.write('exit\n');
  const run = await client.done;
  expect(run.code, run.stderr).toBe(0);
  const events = client.lines.map((l) => (l as Line).event);
  const error = client.lines.find(isEvent('error')) as Line | undefined;
  return { domid, paused, events, error };
}

describe("a C server's domain destroyed during our client's setup (xensim)", () => {
  it('after the rings are mapped, before the peer watch first reads its domid: the stream ends', async () => {
    const r = await destroyServerDomainAt('store.read:3');
    expect(r.paused.args).toEqual([`/local/domain/${r.domid}/domid`]);
    expect(r.events).toContain('connect');
    if (r.error) expect(r.error.code).toBe('ERR_VCHAN_PEER_CLOSED');
    else expect(r.events).toContain('end');
  });

  it.each(['bindInterdomain', 'mapGrants:1', 'mapGrants:3', 'store.watch:1'])('before %s: a named error or an end', async (at) => {
    const r = await destroyServerDomainAt(at);
    if (r.error) expect(r.error.code, r.error.message).toMatch(/^(E[A-Z]+|ERR_VCHAN_[A-Z_]+)$/);
    else expect(r.events).toContain('end');
  });
});
