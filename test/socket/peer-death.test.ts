/**
 * A peer seen gone is released at once, against the real thing: a C peer
 * on Debian's libxenvchan under xensim is killed with kill -9 while our
 * stream, in a process of its own with the default XenBackend, sits idle
 * (the application never reads, ends, destroys or closes it). Within 1 s
 * (or, on a host so loaded that C itself is slow to see a kill, 20× what
 * C ↔ C takes in the same run) the emulator must show nothing held for the
 * dead peer; what it had written is delivered afterwards.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundle } from '../interop/harness.js';
import { REPO_ROOT, startPeer, vchanPeerArgs } from '../support/c-peer.js';
import { patternHash } from '../support/pattern.js';
import { Sim } from '../sim/helpers.js';

let sim: Sim;
let boundMs = 1000;
beforeAll(async () => {
  sim = await Sim.start();
  const baseline = Math.max(await cKillsC(), await cKillsC());
  boundMs = Math.max(1000, 20 * baseline);
  console.log(`kill notice C ↔ C in this run: ${baseline.toFixed(1)} ms (worst of 2); bound ${boundMs.toFixed(0)} ms`);
}, 120_000);

let basePort = 40;
/** The baseline: a C server killed, how long until its C client's is_open() is 0. */
async function cKillsC(): Promise<number> {
  const path = `data/vchan/2/${basePort++}`;
  const server = await startPeer(vchanPeerArgs({ role: 'server', peer: 2, path, mode: 'send', bytes: 1 << 40, timeoutMs: 15_000 }), { wrapper: sim.runArgs(1), env: sim.env });
  await server.waitFor((l) => 'event' in l && l.event === 'listening');
  const client = await startPeer(vchanPeerArgs({ role: 'client', peer: 1, path: `/local/domain/1/${path}`, mode: 'hold', timeoutMs: 15_000 }), {
    wrapper: sim.runArgs(2),
    env: sim.env,
  });
  await client.waitFor((l) => 'event' in l && l.event === 'open');
  const killedAt = Date.now();
  server.child.kill('SIGKILL');
  const closed = (await client.waitFor((l) => 'event' in l && l.event === 'closed')) as { wallMs?: number };
  await Promise.all([server.done, client.done]);
  return closed.wallMs! - killedAt;
}
afterAll(async () => {
  await sim?.stop();
});

function survivor(domid: number, role: 'server' | 'client', peer: number, path: string) {
  const script = bundle(join(REPO_ROOT, 'test/socket/fixtures/idle-survivor.ts'), 'socket-idle-survivor');
  const [cmd, ...args] = [...sim.runArgs(domid), process.execPath, script, role, String(peer), path];
  const child = spawn(cmd!, args, { env: sim.env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const until = async (text: string, ms = 15_000) => {
    const end = Date.now() + ms;
    while (!out.includes(text)) {
      if (Date.now() > end) throw new Error(`survivor never printed "${text}"; stdout: ${out} stderr: ${err}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return { child, until, out: () => out };
}

const nothingHeld = (s: { grants: number; pages: number; mappedPages: number; ports: number; watches: number }) =>
  s.grants + s.pages + s.mappedPages + s.ports + s.watches === 0;

describe('a peer killed with kill -9 is released at once (xensim, Debian libxenvchan peer, XenBackend survivor)', () => {
  const BYTES = 10_000;
  for (const cRole of ['client', 'server'] as const) {
    it(`C ${cRole} killed: within 1 s nothing is held for it, and its ${BYTES} bytes are delivered after`, async () => {
      const port = cRole === 'client' ? 50 : 51;
      const ours = cRole === 'client' ? 'server' : 'client';
      const serverDomain = 1;
      const clientDomain = 2;
      const path = `data/vchan/${clientDomain}/${port}`;
      const cArgs = vchanPeerArgs({
        role: cRole,
        peer: cRole === 'client' ? serverDomain : clientDomain,
        path: cRole === 'client' ? `/local/domain/${serverDomain}/${path}` : path,
        bytes: BYTES,
        mode: 'send',
        lingerMs: 60_000,
        timeoutMs: 15_000,
      });
      let ts: ReturnType<typeof survivor>;
      let c: Awaited<ReturnType<typeof startPeer>>;
      if (ours === 'server') {
        ts = survivor(serverDomain, 'server', clientDomain, path);
        await new Promise((r) => setTimeout(r, 300));
        c = await startPeer(cArgs, { wrapper: sim.runArgs(clientDomain), env: sim.env });
      } else {
        c = await startPeer(cArgs, { wrapper: sim.runArgs(serverDomain), env: sim.env });
        await c.waitFor((l) => 'event' in l && l.event === 'listening');
        ts = survivor(clientDomain, 'client', serverDomain, `/local/domain/${serverDomain}/${path}`);
      }
      await ts.until('connected');
      const result = await c.waitFor((l) => 'ok' in l);
      expect(result).toMatchObject({ ok: true, sent: BYTES });
      const killedAt = Date.now();
      c.child.kill('SIGKILL');
      const status = await sim.until(nothingHeld, boundMs);
      expect(nothingHeld(status), `held ${Date.now() - killedAt} ms after the kill: ${JSON.stringify(status)}`).toBe(true);
      ts.child.stdin.write('read\n');
      // The C peer sends the pattern of its default seed: server 1, client 2.
      await ts.until(`received ${BYTES} ${patternHash(cRole === 'server' ? 1 : 2, BYTES)}`);
      ts.child.kill('SIGKILL');
    });
  }
});

describe("end() inside 'data' against Debian's libxenvchan (xensim)", () => {
  it('a TS client that has what it wanted ends cleanly while a C server still writes; what arrived is an exact prefix', async () => {
    const path = 'data/vchan/2/60';
    const c = await startPeer(vchanPeerArgs({ role: 'server', peer: 2, path, bytes: 200_000, mode: 'send', timeoutMs: 15_000, stallMs: 5000 }), {
      wrapper: sim.runArgs(1),
      env: sim.env,
    });
    await c.waitFor((l) => 'event' in l && l.event === 'listening');
    const script = bundle(join(REPO_ROOT, 'test/socket/fixtures/end-in-data.ts'), 'socket-end-in-data');
    const [cmd, ...args] = [...sim.runArgs(2), process.execPath, script, '1', `/local/domain/1/${path}`, '65536'];
    const child = spawn(cmd!, args, { env: sim.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    await new Promise((r) => child.once('exit', r));
    c.child.kill('SIGKILL');
    const [, bytes, hash, errors] = /result (\d+) (\w+) (\S+)/.exec(out) ?? [];
    expect(errors, out).toBe('none');
    expect(Number(bytes)).toBeGreaterThanOrEqual(65536);
    expect(hash).toBe(patternHash(1, Number(bytes)));
  });
});
