/**
 * A hostile client (`hostile-peer --client`, test/c/hostile-peer.c on
 * Debian's libxenvchan) against a TS server under xensim: the client's own
 * counters (left.prod, right.cons) running backwards or past the ring / past
 * what we produced, liveness garbage, notify bytes 0xFF, random bytes in the
 * header and grant list, event storms. The server must end with
 * ERR_VCHAN_PROTOCOL or a clean close, or stay open where the scribble cannot
 * matter to it, never crash, hang or spin (its CPU time while it waits is
 * measured), and xensim must hold nothing afterwards.
 *
 * What a server never reads back, and so cannot be hurt by: the orders and
 * the grant list (it chose and wrote them before the client came), its own
 * counters left.cons/right.prod and its own srv_live (kept privately, PROTOCOL
 * §4), and cli_notify (requests it posts to the client). srv_notify set to
 * 0xFF only costs one extra event per read or write. cli_live 2 after the
 * client was seen at 1 still means connected (Vchan.isOpen, as libxenvchan);
 * any other value but 1 latches closed.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPeer, startPeer, type PeerLine } from '../support/c-peer.js';
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
  badAt: number;
  sent: number;
  wakeups: number;
}

interface HostileResult {
  ok: boolean;
  connected?: boolean;
  scribbles?: number;
  kicks?: number;
  sent?: number;
  received?: number;
}

let sim: TestSim;
let server: string;
const cpuRows: string[] = [];

beforeAll(async () => {
  server = bundle(join(import.meta.dirname, 'fixtures/hostile-server.ts'), 'hostile-server');
  sim = await TestSim.start();
});

afterAll(async () => {
  await sim?.stop();
  if (cpuRows.length) process.stdout.write(`\nhostile client, TS server CPU while attacked:\n${cpuRows.join('\n')}\n`);
});

const DURATION = 1500;

let port = 800;
/** Runs our server in dom1 and the hostile client in dom2 with `args`; returns how the server ended. */
async function face(args: string[], giveUpMs = 8000): Promise<{ out: Outcome; hostile: HostileResult; spoke: boolean }> {
  const path = `data/vchan/2/${port++}`;
  const s = await startPeer([server, '2', path, String(giveUpMs)], {
    command: [process.execPath],
    wrapper: sim.runArgs(1),
    env: sim.env,
    timeoutMs: giveUpMs + 10_000,
  });
  await s.waitFor((l) => 'event' in l && l.event === 'listening').catch((e: Error) => {
    throw new Error(`${e.message}; server said: ${JSON.stringify(s.lines)}`);
  });
  const hostile = await startPeer(['--client', '1', `/local/domain/1/${path}`, ...args], {
    program: 'hostile',
    wrapper: sim.runArgs(2),
    env: sim.env,
    timeoutMs: 30_000,
  });
  const r = await s.done;
  const h = await hostile.done;
  // Exit 0 and a report: no crash (a signal or a native abort would show here).
  expect({ code: r.code, signal: r.signal, stderr: r.stderr.slice(0, 1000) }).toEqual({ code: 0, signal: null, stderr: '' });
  expect({ code: h.code, signal: h.signal, stderr: h.stderr.slice(0, 1000) }).toEqual({ code: 0, signal: null, stderr: '' });
  const out = r.lines.at(-1) as unknown as Outcome;
  expect(out.outcome, JSON.stringify(out)).not.toBe('still-open');
  expect(out.outcome, JSON.stringify(out)).not.toBe('error');
  expect(await sim.idle()).toEqual(NOTHING_HELD);
  const spoke = h.lines.some((l: PeerLine) => 'event' in l && l.event === 'spoke' && l.serverSpoke === true);
  return { out, hostile: h.result as unknown as HostileResult, spoke };
}

