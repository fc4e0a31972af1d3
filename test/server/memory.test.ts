/**
 * createServer() under the memory backend: clients one after another from
 * one domain, many domains at once, a domain not offered, close() with
 * connections open, and a destroyed domain's offer not published again.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { MemoryHypervisor } from '../../src/memory/index.js';
import { connect } from '../../src/net.js';
import { createServer, type VchanServer } from '../../src/server.js';
import type { VchanStream } from '../../src/stream.js';
import { bundle } from '../interop/harness.js';

const SMALL = { readMin: 1024, writeMin: 1024 };

/** Echoes every connection back, reversed by byte so that an echo that skips us cannot pass. */
function echoServer(server: VchanServer): void {
  server.on('connection', (stream: VchanStream) => {
    stream.on('data', (chunk: Buffer) => stream.write(Buffer.from(chunk.map((b) => b ^ 0xff))));
    stream.on('end', () => stream.end());
    stream.on('error', () => undefined);
  });
}

/** Writes `payload`, reads as many bytes back, then ends (a vchan has no half-close: the reply comes first). */
async function roundTrip(client: VchanStream, payload: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  const all = new Promise<void>((resolve, reject) => {
    client.on('data', (c: Buffer) => {
      chunks.push(c);
      if ((got += c.length) >= payload.length) resolve();
    });
    client.once('error', reject);
  });
  await once(client, 'connect');
  client.write(payload);
  await all;
  client.end();
  await once(client, 'close');
  return Buffer.concat(chunks);
}

const flipped = (b: Buffer) => Buffer.from(b.map((x) => x ^ 0xff));

async function listening(server: VchanServer, options: Parameters<VchanServer['listen']>[0]): Promise<void> {
  server.listen(options);
  await once(server, 'listening');
}

