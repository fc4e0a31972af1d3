/**
 * Compares a target's trace with net's. Codes are mapped by the README's
 * code table; then each allowed difference of the README's table (and only
 * those) may mask what it covers, in both traces alike; what is left must
 * be equal. A reference is a set of net traces (net varies run to run).
 */
import { isDeepStrictEqual } from 'node:util';
import { prefixHash } from './pattern.js';
import type { Role, Scenario } from './scenario.js';
import type { SideTrace, Trace } from './trace.js';
import { readmeTables } from './table.js';

interface Side {
  events: string[];
  writes: string[];
  received: number | string;
  hash: string;
}
type Normal = Record<Role, Side>;

const OTHER: Record<Role, Role> = { server: 'client', client: 'server' };
const ROLES: Role[] = ['server', 'client'];

/** Codes a write callback gets when its own end was destroyed, whichever way: one cause. */
const OWN_DESTROY = new Set(['ERR_STREAM_DESTROYED', 'ERR_SOCKET_CLOSED', 'ERR_SOCKET_CLOSED_BEFORE_CONNECTION', 'ABORT_ERR', 'ESCENARIO']);

function normalise(trace: Trace, codes: Map<string, string>): Normal {
  const map = (code: string) => codes.get(code) ?? code;
  const side = (t: SideTrace): Side => ({
    events: t.events.map((e) => (e.startsWith('error:') ? `error:${map(e.slice(6))}` : e)),
    writes: t.writes.map((w) => (OWN_DESTROY.has(w) ? 'own-destroy' : map(w))),
    received: t.partial ? 'partial' : t.received,
    hash: t.partial ? 'partial' : t.hash,
  });
  return { server: side(trace.server), client: side(trace.client) };
}

interface RuleInput {
  scenario: Scenario;
  raw: { ref: Trace; ours: Trace };
  ref: Normal;
  ours: Normal;
}

/** What `from` sent arrived intact (a prefix of its stream): then its length is not compared. */
function maskPrefix(n: Normal, raw: Trace, to: Role): void {
  const t = raw[to];
  if (t.partial || t.hash === prefixHash(OTHER[to], t.received)) n[to].received = n[to].hash = 'intact prefix';
}

const dropPeerGone = (s: Side) => (s.events = s.events.filter((e) => e !== 'error:ERR_VCHAN_PEER_CLOSED'));

/** Each allowed difference, by its id in the README's table. */
export const RULES: Record<string, (x: RuleInput) => void> = {
  // An end closed before its 'connect' is never seen by the other vchan end, which waits for a peer.
  'unseen-before-connect': ({ ref, ours }) => {
    for (const role of ROLES) {
      if (ours[role].events.includes('connect')) continue;
      const other = OTHER[role];
      ref[other] = ours[other] = { events: [], writes: [], received: 0, hash: '' };
      ref[role].events = ref[role].events.filter((e) => e !== 'connect');
      ref[role].writes = ref[role].writes.map(() => 'own-destroy');
      ours[role].writes = ours[role].writes.map(() => 'own-destroy');
    }
  },
  // An end that destroys itself with writes queued: how much had gone out depends on buffer sizes.
  'in-flight-at-destroy': ({ raw, ref, ours }) => {
    for (const role of ROLES) {
      const t = raw.ours[role];
      if (!t.destroyed && !t.partial) continue;
      const other = OTHER[role];
      for (const n of [ref, ours]) {
        n[role].writes = n[role].writes.map((w) => (w === 'ok' ? 'own-destroy' : w));
        n[other].writes = n[other].writes.map((w) => (w === 'ERR_VCHAN_PEER_CLOSED' ? 'ok' : w));
        dropPeerGone(n[other]);
      }
      maskPrefix(ref, raw.ref, other);
      maskPrefix(ours, raw.ours, other);
    }
  },
  // No reset: a peer's destroy() closes the channel as its end() does, where net's peer sends a RST.
  'no-reset': ({ raw, ref, ours }) => {
    for (const role of ROLES) {
      if (!raw.ours[OTHER[role]].destroyed && !raw.ours[OTHER[role]].partial) continue;
      // Its own destroy(err) may come, or not, where net's reset came first.
      const gone = new Set(['end', 'finish', 'end+finish', 'error:ERR_VCHAN_PEER_CLOSED', 'error:ESCENARIO']);
      for (const n of [ref, ours]) n[role].events = n[role].events.filter((e) => !gone.has(e));
    }
  },
  // 'end' and 'finish' wait for different things (the peer's end, our bytes handed over): either order.
  'end-finish-order': ({ ref, ours }) => {
    for (const n of [ref, ours])
      for (const side of Object.values(n)) {
        const e = side.events;
        const i = e.indexOf('finish');
        const j = e.indexOf('end');
        if (i >= 0 && j >= 0 && Math.abs(i - j) === 1) e.splice(Math.min(i, j), 2, 'end+finish');
      }
  },
  // No half-close: bytes written after the peer's end arrived fail, and the peer never gets them.
  'half-close': ({ scenario, raw, ref, ours }) => {
    for (const role of ROLES) {
      const other = OTHER[role];
      const t = raw.ours[role];
      // A write failed, or an end(data) after the peer's 'end' did (it has no callback of its own).
      const failed = t.writes.includes('ERR_VCHAN_PEER_CLOSED') || (t.lateBytes > 0 && t.events.includes('error:ERR_VCHAN_PEER_CLOSED'));
      if (!failed || !raw.ref[other].events.includes('finish') || raw.ours[other].destroyed) continue;
      // What went into the ring before the peer closed is still delivered.
      const okBytes = scenario[role].writes.reduce((n, w, i) => n + (raw.ours[role].writes[i] === 'ok' ? w.size : 0), 0);
      // ...and a write fails only if its bytes were lost.
      const endData = scenario[role].finish === 'endData' ? scenario[role].endDataSize : 0;
      const allBytes = scenario[role].writes.reduce((n, w) => n + w.size, endData);
      if (raw.ours[other].received < okBytes || raw.ours[other].received >= allBytes) continue;
      for (const n of [ref, ours]) {
        n[role].writes = n[role].writes.map((w) => (w === 'ERR_VCHAN_PEER_CLOSED' ? 'ok' : w));
        dropPeerGone(n[role]);
        // The failed write destroys the stream: no 'finish'.
        n[role].events = n[role].events.map((e) => (e === 'end+finish' ? 'end' : e)).filter((e) => e !== 'finish');
      }
      maskPrefix(ref, raw.ref, other);
      maskPrefix(ours, raw.ours, other);
    }
  },
};

export interface Verdict {
  ok: boolean;
  /** The normalised traces, for the report. */
  ours: Normal;
  refs: Normal[];
}

export function compare(scenario: Scenario, refs: Trace[], ours: Trace, tables = readmeTables()): Verdict {
  const normals: Normal[] = [];
  let oursNormal = normalise(ours, tables.codes);
  for (const ref of refs) {
    const x: RuleInput = { scenario, raw: { ref, ours }, ref: normalise(ref, tables.codes), ours: normalise(ours, tables.codes) };
    for (const id of tables.rules) {
      const rule = RULES[id];
      if (!rule) throw new Error(`README allows a difference "${id}" the harness does not know`);
      rule(x);
    }
    normals.push(x.ref);
    oursNormal = x.ours;
    if (isDeepStrictEqual(x.ref, x.ours)) return { ok: true, ours: x.ours, refs: normals };
  }
  return { ok: false, ours: oursNormal, refs: normals };
}
