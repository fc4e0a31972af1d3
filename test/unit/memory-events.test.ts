import { setImmediate as tick } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { MemoryHypervisor } from '../../src/memory/index.js';

/** Lets the event pump run (waitAsync resolves in a later task). */
async function settle(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await tick();
}

describe('in-memory event channels', () => {
  it('merges events fired before the handler runs, and delivers again after it ran', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const dom5 = hv.backend(5);
    let calls = 0;
    const server = await dom0.bindUnboundPort(5, () => calls++);
    const client = await dom5.bindInterdomain(0, server.port, () => {});
    client.notify();
    client.notify();
    await settle();
    expect(calls).toBe(1);
    client.notify();
    await settle();
    expect(calls).toBe(2);
    await settle();
    expect(calls).toBe(2);
    await Promise.all([dom0.close(), dom5.close()]);
  });

  it('unmasks before calling the handler, so an event raised during it is not lost', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const dom5 = hv.backend(5);
    let calls = 0;
    let client: { notify(): void } | undefined;
    const server = await dom0.bindUnboundPort(5, () => {
      calls++;
      if (calls === 1) client?.notify();
    });
    client = await dom5.bindInterdomain(0, server.port, () => {});
    client.notify();
    await settle(5);
    expect(calls).toBe(2);
    await Promise.all([dom0.close(), dom5.close()]);
  });

  it('offers an unbound port to one domain only', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const dom5 = hv.backend(5);
    const dom6 = hv.backend(6);
    const offer = await dom0.bindUnboundPort(5, () => {});
    await expect(dom6.bindInterdomain(0, offer.port, () => {})).rejects.toMatchObject({ code: 'EINVAL', message: /offered to domain 5/ });
    await expect(dom5.bindInterdomain(0, offer.port + 100, () => {})).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(dom5.bindInterdomain(6, offer.port, () => {})).rejects.toMatchObject({ code: 'EINVAL' });
    // A domain without a live process does not exist: ESRCH, as Xen and xensim answer.
    await expect(dom5.bindInterdomain(9, offer.port, () => {})).rejects.toMatchObject({ code: 'ESRCH', message: /domain 9 does not exist/ });
    await dom5.bindInterdomain(0, offer.port, () => {});
    // Connected now: nobody else may bind it.
    await expect(dom5.bindInterdomain(0, offer.port, () => {})).rejects.toMatchObject({ code: 'EINVAL', message: /already connected/ });
    await Promise.all([dom0.close(), dom5.close(), dom6.close()]);
    expect(hv.held().ports).toBe(0);
  });

  it('works within one domain (loopback), both ways', async () => {
    const hv = new MemoryHypervisor();
    const a = hv.backend(3);
    const b = hv.backend(3);
    const seen: string[] = [];
    const pa = await a.bindUnboundPort(3, () => seen.push('a'));
    const pb = await b.bindInterdomain(3, pa.port, () => seen.push('b'));
    expect(pb.port).not.toBe(pa.port); // one port namespace per domain
    pb.notify();
    await settle();
    pa.notify();
    await settle();
    expect(seen).toEqual(['a', 'b']);
    await Promise.all([a.close(), b.close()]);
  });

  it('makes notify after the peer closed harmless, and stops callbacks after close', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const dom5 = hv.backend(5);
    let serverCalls = 0;
    const server = await dom0.bindUnboundPort(5, () => serverCalls++);
    const client = await dom5.bindInterdomain(0, server.port, () => {});
    client.notify();
    server.close();
    server.close(); // idempotent
    await settle();
    expect(serverCalls).toBe(0);
    client.notify();
    server.notify();
    await settle();
    expect(serverCalls).toBe(0);
    await Promise.all([dom0.close(), dom5.close()]);
  });

  it('puts a port whose peer left back to unbound, offered to the same domain', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    let calls = 0;
    const server = await dom0.bindUnboundPort(5, () => calls++);
    const first = hv.backend(5);
    await first.bindInterdomain(0, server.port, () => {});
    first.destroy();
    const second = hv.backend(5);
    const again = await second.bindInterdomain(0, server.port, () => {});
    again.notify();
    await settle();
    expect(calls).toBe(1);
    await Promise.all([dom0.close(), second.close()]);
  });

  it('keeps delivering to other ports when a handler throws, and reports its error as uncaught', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const dom5 = hv.backend(5);
    const errors: unknown[] = [];
    const onError = (e: unknown): void => void errors.push(e);
    process.prependListener('uncaughtException', onError);
    try {
      let good = 0;
      const bad = await dom0.bindUnboundPort(5, () => {
        throw new Error('handler failed');
      });
      const ok = await dom0.bindUnboundPort(5, () => good++);
      const c1 = await dom5.bindInterdomain(0, bad.port, () => {});
      const c2 = await dom5.bindInterdomain(0, ok.port, () => {});
      c1.notify();
      c2.notify();
      await settle();
      expect(good).toBe(1);
      expect(errors).toHaveLength(1);
    } finally {
      process.removeListener('uncaughtException', onError);
    }
    await Promise.all([dom0.close(), dom5.close()]);
  });

  it('refuses ports past the per-domain limit with ENOSPC', async () => {
    const hv = new MemoryHypervisor({ portLimit: 2 });
    const dom0 = hv.backend(0);
    await dom0.bindUnboundPort(5, () => {});
    await dom0.bindUnboundPort(5, () => {});
    await expect(dom0.bindUnboundPort(5, () => {})).rejects.toMatchObject({ code: 'ENOSPC', message: /portLimit/ });
    await dom0.close();
  });
});

