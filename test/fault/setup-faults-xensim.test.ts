/**
 * A sample of the fault matrix (setup-faults.test.ts) under xensim, injected
 * on the emulator's side (`xensim fail`, sim/broker/faults.ts): the k-th
 * ioctl, mmap or xenstore request of the victim's domain fails with an
 * errno Xen's drivers or xenstored return for it, so XenBackend's own errno
 * handling and messages run. The victim (test/fuzz/xen/victim-process.ts,
 * stream or Vchan, server or client) faces the honest C peer on Debian's
 * libxenvchan. Each run ends, well within its deadline, either with success
 * (the failure was absorbed: a retried EAGAIN, a refused peer watch) and
 * every byte both ways, or with exactly one VchanError carrying the
 * injected errno and a message that says what to do; the fault was used;
 * and once the peer is gone too, xensim holds nothing.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaultRule } from '../../sim/broker/faults.js';
import type { Plan } from '../fuzz/plan.js';
import { bundle, cPatternHash } from '../interop/harness.js';
import { startPeer, vchanPeerArgs } from '../support/c-peer.js';
import { NOTHING_HELD, TestSim } from '../xen-backend/sim.js';

const VICTIM = 1;
const PEER = 2;
const BYTES = 3000;
const RUN_MS = 10_000;

let sim: TestSim;
let victimJs: string;
beforeAll(async () => {
  victimJs = bundle(join(import.meta.dirname, '../fuzz/xen/victim-process.ts'), 'fuzz-xen-victim');
  sim = await TestSim.start();
});
afterAll(async () => {
  await sim?.stop();
});

interface Fault {
  role: 'server' | 'client';
  api: 'stream' | 'vchan';
  call: string;
  errno: string;
  skip?: number;
  count?: number;
  /** What the message must say (XenBackend's hint), when the run fails. */
  says?: RegExp;
}

const GNTALLOC_LIMIT = /gntalloc limit reached: raise \/sys\/module\/xen_gntalloc\/parameters\/limit/;
const GNTDEV_LIMIT = /gntdev mapping limit reached: raise \/sys\/module\/xen_gntdev\/parameters\/limit/;
const NO_PORTS = /no free event channel ports left in this domain/;

/** The sample: each call a setup makes on Xen, with the errnos it can return there; both roles, both APIs. */
const FAULTS: Fault[] = [
  { role: 'server', api: 'stream', call: 'GNTALLOC_ALLOC_GREF', errno: 'ENOSPC', says: GNTALLOC_LIMIT },
  { role: 'server', api: 'vchan', call: 'GNTALLOC_ALLOC_GREF', errno: 'ENOSPC', skip: 1, says: GNTALLOC_LIMIT },
  { role: 'server', api: 'stream', call: 'GNTALLOC_ALLOC_GREF', errno: 'ENOMEM', skip: 2, says: /out of memory or grant table entries/ },
  { role: 'server', api: 'vchan', call: 'EVTCHN_BIND_UNBOUND_PORT', errno: 'ENOSPC', says: NO_PORTS },
  { role: 'server', api: 'stream', call: 'GNT_SET_UNMAP_NOTIFY', errno: 'EINVAL', says: /arming the unmap notification/ },
  { role: 'client', api: 'vchan', call: 'GNT_SET_UNMAP_NOTIFY', errno: 'EINVAL', says: /arming the unmap notification/ },
  { role: 'server', api: 'vchan', call: 'MMAP', errno: 'ENOMEM', says: /out of memory or address space/ },
  { role: 'server', api: 'stream', call: 'xs:WRITE', errno: 'EACCES' },
  { role: 'server', api: 'vchan', call: 'xs:WRITE', errno: 'ENOSPC' },
  { role: 'server', api: 'stream', call: 'xs:WRITE', errno: 'E2BIG' },
  { role: 'server', api: 'vchan', call: 'xs:TRANSACTION_END', errno: 'EAGAIN' },
  { role: 'server', api: 'stream', call: 'xs:TRANSACTION_END', errno: 'EAGAIN', count: 30 }, // a storm: retried until it commits
  { role: 'server', api: 'vchan', call: 'xs:WRITE', errno: 'ECONNRESET' },
  { role: 'server', api: 'stream', call: 'xs:WATCH', errno: 'ENOSPC' },
  { role: 'client', api: 'stream', call: 'GNTDEV_MAP_GRANT_REF', errno: 'ENOMEM', says: GNTDEV_LIMIT },
  { role: 'client', api: 'vchan', call: 'GNTDEV_MAP_GRANT_REF', errno: 'E2BIG', skip: 1, says: GNTDEV_LIMIT },
  { role: 'client', api: 'stream', call: 'GNTDEV_MAP_GRANT_REF', errno: 'EINVAL', skip: 2, says: GNTDEV_LIMIT },
  { role: 'client', api: 'vchan', call: 'MMAP', errno: 'EINVAL', says: /not granted to this domain/ },
  { role: 'client', api: 'stream', call: 'EVTCHN_BIND_INTERDOMAIN', errno: 'ENOSPC', says: NO_PORTS },
  { role: 'client', api: 'vchan', call: 'EVTCHN_BIND_INTERDOMAIN', errno: 'EINVAL', says: /not offered to this domain/ },
  { role: 'client', api: 'stream', call: 'xs:READ', errno: 'EACCES' },
  { role: 'client', api: 'vchan', call: 'xs:READ', errno: 'E2BIG' },
  { role: 'client', api: 'stream', call: 'xs:READ', errno: 'ECONNRESET' },
  { role: 'client', api: 'vchan', call: 'xs:WATCH', errno: 'ENOSPC' },
  { role: 'client', api: 'stream', call: 'xs:WATCH', errno: 'EAGAIN', skip: 1 },
];

