import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { VchanError } from '../../src/errors.js';
import { MemoryHypervisor } from '../../src/memory/index.js';
import { connect, listen } from '../../src/net.js';

async function errorOf(stream: NodeJS.EventEmitter): Promise<VchanError> {
  const [error] = (await once(stream, 'error').catch((e: unknown) => [e])) as [VchanError];
  return error;
}

describe('listen() and connect()', () => {
  it('use the Qubes port convention and emit listening, then connect on both sides', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const server = listen({ peer: 5, port: 1000, backend: dom0, readMin: 4096, writeMin: 8192 });
    await once(server, 'listening');
    expect(await dom0.store.read('/local/domain/0/data/vchan/5/1000/ring-ref')).toMatch(/^[0-9]+$/);
    const client = connect({ peer: 0, port: 1000, backend: hv.backend(5) });
    await Promise.all([once(server, 'connect'), once(client, 'connect')]);
    expect(client.vchan!.readSize).toBe(8192);
    client.end('ping');
    const [chunk] = (await once(server, 'data')) as [Buffer];
    expect(chunk.toString()).toBe('ping');
    server.destroy();
  });

  it('take a path instead of a port, and pass stream options through', async () => {
    const hv = new MemoryHypervisor();
    const server = listen({ peer: 5, path: 'data/custom', backend: hv.backend(0), highWaterMark: 1234 });
    const client = connect({ peer: 0, path: '/local/domain/0/data/custom', backend: hv.backend(5) });
    await Promise.all([once(server, 'connect'), once(client, 'connect')]);
    expect(server.writableHighWaterMark).toBe(1234);
    client.destroy();
    server.destroy();
  });

  it('connect waits for a server that comes later', async () => {
    const hv = new MemoryHypervisor();
    const client = connect({ peer: 0, port: 7, backend: hv.backend(5), timeout: 5000 });
    await new Promise((r) => setTimeout(r, 30));
    const server = listen({ peer: 5, port: 7, backend: hv.backend(0) });
    await Promise.all([once(server, 'connect'), once(client, 'connect')]);
    client.destroy();
    server.destroy();
  });

  it('a connect timeout is ERR_VCHAN_TIMEOUT and holds nothing afterwards', async () => {
    const hv = new MemoryHypervisor();
    const dom5 = hv.backend(5);
    const before = hv.held();
    const client = connect({ peer: 0, port: 9, backend: dom5, timeout: 30 });
    expect((await errorOf(client)).code).toBe('ERR_VCHAN_TIMEOUT');
    expect(hv.held()).toEqual(before);
    const controller = new AbortController();
    const aborted = connect({ peer: 0, port: 9, backend: dom5, signal: controller.signal });
    controller.abort();
    const abortError = await errorOf(aborted);
    expect(abortError.code).toBe('ERR_VCHAN_ABORTED');
    expect(abortError.name).toBe('AbortError');
    expect(hv.held()).toEqual(before);
  });

  it('a listen timeout or abort before the client comes destroys the stream and withdraws the offer', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const before = hv.held();
    const server = listen({ peer: 5, port: 11, backend: dom0, timeout: 40 });
    await once(server, 'listening');
    expect(await dom0.store.read('/local/domain/0/data/vchan/5/11/ring-ref')).toMatch(/^[0-9]+$/);
    const closed = new Promise((r) => server.once('close', r));
    expect((await errorOf(server)).code).toBe('ERR_VCHAN_TIMEOUT');
    await closed;
    expect(await dom0.store.read('/local/domain/0/data/vchan/5/11/ring-ref')).toBeUndefined();
    expect(hv.held()).toEqual(before);

    const controller = new AbortController();
    const aborted = listen({ peer: 5, port: 12, backend: dom0, signal: controller.signal });
    await once(aborted, 'listening');
    const abortedClosed = new Promise((r) => aborted.once('close', r));
    controller.abort();
    const abortError = await errorOf(aborted);
    expect(abortError.code).toBe('ERR_VCHAN_ABORTED');
    await abortedClosed;
    expect(hv.held()).toEqual(before);
  });

  it('a listen timeout no longer applies once the client connected', async () => {
    const hv = new MemoryHypervisor();
    const server = listen({ peer: 5, port: 13, backend: hv.backend(0), timeout: 60 });
    const client = connect({ peer: 0, port: 13, backend: hv.backend(5) });
    await Promise.all([once(server, 'connect'), once(client, 'connect')]);
    await new Promise((r) => setTimeout(r, 120));
    expect(server.destroyed).toBe(false);
    client.end('still here');
    const [chunk] = (await once(server, 'data')) as [Buffer];
    expect(chunk.toString()).toBe('still here');
    server.destroy();
  });

  it('reject bad options at once, naming them', () => {
    const backend = new MemoryHypervisor().backend(0);
    expect(() => listen({ peer: 5, backend } as never)).toThrow(/path or port/);
    expect(() => listen({ peer: 5, port: 1, path: 'x', backend })).toThrow(/either path or port/);
    expect(() => listen({ peer: 5, port: -1, backend })).toThrow(RangeError);
    expect(() => listen({ peer: 5, port: 1.5, backend })).toThrow(/port/);
    expect(() => listen({ peer: 'x', port: 1, backend } as never)).toThrow(/peer/);
    expect(() => listen({ peer: 5, port: 1, readMin: 0, backend })).toThrow(/readMin/);
    expect(() => connect({ peer: 0, port: 1, timeout: -5, backend })).toThrow(RangeError);
    expect(() => connect({ peer: 0, port: 1, timeout: '5' as never, backend })).toThrow(TypeError);
    expect(() => connect({ peer: 0, port: 1, timeout: '5' as never, backend })).toThrow(/timeout/);
    expect(() => listen({ peer: 5, port: 1, timeout: Number.NaN, backend })).toThrow(/timeout/);
    expect(() => listen({ peer: 5, port: 1, signal: 'stop' as never, backend })).toThrow(/signal/);
    expect(() => connect({ peer: 0, port: 1, backend: 42 } as never)).toThrow(/backend/);
    expect(() => connect(undefined as never)).toThrow(TypeError);
  });

  // On a Xen host this would really listen; the other suites cover that path.
  it.runIf(!existsSync('/dev/xen'))('without a backend option they use the Xen devices, and say clearly when there are none', async () => {
    const stream = listen({ peer: 5, port: 1 });
    const error = await errorOf(stream);
    // This machine has no /dev/xen: the error names the device and what to load.
    expect(error.code).toBe('ENOENT');
    expect(error.message).toMatch(/\/dev\/xen\//);
  });
});