/** Waiting must cost (almost) nothing: under a tenth of a core, plus a little for the error path. */
function expectNearIdle(name: string, out: Outcome): void {
  cpuRows.push(
    `${name.padEnd(26)} ${out.outcome.padEnd(8)} ${(out.code ?? '').padEnd(20)} cpu ${out.cpuMs.toFixed(1).padStart(5)} ms over ${String(out.wallMs).padStart(5)} ms wall, received ${out.received}`,
  );
  expect(out.cpuMs).toBeLessThan(20 + 0.1 * out.wallMs);
}

/**
 * The channel outlived the attacks: it closed only when the hostile client
 * did, our writes kept being accepted, and what arrived is intact. With
 * `clientWrites` the client kept writing while it attacked, and all of it
 * arrived.
 */
function expectOutlived(out: Outcome, hostile: HostileResult, clientWrites = true): void {
  expect(out.outcome, JSON.stringify(out)).toBe('closed');
  // The stream's end, not a refused write — except a write of ours racing the
  // client's final close, which is refused as a socket's would be (EPIPE);
  // the wall time below shows that the close came at the end of the attacks.
  expect([undefined, 'ERR_VCHAN_PEER_CLOSED']).toContain(out.code);
  expect(out.wallMs).toBeGreaterThan(DURATION - 100);
  expect(out.sent).toBeGreaterThan(1000); // 100 bytes every 50 ms
  expect(out.badAt).toBe(-1);
  expect(out.received).toBe(hostile.sent);
  if (clientWrites) expect(out.received).toBeGreaterThan(64 * 10);
}

const attack = (name: string, seed = 3) => ['--attacks', name, '--interval-ms', '20', '--duration-ms', String(DURATION), '--seed', String(seed)];

describe('hostile client scribbles while connected', () => {
  it.each([
    // the client's own counters: our reader sees left.prod run backwards or
    // more than a ring ahead, our writer sees right.cons run backwards or past
    // what we produced
    ['backwards', 'protocol'],
    ['far', 'protocol'],
    // liveness garbage: cli_live 7, 0xff, 3, 0x80 latch closed
    ['live', 'closed'],
  ])('%s → %s', async (name, expected) => {
    const { out, hostile, spoke } = await face(attack(name));
    expect(hostile).toMatchObject({ ok: true, connected: true });
    expect(spoke).toBe(true);
    expect(out.outcome, JSON.stringify(out)).toBe(expected);
    if (expected === 'protocol') expect(out.message).toMatch(/moved backwards or past/);
    expect(out.badAt).toBe(-1); // what arrived before the attack was intact
    expect(out.wallMs).toBeLessThan(DURATION); // it did not wait for the client to close
    expectNearIdle(name, out);
  });

  // harmless to a server: orders and grants are never re-read after setup,
  // notify bytes only ask for (or cause) extra events, storms are spurious
  // wake-ups; the channel stays open and the data flows until the client closes
  it.each(['orders', 'grants', 'notify', 'storm'])('%s → stays open', async (name) => {
    const { out, hostile, spoke } = await face(attack(name));
    expect(hostile).toMatchObject({ ok: true, connected: true });
    expect(spoke).toBe(true);
    expectOutlived(out, hostile);
    expectNearIdle(name, out);
  });

  // honest traffic every 20 ms resets the slow-down each time: still far fewer wake-ups than events
  it('a flood of events between honest writes → all data intact, wake-ups bounded', async () => {
    const { out, hostile, spoke } = await face([...attack('none'), '--flood-us', '0']);
    cpuRows.push(`flood: ${hostile.kicks} events sent, ${out.wakeups} wake-ups`);
    expect(spoke).toBe(true);
    expect(hostile.kicks).toBeGreaterThan(10_000);
    expectOutlived(out, hostile);
    expect(out.wakeups).toBeLessThan(1500);
    expectNearIdle('flood', out);
  });

  it.each([1, 2, 3, 4, 5])('random bytes in the header and grant list, seed %i', async (seed) => {
    const { out } = await face(['--attacks', 'random', '--interval-ms', '10', '--duration-ms', String(DURATION), '--seed', String(seed)]);
    expect(['protocol', 'closed']).toContain(out.outcome);
    expectNearIdle(`random, seed ${seed}`, out);
  });

  it.each([1, 2, 3, 4, 5])('all attacks at random, seed %i', async (seed) => {
    const { out } = await face(['--attacks', 'all', '--interval-ms', '10', '--duration-ms', String(DURATION), '--seed', String(seed)]);
    expect(['protocol', 'closed']).toContain(out.outcome);
    expectNearIdle(`all, seed ${seed}`, out);
  });
});

