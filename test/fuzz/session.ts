/**
 * One fuzz session: a fresh in-memory hypervisor, the attacker in a worker
 * thread (attacker.ts) and a victim in this thread, then the oracles:
 * - every error that reached the victim is a VchanError with a documented code;
 * - after the attacker died or closed, the victim ends within HANG_MS;
 * - honest sessions deliver every byte, both ways, exactly;
 * - afterwards the hypervisor holds nothing.
 * (Uncaught exceptions and unhandled rejections are the campaign's to watch.)
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ErrorCodes, VchanError } from '../../src/errors.js';
import { MemoryHypervisor } from '../../src/memory/index.js';
import { bundleWorker } from '../support/bundle-worker.js';
import type { Plan } from './plan.js';
import { streamVictim, vchanVictim, type VictimReport } from './victim.js';

export const HANG_MS = 2000;
/** An attacker that outlives its plan by this much is terminated (a step cannot take longer). */
const ATTACKER_CAP_MS = 15_000;

/** The codes the README documents (its two error tables). */
export const DOCUMENTED_CODES = new Set<string>([
  ...Object.values(ErrorCodes),
  ...['ENOENT', 'EACCES', 'EPERM', 'ENOSPC', 'ENOMEM', 'E2BIG', 'EINVAL', 'ESRCH', 'ENOTTY', 'ECONNRESET', 'EPROTO', 'EAGAIN', 'EADDRINUSE', 'EBADF', 'ENOTSUP'],
]);

const SERVER_DOM = 1;
const CLIENT_DOM = 2;
const PATH = `data/vchan/${CLIENT_DOM}/1`;
const ABSOLUTE = `/local/domain/${SERVER_DOM}/${PATH}`;

export interface SessionResult {
  /** The victim's first error code, or 'end' when it ended cleanly. */
  outcome: string;
  findings: string[];
  mutations: number;
  /** From the attacker's death to the victim's end, when the victim outlived the attacker. */
  closeLatencyMs?: number;
}

