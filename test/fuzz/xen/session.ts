/**
 * One fuzz session under xensim: the victim in a process of its own
 * (victim-process.ts, XenBackend), the C attacker (hostile-peer, or the
 * honest vchan-peer) in a fresh domain, the attacker's death as planned,
 * then the same oracles as the in-memory fuzzer (../session.ts):
 * - every error that reached the victim is a VchanError with a documented code;
 * - no uncaught exception or unhandled rejection in the victim, which exits cleanly;
 * - once the attacker is gone (finished, killed, domain destroyed) the victim ends within HANG_MS,
 *   unless it is waiting, as documented, for a peer that never came;
 * - its CPU time while attacked stays under a tenth of a core (plus a constant for setup and teardown);
 * - honest sessions arrive byte-exact both ways;
 * - afterwards xensim holds nothing (`xensim status`).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ControlClient } from '../../../sim/broker/control.js';
import type { BrokerStatus } from '../../../sim/broker/broker.js';
import { bundle, cPatternHash } from '../../interop/harness.js';
import { startPeer, type PeerLine, type StartedPeer } from '../../support/c-peer.js';
import { NOTHING_HELD, type TestSim } from '../../xen-backend/sim.js';
import { DOCUMENTED_CODES, HANG_MS, type SessionResult } from '../session.js';
import type { XenPlan } from './plan.js';

/** CPU the victim may use while attacked: a tenth of a core, plus this much for setup and teardown. */
const CPU_FRACTION = 0.1;
const CPU_CONSTANT_MS = 40;
/** Nothing here takes longer; past it the session is a finding, not a wait. */
const SESSION_CAP_MS = 20_000;

interface Done {
  killed: boolean;
  errors: Array<{ name?: string; code?: unknown; message?: string; isVchanError: boolean }>;
  received: number;
  intact: boolean;
  cpuMs: number;
  activeMs: number;
  strays: string[];
  wallMs: number;
}

let victimJs: string | undefined;
let nextDomain = 10;
let nextPort = 1;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function control<T>(sim: TestSim, request: Parameters<ControlClient['request']>[0]): Promise<T> {
  const c = await ControlClient.open(join(sim.dir, 'ctl.sock'));
  try {
    return await c.request<T>(request);
  } finally {
    c.close();
  }
}

/** Follows a child's JSON lines. */
function jsonLines(stream: NodeJS.ReadableStream, onLine: (line: Record<string, unknown>) => void): void {
  createInterface({ input: stream }).on('line', (text) => {
    if (text.startsWith('{')) onLine(JSON.parse(text) as Record<string, unknown>);
  });
}

