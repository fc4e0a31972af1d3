/**
 * One session of the fuzzer under xensim, drawn from its seed: the victim
 * (our stream or Vchan over XenBackend, as server or client, in dom0 or a
 * domU) and the C attacker on Debian's libxenvchan facing it
 * (test/c/hostile-peer.c with a random mix of scribbles before and after
 * connect, random attacks, event floods; or, for honest sessions, the
 * honest C peer test/c/vchan-peer.c), and how the attacker ends: it
 * finishes, is killed (kill -9) or has its domain destroyed, at a random
 * moment, setup included. Plain data: a finding replays from its seed.
 */
import type { Plan } from '../plan.js';
import { Rng } from '../rng.js';

export type XenDeath = 'finish' | 'kill' | 'destroy';

export interface XenPlan {
  seed: number;
  /** What victim.ts plays (api, role, ring sizes, bytes, honest). */
  victim: Plan;
  /** 0 (privileged: it can see a domain destroyed) or a domU. */
  victimDom: 0 | 1;
  /** The attacker's options after its role, peer and path. */
  attackerArgs: string[];
  death: XenDeath;
  /** Milliseconds from the attacker's start to its death; undefined: it finishes by itself. */
  deathMs?: number;
}

const RING_MINS = [1, 1024, 2048, 4096, 8192, 65536];
const ATTACKS = ['backwards', 'far', 'orders', 'live', 'notify', 'grants', 'random', 'storm'];
const COUNTERS = ['left.cons', 'left.prod', 'right.cons', 'right.prod'];

/** One FIELD=VALUE scribble for --pre or --after. */
function scribble(rng: Rng): string {
  switch (rng.below(5)) {
    case 0: {
      const value = rng.pick([rng.u32(), 0xffffffff - rng.below(4096), rng.below(65536), 0x80000000, 0]);
      return `${rng.pick(COUNTERS)}=${value >>> 0}`;
    }
    case 1:
      return `${rng.pick(['left_order', 'right_order'])}=${rng.pick([0, 9, 10, 11, 12, 16, 20, 21, 255, 65535])}`;
    case 2:
      return `${rng.pick(['cli_live', 'srv_live'])}=${rng.pick([0, 1, 2, 3, 7, 255])}`;
    case 3:
      return `${rng.pick(['cli_notify', 'srv_notify'])}=${rng.below(256)}`;
    default:
      return `grant${rng.below(4)}=${rng.chance(0.5) ? rng.u32() : rng.below(64)}`;
  }
}

export function makeXenPlan(seed: number): XenPlan {
  const rng = new Rng(seed);
  const api = rng.pick(['stream', 'vchan'] as const);
  const role = rng.pick(['server', 'client'] as const);
  const honest = rng.chance(0.15);
  const bytes = rng.below(honest ? 300_000 : 30_000);
  const victim: Plan = {
    seed,
    api,
    role,
    readMin: rng.pick(RING_MINS),
    writeMin: rng.pick(RING_MINS),
    steps: [],
    death: 'close',
    honest,
    victimBytes: bytes,
    attackerBytes: honest ? bytes : 0,
  };
  const attackerIsServer = role === 'client';
  const args: string[] = [];
  if (attackerIsServer) args.push('--left-min', String(rng.pick(RING_MINS)), '--right-min', String(rng.pick(RING_MINS)));
  if (honest) {
    // vchan-peer: the victim's pattern seeds, swapped; as many bytes each way.
    args.push('--bytes', String(bytes), '--seed-tx', String((seed ^ 2) >>> 0), '--seed-rx', String((seed ^ 1) >>> 0), '--timeout-ms', '10000', '--stall-ms', '10000');
    return { seed, victim, victimDom: rng.chance(0.5) ? 0 : 1, attackerArgs: args, death: 'finish' };
  }
  for (let n = rng.below(3); n > 0; n--) args.push('--pre', scribble(rng));
  for (let n = rng.below(3); n > 0; n--) args.push('--after', scribble(rng));
  const attacks = rng.chance(0.2) ? 'all' : rng.chance(0.1) ? 'none' : ATTACKS.filter(() => rng.chance(0.4)).join(',') || 'storm';
  args.push('--attacks', attacks, '--interval-ms', String(1 + rng.below(40)), '--duration-ms', String(rng.below(2000)), '--seed', String(1 + rng.below(1 << 30)));
  if (rng.chance(0.25)) args.push('--flood-us', String(rng.chance(0.5) ? 0 : rng.below(200)));
  args.push('--timeout-ms', '3000');
  const death = rng.pick(['finish', 'finish', 'kill', 'kill', 'destroy'] as const);
  const plan: XenPlan = { seed, victim, victimDom: death === 'destroy' || rng.chance(0.5) ? 0 : 1, attackerArgs: args, death };
  if (death !== 'finish') plan.deathMs = rng.chance(0.4) ? rng.below(60) : rng.below(2500);
  return plan;
}
