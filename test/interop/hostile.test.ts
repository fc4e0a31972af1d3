/**
 * A hostile server (test/c/hostile-peer.c on Debian's libxenvchan) against a
 * TS client under xensim: invalid orders, grant lists and liveness before we
 * connect; counters running backwards or far ahead, rewritten orders and
 * grants, liveness 7, notify bytes 0xFF and event storms afterwards. We must
 * end with ERR_VCHAN_PROTOCOL or a clean end, never crash, hang or spin: the
 * client's CPU time while it waits is measured and must stay near idle.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPeer, type PeerLine } from '../support/c-peer.js';
import { NOTHING_HELD, TestSim } from '../xen-backend/sim.js';
import { bundle } from './harness.js';

interface Outcome {
  outcome: 'protocol' | 'closed' | 'error' | 'still-open';
  code?: string;
  message?: string;
  cpuMs: number;
  wallMs: number;
  connected: boolean;
  received: number;
  wakeups: number;
}

let sim: TestSim;
let client: string;
const cpuRows: string[] = [];

beforeAll(async () => {
  client = bundle(join(import.meta.dirname, 'fixtures/hostile-client.ts'), 'hostile-client');
  sim = await TestSim.start();
});

afterAll(async () => {
  await sim?.stop();
  if (cpuRows.length) process.stdout.write(`\nhostile peer, TS client CPU while attacked:\n${cpuRows.join('\n')}\n`);
});

let port = 700;
/** Runs the hostile server in dom1 with `args` and our client in dom2; returns how the client ended. */
async function face(args: string[], giveUpMs = 8000): Promise<{ out: Outcome; hostile: PeerLine | undefined }> {
  const path = `data/vchan/2/${port++}`;
  const hostile = await startPeer(['2', path, ...args], { program: 'hostile', wrapper: sim.runArgs(1), env: sim.env, timeoutMs: 30_000 });
  await hostile.waitFor((l) => 'event' in l && l.event === 'listening');
  const c = await startPeer([client, '1', `/local/domain/1/${path}`, String(giveUpMs)], {
    command: [process.execPath],
    wrapper: sim.runArgs(2),
    env: sim.env,
    timeoutMs: giveUpMs + 10_000,
  });
  const r = await c.done;
  // A server whose page we refused waits for us until its --timeout-ms (long,
  // so a slow start under load cannot miss it); once we are done, end it.
  const connected = () => hostile.lines.some((l) => 'event' in l && l.event === 'open');
  const finished = await Promise.race([hostile.done.then(() => true), new Promise((res) => setTimeout(res, 300, false))]);
  if (!finished && !connected()) hostile.child.kill('SIGTERM');
  const h = await hostile.done;
  // Exit 0 and a report: no crash (a signal or a native abort would show here).
  expect({ code: r.code, signal: r.signal, stderr: r.stderr.slice(0, 1000) }).toEqual({ code: 0, signal: null, stderr: '' });
  const out = r.lines.at(-1) as unknown as Outcome;
  expect(out.outcome, JSON.stringify(out)).not.toBe('still-open');
  expect(await sim.idle()).toEqual(NOTHING_HELD);
  return { out, hostile: h.result };
}

/** Waiting must cost (almost) nothing: under a tenth of a core, plus a little for the error path. */
function expectNearIdle(name: string, out: Outcome): void {
  cpuRows.push(`${name.padEnd(22)} ${out.outcome.padEnd(8)} ${(out.code ?? '').padEnd(22)} cpu ${out.cpuMs.toFixed(1).padStart(5)} ms over ${String(out.wallMs).padStart(5)} ms wall`);
  expect(out.cpuMs).toBeLessThan(20 + 0.1 * out.wallMs);
}

