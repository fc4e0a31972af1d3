/**
 * The server's process killed (kill -9: its armed unmap notification fires,
 * its domain lives on) before each call of the client's setup in turn, on
 * the memory backend, through the Vchan API and connect(). Each run ends
 * within its deadline, with a channel that reads closed or with one named
 * error — EINVAL for the port or grants the dead server held (its stale
 * entries stay in xenstore, as on Xen; when its port or control page is
 * what failed, the client waits WAIT_MS for them to change, as a restarted
 * server would make them, and its EINVAL says they did not) — and the
 * client holds nothing after.
 */
import { describe, expect, it } from 'vitest';
import { Vchan } from '../../src/channel.js';
import { VchanError } from '../../src/errors.js';
import { MemoryHypervisor } from '../../src/memory/index.js';
import { connect } from '../../src/net.js';
import { interpose, type Call } from '../support/interposed-backend.js';

const SERVER = 0;
const CLIENT = 5;
const PATH = `data/vchan/${CLIENT}/1`;
const ABS = `/local/domain/${SERVER}/${PATH}`;
const RUN_MS = 2000;
/** How long the client waits for stale entries to change: short, so that a run of every step stays fast. */
const WAIT_MS = 200;

interface Outcome {
  errors: string[];
  /** Messages of the EINVALs: each must say the stale entries did not change. */
  messages: string[];
  killedAt?: Call;
  closedSeen: boolean;
}

/** A server, and a client whose `killWhen` call is preceded by the server's death. */
async function world(killWhen: (call: Call) => boolean) {
  const hv = new MemoryHypervisor();
  // Another process of the server's domain keeps the domain alive: only the server's process dies.
  hv.backend(SERVER);
  const serverBackend = hv.backend(SERVER);
  await Vchan.server({ peer: CLIENT, path: PATH, readMin: 1 << 16, writeMin: 1 << 16, backend: serverBackend });
  const outcome: Outcome = { errors: [], messages: [], closedSeen: false };
  const client = interpose(hv.backend(CLIENT), async (call) => {
    if (outcome.killedAt || !killWhen(call)) return;
    outcome.killedAt = call;
    serverBackend.destroy();
    await hv.released(serverBackend);
  });
  return { hv, client, outcome };
}

const codeOf = (error: unknown): string => (error instanceof VchanError ? String(error.code) : `not a VchanError: ${String(error)}`);

async function viaVchan(k: number) {
  const w = await world((call) => call.index === k);
  const deadline = AbortSignal.timeout(RUN_MS);
  try {
    const vchan = await Vchan.client({ peer: SERVER, path: ABS, backend: w.client, signal: AbortSignal.timeout(WAIT_MS) });
    while (vchan.isOpen() !== 0) await vchan.wait(deadline);
    w.outcome.closedSeen = true;
    await vchan.close();
  } catch (error) {
    w.outcome.errors.push(codeOf(error));
    if (codeOf(error) === 'EINVAL') w.outcome.messages.push((error as Error).message);
  }
  return w;
}

async function viaConnect(k: number) {
  const w = await world((call) => call.index === k);
  const deadline = AbortSignal.timeout(RUN_MS);
  const stream = connect({ peer: SERVER, path: ABS, backend: w.client, signal: deadline, timeout: WAIT_MS });
  stream.on('error', (error) => {
    w.outcome.errors.push(codeOf(error));
    if (codeOf(error) === 'EINVAL') w.outcome.messages.push(error.message);
  });
  stream.on('end', () => (w.outcome.closedSeen = true));
  stream.resume();
  await new Promise<void>((resolve) => stream.once('close', () => resolve()));
  return w;
}

describe("the server's process killed before each call of the client's setup (memory backend)", () => {
  for (const [api, run] of [
    ['the Vchan API', viaVchan],
    ['connect()', viaConnect],
  ] as const) {
    it(`over ${api}`, async () => {
      const clean = await world(() => false);
      await Vchan.client({ peer: SERVER, path: ABS, backend: clean.client });
      const steps = clean.client.calls.length;
      expect(steps).toBeGreaterThan(5);
      const seen = new Map<string, number>();
      for (let k = 1; k <= steps; k++) {
        const started = Date.now();
        const { hv, outcome } = await run(k);
        const at = `killed before call ${k} (${outcome.killedAt?.name}) → ${JSON.stringify(outcome)}`;
        expect(outcome.killedAt, at).toBeDefined();
        expect(Date.now() - started, at).toBeLessThan(RUN_MS);
        expect(outcome.errors.length, at).toBeLessThanOrEqual(1);
        if (outcome.errors.length === 0) expect(outcome.closedSeen, at).toBe(true);
        for (const code of outcome.errors) expect(['EINVAL', 'ERR_VCHAN_PEER_CLOSED'], at).toContain(code);
        // Stale entries (the port or control page gone) are waited on; ring grants revoked after the control page mapped fail at once.
        const ringMap = outcome.killedAt?.name === 'mapGrants' && (outcome.killedAt.args[1] as number[]).length > 1;
        for (const message of outcome.messages) expect(message, at).toMatch(ringMap ? /is not granted/ : /did not change before the (timeout|abort)/);
        // The dead server's entries stay (nobody removed them); everything else is gone.
        const { backends: _, storeEntries: __, ...held } = hv.held();
        expect(held, at).toEqual({ grants: 0, mappedPages: 0, ports: 0, watches: 0 });
        const key = outcome.errors[0] ?? 'closed';
        seen.set(key, (seen.get(key) ?? 0) + 1);
      }
      process.stdout.write(`server killed before each of ${steps} client calls, ${api}: ${[...seen].map(([k, n]) => `${n} ${k}`).join(', ')}\n`);
    });
  }
});
