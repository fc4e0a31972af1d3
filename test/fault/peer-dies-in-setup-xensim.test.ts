/**
 * A sample of test/fault/peer-dies-in-setup.test.ts under xensim, against
 * the real XenBackend: the peer (fixtures/paused-peer.ts, our own Vchan in a
 * domain of its own) stops before a chosen call of its setup, or once set
 * up, and is killed (kill -9: its kernel's unmap notifications fire) or has
 * its domain destroyed (`xensim destroy`: nothing of it runs again, nothing
 * is unmapped). The victim (test/fuzz/xen/victim-process.ts: a stream or a
 * Vchan over XenBackend, in dom0, which can tell a destroyed domain) must
 * end within HANG_MS with a clean end or one documented VchanError — or be
 * waiting where the README says it waits (a server whose client never mapped
 * its page, a client that never mapped anything) — and once it is done,
 * xensim holds nothing.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrokerStatus } from '../../sim/broker/broker.js';
import { DOCUMENTED_CODES, HANG_MS } from '../fuzz/session.js';
import type { Plan } from '../fuzz/plan.js';
import { bundle } from '../interop/harness.js';
import { NOTHING_HELD, TestSim } from '../xen-backend/sim.js';

const VICTIM = 0;
let sim: TestSim;
let victimJs: string;
let peerJs: string;
let nextDom = 40;
let nextPort = 1;

beforeAll(async () => {
  victimJs = bundle(join(import.meta.dirname, '../fuzz/xen/victim-process.ts'), 'fuzz-xen-victim');
  peerJs = bundle(join(import.meta.dirname, 'fixtures/paused-peer.ts'), 'fault-paused-peer');
  sim = await TestSim.start();
});
afterAll(async () => {
  await sim?.stop();
});

type Line = Record<string, unknown>;
function follow(child: ReturnType<typeof spawn>) {
  const lines: Line[] = [];
  const waiters: Array<{ pred: (l: Line) => boolean; resolve: (l: Line) => void }> = [];
  createInterface({ input: child.stdout! }).on('line', (text) => {
    if (!text.startsWith('{')) return;
    const line = JSON.parse(text) as Line;
    lines.push(line);
    for (const w of waiters.splice(0)) if (w.pred(line)) w.resolve(line);
      else waiters.push(w);
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    lines,
    stderr: () => stderr,
    exited,
    next(pred: (l: Line) => boolean, ms: number): Promise<Line | undefined> {
      const seen = lines.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => {
        waiters.push({ pred, resolve });
        setTimeout(() => resolve(undefined), ms).unref();
      });
    },
  };
}

interface Case {
  role: 'server' | 'client';
  api: 'stream' | 'vchan';
  death: 'kill' | 'destroy';
  /** The peer's call it dies before, or 'setup-done'. */
  at: string;
}

/** Calls of the peer's own setup before which the victim has nothing mapped from it (README: it waits). */
const NOTHING_MAPPED = new Set(['store.read:1', 'bindInterdomain', 'mapGrants:1', 'bindUnboundPort', 'sharePages:2', 'store.writeAll']);

