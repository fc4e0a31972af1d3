/**
 * `peers: 'all'` (memory backend): every running domain but our own gets an
 * offer, a domain created after listen() gets one, a destroyed one loses
 * it; an unprivileged domain is told it may not.
 */
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { MemoryHypervisor } from '../../src/memory/index.js';
import { connect } from '../../src/net.js';
import { createServer } from '../../src/server.js';
import type { VchanStream } from '../../src/stream.js';

describe("createServer() with peers: 'all'", () => {
  it('offers to running domains, to one created after listen(), and withdraws when one is destroyed', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const dom3 = hv.backend(3);
    const server = createServer({ backend: dom0 }, (s: VchanStream) => {
      s.on('data', (c: Buffer) => s.write(c));
      s.on('error', () => undefined);
    });
    server.listen({ peers: 'all', port: 11, readMin: 1024, writeMin: 1024 });
    await once(server, 'listening');
    const entry = (d: number) => dom0.store.read(`/local/domain/0/data/vchan/${d}/11/ring-ref`);
    expect(await entry(3)).toMatch(/^[0-9]+$/);
    expect(await entry(0)).toBeUndefined();
    expect(server.address()).toEqual({ peers: [3], port: 11, all: true });

    const dom7 = hv.backend(7);
    await expect.poll(() => entry(7)).toMatch(/^[0-9]+$/);
    const client = connect({ peer: 0, port: 11, backend: dom7, timeout: 2000 });
    await once(client, 'connect');
    client.write('hello');
    const [echo] = (await once(client, 'data')) as [Buffer];
    expect(echo.toString()).toBe('hello');
    client.destroy();

    dom7.close();
    await expect.poll(() => entry(7)).toBeUndefined();
    await new Promise((r) => setTimeout(r, 50));
    expect(await entry(7)).toBeUndefined();
    expect(server.address()!.peers).toEqual([3]);
    server.close();
    await once(server, 'close');
    expect(await entry(3)).toBeUndefined();
    dom3.close();
  });

  it('in a domain that may not list /local/domain: one named error', async () => {
    const hv = new MemoryHypervisor();
    hv.backend(0);
    const server = createServer({ backend: hv.backend(4) });
    server.listen({ peers: 'all', port: 12 });
    const [error] = (await once(server, 'error')) as [Error & { code: string }];
    expect(error.code).toBe('EACCES');
    expect(error.message).toMatch(/peers: 'all' needs a domain that may list \/local\/domain/);
  });
});
