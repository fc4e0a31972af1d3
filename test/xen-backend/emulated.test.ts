/**
 * XenBackend's resource rules under the emulator (xensim), where the
 * library's device calls go through libxensim.so as they would go to the
 * kernel: 1000 listen/connect cycles leak nothing, and a gntalloc limit too
 * low for the rings fails with ENOSPC and leaks nothing. Transfers, crashes
 * and hostile peers against C libxenvchan are in test/interop/.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPeer } from '../support/c-peer.js';
import { bundle, nodePeerCommand } from '../interop/harness.js';
import { NOTHING_HELD, TestSim } from './sim.js';

let sim: TestSim;

beforeAll(async () => {
  sim = await TestSim.start();
});

afterAll(async () => {
  await sim?.stop();
});

interface Usage {
  fds: number;
  maps: number;
  heap: number;
}

describe('XenBackend under xensim: resources', () => {
  it('1000 loopback listen/connect/transfer/close cycles in one process: no growth in fds, mappings, ports, grants, xenstore keys or heap', async () => {
    const script = bundle(join(import.meta.dirname, 'fixtures/cycles.ts'), 'cycles');
    const p = await startPeer([script, '1000'], { command: [process.execPath, '--expose-gc'], wrapper: sim.runArgs(0), env: sim.env, stdin: true, timeoutMs: 240_000 });
    const r = (await p.waitFor((l) => 'ok' in l)) as unknown as { before: Usage; after: Usage; xenstoreLeft: string[]; seconds: number };
    // Still alive: the emulator must show nothing held by it.
    expect(await sim.idle()).toEqual(NOTHING_HELD);
    p.child.stdin!.end('exit\n');
    expect((await p.done).code).toBe(0);
    expect(r.after.fds).toBe(r.before.fds);
    expect(r.after.maps).toBe(r.before.maps);
    expect(r.after.heap - r.before.heap).toBeLessThan(4 << 20);
    expect(r.xenstoreLeft).toEqual([]);
    console.log(`1000 listen/connect cycles in ${r.seconds} s; heap ${r.before.heap} → ${r.after.heap} bytes`);
    expect(await sim.idle()).toEqual(NOTHING_HELD);
  }, 300_000);
});

describe('XenBackend under xensim: kernel limits', () => {
  it('two 1 MiB rings over a gntalloc limit below 513 pages fail with ENOSPC, the limit named, nothing leaked', async () => {
    const limited = await TestSim.start({ XENSIM_GNTALLOC_LIMIT: '300' });
    try {
      const args = ['server', '5', 'data/vchan/5/3000', '--left-min', String(1 << 20), '--right-min', String(1 << 20)];
      const r = await (await startPeer(args, { command: nodePeerCommand(), wrapper: limited.runArgs(0), env: limited.env, timeoutMs: 30_000 })).done;
      expect(r.code).toBe(1);
      expect(r.result).toMatchObject({ ok: false, code: 'ENOSPC' });
      expect((r.result as { error: string }).error).toMatch(
        /^ENOSPC sharing 256 pages with domain 5: ENOSPC from ioctl\(GNTALLOC_ALLOC_GREF\): gntalloc limit reached: raise \/sys\/module\/xen_gntalloc\/parameters\/limit/,
      );
      expect(await limited.idle()).toEqual(NOTHING_HELD);
    } finally {
      await limited.stop();
    }
  });
});
