/**
 * The peer dies between every pair of setup steps, on the memory backend:
 * before each of the *peer's* own setup calls (and right after its setup),
 * and — for a server under test — with a client that connects and dies
 * before each of the server's calls that come after it published. Both
 * deaths: the peer's process killed (kill -9: its unmap notifications
 * fire, nothing of it runs after) and its domain destroyed (the toolstack
 * removes its xenstore home; its process never runs again and unmaps
 * nothing). Both roles under test, both APIs, in dom0 (which can tell a
 * destroyed domain) and, for kill -9, in a domU.
 *
 * Each run ends by itself within RUN_MS, with a clean end or one
 * documented VchanError — or, where the README says it waits (a server
 * whose client never mapped its page; a client that never got entries it
 * could map), with the deadline we gave it. Afterwards, once the dead
 * peer's process is gone too, nothing is held (but a killed server's
 * entries, which nobody removes, as on Xen).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Vchan } from '../../src/channel.js';
import { VchanError } from '../../src/errors.js';
import { MemoryHypervisor } from '../../src/memory/index.js';
import { connect, listen } from '../../src/net.js';
import { DOCUMENTED_CODES } from '../fuzz/session.js';
import { interpose, type Call, type InterposedBackend } from '../support/interposed-backend.js';

type Role = 'server' | 'client';
type Api = 'vchan' | 'stream';
type Death = 'kill' | 'destroy';

const PEER = 3;
const RUN_MS = 1000;
/** Runs at once (each its own hypervisor): the documented waits take RUN_MS each. */
const PARALLEL = 16;
/** Calls of a whole setup (the most of either role, memory backend): a bound for k. */
const SETUP_CALLS = 10;

const strays: unknown[] = [];
const onStray = (e: unknown) => strays.push(e);
beforeAll(() => {
  process.on('unhandledRejection', onStray);
  process.on('uncaughtException', onStray);
});
afterAll(() => {
  process.off('unhandledRejection', onStray);
  process.off('uncaughtException', onStray);
});

interface Case {
  role: Role;
  api: Api;
  death: Death;
  victimDom: number;
  /** The peer dies before its own k-th call (SETUP_CALLS + 1: right after its setup)… */
  peerK?: number;
  /** …or (server under test) a client connects, then dies before the server's k-th call. */
  victimK?: number;
}

interface Outcome {
  errors: string[];
  /** The victim saw its peer connected (a server: the client mapped and went live; a client: it mapped). */
  mapped: boolean;
  diedAt?: string;
  ms: number;
}

const never = new Promise<never>(() => undefined);

async function run(c: Case): Promise<{ outcome: Outcome; held: Record<string, number> }> {
  const hv = new MemoryHypervisor();
  const toolstack = hv.backend(0);
  const victimIsServer = c.role === 'server';
  const path = `data/vchan/${victimIsServer ? PEER : c.victimDom}/1`;
  const serverDom = victimIsServer ? c.victimDom : PEER;
  const absolute = `/local/domain/${serverDom}/${path}`;
  // Another process of the peer's domain: a killed process leaves its domain alive (and its entries).
  const keeper = hv.backend(PEER);
  const peerRaw = hv.backend(PEER);
  const outcome: Outcome = { errors: [], mapped: false, ms: 0 };
  let dead = false;
  const die = async (where: string): Promise<void> => {
    if (dead) return;
    dead = true;
    outcome.diedAt = where;
    if (c.death === 'kill') {
      peerRaw.destroy();
      await hv.released(peerRaw);
    } else {
      await toolstack.store.remove(`/local/domain/${PEER}`);
    }
  };
  // The peer: honest, until it dies; a dead peer's pending call never returns.
  let peerCalls = 0;
  const peer = interpose(peerRaw, async (call: Call) => {
    if (dead) return never;
    peerCalls = call.index;
    if (c.peerK === call.index) {
      await die(`before the peer's call ${call.index} (${call.name})`);
      return never;
    }
  });
  const peerSetup = async (): Promise<void> => {
    const v = victimIsServer
      ? await Vchan.client({ peer: c.victimDom, path: absolute, backend: peer })
      : await Vchan.server({ peer: c.victimDom, path, readMin: 4096, writeMin: 65536, backend: peer });
    if (c.peerK !== undefined && c.peerK > SETUP_CALLS) await die(`after the peer's setup (${peerCalls} calls)`);
    else if (!dead) await die('after the peer connected'); // victimK: the client connected; now it dies
    void v;
  };
  const victim: InterposedBackend = interpose(hv.backend(c.victimDom), async (call: Call) => {
    if (call.name === 'mapGrants') outcome.mapped = true;
    // A client connects and dies right before the server's k-th call (once it has published).
    if (c.victimK === call.index) await Promise.race([peerSetup().catch(() => undefined), new Promise((r) => setTimeout(r, RUN_MS))]);
  });

  const started = performance.now();
  const deadline = AbortSignal.timeout(RUN_MS);
  const note = (error: unknown) =>
    outcome.errors.push(error instanceof VchanError ? String(error.code) : `not a VchanError: ${String((error as Error)?.stack ?? error)}`);
  if (c.peerK !== undefined && !victimIsServer) void peerSetup().catch(() => undefined);
  const victimRun = async (): Promise<void> => {
    if (c.api === 'vchan') {
      try {
        const v = victimIsServer
          ? await Vchan.server({ peer: PEER, path, readMin: 65536, writeMin: 4096, backend: victim })
          : await Vchan.client({ peer: PEER, path: absolute, backend: victim, signal: deadline });
        if (c.peerK !== undefined && victimIsServer) void peerSetup().catch(() => undefined);
        try {
          while (v.isOpen() !== 0) {
            if (victimIsServer && v.isOpen() === 1) outcome.mapped = true;
            await v.wait(deadline);
          }
        } finally {
          await v.close();
          await v.released();
        }
      } catch (error) {
        note(error);
      }
    } else {
      const stream = victimIsServer
        ? listen({ peer: PEER, path, readMin: 65536, writeMin: 4096, backend: victim, timeout: RUN_MS })
        : connect({ peer: PEER, path: absolute, backend: victim, timeout: RUN_MS });
      if (c.peerK !== undefined && victimIsServer) stream.once('listening', () => void peerSetup().catch(() => undefined));
      stream.on('connect', () => victimIsServer && (outcome.mapped = true));
      stream.on('error', note);
      stream.resume();
      const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
      // A stream that connected has no deadline of its own: one that outlives ours is a hang.
      if ((await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(r, RUN_MS + 500, 'hung'))])) === 'hung') {
        outcome.errors.push('hung');
        stream.destroy();
        await closed;
      }
    }
  };
  await victimRun();
  outcome.ms = performance.now() - started;
  // Now the dead peer's process goes too (a destroyed domain's, at last): nothing may be left.
  for (const b of [peerRaw, keeper]) {
    b.destroy();
    await hv.released(b);
  }
  const { backends: _, ...held } = hv.held();
  return { outcome, held };
}

