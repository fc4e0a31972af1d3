/**
 * createServer() under xensim, as a dom0 service: 100 client domains at
 * once, each a C client on Debian's libxenvchan (test/c/vchan-peer.c)
 * whose own pattern must come back byte-exact; a destroyed domain, whose
 * offer is withdrawn and never published again; and `peers: 'all'`
 * following a domain created and destroyed after listen().
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundle } from '../interop/harness.js';
import { startPeer, vchanPeerArgs, type PeerLine, type StartedPeer } from '../support/c-peer.js';
import { Sim } from '../sim/helpers.js';

let sim: Sim;
let fixture: string;
/** Servers started, killed at the end if a failed test left them running. */
const servers: StartedPeer[] = [];
beforeAll(async () => {
  fixture = bundle(join(import.meta.dirname, 'fixtures/echo-server.ts'), 'server-echo');
  sim = await Sim.start();
});
afterAll(async () => {
  for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  await Promise.all(servers.map((s) => s.done.catch(() => undefined)));
  await sim?.stop();
});

type Line = PeerLine & { event?: string; peer?: number; count?: number; value?: string | null; message?: string };
const isEvent = (name: string) => (l: PeerLine) => (l as Line).event === name;

async function startServer(first: number | 'all', last: number, port: number): Promise<StartedPeer> {
  const argv = first === 'all' ? ['all', String(port)] : [String(first), String(last), String(port)];
  const server = await startPeer([fixture, ...argv], {
    command: [process.execPath],
    env: await sim.domainEnv(0),
    stdin: true,
    timeoutMs: 60_000,
  });
  servers.push(server);
  await server.waitFor(isEvent('listening'));
  return server;
}

/** The value at `path` as the server's process reads it (null: absent). */
async function read(server: StartedPeer, path: string): Promise<string | null | undefined> {
  const before = server.lines.length;
  server.child.stdin!.write(`read ${path}\n`);
  const line = (await server.waitFor((l) => server.lines.indexOf(l) >= before && isEvent('read')(l))) as Line;
  return line.value;
}

async function stopServer(server: StartedPeer): Promise<Line[]> {
  server.child.stdin!.write('close\n');
  await server.waitFor(isEvent('closed'));
  server.child.stdin!.end();
  await server.done;
  return server.lines as Line[];
}

const BYTES = 16 * 1024;

function cClient(domid: number, port: number, env: NodeJS.ProcessEnv): Promise<StartedPeer> {
  return startPeer(
    vchanPeerArgs({ role: 'client', peer: 0, path: `/local/domain/0/data/vchan/${domid}/${port}`, bytes: BYTES, seedTx: domid, seedRx: domid, chunk: 1024, timeoutMs: 30_000 }),
    { env, timeoutMs: 60_000 },
  );
}

describe('createServer() under xensim with C clients', () => {
  it('serves 100 client domains connecting at once, each echo byte-exact', async () => {
    const domains = Array.from({ length: 100 }, (_, i) => 101 + i);
    const envs = await Promise.all(domains.map((d) => sim.domainEnv(d)));
    const server = await startServer(101, 200, 5);
    const runs = await Promise.all(domains.map(async (d, i) => (await cClient(d, 5, envs[i]!)).done));
    type Result = { domid: number; ok?: boolean; txHash?: string; rxHash?: string; received?: number };
    const results = runs.map((r, i): Result => ({ domid: domains[i]!, ...(r.result as object) }));
    const bad = results.filter((r) => !(r.ok && r.received === BYTES && r.txHash === r.rxHash));
    expect(bad, JSON.stringify(bad.slice(0, 3))).toEqual([]);
    const lines = await stopServer(server);
    const connected = new Set(lines.filter((l) => l.event === 'connection').map((l) => l.peer));
    expect(connected.size).toBe(100);
    expect(lines.filter((l) => l.event === 'error')).toEqual([]);
  }, 120_000);

  it("a destroyed domain's offer is withdrawn and not published again", async () => {
    const domid = 60;
    const env = await sim.domainEnv(domid);
    const server = await startServer(domid, domid, 7);
    const ringRef = `/local/domain/0/data/vchan/${domid}/7/ring-ref`;
    const run = await (await cClient(domid, 7, env)).done;
    expect(run.result).toMatchObject({ ok: true, received: BYTES });
    // After its client, the domain has a fresh offer ...
    for (let i = 0; i < 100 && !(await read(server, ringRef)); i++) await new Promise((r) => setTimeout(r, 20));
    expect(await read(server, ringRef)).toMatch(/^[0-9]+$/);
    await sim.destroyDomain(domid);
    // ... withdrawn when the domain goes, and still absent a while later.
    for (let i = 0; i < 100 && (await read(server, ringRef)) !== null; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await read(server, ringRef)).toBeNull();
    await new Promise((r) => setTimeout(r, 500));
    expect(await read(server, ringRef)).toBeNull();
    const status = await sim.status();
    expect(status.grants, 'grants still held after the domain went').toBe(0);
    const lines = await stopServer(server);
    expect(lines.filter((l) => l.event === 'error')).toEqual([]);
  }, 60_000);

  it("peers: 'all' offers to a domain created after listen() and withdraws it when destroyed", async () => {
    const server = await startServer('all', 0, 9);
    const domid = 70;
    const ringRef = `/local/domain/0/data/vchan/${domid}/9/ring-ref`;
    expect(await read(server, ringRef)).toBeNull();
    const env = await sim.domainEnv(domid);
    for (let i = 0; i < 100 && !(await read(server, ringRef)); i++) await new Promise((r) => setTimeout(r, 20));
    const run = await (await cClient(domid, 9, env)).done;
    expect(run.result).toMatchObject({ ok: true, received: BYTES });
    await sim.destroyDomain(domid);
    for (let i = 0; i < 100 && (await read(server, ringRef)) !== null; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await read(server, ringRef)).toBeNull();
    const lines = await stopServer(server);
    expect(lines.filter((l) => l.event === 'error')).toEqual([]);
  }, 60_000);
});
