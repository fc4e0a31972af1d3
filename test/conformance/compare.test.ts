/**
 * The comparison itself: broken traces must be reported as mismatches, the
 * README's tables must be the ones it applies, and each allowed difference
 * must be needed (without it, a scenario it covers fails).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compare, RULES } from './compare.js';
import { prefixHash } from './pattern.js';
import type { Scenario, SideScript } from './scenario.js';
import { ALLOWED_HEADING, readmeTables } from './table.js';
import type { SideTrace, Trace } from './trace.js';

const quiet: SideScript = { writes: [], writeAt: 'now', cork: false, finish: 'none', finishAt: 'end', endDataSize: 1, read: 'flow' };
const scenario: Scenario = { server: quiet, client: { ...quiet, writes: [{ size: 10, kind: 'buffer' }], finish: 'end', finishAt: 'now' } };

function side(role: 'server' | 'client', received: number, extra: Partial<SideTrace> = {}): SideTrace {
  return { events: ['connect', 'end', 'finish', 'close'], writes: [], lateBytes: 0, destroyed: false, received, hash: prefixHash(role, received), partial: false, ...extra };
}
/** The client sends 10 bytes and ends; the server receives them and ends in turn. */
const good = (): Trace => ({ server: side('client', 10), client: side('server', 0, { events: ['connect', 'finish', 'end', 'close'], writes: ['ok'] }) });

describe('the conformance comparison', () => {
  it('accepts a trace equal to the reference', () => {
    expect(compare(scenario, [good()], good()).ok).toBe(true);
  });

  const broken: Array<[string, (t: Trace) => void]> = [
    ['bytes missing', (t) => { t.server.received = 9; t.server.hash = prefixHash('client', 9); }],
    ['bytes corrupted', (t) => { t.server.hash = 'ffffffffffff'; }],
    ["'end' missing", (t) => { t.server.events = ['connect', 'finish', 'close']; }],
    ["'end' after 'close'", (t) => { t.server.events = ['connect', 'finish', 'close', 'end']; }],
    ['an extra error', (t) => { t.client.events.splice(3, 0, 'error:ERR_VCHAN_PEER_CLOSED'); }],
    ['a write callback failing', (t) => { t.client.writes = ['ERR_VCHAN_PEER_CLOSED']; }],
    ['a write callback never called', (t) => { t.client.writes = ['none']; }],
    ['stuck', (t) => { t.server.events = ['connect', 'stuck', 'close']; }],
    ["'finish' without 'end'", (t) => { t.server.events = ['connect', 'finish', 'close']; }],
    ["'finish' before 'connect'", (t) => { t.client.events = ['finish', 'connect', 'end', 'close']; }],
  ];
  for (const [name, breakIt] of broken) {
    it(`reports a mismatch: ${name}`, () => {
      const ours = good();
      breakIt(ours);
      expect(compare(scenario, [good()], ours).ok).toBe(false);
    });
  }

  it('takes any of the reference outcomes when net varies', () => {
    const other = good();
    other.server.events = ['connect', 'end', 'finish', 'error:ECONNRESET', 'close'];
    const ours = good();
    ours.server.events = ['connect', 'end', 'finish', 'error:ERR_VCHAN_PEER_CLOSED', 'close'];
    expect(compare(scenario, [good()], ours).ok).toBe(false);
    expect(compare(scenario, [good(), other], ours).ok).toBe(true);
  });

  it("maps codes by the README's table only", () => {
    const ref = good();
    ref.client.writes = ['EPIPE'];
    const ours = good();
    ours.client.writes = ['ERR_VCHAN_PEER_CLOSED'];
    expect(compare(scenario, [ref], ours).ok).toBe(true);
    ours.client.writes = ['ERR_VCHAN_CLOSED'];
    expect(compare(scenario, [ref], ours).ok).toBe(false);
  });

  it("applies the README's table of allowed differences, and exactly it", () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const { rules } = readmeTables(readme);
    expect(rules.sort()).toEqual(Object.keys(RULES).sort());
    // A row the harness does not know fails the comparison instead of being ignored.
    const extra = readme.replace(ALLOWED_HEADING, `${ALLOWED_HEADING}\n\n| Rule | a |\n|---|---|\n| \`made-up\` | b |\n`);
    expect(() => compare(scenario, [good()], good(), readmeTables(extra))).toThrow(/made-up/);
  });

  it('half-close: without its row, a write lost to the peer having ended is a mismatch', () => {
    // The server ends at once; the client's later write reaches net's half-open socket but fails on a vchan.
    const ref: Trace = { server: side('client', 10, { events: ['connect', 'finish', 'end', 'close'] }), client: side('server', 0, { writes: ['ok'] }) };
    const ours: Trace = { server: side('client', 0, { events: ['connect', 'finish', 'end', 'close'] }), client: side('server', 0, { writes: ['ERR_VCHAN_PEER_CLOSED'] }) };
    const tables = readmeTables();
    expect(compare(scenario, [ref], ours, tables).ok).toBe(true);
    expect(compare(scenario, [ref], ours, { ...tables, rules: tables.rules.filter((r) => r !== 'half-close') }).ok).toBe(false);
  });
});
