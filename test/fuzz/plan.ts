/**
 * What one fuzz session does, drawn from its seed: which API and role the
 * victim plays, how the attacker sets up, the attacks it runs on the shared
 * pages afterwards, and how and when it dies. A plan is plain data, so a
 * finding can be replayed and shrunk (steps removed) without the seed.
 */
import { Rng } from './rng.js';

export type Api = 'stream' | 'vchan';
export type Role = 'server' | 'client';
/** How the attacker ends: its process exits, is killed (destroy ≈ kill -9), is terminated, crashes, or closes honestly. */
export type Death = 'exit' | 'destroy' | 'terminate' | 'crash' | 'close';

export type Step =
  /** One byte anywhere in the control page. */
  | { k: 'poke'; off: number; value: number }
  /** A ring counter (0 left_cons, 1 left_prod, 2 right_cons, 3 right_prod): set, or moved by `value` (mod 2^32). */
  | { k: 'counter'; field: number; add: boolean; value: number }
  /** A u16 order (0 left, 1 right), a grant ref, a liveness or notify byte (0 client's, 1 server's). */
  | { k: 'order'; which: number; value: number }
  | { k: 'grant'; index: number; value: number }
  | { k: 'live'; which: number; value: number }
  | { k: 'notify'; which: number; value: number }
  /** `n` random bytes written in a region, from `seed`. */
  | { k: 'burst'; region: 'header' | 'page' | 'rings'; n: number; seed: number }
  | { k: 'flood'; ms: number }
  | { k: 'silent'; ms: number }
  /** Honest traffic through the attacker's own channel. */
  | { k: 'honest'; bytes: number }
  /** Server only: rewrite the published entries. */
  | { k: 'entries'; ringRef: string; eventChannel: string }
  /** Tells the test a phase begins (the CPU probe). */
  | { k: 'mark'; name: string }
  /** Waits until the victim marked itself connected in the control page (hand-made plans: a death after the victim connected). */
  | { k: 'peerConnected' };

export interface Plan {
  seed: number;
  api: Api;
  /** The victim's role; the attacker plays the other. */
  role: Role;
  readMin: number;
  writeMin: number;
  /** Server attacker only: publish made-up entries instead of setting up. */
  fakeEntries?: { ringRef: string; eventChannel: string; page: 'random' | 'honest-header' };
  steps: Step[];
  death: Death;
  /** Milliseconds from the attacker's start to its death (it may come mid-setup), or after the steps when undefined. */
  deathMs?: number;
  /** Hand-made plans: the attacker dies as the reply to its setup's xenstore watch of this path arrives (a death mid-setup at an exact step). */
  deathAtWatch?: string;
  /** An honest session: no attacks, every byte each way must arrive exactly. */
  honest: boolean;
  /** Bytes the victim sends and the attacker sends (honest sessions check both). */
  victimBytes: number;
  attackerBytes: number;
}

const RING_MINS = [1, 1024, 2048, 4096, 8192, 65536];
const DEATHS: Death[] = ['exit', 'destroy', 'terminate', 'crash', 'close'];
/** Entry values a hostile server may publish. */
const HOSTILE_ENTRIES = ['4294967295', '4294967296', '2147483648', '-1', '0', '', 'abc', '1e3', ' 7', '07', '99999999999999999999', '0x10', '3.5', '1', '2', '12', '$ref', '$port'];

/** Counter values that matter: near and across 2^32, backwards, far ahead, random. */
function counterStep(rng: Rng): Step {
  const field = rng.below(4);
  switch (rng.below(6)) {
    case 0:
      return { k: 'counter', field, add: false, value: (0xffffffff - rng.below(4096)) >>> 0 };
    case 1:
      return { k: 'counter', field, add: true, value: -(1 + rng.below(4096)) };
    case 2:
      return { k: 'counter', field, add: true, value: 1024 + rng.below(1 << 21) };
    case 3:
      return { k: 'counter', field, add: true, value: 1 + rng.below(64) };
    case 4:
      return { k: 'counter', field, add: true, value: 0x80000000 };
    default:
      return { k: 'counter', field, add: false, value: rng.u32() };
  }
}

function attackStep(rng: Rng, attackerIsServer: boolean): Step {
  switch (rng.below(13)) {
    case 0:
      return { k: 'poke', off: rng.below(4096), value: rng.below(256) };
    case 1:
    case 2:
      return counterStep(rng);
    case 3:
      return { k: 'order', which: rng.below(2), value: rng.chance(0.5) ? rng.below(65536) : 9 + rng.below(13) };
    case 4:
      return { k: 'grant', index: rng.below(16), value: rng.chance(0.5) ? rng.u32() : rng.below(64) };
    case 5:
      return { k: 'live', which: rng.below(2), value: rng.pick([0, 1, 2, 3, 7, 255]) };
    case 6:
      return { k: 'notify', which: rng.below(2), value: rng.below(256) };
    case 7:
      return { k: 'burst', region: rng.pick(['header', 'page', 'rings'] as const), n: 1 + rng.below(20_000), seed: rng.u32() };
    case 8:
      return { k: 'flood', ms: 1 + rng.below(150) };
    case 9:
      return { k: 'silent', ms: rng.below(100) };
    case 10:
      return attackerIsServer
        ? { k: 'entries', ringRef: rng.pick(HOSTILE_ENTRIES), eventChannel: rng.pick(HOSTILE_ENTRIES) }
        : { k: 'silent', ms: rng.below(20) };
    default:
      return { k: 'honest', bytes: rng.below(20_000) };
  }
}

export function makePlan(seed: number): Plan {
  const rng = new Rng(seed);
  const api = rng.pick(['stream', 'vchan'] as const);
  const role = rng.pick(['server', 'client'] as const);
  const honest = rng.chance(0.15);
  const plan: Plan = {
    seed,
    api,
    role,
    readMin: rng.pick(RING_MINS),
    writeMin: rng.pick(RING_MINS),
    steps: [],
    death: honest ? 'close' : rng.pick(DEATHS),
    honest,
    victimBytes: rng.below(honest ? 200_000 : 30_000),
    attackerBytes: rng.below(honest ? 200_000 : 30_000),
  };
  if (honest) return plan;
  const attackerIsServer = role === 'client';
  if (attackerIsServer && rng.chance(0.15)) {
    plan.fakeEntries = { ringRef: rng.pick(HOSTILE_ENTRIES), eventChannel: rng.pick(HOSTILE_ENTRIES), page: rng.pick(['random', 'honest-header'] as const) };
  }
  const count = rng.below(25);
  for (let i = 0; i < count; i++) plan.steps.push(attackStep(rng, attackerIsServer));
  // A third die at a random moment, mid-setup included.
  if (rng.chance(0.33)) plan.deathMs = rng.chance(0.5) ? rng.below(15) : rng.below(400);
  return plan;
}

/** Mutations a step makes (for the run's count). */
export function mutationsOf(step: Step): number {
  switch (step.k) {
    case 'burst':
      return step.n;
    case 'flood':
    case 'silent':
    case 'honest':
    case 'mark':
    case 'peerConnected':
      return 0;
    default:
      return 1;
  }
}
