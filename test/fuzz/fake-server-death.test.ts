/**
 * The fuzzer's made-up server (fakeEntries: a page of its own, entries that
 * name it) must die visibly: a client victim that connected to it ends
 * within the oracle's HANG_MS, whichever way the attacker dies. Found as
 * seed 511081230 (kept-seeds.json): the fake server shared its page without
 * the unmap notification every server arms, so its death sent nothing and
 * the victim, rightly, went on waiting for a peer that looked alive.
 */
import { describe, expect, it } from 'vitest';
import type { Death, Plan } from './plan.js';
import { runSession } from './session.js';

const DEATHS: Death[] = ['exit', 'destroy', 'terminate', 'crash', 'close'];

function plan(api: Plan['api'], death: Death): Plan {
  return {
    seed: 511081230,
    api,
    role: 'client',
    readMin: 1024,
    writeMin: 1024,
    // Valid entries over an honest header: the victim connects, writes a ring's worth and waits.
    fakeEntries: { ringRef: '$ref', eventChannel: '$port', page: 'honest-header' },
    // Dies only once the victim is connected (its cli_live says so), so the death cannot come first.
    steps: [{ k: 'peerConnected' }],
    death,
    honest: false,
    victimBytes: 4096,
    attackerBytes: 0,
  };
}

describe('a fuzzer fake server that dies after its client connected', () => {
  for (const api of ['vchan', 'stream'] as const) {
    it(`ends the ${api} client, for every death`, async () => {
      for (const death of DEATHS) {
        const result = await runSession(plan(api, death));
        expect(result.findings, `${api} client, attacker death ${death}`).toEqual([]);
        expect(result.outcome, `${api} client, attacker death ${death}`).not.toMatch(/^still waiting/);
      }
    });
  }
});
