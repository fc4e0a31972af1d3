import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryHypervisor } from '../../src/memory/index.js';
import { WorkerProcess } from '../support/memory-driver.js';

const workers: WorkerProcess[] = [];
async function start(hv: MemoryHypervisor, domid: number): Promise<WorkerProcess> {
  const w = await WorkerProcess.start(hv, domid);
  workers.push(w);
  return w;
}
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.worker.terminate()));
});

async function until(what: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!what()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await sleep(1);
  }
}

/** Fails instead of hanging when the hypervisor never notices a death. */
function within<T>(promise: Promise<T>, ms = 5000): Promise<T> {
  return Promise.race([promise, sleep(ms).then(() => Promise.reject(new Error(`not settled within ${ms} ms`)))]);
}

const ZERO = { grants: 0, mappedPages: 0, ports: 0, watches: 0, storeEntries: 0, backends: 0 };

describe('in-memory backend across worker threads', () => {
  it('shares bytes both ways between threads', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const w = await start(hv, 5);
    const share = await dom0.sharePages(5, 16);
    for (let i = 0; i < share.memory.length; i++) share.memory[i] = (i * 7 + 3) & 0xff;
    const key = await w.call<number>('map', 0, share.refs, true);
    const far = 16 * 4096 - 4;
    expect(await w.call('peek', key, far, 4)).toEqual([...share.memory.subarray(far, far + 4)]);
    await w.call('poke', key, 100, [1, 2, 3, 4]);
    expect([...share.memory.subarray(100, 104)]).toEqual([1, 2, 3, 4]);
    await w.call('close');
    await dom0.close();
    expect(hv.held()).toEqual(ZERO);
  });

  it('carries events between threads, merging those fired before delivery', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const w = await start(hv, 5);
    let calls = 0;
    const server = await dom0.bindUnboundPort(5, () => calls++);
    const port = await w.call<number>('bindInterdomain', 0, server.port, 'count');
    server.notify();
    await until(() => w.events.length === 1);
    expect(w.events).toEqual([port]);
    await w.call('notify', port);
    await until(() => calls === 1);
    // This thread blocks while the worker notifies three times: they merge into one call.
    const done = new SharedArrayBuffer(4);
    w.worker.postMessage({ id: 0, op: 'notify', args: [port, 3, done] });
    expect(Atomics.wait(new Int32Array(done), 0, 0, 10_000)).not.toBe('timed-out');
    await sleep(20);
    expect(calls).toBe(2);
    await w.call('notify', port);
    await until(() => calls === 3);
    await w.call('close');
    await dom0.close();
    expect(hv.held()).toEqual(ZERO);
  });

  it('round-trips an event quickly', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const w = await start(hv, 5);
    const rounds = 2000;
    let left = rounds;
    let done: () => void = () => {};
    const finished = new Promise<void>((resolve) => (done = resolve));
    const server = await dom0.bindUnboundPort(5, () => {
      if (--left === 0) done();
      else server.notify();
    });
    await w.call('bindInterdomain', 0, server.port, 'echo');
    const t0 = process.hrtime.bigint();
    server.notify();
    await finished;
    const perRound = Number(process.hrtime.bigint() - t0) / rounds / 1000;
    console.log(`memory backend: cross-thread notify round trip ${perRound.toFixed(1)} µs`);
    // A sanity bound, loose enough for a loaded CI machine.
    expect(perRound).toBeLessThan(2000);
    await w.call('close');
    await dom0.close();
  });

  it('reports the hypervisor errors in the worker with their codes', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const w = await start(hv, 5);
    await expect(w.call('map', 0, [12345], true)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(w.call('bindInterdomain', 0, 99, 'count')).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(w.call('storeRead', '/local/domain/0/domid')).rejects.toMatchObject({ code: 'EACCES' });
    await expect(w.call('map', 70000, [8], true)).rejects.toMatchObject({ message: /peer/ });
    expect(await w.call('storeRead', 'domid')).toBe('5');
    await dom0.close();
  });

  for (const death of ['terminate', 'crash', 'exit', 'destroy'] as const) {
    it(`releases everything and fires unmap notifications when the worker dies (${death})`, async () => {
      const hv = new MemoryHypervisor();
      const dom0 = hv.backend(0);
      const w = await start(hv, 5);
      let wakes = 0;
      const server = await dom0.bindUnboundPort(5, () => wakes++);
      const share = await dom0.sharePages(5, 1);
      share.memory[20] = 1;
      const port = await w.call<number>('bindInterdomain', 0, server.port, 'count');
      await w.call('map', 0, share.refs, true, { offset: 20, port });
      // And the worker's own share, mapped here, with its notification.
      const own = await w.call<{ refs: number[]; key: number }>('share', 0, 1, { offset: 21, port });
      await w.call('poke', own.key, 21, [1, 0x5a]);
      const mapped = await dom0.mapGrants(5, own.refs, true);
      const releasedDomain: string[] = [];
      await dom0.store.watch('@releaseDomain', (p) => releasedDomain.push(p));
      await sleep(5);
      releasedDomain.length = 0;
      const gone = hv.released(w.link);

      if (death === 'terminate') await w.worker.terminate();
      else await w.call(death).catch(() => {});
      await within(gone);

      expect(share.memory[20]).toBe(0);
      expect(mapped.memory[21]).toBe(0);
      // Pages stay readable while still mapped here.
      expect(mapped.memory[22]).toBe(0x5a);
      await until(() => wakes >= 1);
      await until(() => releasedDomain.length === 1);
      expect(hv.held()).toMatchObject({ grants: 1, mappedPages: 1, ports: 1, backends: 1 });
      await dom0.close();
      expect(hv.held()).toEqual(ZERO);
      if (death !== 'destroy') expect(await w.exited).not.toBe(0);
    });
  }

  it('keeps a worker alive while it has a bound port, as an open evtchn device would', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const w = await start(hv, 5);
    const offer = await dom0.bindUnboundPort(5, () => {});
    const port = await w.call<number>('bindInterdomain', 0, offer.port, 'count');
    await w.call('detach');
    let exited = false;
    void w.exited.then(() => (exited = true));
    await sleep(100);
    expect(exited).toBe(false);
    w.worker.postMessage({ id: 0, op: 'closePort', args: [port] });
    expect(await within(w.exited)).toBe(0);
    await within(hv.released(w.link));
    await dom0.close();
    expect(hv.held()).toEqual(ZERO);
  });

  it('watches the store from a worker', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const w = await start(hv, 5);
    const key = await w.call<number>('watch', '/local/domain/0/data/vchan/5');
    await dom0.store.writeAll([['data/vchan/5/1/ring-ref', '8']], [{ domid: 0, access: 'read' }]);
    await until(() => w.watchEvents.length === 2);
    expect(w.watchEvents).toEqual([
      [key, '/local/domain/0/data/vchan/5'],
      [key, '/local/domain/0/data/vchan/5/1/ring-ref'],
    ]);
    await w.call('storeWrite', 'data/x', 'y');
    expect(await dom0.store.read('/local/domain/5/data/x')).toBe('y');
    await w.call('unwatch', key);
    expect(hv.held().watches).toBe(0);
    await w.call('close');
    await dom0.close();
    expect(hv.held()).toEqual(ZERO);
  });
});