describe('createServer() (memory backend)', () => {
  it('serves 1000 connections one after another from one domain, every byte checked both ways', async () => {
    const hv = new MemoryHypervisor();
    const server = createServer({ backend: hv.backend(0) });
    echoServer(server);
    await listening(server, { peer: 5, port: 1, ...SMALL });
    const dom5 = hv.backend(5);
    let connections = 0;
    server.on('connection', () => connections++);
    for (let i = 0; i < 1000; i++) {
      const payload = Buffer.from(`message ${i} ${'x'.repeat(i % 50)}`);
      const echoed = await roundTrip(connect({ peer: 0, port: 1, backend: dom5, timeout: 5000 }), payload);
      expect(echoed.equals(flipped(payload)), `connection ${i}`).toBe(true);
    }
    expect(connections).toBe(1000);
    server.close();
    await once(server, 'close');
  }, 60_000);

  it("a connection's close leaves the fresh offer at the same path in place", async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const server = createServer({ backend: dom0 });
    echoServer(server);
    await listening(server, { peer: 5, port: 8, ...SMALL });
    const dom5 = hv.backend(5);
    const ringRef = '/local/domain/0/data/vchan/5/8/ring-ref';
    for (let i = 0; i < 3; i++) {
      const closedOnServer = once(server, 'connection').then(([s]) => once(s as VchanStream, 'close'));
      expect(await roundTrip(connect({ peer: 0, port: 8, backend: dom5, timeout: 2000 }), Buffer.from('x'))).toEqual(flipped(Buffer.from('x')));
      await closedOnServer;
      await new Promise((r) => setTimeout(r, 20));
      expect(await dom0.store.read(ringRef), `after connection ${i} closed`).toMatch(/^[0-9]+$/);
    }
    server.close();
    await once(server, 'close');
  });

  it('serves 100 domains connecting at once', async () => {
    const hv = new MemoryHypervisor();
    const peers = Array.from({ length: 100 }, (_, i) => i + 1);
    const server = createServer({ backend: hv.backend(0) });
    echoServer(server);
    await listening(server, { peers, port: 9, ...SMALL });
    const results = await Promise.all(
      peers.map(async (peer) => {
        const payload = Buffer.from(`from domain ${peer}`.repeat(peer));
        const echoed = await roundTrip(connect({ peer: 0, port: 9, backend: hv.backend(peer), timeout: 10_000 }), payload);
        return echoed.equals(flipped(payload));
      }),
    );
    expect(results.every(Boolean)).toBe(true);
    server.close();
    await once(server, 'close');
  }, 30_000);

  it('offers nothing to a domain it was not told to serve', async () => {
    const hv = new MemoryHypervisor();
    const server = createServer({ backend: hv.backend(0) });
    await listening(server, { peers: [5], port: 3 });
    const stranger = connect({ peer: 0, port: 3, backend: hv.backend(6), timeout: 200 });
    const [error] = (await once(stranger, 'error')) as [{ code: string }];
    expect(error.code).toBe('ERR_VCHAN_TIMEOUT');
    expect(await hv.backend(0).store.read('/local/domain/0/data/vchan/6/3/ring-ref')).toBeUndefined();
    server.close();
    await once(server, 'close');
  });

  it('close() with 10 connections open withdraws the offers, lets them finish, then emits close', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const server = createServer({ backend: dom0 });
    const accepted: VchanStream[] = [];
    server.on('connection', (s: VchanStream) => accepted.push(s));
    await listening(server, { peer: 5, port: 4, ...SMALL });
    const dom5 = hv.backend(5);
    const clients: VchanStream[] = [];
    for (let i = 0; i < 10; i++) {
      const c = connect({ peer: 0, port: 4, backend: dom5, timeout: 5000 });
      await once(c, 'connect');
      clients.push(c);
    }
    while (accepted.length < 10) await once(server, 'connection');
    let closed = false;
    server.close(() => (closed = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(await dom0.store.read('/local/domain/0/data/vchan/5/4/ring-ref')).toBeUndefined();
    expect(closed).toBe(false);
    await new Promise<void>((r) => server.getConnections((_e, n) => (expect(n).toBe(10), r())));
    // Each still carries data both ways after close().
    for (const [i, c] of clients.entries()) {
      const s = accepted[i]!;
      s.write(`server ${i}`);
      const [got] = (await once(c, 'data')) as [Buffer];
      expect(got.toString()).toBe(`server ${i}`);
      c.end(`client ${i}`);
      const [back] = (await once(s, 'data')) as [Buffer];
      expect(back.toString()).toBe(`client ${i}`);
      s.end();
      if (i < 9) expect(closed).toBe(false);
    }
    await once(server, 'close');
    expect(closed).toBe(true);
    for (const c of clients) c.destroy();
  });

  it('a destroyed domain loses its offer and gets no new one', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const server = createServer({ backend: dom0 });
    echoServer(server);
    await listening(server, { peer: 5, port: 2, ...SMALL });
    const dom5 = hv.backend(5);
    expect(await roundTrip(connect({ peer: 0, port: 2, backend: dom5, timeout: 5000 }), Buffer.from('hi'))).toEqual(flipped(Buffer.from('hi')));
    // The fresh offer is published for domain 5 ...
    await expect.poll(() => dom0.store.read('/local/domain/0/data/vchan/5/2/ring-ref')).toMatch(/^[0-9]+$/);
    dom5.close();
    // ... and withdrawn, for good, when the domain goes.
    await expect.poll(() => dom0.store.read('/local/domain/0/data/vchan/5/2/ring-ref')).toBeUndefined();
    await new Promise((r) => setTimeout(r, 100));
    expect(await dom0.store.read('/local/domain/0/data/vchan/5/2/ring-ref')).toBeUndefined();
    server.close();
    await once(server, 'close');
  });

  it('maxConnectionsPerPeer holds the next offer back until a connection closes', async () => {
    const hv = new MemoryHypervisor();
    const server = createServer({ backend: hv.backend(0), maxConnectionsPerPeer: 2 });
    const accepted: VchanStream[] = [];
    server.on('connection', (s: VchanStream) => accepted.push(s));
    await listening(server, { peer: 5, port: 6, ...SMALL });
    const dom5 = hv.backend(5);
    for (let i = 0; i < 2; i++) await once(connect({ peer: 0, port: 6, backend: dom5, timeout: 5000 }), 'connect');
    while (accepted.length < 2) await once(server, 'connection');
    await expect.poll(() => hv.backend(0).store.read('/local/domain/0/data/vchan/5/6/ring-ref')).toBeUndefined();
    const third = connect({ peer: 0, port: 6, backend: dom5, timeout: 300 });
    const [error] = (await once(third, 'error')) as [{ code: string }];
    expect(error.code).toBe('ERR_VCHAN_TIMEOUT');
    accepted[0]!.destroy();
    const fourth = connect({ peer: 0, port: 6, backend: dom5, timeout: 5000 });
    await once(fourth, 'connect');
    while (accepted.length < 3) await once(server, 'connection');
    expect(server.address()).toEqual({ peers: [5], port: 6 });
    for (const s of accepted) s.destroy();
    server.close();
    await once(server, 'close');
    expect(server.address()).toBeNull();
  });

  it('keeps the process alive while listening, unless unref()ed', async () => {
    const script = bundle(join(import.meta.dirname, 'fixtures/unref.ts'), 'server-unref');
    const run = (mode: string) => promisify(execFile)(process.execPath, [script, mode], { timeout: 10_000 });
    const [ref, unref] = await Promise.all([run('ref'), run('unref')]);
    expect(ref.stdout).toBe('listening\nalive\n');
    expect(unref.stdout).toBe('listening\n');
  });

  it('checks its arguments and names them', () => {
    const server = createServer({ backend: new MemoryHypervisor().backend(0) });
    expect(() => server.listen({ port: 1 })).toThrow(/peer or peers/);
    expect(() => server.listen({ peers: [], port: 1 })).toThrow(RangeError);
    expect(() => server.listen({ peers: [1, 1], port: 1 })).toThrow(/twice/);
    expect(() => server.listen({ peers: [1, 2], path: 'data/x' })).toThrow(/path serves one peer/);
    expect(() => server.listen({ peer: -1, port: 1 })).toThrow(/peer must be in/);
    expect(() => server.listen({ peer: 1, port: 1, readMin: 0 })).toThrow(/readMin/);
    expect(() => createServer({ maxConnectionsPerPeer: -1 })).toThrow(/maxConnectionsPerPeer/);
    expect(() => createServer({}, 5 as never)).toThrow(/connectionListener/);
  });
});