describe('unmap notifications', () => {
  async function pair() {
    const hv = new MemoryHypervisor();
    const server = hv.backend(0);
    const client = hv.backend(5);
    const wakes = { server: 0, client: 0 };
    const sp = await server.bindUnboundPort(5, () => wakes.server++);
    const cp = await client.bindInterdomain(0, sp.port, () => wakes.client++);
    const share = await server.sharePages(5, 1, { offset: 21, port: sp.port });
    share.memory[21] = 1;
    share.memory[20] = 1;
    const mapping = await client.mapGrants(0, share.refs, true, { offset: 20, port: cp.port });
    return { hv, server, client, sp, cp, share, mapping, wakes };
  }

  it('clears the byte and notifies when the share is released', async () => {
    const { hv, server, client, share, mapping, wakes } = await pair();
    share.release();
    expect(mapping.memory[21]).toBe(0);
    expect(mapping.memory[20]).toBe(1);
    await settle();
    expect(wakes).toEqual({ server: 0, client: 1 });
    await Promise.all([server.close(), client.close()]);
    expect(hv.held()).toMatchObject({ grants: 0, mappedPages: 0, ports: 0 });
  });

  it('clears the byte and notifies when the mapping is released, once', async () => {
    const { server, client, share, mapping, wakes } = await pair();
    mapping.release();
    mapping.release();
    expect(share.memory[20]).toBe(0);
    await settle();
    expect(wakes.server).toBe(1);
    await client.close();
    await settle();
    expect(wakes.server).toBe(1);
    await server.close();
  });

  it('still fires after the process unbound the port first (the notification holds it)', async () => {
    const { hv, server, client, cp, share, mapping, wakes } = await pair();
    cp.close();
    expect(hv.held().ports).toBe(2);
    mapping.release();
    expect(share.memory[20]).toBe(0);
    await settle();
    expect(wakes.server).toBe(1);
    expect(hv.held().ports).toBe(1);
    await Promise.all([server.close(), client.close()]);
  });

  it('fires on close() and on destroy(), and everything is released', async () => {
    const a = await pair();
    await a.client.close();
    expect(a.share.memory[20]).toBe(0);
    await settle();
    expect(a.wakes.server).toBe(1);
    expect(a.hv.held()).toMatchObject({ mappedPages: 0, grants: 1, ports: 1 });
    await a.server.close();

    const b = await pair();
    b.server.destroy();
    expect(b.mapping.memory[21]).toBe(0);
    await settle();
    expect(b.wakes.client).toBe(1);
    expect(b.hv.held()).toMatchObject({ grants: 0, ports: 1, mappedPages: 1 });
    b.client.destroy();
    expect(b.hv.held()).toEqual({ grants: 0, mappedPages: 0, ports: 0, watches: 0, storeEntries: 0, backends: 0 });
  });

  it('refuses to arm on a port that is not bound in the domain', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const dom5 = hv.backend(5);
    const p5 = await dom5.bindUnboundPort(0, () => {});
    await expect(dom0.sharePages(5, 1, { offset: 0, port: p5.port })).rejects.toMatchObject({ code: 'EINVAL' });
    expect(hv.held().grants).toBe(0);
    await Promise.all([dom0.close(), dom5.close()]);
  });
});
