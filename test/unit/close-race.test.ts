/**
 * Found while checking that a TS server gets everything a (hostile) client
 * wrote before it closed: a reader looks at the producer counter, finds the
 * ring empty, then looks at the peer's liveness byte. A peer that writes its
 * last bytes and closes between those two loads leaves data in the ring that
 * we must still deliver ("the readable side ends after the data already in
 * the ring"; "ERR_VCHAN_PEER_CLOSED once the peer is gone and the ring is
 * empty"). The window is made deterministic here: the peer acts from inside
 * our load of its liveness byte. Memory backend, both roles as reader.
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { Vchan } from '../../src/channel.js';
import { Offsets } from '../../src/layout.js';
import { MemoryHypervisor } from '../../src/memory/index.js';
import { VchanStream } from '../../src/stream.js';

const PATH = 'data/vchan/5/1000';
const ABS = '/local/domain/0/data/vchan/5/1000';

let open: Vchan[] = [];
afterEach(async () => {
  const closing = open;
  open = [];
  await Promise.allSettled(closing.map((v) => v.close()));
});

async function pair() {
  const hv = new MemoryHypervisor();
  const server = await Vchan.server({ peer: 5, path: PATH, backend: hv.backend(0) });
  const client = await Vchan.client({ peer: 0, path: ABS, backend: hv.backend(5) });
  open.push(server, client);
  return { server, client };
}

/** The next time `reader` loads the peer's liveness byte, `peer` first writes `data` and closes. */
function writeAndCloseInsideLivenessLoad(reader: Vchan, peer: Vchan, data: Uint8Array): void {
  const page = (reader as unknown as { parts: { page: { loadByte(offset: number): number } } }).parts.page;
  const liveAt = reader.role === 'server' ? Offsets.CLI_LIVE : Offsets.SRV_LIVE;
  const load = page.loadByte.bind(page);
  page.loadByte = (offset: number) => {
    if (offset === liveAt) {
      page.loadByte = load;
      expect(peer.write(data)).toBe(data.length);
      void peer.close();
    }
    return load(offset);
  };
}

const LAST = Buffer.from('last words before close');

describe.each(['server', 'client'] as const)('%s reading', (role) => {
  it('Vchan.read returns the bytes written just before the close, then ERR_VCHAN_PEER_CLOSED', async () => {
    const { server, client } = await pair();
    const [reader, peer] = role === 'server' ? [server, client] : [client, server];
    writeAndCloseInsideLivenessLoad(reader, peer, LAST);
    const into = new Uint8Array(100);
    expect(reader.read(into)).toBe(LAST.length);
    expect(Buffer.from(into.subarray(0, LAST.length))).toEqual(LAST);
    expect(() => reader.read(into)).toThrow(expect.objectContaining({ code: 'ERR_VCHAN_PEER_CLOSED' }));
  });

  it('Vchan.recv returns the bytes written just before the close', async () => {
    const { server, client } = await pair();
    const [reader, peer] = role === 'server' ? [server, client] : [client, server];
    writeAndCloseInsideLivenessLoad(reader, peer, LAST);
    const into = new Uint8Array(LAST.length);
    expect(reader.recv(into)).toBe(LAST.length);
    expect(Buffer.from(into)).toEqual(LAST);
  });

  it('VchanStream delivers the bytes written just before the close, then ends', async () => {
    const { server, client } = await pair();
    const [reader, peer] = role === 'server' ? [server, client] : [client, server];
    const stream = new VchanStream(reader);
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    await once(stream, 'connect');
    await new Promise((r) => setImmediate(r)); // flowing, ring empty, waiting for an event
    writeAndCloseInsideLivenessLoad(reader, peer, LAST);
    reader.dispatch(); // a wake-up: the stream looks at the ring, then at liveness
    await once(stream, 'end');
    expect(Buffer.concat(chunks)).toEqual(LAST);
    stream.destroy();
  });
});
