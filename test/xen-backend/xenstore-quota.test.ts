/**
 * The xenstore client within xenstored's quotas (the emulator's xenstored
 * keeps C xenstored's defaults: 128 watches per unprivileged domain, 10
 * open transactions per connection): watches of one path share one
 * registration, transactions of one connection run one at a time, and a
 * quota that is still reached is named in the error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoreWatch } from '../../src/backend.js';
import { XenStore } from '../../src/xen/xenstore.js';
import { startXenstored, type XenstoredServer } from './xenstored-server.js';

let server: XenstoredServer;
let dom0: XenStore;
let dom5: XenStore;

beforeAll(async () => {
  server = await startXenstored();
  dom0 = await XenStore.connect({ path: await server.socketFor(0) });
  dom5 = await XenStore.connect({ path: await server.socketFor(5) });
});

afterAll(async () => {
  dom0?.close();
  dom5?.close();
  await server?.close();
});

describe('XenStore within xenstored quotas', () => {
  it('300 watches of one path hold one registration; each gets the first event and every change; the last close unregisters', async () => {
    const seen = new Array<string[]>(300).fill([]).map(() => [] as string[]);
    const watches = await Promise.all(seen.map((events) => dom5.watch('data/shared', (p) => events.push(p))));
    await new Promise((r) => setTimeout(r, 50));
    expect(seen.every((e) => e.length >= 1 && e[0] === 'data/shared')).toBe(true);
    await dom5.write('data/shared/x', '1');
    await dom5.read('data/shared/x'); // a round trip: the event has arrived
    expect(seen.filter((e) => e.includes('data/shared/x')).length).toBe(300);
    // The domain still has room for 127 watches of other paths (the quota is 128).
    const others = await Promise.all(Array.from({ length: 127 }, (_, i) => dom5.watch(`data/other/${i}`, () => undefined)));
    const over = await dom5.watch('data/one-too-many', () => undefined).catch((e: unknown) => e);
    expect(over).toMatchObject({ code: 'E2BIG' });
    expect((over as Error).message).toMatch(/-W\/--watch-nb, default 128/);
    // Closing all but one sharer keeps the registration; closing the last frees its slot.
    await Promise.all(watches.slice(1).map((w) => w.close()));
    expect(await dom5.watch('data/one-too-many', () => undefined).catch((e: unknown) => (e as { code?: string }).code)).toBe('E2BIG');
    await watches[0]!.close();
    const now: StoreWatch = await dom5.watch('data/one-too-many', () => undefined);
    await Promise.all([now, ...others].map((w) => w.close()));
    await dom5.remove('data/shared');
  });

  it('a path watched again after its last close registers afresh and gets its first event', async () => {
    const w1 = await dom5.watch('data/again', () => undefined);
    await w1.close();
    const events: string[] = [];
    const w2 = await dom5.watch('data/again', (p) => events.push(p));
    await dom5.write('data/again/y', '1');
    await dom5.read('data/again/y');
    expect(events).toEqual(['data/again', 'data/again/y']);
    await w2.close();
    await dom5.remove('data/again');
  });

  it('50 transactions at once on one connection: all commit, none conflicts with another (one runs at a time)', async () => {
    let open = 0;
    let most = 0;
    let runs = 0;
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        dom5.transaction(async (tx) => {
          runs++;
          most = Math.max(most, ++open);
          await tx.write(`data/tx/${i}/ring-ref`, String(i));
          await tx.write(`data/tx/${i}/event-channel`, String(i));
          open--;
        }),
      ),
    );
    expect({ runs, most }).toEqual({ runs: 50, most: 1 });
    expect((await dom5.directory('data/tx'))?.length).toBe(50);
    await dom5.remove('data/tx');
  });

  it('a transaction waiting its turn stops when its signal aborts, without running', async () => {
    let release: (() => void) | undefined;
    const first = dom5.transaction(() => new Promise<void>((r) => (release = r)));
    const controller = new AbortController();
    let ran = false;
    const second = dom5.transaction(
      async () => {
        ran = true;
      },
      { signal: controller.signal },
    );
    controller.abort();
    while (!release) await new Promise((r) => setTimeout(r, 1)); // the first one is running
    release();
    await first;
    await expect(second).rejects.toMatchObject({ code: 'ERR_VCHAN_ABORTED', name: 'AbortError' });
    expect(ran).toBe(false);
    await expect(dom5.transaction(async () => 1, { signal: 'soon' as unknown as AbortSignal })).rejects.toThrow(TypeError);
  });

  it("a domain past xenstored's node quota gets ENOSPC naming -E/--entry-nb", async () => {
    const dom6 = await XenStore.connect({ path: await server.socketFor(6) });
    const results = await Promise.allSettled(Array.from({ length: 1100 }, (_, i) => dom6.write(`data/n${i}`, 'x')));
    const refused = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(refused?.reason).toMatchObject({ code: 'ENOSPC' });
    expect((refused?.reason as Error).message).toMatch(/-E\/--entry-nb, default 1000/);
    dom6.close();
  });
});