function cases(): Case[] {
  const out: Case[] = [];
  for (const role of ['server', 'client'] as const)
    for (const api of ['vchan', 'stream'] as const)
      for (const [death, victimDom] of [
        ['kill', 0],
        ['destroy', 0],
        ['kill', 5],
      ] as const) {
        for (let k = 1; k <= SETUP_CALLS + 1; k++) out.push({ role, api, death, victimDom, peerK: k });
        // A server's calls after it published (call 7 writes the entries; then its peer watch): a client may come before any.
        if (role === 'server') for (let k = 8; k <= SETUP_CALLS; k++) out.push({ role, api, death, victimDom, victimK: k });
      }
  return out;
}

const label = (c: Case) => `${c.role} ${c.api} in dom${c.victimDom}, peer ${c.death === 'kill' ? 'killed' : 'domain destroyed'} ${c.peerK !== undefined ? `before its call ${c.peerK}` : `after connecting, before the server's call ${c.victimK}`}`;

describe('the peer dies between every pair of setup steps (memory backend)', () => {
  it(`${cases().length} runs: a clean end, one documented error, or a documented wait; nothing held`, async () => {
    const tally = new Map<string, number>();
    const only = process.env.PEER_DEATH_CASE;
    const all = cases().filter((x) => only === undefined || label(x).includes(only));
    const results: Array<{ c: Case; outcome: Outcome; held: Record<string, number> }> = [];
    for (let i = 0; i < all.length; i += PARALLEL) {
      results.push(...(await Promise.all(all.slice(i, i + PARALLEL).map(async (c) => ({ c, ...(await run(c)) })))));
    }
    for (const { c, outcome, held } of results) {
      const at = `${label(c)} → ${JSON.stringify(outcome)}`;
      if (only !== undefined) process.stdout.write(`${at}\n`);
      expect(outcome.diedAt, at).toBeDefined();
      expect(outcome.errors.length, at).toBeLessThanOrEqual(1);
      const code = outcome.errors[0];
      if (code === 'ERR_VCHAN_TIMEOUT') {
        // Only where the README says the victim waits (no deadline unless given one).
        // (The peer client's 4th call maps the server's control page.)
        const documented = c.role === 'server' ? c.peerK !== undefined && c.peerK <= 4 : !outcome.mapped;
        expect(documented, `a wait that is not documented: ${at}`).toBe(true);
      } else if (code !== undefined) {
        expect(DOCUMENTED_CODES.has(code), at).toBe(true);
      }
      expect(outcome.ms, at).toBeLessThan(RUN_MS + 400);
      // A killed server's entries stay in xenstore (nobody removes them, as on Xen).
      const { storeEntries, ...rest } = held;
      expect(rest, at).toEqual({ grants: 0, mappedPages: 0, ports: 0, watches: 0 });
      if (!(c.role === 'client' && c.death === 'kill')) expect(storeEntries, at).toBe(0);
      const key = `${c.role}/${c.death}: ${code ?? 'end'}`;
      tally.set(key, (tally.get(key) ?? 0) + 1);
    }
    expect(strays).toEqual([]);
    process.stdout.write(`peer death in setup: ${[...tally].map(([k, n]) => `${k} ${n}`).join(', ')}\n`);
  });
});