describe('liveness bytes after connect', () => {
  it.each([['7'], ['0xff'], ['0'], ['3']])('cli_live=%s → closed at once', async (v) => {
    const { out, spoke } = await face(['--after', `cli_live=${v}`, '--attacks', 'none', '--duration-ms', String(DURATION)]);
    expect(spoke).toBe(true);
    expect(out.outcome).toBe('closed');
    expect(out.wallMs).toBeLessThan(DURATION);
    expectNearIdle(`cli_live=${v}`, out);
  });

  it('cli_live=2 after the client was seen connected → still connected', async () => {
    const { out, hostile, spoke } = await face(['--after', 'cli_live=2', '--attacks', 'notify,storm', '--interval-ms', '20', '--duration-ms', String(DURATION)]);
    expect(spoke).toBe(true);
    expectOutlived(out, hostile);
    expectNearIdle('cli_live=2', out);
  });

  // (the hostile client's own libxenvchan_write then refuses: it takes srv_live for the truth)
  it.each([['0'], ['7']])('srv_live=%s (our own byte, never read back) → still connected', async (v) => {
    const { out, hostile } = await face(['--after', `srv_live=${v}`, '--attacks', 'none', '--interval-ms', '20', '--duration-ms', String(DURATION)]);
    expectOutlived(out, hostile, false);
    expectNearIdle(`srv_live=${v}`, out);
  });
});

describe('hostile-peer --client itself', () => {
  it('--help names --client; server-only options and a missing server are refused', async () => {
    const help = await runPeer(['--help'], { program: 'hostile' });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: hostile-peer \[--client\] <peer-domid> <xs-path>/);
    const bad = await runPeer(['--client', '1', '/local/domain/1/x', '--left-min', '4096'], { program: 'hostile' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--left-min\/--right-min are for the server/);
    // nobody listening: it retries until --timeout-ms, then says so and exits 1
    const started = Date.now();
    const none = await runPeer(['--client', '1', `/local/domain/1/data/vchan/2/${port++}`, '--timeout-ms', '300'], {
      program: 'hostile',
      wrapper: sim.runArgs(2),
      env: sim.env,
      timeoutMs: 10_000,
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(none.code).toBe(1);
    expect(none.result).toMatchObject({ ok: false, as: 'client' });
    expect(await sim.idle()).toEqual(NOTHING_HELD);
  });
});

describe('scribbles before the server has looked', () => {
  it.each([
    // our reader starts at 0: a producer index far ahead is caught at the first read
    ['left.prod=0x10000000', 'protocol'],
    ['left.prod=0xffffffff', 'protocol'],
    // a consumer index past anything we could have produced (more than a ring):
    // caught at our first write
    ['right.cons=0x100000', 'protocol'],
    ['right.cons=0xfffffff0', 'protocol'],
    // liveness garbage before we saw 1: the client came and went; its stream ends
    ['cli_live=7', 'closed'],
    // 2 before we saw 1 reads as "not connected yet"; the client's close still ends the stream
    ['cli_live=2', 'closed'],
  ])('%s → %s', async (set, expected) => {
    const { out } = await face(['--pre', set, '--attacks', 'none', '--duration-ms', '300', '--timeout-ms', '5000']);
    expect(out.outcome, JSON.stringify(out)).toBe(expected);
    expectNearIdle(`pre ${set}`, out);
  });
});
