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
  outcome: 'error' | 'end' | 'still-open';
  code?: string;
  message?: string;
  cpuMs: number;
  wallMs: number;
  connected: boolean;
  received: number;
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
  const h = await hostile.done;
  // Exit 0 and a report: no crash (a signal or a native abort would show here).
  expect({ code: r.code, signal: r.signal, stderr: r.stderr.slice(0, 1000) }).toEqual({ code: 0, signal: null, stderr: '' });
  const out = r.lines.at(-1) as unknown as Outcome;
  expect(out.outcome, JSON.stringify(out)).not.toBe('still-open');
  expect(await sim.idle()).toEqual(NOTHING_HELD);
  return { out, hostile: h.result };
}

describe('invalid control page before we connect: ERR_VCHAN_PROTOCOL, nothing mapped', () => {
  it.each([
    ['left_order=0'],
    ['left_order=9'],
    ['right_order=21'],
    ['right_order=255'],
    ['left_order=10', 'right_order=10'],
    ['left_order=11', 'right_order=11'],
    // a grant list that would run past the page for 1 MiB rings
    ['left_order=20', 'right_order=20'],
  ])('%s %s', async (...sets) => {
    const { out } = await face([...sets.flatMap((s) => ['--pre', s]), '--attacks', 'none', '--duration-ms', '0', '--timeout-ms', '3000']);
    expect(out).toMatchObject({ outcome: 'error', code: 'ERR_VCHAN_PROTOCOL', connected: false });
  });

  it('a grant ref the server does not own: the map is refused, a named error, not a crash', async () => {
    const { out } = await face(['--pre', 'grant0=0x7ffffff0', '--attacks', 'none', '--duration-ms', '0', '--timeout-ms', '3000']);
    expect(out).toMatchObject({ outcome: 'error', connected: false });
    expect(out.code).toMatch(/^(ERR_VCHAN_PROTOCOL|EINVAL|ENOENT|EPERM)$/);
  });
});

describe('scribbles while connected: ERR_VCHAN_PROTOCOL or a clean end, CPU near idle', () => {
  const attacks: [string, string][] = [
    ['backwards', 'protocol'],
    ['far', 'protocol'],
    ['orders', 'end'],
    ['grants', 'end'],
    ['notify', 'end'],
    ['storm', 'end'],
    ['live', 'end'],
  ];
  it.each(attacks)('%s', async (attack, expected) => {
    const { out, hostile } = await face(['--attacks', attack, '--interval-ms', '20', '--duration-ms', '1500', '--seed', '3']);
    expect(hostile).toMatchObject({ ok: true, connected: true });
    if (expected === 'protocol') expect(out).toMatchObject({ outcome: 'error', code: 'ERR_VCHAN_PROTOCOL' });
    // orders/grants are copied once at connect and never re-read; notify and storms are harmless
    // wake-ups; liveness 7 or 0 means the server is gone: all end cleanly.
    else expect(out.outcome).toBe('end');
    cpuRows.push(`${attack.padEnd(10)} ${out.outcome.padEnd(6)} ${out.code ?? ''} cpu ${out.cpuMs.toFixed(0)} ms over ${out.wallMs} ms wall`);
    // Waiting costs (almost) nothing: well under a tenth of one core.
    expect(out.cpuMs / out.wallMs).toBeLessThan(0.1);
  });

  it.each([1, 2, 3, 4, 5])('all attacks at random, seed %i', async (seed) => {
    const { out } = await face(['--attacks', 'all', '--interval-ms', '10', '--duration-ms', '1500', '--seed', String(seed)]);
    expect(['error', 'end']).toContain(out.outcome);
    if (out.outcome === 'error') expect(out.code).toBe('ERR_VCHAN_PROTOCOL');
    cpuRows.push(`all/${seed}      ${out.outcome.padEnd(6)} ${out.code ?? ''} cpu ${out.cpuMs.toFixed(0)} ms over ${out.wallMs} ms wall`);
    expect(out.cpuMs / out.wallMs).toBeLessThan(0.1);
  });
});