describe('invalid control page before we connect: ERR_VCHAN_PROTOCOL, nothing mapped', () => {
  it.each([
    ['left_order=0'],
    ['left_order=9'],
    ['right_order=21'],
    ['right_order=255'],
    ['left_order=10', 'right_order=10'],
    ['left_order=11', 'right_order=11'],
    // 256 grants for a 1 MiB right ring cannot fit before the in-page left ring at 1024
    ['left_order=10', 'right_order=20'],
  ].map((sets) => [sets.join(' '), sets] as const))('%s', async (_name, sets) => {
    const { out } = await face([...sets.flatMap((s) => ['--pre', s]), '--attacks', 'none', '--duration-ms', '0', '--timeout-ms', '10000']);
    expect(out).toMatchObject({ outcome: 'protocol', connected: false });
  });

  it('grant refs the server does not own: the map is refused with a named error', async () => {
    const { out } = await face(['--left-min', '4096', '--right-min', '4096', '--pre', 'grant0=0x7ffffff0', '--attacks', 'none', '--duration-ms', '0', '--timeout-ms', '10000']);
    expect(out).toMatchObject({ outcome: 'error', code: 'EINVAL', connected: false });
    expect(out.message).toMatch(/not granted to this domain/);
  });

  it('liveness 7 before we connect: a clean close', async () => {
    const { out } = await face(['--pre', 'srv_live=7', '--attacks', 'none', '--duration-ms', '500', '--timeout-ms', '3000']);
    expect(out.outcome).toBe('closed');
  });
});

describe('scribbles while connected: ERR_VCHAN_PROTOCOL or a clean close, CPU near idle', () => {
  it.each([
    ['backwards', 'protocol'],
    ['far', 'protocol'],
    // orders and grants are copied once at connect and never re-read; notify bytes and
    // event storms are harmless wake-ups: the channel lives until the hostile peer closes
    ['orders', 'closed'],
    ['grants', 'closed'],
    ['notify', 'closed'],
    ['storm', 'closed'],
    // liveness other than 1 means the server is gone
    ['live', 'closed'],
  ])('%s', async (attack, expected) => {
    const { out, hostile } = await face(['--attacks', attack, '--interval-ms', '20', '--duration-ms', '1500', '--seed', '3']);
    expect(hostile).toMatchObject({ ok: true, connected: true });
    expect(out.outcome).toBe(expected);
    if (expected === 'closed' && attack !== 'live') expect(out.wallMs).toBeGreaterThan(1400); // it outlived the attacks
    expectNearIdle(attack, out);
  });

  it.each([1, 2, 3, 4, 5])('all attacks at random, seed %i', async (seed) => {
    const { out } = await face(['--attacks', 'all', '--interval-ms', '10', '--duration-ms', '1500', '--seed', String(seed)]);
    expect(['protocol', 'closed']).toContain(out.outcome);
    expectNearIdle(`all, seed ${seed}`, out);
  });

  it('a flood of events that change nothing: wake-ups slow down to a few dozen a second', async () => {
    const { out, hostile } = await face(['--attacks', 'none', '--flood-us', '0', '--interval-ms', '20', '--duration-ms', '1500']);
    const kicks = (hostile as unknown as { kicks: number }).kicks;
    cpuRows.push(`flood: ${kicks} events sent, ${out.wakeups} wake-ups`);
    expect(out.outcome).toBe('closed');
    expect(out.wallMs).toBeGreaterThan(1400); // it outlived the flood
    expect(kicks).toBeGreaterThan(10_000);
    // about 1500 ms / 32 ms between unmasks, plus the ramp: far below one per event
    expect(out.wakeups).toBeLessThan(150);
    expectNearIdle('flood', out);
  });

  it('harmless scribbles mixed (notify, storms, orders, grants) for 1.5 s', async () => {
    const { out } = await face(['--attacks', 'notify,storm,orders,grants', '--interval-ms', '10', '--duration-ms', '1500', '--seed', '9']);
    expect(out.outcome).toBe('closed');
    expectNearIdle('notify+storm+orders', out);
  });
});
