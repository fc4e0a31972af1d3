/**
 * A xenstore that goes away (`xensim restart-xenstore`: every connection
 * dropped, new ones refused for a while; with --fresh the store comes back
 * with nothing but the domains' homes) under a long-lived process with one
 * XenBackend (fixtures/xenstore-survivor.ts) and C peers on Debian's
 * libxenvchan:
 * - an established channel keeps moving data across the restart, byte-exact;
 * - an offer still waiting for its client is published again once
 *   xenstore is back (a client that comes after the restart connects);
 * - a client waiting for a server that publishes only after the restart
 *   sees it and connects (its watch is registered again);
 * - a setup whose request was in flight fails with ECONNRESET, and the same
 *   backend sets up again afterwards (test/fault/setup-faults-xensim.test.ts:
 *   xs:WRITE/xs:READ ECONNRESET);
 * and afterwards xensim holds nothing.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundle, cPatternHash } from '../interop/harness.js';
import { startPeer, vchanPeerArgs } from '../support/c-peer.js';
import { NOTHING_HELD, TestSim } from '../xen-backend/sim.js';

const SURVIVOR = 1;
const PEER = 2;
const BYTES = 1 << 16;
const ECHO_MS = 2500;

let sim: TestSim;
let survivorJs: string;
beforeAll(async () => {
  survivorJs = bundle(join(import.meta.dirname, 'fixtures/xenstore-survivor.ts'), 'fault-xenstore-survivor');
  sim = await TestSim.start();
});
afterAll(async () => {
  await sim?.stop();
});

type Line = Record<string, unknown>;

describe('xenstored goes away and comes back under a long-lived XenBackend (xensim)', () => {
  it.each([
    ['its store kept', false],
    ['its store lost (--fresh)', true],
  ])('%s: data keeps moving, the waiting offer is published again, a waiting client connects; nothing held', { timeout: 60_000 }, async (_name, fresh) => {
    const env = await sim.domainEnv(SURVIVOR);
    const peerEnv = await sim.domainEnv(PEER);
    const child = spawn(process.execPath, [survivorJs, String(PEER), String(ECHO_MS)], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const lines: Line[] = [];
    const waiters: Array<[(l: Line) => boolean, (l: Line) => void]> = [];
    createInterface({ input: child.stdout }).on('line', (text) => {
      const l = JSON.parse(text) as Line;
      lines.push(l);
      for (const w of waiters.splice(0)) (w[0](l) ? w[1](l) : waiters.push(w));
    });
    const next = (pred: (l: Line) => boolean, ms = 15_000) =>
      new Promise<Line | undefined>((resolve) => {
        const seen = lines.find(pred);
        if (seen) return resolve(seen);
        waiters.push([pred, resolve]);
        setTimeout(() => resolve(undefined), ms).unref();
      });
    const is = (event: string, port: number) => (l: Line) => l.event === event && l.port === port;
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));

    expect(await next(is('listening', 1)), stderr).toBeDefined();
    expect(await next(is('listening', 2)), stderr).toBeDefined();
    const echoer = await startPeer(vchanPeerArgs({ role: 'client', peer: SURVIVOR, path: `/local/domain/${SURVIVOR}/data/vchan/${PEER}/1`, mode: 'echo', timeoutMs: 10_000, stallMs: 10_000 }), { env: peerEnv, timeoutMs: 30_000 });
    expect(await next(is('connect', 1)), stderr).toBeDefined();
    await new Promise((resolve) => setTimeout(resolve, 400));

    await sim.control({ op: 'restart-xenstore', fresh, downMs: 300 });
    child.stdin.write('restarted\n');

    // Once xenstored is back (C libxenvchan does not retry a refused connection): a client for the
    // waiting offer, and the server the waiting client wants.
    await new Promise((resolve) => setTimeout(resolve, 400));
    const late = await startPeer(vchanPeerArgs({ role: 'client', peer: SURVIVOR, path: `/local/domain/${SURVIVOR}/data/vchan/${PEER}/2`, bytes: BYTES, timeoutMs: 10_000 }), { env: peerEnv, timeoutMs: 30_000 });
    const server = await startPeer(vchanPeerArgs({ role: 'server', peer: SURVIVOR, path: `data/vchan/${SURVIVOR}/3`, bytes: BYTES, timeoutMs: 10_000 }), { env: peerEnv, timeoutMs: 30_000 });

    const results = await Promise.all([1, 2, 3].map((port) => next(is('done', port), 20_000)));
    if (!results[2]) server.child.kill('SIGKILL');
    const [lateRun, serverRun] = await Promise.all([late.done, server.done]);
    const story = JSON.stringify({ results, stderr, late: lateRun.lines, server: serverRun.lines, serverErr: serverRun.stderr, lines });
    const [echo, offer, client] = results as Array<Record<string, unknown> | undefined>;
    expect(echo, story).toMatchObject({ intact: true, errors: [] });
    expect(echo!.received, story).toBe(echo!.sent);
    expect(echo!.afterRestart as number, story).toBeGreaterThan(64 * 1024);
    expect(offer, story).toMatchObject({ received: BYTES, intact: true, errors: [] });
    expect(client, story).toMatchObject({ received: BYTES, intact: true, errors: [] });
    expect(lateRun.result, story).toMatchObject({ ok: true, received: BYTES, rxHash: await cPatternHash(1, BYTES) });
    expect(serverRun.result, story).toMatchObject({ ok: true, received: BYTES, rxHash: await cPatternHash(2, BYTES) });
    echoer.child.kill('SIGKILL');
    await echoer.done;
    expect(await exited, story).toBe(0);
    expect(stderr).toBe('');
    expect(await sim.idle()).toEqual(NOTHING_HELD);
  });
});