async function run(c: Case) {
  const peerDom = nextDom++;
  const port = nextPort++;
  const victimIsServer = c.role === 'server';
  const relative = `data/vchan/${victimIsServer ? peerDom : VICTIM}/${port}`;
  const absolute = `/local/domain/${victimIsServer ? VICTIM : peerDom}/${relative}`;
  const plan: Plan = { seed: port, api: c.api, role: c.role, readMin: 65536, writeMin: 4096, steps: [], death: 'close', honest: false, victimBytes: 1000, attackerBytes: 0 };
  const victim = spawn(process.execPath, [victimJs, JSON.stringify(plan), String(peerDom), victimIsServer ? relative : absolute], {
    env: await sim.domainEnv(VICTIM),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const v = follow(victim);
  if (victimIsServer) expect(await v.next((l) => l.event === 'ready', 15_000), v.stderr()).toBeDefined();
  const peer = spawn(process.execPath, [peerJs, victimIsServer ? 'client' : 'server', String(VICTIM), victimIsServer ? absolute : relative, c.at], {
    env: await sim.domainEnv(peerDom),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p = follow(peer);
  const paused = await p.next((l) => l.event === 'paused', 15_000);
  expect(paused, `the peer never paused at ${c.at}: ${p.stderr()}`).toBeDefined();
  if (c.death === 'destroy') await sim.control({ op: 'destroy', domid: peerDom });
  peer.kill('SIGKILL');
  await p.exited;
  const goneAt = Date.now();
  const done = await v.next((l) => l.event === 'done', HANG_MS);
  let waited: string | undefined;
  let mappedNothing = false;
  if (!done) {
    const status = await sim.control<BrokerStatus>({ op: 'status' });
    const mine = status.processes.find((x) => x.pid === victim.pid);
    mappedNothing = (mine?.mappedPages ?? 0) === 0;
    waited = JSON.stringify(mine ?? 'holds no devices');
    victim.stdin!.write('kill\n');
  }
  const report = (done ?? (await v.next((l) => l.event === 'done', 5000))) as { errors: Array<{ code: string; isVchanError: boolean; message: string }>; wallMs: number } | undefined;
  await v.exited;
  await sim.control({ op: 'destroy', domid: peerDom });
  const held = await sim.idle();
  return { report, waited, mappedNothing, latencyMs: done ? Number(done.wallMs) - goneAt : undefined, held, stderr: v.stderr() };
}

const CASES: Case[] = [];
for (const death of ['kill', 'destroy'] as const) {
  ['bindInterdomain', 'mapGrants:1', 'mapGrants:2', 'store.watch:1', 'setup-done'].forEach((at, i) => CASES.push({ role: 'server', api: i % 2 ? 'vchan' : 'stream', death, at }));
  ['sharePages:2', 'store.writeAll', 'store.watch:1', 'setup-done'].forEach((at, i) => CASES.push({ role: 'client', api: i % 2 ? 'stream' : 'vchan', death, at }));
}

describe('the peer dies during its setup, under xensim (XenBackend victims in dom0)', () => {
  it(`${CASES.length} runs: a clean end or one documented error within ${HANG_MS} ms, or a documented wait; nothing held`, { timeout: 240_000 }, async () => {
    const rows: string[] = [];
    for (const c of CASES) {
      const r = await run(c);
      const at = `${c.role} ${c.api}, peer ${c.death === 'kill' ? 'killed' : 'domain destroyed'} before ${c.at} → ${JSON.stringify(r)}`;
      expect(r.report, at).toBeDefined();
      expect(r.stderr, at).toBe('');
      const errors = r.report!.errors;
      expect(errors.length, at).toBeLessThanOrEqual(1);
      for (const e of errors) {
        expect(e.isVchanError, at).toBe(true);
        expect(DOCUMENTED_CODES.has(e.code), at).toBe(true);
        // The message says why, not just the errno's name.
        if (e.code === 'ESRCH') expect(e.message, at).toMatch(/the peer's domain does not exist/);
        if (e.code === 'EINVAL') expect(e.message, at).toMatch(/not offered to this domain|not granted to this domain/);
      }
      // Documented waits: the peer died before anything of it could be mapped, or (a client) we
      // mapped nothing at all — under load the victim may not have read the entries before the
      // destroy removed them, and a client with no entries waits for a server, as documented.
      if (r.waited !== undefined) expect(NOTHING_MAPPED.has(c.at) || (c.role === 'client' && r.mappedNothing), `a wait that is not documented: ${at}`).toBe(true);
      expect(r.held, at).toEqual(NOTHING_HELD);
      if (process.env.FAULT_XEN_VERBOSE) rows.push(at);
      rows.push(`${c.role.padEnd(7)} ${c.api.padEnd(7)} ${c.death.padEnd(8)} before ${c.at.padEnd(15)} → ${r.waited !== undefined ? 'waiting (documented)' : (errors[0]?.code ?? 'end')}${r.latencyMs !== undefined ? ` after ${r.latencyMs} ms` : ''}`);
    }
    process.stdout.write(`\npeer death in setup under xensim:\n${rows.join('\n')}\n`);
  });
});