export async function runXenSession(sim: TestSim, plan: XenPlan): Promise<SessionResult> {
  victimJs ??= bundle(join(import.meta.dirname, 'victim-process.ts'), 'fuzz-xen-victim');
  const findings: string[] = [];
  const v = plan.victim;
  const attackerDom = nextDomain++;
  const port = nextPort++;
  const victimIsServer = v.role === 'server';
  const serverDom = victimIsServer ? plan.victimDom : attackerDom;
  const clientDom = victimIsServer ? attackerDom : plan.victimDom;
  const relative = `data/vchan/${clientDom}/${port}`;
  const absolute = `/local/domain/${serverDom}/${relative}`;

  // The victim first: a server publishes, a client waits for the attacker's entries (a watch).
  const victimEnv = await sim.domainEnv(plan.victimDom);
  const attackerEnv = await sim.domainEnv(attackerDom);
  const child = spawn(process.execPath, [victimJs, JSON.stringify(v), String(victimIsServer ? clientDom : serverDom), victimIsServer ? relative : absolute], {
    env: victimEnv,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let done: Done | undefined;
  let state = '';
  let readyResolve!: () => void;
  const ready = new Promise<void>((resolve) => (readyResolve = resolve));
  const ended = new Promise<Done>((resolve) => {
    jsonLines(child.stdout, (line) => {
      if (line.event === 'ready') readyResolve();
      if (line.event === 'state') state = String(line.state);
      if (line.event === 'done') resolve((done = line as unknown as Done));
    });
    child.once('exit', () => readyResolve());
  });
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (code, signal) => resolve([code, signal])));
  if (victimIsServer) await Promise.race([ready, sleep(SESSION_CAP_MS)]);

  const honest = v.honest;
  const role = victimIsServer ? ['--client', String(plan.victimDom), absolute] : [String(plan.victimDom), relative];
  const attackerArgs = honest ? [victimIsServer ? 'client' : 'server', String(plan.victimDom), victimIsServer ? absolute : relative, ...plan.attackerArgs] : [...role, ...plan.attackerArgs];
  const attacker: StartedPeer = await startPeer(attackerArgs, { program: honest ? 'vchan' : 'hostile', env: attackerEnv, timeoutMs: SESSION_CAP_MS });
  const attackerExit = attacker.done.then(() => Date.now());
  let goneAt: number;
  if (plan.deathMs === undefined) goneAt = await attackerExit;
  else {
    const at = await Promise.race([attackerExit, sleep(plan.deathMs).then(() => undefined)]);
    if (at !== undefined) goneAt = at; // it finished before its planned death
    else if (plan.death === 'kill') {
      attacker.child.kill('SIGKILL');
      goneAt = await attackerExit;
    } else {
      await control(sim, { op: 'destroy', domid: attackerDom });
      goneAt = Date.now();
      attacker.child.kill('SIGKILL'); // a destroyed domain's processes run no more
      await attackerExit;
    }
  }
  const run = await attacker.done;
  const mapped = run.lines.some((l: PeerLine) => 'event' in l && l.event === 'open');

  const hung = await Promise.race([ended.then(() => false), sleep(Math.max(0, goneAt + HANG_MS - Date.now())).then(() => true)]);
  let waiting = false;
  if (hung && done === undefined) {
    const status = await control<BrokerStatus>(sim, { op: 'status' });
    const mine = status.processes.find((p) => p.pid === child.pid);
    // Documented waits (no deadline unless given one): a server whose client never mapped its page,
    // a client that never mapped anything (no entries came, or they were removed with their domain).
    waiting = victimIsServer ? !mapped : (mine?.mappedPages ?? 0) === 0;
    child.stdin.write('kill\n');
    await Promise.race([ended, sleep(5000)]);
    if (!waiting) findings.push(`hang: the victim (${v.api} ${v.role} in dom${plan.victimDom}) had not ended ${HANG_MS} ms after the attacker was gone (${plan.death}${plan.deathMs !== undefined ? ` at ${plan.deathMs} ms` : ''}; attacker mapped: ${mapped}); it held ${JSON.stringify(mine)}; ${state}`);
  }
  if (done === undefined) {
    child.kill('SIGKILL');
    findings.push(`the victim never reported (killed); stderr: ${stderr.slice(0, 2000)}`);
  }
  const [code, signal] = await exited;
  if (code !== 0 || signal !== null || stderr !== '') findings.push(`the victim exited with ${code ?? signal}; stderr: ${stderr.slice(0, 2000)}`);
  await control(sim, { op: 'destroy', domid: attackerDom });

  const result: SessionResult = { outcome: 'harness-error', findings, mutations: 0 };
  result.mutations = run.lines.filter((l: PeerLine) => 'event' in l && l.event === 'scribble').length;
  if (done) {
    for (const s of done.strays) findings.push(`in the victim: ${s}`);
    for (const e of done.errors) {
      if (!e.isVchanError) findings.push(`not a VchanError: ${e.name} ${String(e.code)} ${e.message}`);
      else if (typeof e.code !== 'string' || !DOCUMENTED_CODES.has(e.code)) findings.push(`undocumented code: ${String(e.code)} ${e.message}`);
    }
    if (!honest && !waiting && done.cpuMs > CPU_CONSTANT_MS + CPU_FRACTION * done.activeMs) {
      findings.push(`CPU: the victim used ${done.cpuMs.toFixed(1)} ms over ${done.activeMs.toFixed(0)} ms attacked`);
    }
    if (honest) {
      const peer = run.result as { ok?: boolean; received?: number; rxHash?: string } | undefined;
      if (done.errors.length > 0) findings.push(`honest session failed: ${done.errors[0]!.code} ${done.errors[0]!.message}`);
      if (!done.intact || done.received !== v.attackerBytes) findings.push(`honest session: received ${done.received} of ${v.attackerBytes} bytes${done.intact ? '' : ', corrupted'}`);
      if (!peer?.ok || peer.received !== v.victimBytes || peer.rxHash !== (await cPatternHash((v.seed ^ 1) >>> 0, v.victimBytes))) {
        findings.push(`honest session: the C peer did not get our ${v.victimBytes} bytes intact: ${JSON.stringify(peer)}`);
      }
    }
    const first = done.errors[0];
    result.outcome = waiting ? `still waiting for a ${victimIsServer ? 'client' : 'server'}` : first === undefined ? 'end' : String(first.code);
    if (!waiting && done.wallMs > goneAt) result.closeLatencyMs = done.wallMs - goneAt;
  }
  const held = await sim.idle();
  if (JSON.stringify(held) !== JSON.stringify(NOTHING_HELD)) findings.push(`leak: after the session xensim holds ${JSON.stringify(held)}`);
  return result;
}
