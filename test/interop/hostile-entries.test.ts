/**
 * Hostile xenstore entries against our client on the Xen backend (xensim):
 * Debian's xenstore-write publishes them from the "server" domain, and the
 * client (fixtures/paused-client.ts, pausing nowhere) must fail with the
 * same error as on the memory backend (test/unit/hostile-entries.test.ts):
 * ERR_VCHAN_PROTOCOL naming the entry for what Xen could never have handed
 * out, the kernel's EINVAL for a port in range that nobody offered. The
 * client, still running, holds nothing.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureCPeers, startPeer, type PeerLine } from '../support/c-peer.js';
import { NOTHING_HELD, TestSim } from '../xen-backend/sim.js';
import { bundle } from './harness.js';

const execFileP = promisify(execFile);
const SERVER = 3;

let sim: TestSim;
let fixture: string;
let xenstoreWrite: string;

beforeAll(async () => {
  fixture = bundle(join(import.meta.dirname, 'fixtures/paused-client.ts'), 'paused-client');
  xenstoreWrite = join((await ensureCPeers()).root, 'usr/bin/xenstore-write');
  sim = await TestSim.start();
});

afterAll(async () => {
  await sim?.stop();
});

type Line = PeerLine & { event?: string; code?: string; message?: string };
const isEvent = (name: string) => (l: PeerLine) => 'event' in l && l.event === name;

let port = 1;
async function clientFacing(ringRef: string, eventChannel: string): Promise<{ path: string; error: Line | undefined }> {
  const path = `/local/domain/${SERVER}/data/vchan/0/${port++}`;
  await execFileP(xenstoreWrite, [`${path}/ring-ref`, ringRef, `${path}/event-channel`, eventChannel], { env: await sim.domainEnv(SERVER) });
  const client = await startPeer([fixture, String(SERVER), path, 'none'], {
    command: [process.execPath],
    env: await sim.domainEnv(0),
    stdin: true,
    timeoutMs: 30_000,
  });
  await client.waitFor(isEvent('closed'));
  expect(await sim.idle()).toEqual(NOTHING_HELD);
  client.child.stdin!.write('exit\n');
  const run = await client.done;
  expect(run.code, run.stderr).toBe(0);
  return { path, error: client.lines.find(isEvent('error')) as Line | undefined };
}

describe("a hostile server's xenstore entries, Xen backend (xensim)", () => {
  it.each([
    ['event-channel', '4294967295'],
    ['event-channel', '131072'],
    ['event-channel', '0x10'],
    ['ring-ref', '4294967296'],
  ])('%s = %s: ERR_VCHAN_PROTOCOL naming the entry', async (entry, value) => {
    const { path, error } = await clientFacing(entry === 'ring-ref' ? value : '8', entry === 'event-channel' ? value : '1');
    expect(error).toMatchObject({ code: 'ERR_VCHAN_PROTOCOL' });
    expect(error!.message).toContain(`${path}/${entry}`);
  });

  it('event-channel = 131071, in range but offered by nobody: the kernel EINVAL', async () => {
    const { error } = await clientFacing('8', '131071');
    expect(error).toMatchObject({ code: 'EINVAL' });
  });
});
