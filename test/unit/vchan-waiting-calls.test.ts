/**
 * Vchan.writeAll, readExactly and drained: the loops every caller used to
 * write by hand, on the memory backend with small rings so that each has to
 * wait for the peer many times.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Vchan } from '../../src/index.js';
import { MemoryHypervisor } from '../../src/memory/index.js';

let port = 1;
async function pair(ringBytes = 1024) {
  const hv = new MemoryHypervisor();
  const path = `data/vchan/5/${port++}`;
  const server = await Vchan.server({ peer: 5, path, readMin: ringBytes, writeMin: ringBytes, backend: hv.backend(0) });
  const client = await Vchan.client({ peer: 0, path: `/local/domain/0/${path}`, backend: hv.backend(5) });
  return { hv, server, client };
}

/** Whether `p` has settled after the event loop ran a few turns. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return done;
}

describe('Vchan.writeAll / readExactly', () => {
  it('move 1 MiB through a 1 KiB ring, byte-exact, both calls waiting on each other', async () => {
    const { server, client } = await pair();
    const data = randomBytes(1 << 20);
    const [, got] = await Promise.all([client.writeAll(data), server.readExactly(data.length)]);
    expect(got.equals(data)).toBe(true);
    await Promise.all([client.close(), server.close()]);
  });

  it('readExactly rejects with ERR_VCHAN_PEER_CLOSED saying how many arrived when the peer leaves early', async () => {
    const { server, client } = await pair();
    const reading = server.readExactly(10);
    client.write(Buffer.from('abc'));
    await client.close();
    await expect(reading).rejects.toMatchObject({ code: 'ERR_VCHAN_PEER_CLOSED', message: /after 3 of the 10 bytes/ });
    await server.close();
  });

  it('writeAll rejects with ERR_VCHAN_PEER_CLOSED when the peer leaves before there is room', async () => {
    const { server, client } = await pair();
    const writing = client.writeAll(Buffer.alloc(10_000));
    expect(await settled(writing)).toBe(false);
    await server.close();
    await expect(writing).rejects.toMatchObject({ code: 'ERR_VCHAN_PEER_CLOSED' });
    await client.close();
  });

  it('stop with ERR_VCHAN_ABORTED on their signal, and check their arguments', async () => {
    const { server, client } = await pair();
    const ac = new AbortController();
    const reading = server.readExactly(5, { signal: ac.signal });
    const writing = client.writeAll(Buffer.alloc(5000), { signal: ac.signal });
    ac.abort();
    await expect(reading).rejects.toMatchObject({ code: 'ERR_VCHAN_ABORTED' });
    await expect(writing).rejects.toMatchObject({ code: 'ERR_VCHAN_ABORTED' });
    await expect(server.readExactly(-1)).rejects.toThrow(RangeError);
    await expect(server.readExactly('5' as unknown as number)).rejects.toThrow(/length must be an integer/);
    await expect(client.writeAll('abc' as unknown as Buffer)).rejects.toThrow(TypeError);
    await expect(client.drained({ signal: 'x' } as unknown as { signal: AbortSignal })).rejects.toThrow(/options.signal/);
    await Promise.all([client.close(), server.close()]);
  });
});

describe('Vchan.drained', () => {
  it('resolves once the peer has read every byte we wrote, not before', async () => {
    const { server, client } = await pair();
    expect(await settled(server.drained())).toBe(true); // nothing written: drained already
    server.write(Buffer.alloc(100, 1));
    const drained = server.drained();
    expect(await settled(drained)).toBe(false);
    client.read(Buffer.alloc(60));
    expect(await settled(drained)).toBe(false);
    client.read(Buffer.alloc(40));
    expect(await settled(drained)).toBe(true);
    await drained;
    await Promise.all([client.close(), server.close()]);
  });

  it('rejects with ERR_VCHAN_PEER_CLOSED when the peer leaves with our bytes unread, ERR_VCHAN_CLOSED after close()', async () => {
    const { server, client } = await pair();
    server.write(Buffer.alloc(100, 1));
    const drained = server.drained();
    await client.close();
    await expect(drained).rejects.toMatchObject({ code: 'ERR_VCHAN_PEER_CLOSED' });
    await server.close();
    await expect(server.drained()).rejects.toMatchObject({ code: 'ERR_VCHAN_CLOSED' });
  });
});
