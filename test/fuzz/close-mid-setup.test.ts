/**
 * A fuzzer client attacker that dies by 'close' in the middle of its setup
 * must not come back to life: its setup may not go on after its backend
 * (its process) closed and the unmap notification told the server it left.
 * Found as seed 129025199 (kept-seeds.json): dying 13 ms in, the attacker
 * closed its backend while its Vchan.client() waited for a xenstore watch;
 * the setup then went on and wrote cli_live = connected into the page after
 * the notification had cleared it, so a server that looked late saw a
 * connected client that would never speak or leave. Only a loaded machine
 * looks late, so here the death comes at an exact step (the last watch of
 * the setup), which makes the late write land before the server looks in
 * about half the sessions (the server's thread races it): ten a role, so
 * the old attacker fails this all but never.
 */
import { describe, expect, it } from 'vitest';
import type { Plan } from './plan.js';
import { runSession } from './session.js';

function plan(api: Plan['api']): Plan {
  return {
    seed: 129025199,
    api,
    role: 'server',
    readMin: 2048,
    writeMin: 1,
    steps: [{ k: 'honest', bytes: 9616 }],
    death: 'close',
    // The second of the setup's two peer-domain watches (its home, then @releaseDomain): the last backend call that can still succeed.
    deathAtWatch: '@releaseDomain',
    honest: false,
    victimBytes: 6394,
    attackerBytes: 599,
  };
}

describe('a fuzzer client that closes in the middle of its setup', () => {
  for (const api of ['stream', 'vchan'] as const) {
    it(`is seen gone by the ${api} server`, async () => {
      for (let i = 0; i < 10; i++) {
        const result = await runSession(plan(api));
        expect(result.findings, `${api} server, run ${i}`).toEqual([]);
      }
    });
  }
});