let nextPort = 1;

interface Done {
  errors: Array<{ code: string; message: string; isVchanError: boolean }>;
  received: number;
  intact: boolean;
}

async function run(f: Fault) {
  const port = nextPort++;
  const victimIsServer = f.role === 'server';
  const relative = `data/vchan/${victimIsServer ? PEER : VICTIM}/${port}`;
  const absolute = `/local/domain/${victimIsServer ? VICTIM : PEER}/${relative}`;
  const seed = 1000 + port;
  const plan: Plan = { seed, api: f.api, role: f.role, readMin: 16384, writeMin: 65536, steps: [], death: 'close', honest: true, victimBytes: BYTES, attackerBytes: BYTES };
  const peerArgs = vchanPeerArgs({
    role: victimIsServer ? 'client' : 'server',
    peer: VICTIM,
    path: victimIsServer ? absolute : relative,
    bytes: BYTES,
    // A C server with rings outside the control page: a client maps three times.
    ...(victimIsServer ? {} : { leftMin: 16384, rightMin: 65536 }),
    seedTx: (seed ^ 2) >>> 0,
    seedRx: (seed ^ 1) >>> 0,
    timeoutMs: 4000,
    stallMs: 4000,
  });
  const peerEnv = await sim.domainEnv(PEER);
  const peer = victimIsServer ? undefined : await startPeer(peerArgs, { env: peerEnv, timeoutMs: RUN_MS });
  if (peer) await peer.waitFor((l) => 'event' in l && l.event === 'listening');
  await sim.control({ op: 'fail', domid: VICTIM, call: f.call, errno: f.errno, skip: f.skip ?? 0, count: f.count ?? 1 });
  const started = Date.now();
  const victim = spawn(process.execPath, [victimJs, JSON.stringify(plan), String(PEER), victimIsServer ? relative : absolute], {
    env: await sim.domainEnv(VICTIM),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  victim.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let client: Awaited<ReturnType<typeof startPeer>> | undefined;
  const done = await new Promise<Done | undefined>((resolve) => {
    createInterface({ input: victim.stdout }).on('line', (text) => {
      const line = JSON.parse(text) as Record<string, unknown>;
      if (line.event === 'ready' && victimIsServer) void startPeer(peerArgs, { env: peerEnv, timeoutMs: RUN_MS }).then((p) => (client = p));
      if (line.event === 'done') resolve(line as unknown as Done);
    });
    setTimeout(() => resolve(undefined), RUN_MS).unref();
  });
  const ms = Date.now() - started;
  if (!done) victim.stdin.write('kill\n');
  const exit = await new Promise<number | null>((resolve) => (victim.exitCode !== null ? resolve(victim.exitCode) : victim.once('exit', resolve)));
  const honest = peer ?? client;
  // A peer whose victim failed waits for it until its own timeout: it is not what this test is about.
  if (done?.errors.length) honest?.child.kill('SIGKILL');
  const peerRun = await honest?.done;
  const left = (await sim.control<{ left: FaultRule[] }>({ op: 'unfail', domid: VICTIM })).left;
  const held = await sim.idle();
  return { seed, done, ms, exit, stderr, peerRun, left, held };
}

describe('faults injected by xensim into the victim domain\'s setup calls (XenBackend)', () => {
  it(`${FAULTS.length} faults: success with every byte, or the injected errno with a message that says why; nothing held`, { timeout: 300_000 }, async () => {
    const rows: string[] = [];
    for (const f of FAULTS) {
      const r = await run(f);
      const name = `${f.role} ${f.api}: ${f.call}${f.skip ? ` (after ${f.skip})` : ''} ${f.errno}${f.count ? ` ×${f.count}` : ''}`;
      const at = `${name} → ${JSON.stringify({ ...r, peerRun: r.peerRun && { code: r.peerRun.code, result: r.peerRun.result } })}`;
      expect(r.done, `no end within ${RUN_MS} ms: ${at}`).toBeDefined();
      expect({ exit: r.exit, stderr: r.stderr }, at).toEqual({ exit: 0, stderr: '' });
      // The fault was used: the call happened and failed.
      expect(r.left.filter((x) => x.skip > 0 || (x.count > 0 && (f.count ?? 1) === 1)), at).toEqual([]);
      const errors = r.done!.errors;
      expect(errors.length, at).toBeLessThanOrEqual(1);
      if (errors.length === 1) {
        expect(errors[0]!.isVchanError, at).toBe(true);
        expect(errors[0]!.code, at).toBe(f.errno);
        if (f.says) expect(errors[0]!.message, at).toMatch(f.says);
      } else {
        // Absorbed: the channel worked, both ways, every byte.
        expect({ received: r.done!.received, intact: r.done!.intact }, at).toEqual({ received: BYTES, intact: true });
        const result = r.peerRun?.result as { ok?: boolean; received?: number; rxHash?: string } | undefined;
        expect(result, at).toMatchObject({ ok: true, received: BYTES, rxHash: await cPatternHash((r.seed ^ 1) >>> 0, BYTES) });
      }
      expect(r.held, at).toEqual(NOTHING_HELD);
      rows.push(`${name.padEnd(60)} → ${errors[0] ? `${errors[0].code}: ${errors[0].message}` : 'absorbed, every byte both ways'} (${r.ms} ms)`);
    }
    process.stdout.write(`\nfaults injected by xensim:\n${rows.join('\n')}\n`);
  });
});

describe('xensim fail / unfail', () => {
  it('sets a fault from the command line, refuses what is not an errno, and reports what was not used', async () => {
    const { execFile } = await import('node:child_process');
    const cli = (args: string[]) =>
      new Promise<{ code: number; out: string; err: string }>((resolve) =>
        execFile(process.execPath, [join(import.meta.dirname, '../../dist/sim/cli.js'), ...args], { env: sim.env }, (e, out, err) =>
          resolve({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, out, err }),
        ),
      );
    expect(await cli(['fail', '--domid', '7', '--call', 'xs:READ'])).toMatchObject({ code: 2, err: expect.stringMatching(/fail needs --call CALL and --errno E/) });
    expect(await cli(['fail', '--domid', '7', '--call', 'xs:READ', '--errno', 'ENOPE'])).toMatchObject({ code: 1, err: expect.stringMatching(/not an errno name: ENOPE/) });
    expect((await cli(['fail', '--domid', '7', '--call', 'MMAP', '--errno', 'ENOMEM', '--skip', '2', '--count', '3'])).code).toBe(0);
    const left = await cli(['unfail', '--domid', '7']);
    expect(JSON.parse(left.out)).toEqual({ left: [{ domid: 7, call: 'MMAP', errno: 'ENOMEM', skip: 2, count: 3 }] });
    expect(JSON.parse((await cli(['unfail'])).out)).toEqual({ left: [] });
  });
});