/** This thread's CPU time in ms (Linux: /proc/thread-self/schedstat), so the attacker's core does not count. */
export function threadCpuMs(): number {
  let text: string;
  try {
    text = readFileSync('/proc/thread-self/schedstat', 'utf8');
  } catch (error) {
    throw new Error(`the fuzzer measures one thread's CPU time through Linux's /proc/thread-self/schedstat: ${String(error)}`);
  }
  return Number(text.split(' ')[0]) / 1e6;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function describeError(error: unknown): string {
  const e = error as { name?: string; code?: string; message?: string };
  return `${e?.name ?? typeof error} ${e?.code ?? ''} ${e?.message ?? String(error)}`.trim();
}

/** Runs `plan`; `onMark` sees the attacker's marks (the CPU probe's phases). */
export async function runSession(plan: Plan, onMark?: (name: string) => void): Promise<SessionResult> {
  const hv = new MemoryHypervisor();
  const victimIsServer = plan.role === 'server';
  const backend = hv.backend(victimIsServer ? SERVER_DOM : CLIENT_DOM);
  const link = hv.link(victimIsServer ? CLIENT_DOM : SERVER_DOM);
  const counters = new SharedArrayBuffer(16);
  const shared = new Int32Array(counters);
  const findings: string[] = [];
  const where = { peer: victimIsServer ? CLIENT_DOM : SERVER_DOM, path: victimIsServer ? PATH : ABSOLUTE, backend };
  const victim = (plan.api === 'stream' ? streamVictim : vchanVictim)(plan, where);
  // A server listens for a client domain that may not exist yet, so a client that dies before the
  // server first looked is indistinguishable from one not yet born: start the attacker once the
  // server is published (a client cannot come earlier anyway).
  if (victimIsServer) await victim.ready;
  const worker = new Worker(bundleWorker(fileURLToPath(new URL('./attacker.ts', import.meta.url))), {
    workerData: { link, plan, peer: victimIsServer ? SERVER_DOM : CLIENT_DOM, path: victimIsServer ? ABSOLUTE : PATH, counters },
    transferList: link.transferList,
  });
  let goneAt: number | undefined;
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  const gone = new Promise<void>((resolve) => {
    const mark = () => {
      goneAt ??= performance.now();
      resolve();
    };
    worker.once('exit', mark);
    worker.on('message', (m: { dead?: true; terminateMe?: true; mark?: string }) => {
      if (m.mark !== undefined) onMark?.(m.mark);
      if (m.dead) mark();
      if (m.terminateMe) void worker.terminate().then(mark);
    });
  });
  worker.on('error', () => {}); // a crash is one of the ways it dies

  let victimEndedAt: number | undefined;
  const ended = victim.done.then((r) => {
    victimEndedAt = performance.now();
    return r;
  });

  const cap = setTimeout(() => void worker.terminate(), ATTACKER_CAP_MS);
  const hung = Symbol('hung');
  let report = await Promise.race([ended, gone.then(() => sleep(HANG_MS)).then(() => hung)]);
  if (report === hung) {
    // One more turn: the victim may have ended in the same tick.
    report = await Promise.race([ended, sleep(0).then(() => hung)]);
  }
  let waiting = false;
  if (report === hung) {
    const held = hv.held();
    // Waiting for a peer that never came is documented (no deadline unless given one): a client
    // that never got entries to map (it holds nothing but its watch), or a server whose client
    // died before mapping its page (a domU cannot read another domU's xenstore home, so only the
    // unmap notification could tell, and there was none to fire). Anything else is a hang.
    waiting = victimIsServer ? Atomics.load(shared, 3) === 0 : held.mappedPages === 0 && held.ports === 0 && held.grants === 0;
    if (!waiting) findings.push(`hang: the victim (${plan.api} ${plan.role}) had not ended ${HANG_MS} ms after the attacker died (${plan.death}; attacker set up: ${Atomics.load(shared, 1) === 1}); the hypervisor held ${JSON.stringify(held)}; ${victim.state()}`);
  }
  if (report === hung) {
    await victim.kill();
    report = await ended;
  }
  const final = report as VictimReport;
  // The victim may end first (it refused the attacker); the attacker still dies as planned.
  await Promise.race([gone, sleep(ATTACKER_CAP_MS)]);
  clearTimeout(cap);
  await worker.terminate();
  await exited;
  await hv.released(link);

  for (const error of final.errors) {
    const code = (error as { code?: unknown })?.code;
    if (!(error instanceof VchanError)) findings.push(`not a VchanError: ${describeError(error)}`);
    else if (typeof code !== 'string' || !DOCUMENTED_CODES.has(code)) findings.push(`undocumented code: ${describeError(error)}`);
  }
  if (plan.honest) {
    if (final.errors.length > 0) findings.push(`honest session failed: ${describeError(final.errors[0])}`);
    if (!final.intact || final.received !== plan.attackerBytes) findings.push(`honest session: received ${final.received} of ${plan.attackerBytes} bytes${final.intact ? '' : ', corrupted'}`);
    if (Atomics.load(shared, 2) !== 1) findings.push(`honest session: the peer did not get our ${plan.victimBytes} bytes intact`);
  }
  const held = hv.held();
  const expected = { grants: 0, mappedPages: 0, ports: 0, watches: 0, storeEntries: 0, backends: 1 };
  if (JSON.stringify(held) !== JSON.stringify(expected)) findings.push(`leak: after the session the hypervisor holds ${JSON.stringify(held)}`);
  await backend.close();

  const first = final.errors[0] as { code?: string } | undefined;
  return {
    outcome: waiting ? `still waiting for a ${victimIsServer ? 'client' : 'server'}` : first === undefined ? 'end' : String(first.code ?? 'non-VchanError'),
    findings,
    mutations: Atomics.load(shared, 0),
    // A victim still waiting (and ended by us) has no close latency.
    closeLatencyMs: !waiting && goneAt !== undefined && victimEndedAt !== undefined && victimEndedAt > goneAt ? victimEndedAt - goneAt : undefined,
  };
}
