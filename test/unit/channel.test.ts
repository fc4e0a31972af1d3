import { afterEach, describe, expect, it } from 'vitest';
import { Vchan } from '../../src/channel.js';
import { VchanError } from '../../src/errors.js';
import { Live, Offsets } from '../../src/layout.js';
import { MemoryHypervisor, type MemoryBackend } from '../../src/memory/index.js';

const PATH = 'data/vchan/5/1000';
const ABS = '/local/domain/0/data/vchan/5/1000';

let open: Vchan[] = [];
afterEach(async () => {
  const closing = open;
  open = [];
  // Some tests crash or close a backend first; its channels' releases may then fail.
  await Promise.allSettled(closing.map((v) => v.close()));
});

async function pair(readMin?: number, writeMin?: number) {
  const hv = new MemoryHypervisor();
  const dom0 = hv.backend(0);
  const dom5 = hv.backend(5);
  const server = await Vchan.server({ peer: 5, path: PATH, readMin, writeMin, backend: dom0 });
  const client = await Vchan.client({ peer: 0, path: ABS, backend: dom5 });
  open.push(server, client);
  return { hv, dom0, dom5, server, client };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return (error as VchanError).code;
  }
  return undefined;
}

async function rejection(p: Promise<unknown>): Promise<VchanError> {
  try {
    await p;
  } catch (error) {
    return error as VchanError;
  }
  throw new Error('the promise resolved');
}

describe('Vchan over the in-memory backend', () => {
  it('connects, and moves bytes both ways', async () => {
    const { server, client } = await pair(4096, 8192);
    expect(server.readSize).toBe(4096);
    expect(server.writeSize).toBe(8192);
    expect(client.writeSize).toBe(4096);
    expect(client.readSize).toBe(8192);
    expect(server.isOpen()).toBe(1);
    expect(client.isOpen()).toBe(1);

    expect(client.write(Buffer.from('hello'))).toBe(5);
    const into = Buffer.alloc(16);
    expect(server.read(into)).toBe(5);
    expect(into.subarray(0, 5).toString()).toBe('hello');
    expect(server.write(Buffer.from('world!'))).toBe(6);
    expect(client.dataReady()).toBe(6);
    expect(client.read(into, 2, 3)).toBe(3);
    expect(into.subarray(2, 5).toString()).toBe('wor');
    expect(client.available()).toBe(3);
  });

  it('reports 2 until the client connects, and wakes the server when it does', async () => {
    const hv = new MemoryHypervisor();
    const server = await Vchan.server({ peer: 5, path: PATH, backend: hv.backend(0) });
    open.push(server);
    expect(server.isOpen()).toBe(2);
    const woke = server.wait();
    const client = await Vchan.client({ peer: 0, path: ABS, backend: hv.backend(5) });
    open.push(client);
    await woke;
    expect(server.isOpen()).toBe(1);
  });

  it('picks in-page rings for small requests, as C libxenvchan does', async () => {
    const { server, client } = await pair(1024, 2048);
    expect([server.readSize, server.writeSize]).toEqual([1024, 2048]);
    expect([client.writeSize, client.readSize]).toEqual([1024, 2048]);
    const data = Buffer.alloc(1024, 7);
    expect(client.write(data)).toBe(1024);
    expect(client.write(data)).toBe(0);
    const into = Buffer.alloc(2048);
    expect(server.read(into)).toBe(1024);
    expect(into.subarray(0, 1024).equals(data)).toBe(true);
  });

  it('send and recv are all or nothing', async () => {
    const { server, client } = await pair(4096, 4096);
    expect(client.send(Buffer.alloc(4000, 1))).toBe(4000);
    expect(client.send(Buffer.alloc(100, 2))).toBe(0);
    expect(client.send(Buffer.alloc(96, 3))).toBe(96);
    const big = Buffer.alloc(4097);
    expect(codeOf(() => client.send(big))).toBe('ERR_VCHAN_TOO_BIG');
    expect(codeOf(() => server.recv(big))).toBe('ERR_VCHAN_TOO_BIG');
    const into = Buffer.alloc(4000);
    expect(server.recv(into)).toBe(4000);
    expect(into.every((b) => b === 1)).toBe(true);
    expect(server.recv(Buffer.alloc(97))).toBe(0);
    expect(server.recv(Buffer.alloc(96))).toBe(96);
  });

  it('wakes a reader waiting for data and a writer waiting for space', async () => {
    const { server, client } = await pair(4096, 4096);
    expect(server.read(Buffer.alloc(10))).toBe(0); // asks for a wake-up
    const gotData = server.wait();
    client.write(Buffer.from('x'));
    await gotData;
    expect(server.available()).toBe(1);

    expect(client.write(Buffer.alloc(5000))).toBe(4095); // ring full: asks for a wake-up
    const gotSpace = client.wait();
    server.read(Buffer.alloc(100));
    await gotSpace;
    expect(client.bufferSpace()).toBe(100);
  });

  it('after the peer closes: remaining data is readable, then reads and writes fail', async () => {
    const { server, client } = await pair(4096, 4096);
    client.write(Buffer.from('last words'));
    const woke = server.wait();
    await client.close();
    await woke;
    expect(server.isOpen()).toBe(0);
    const into = Buffer.alloc(64);
    expect(server.read(into)).toBe(10);
    expect(into.subarray(0, 10).toString()).toBe('last words');
    expect(codeOf(() => server.read(into))).toBe('ERR_VCHAN_PEER_CLOSED');
    expect(codeOf(() => server.write(into))).toBe('ERR_VCHAN_PEER_CLOSED');
    expect(codeOf(() => server.recv(Buffer.alloc(1)))).toBe('ERR_VCHAN_PEER_CLOSED');
    await server.wait(); // resolves at once: no hang on a dead peer
  });

  it('sees a crashed peer as closed through the unmap notification', async () => {
    const { server, client, dom5 } = await pair();
    const woke = server.wait();
    dom5.destroy();
    await woke;
    expect(server.isOpen()).toBe(0);
  });

  it('sees a crashed server as closed', async () => {
    const { client, dom0 } = await pair();
    const woke = client.wait();
    dom0.destroy();
    await woke;
    expect(client.isOpen()).toBe(0);
  });

  it('sees the peer domain destroyed (no unmap notification) once its xenstore home goes, and releases its side at once', async () => {
    const { hv, server, client, dom0 } = await pair();
    // What the toolstack does when it destroys domain 5; domain 5's process never unmaps.
    await dom0.store.remove('/local/domain/5');
    const deadline = AbortSignal.timeout(2000);
    while (server.isOpen() !== 0) await server.wait(deadline);
    expect(server.isOpen()).toBe(0);
    await server.released();
    // The server let go of its pages, port and entries; only the client's mapping (of pages now unshared) remains.
    expect(hv.held()).toMatchObject({ grants: 0, storeEntries: 0 });
    // The server marked itself gone on the way, so the client sees it closed too.
    expect(client.isOpen()).toBe(0);
  });

  it('a server may listen for a domain that does not exist yet', async () => {
    const hv = new MemoryHypervisor();
    const server = await Vchan.server({ peer: 7, path: 'data/vchan/7/1', backend: hv.backend(0) });
    open.push(server);
    await new Promise((r) => setTimeout(r, 10));
    expect(server.isOpen()).toBe(2);
    const client = await Vchan.client({ peer: 0, path: '/local/domain/0/data/vchan/7/1', backend: hv.backend(7) });
    open.push(client);
    expect(server.isOpen()).toBe(1);
  });

  it('closes twice harmlessly and refuses use after close', async () => {
    const { hv, server, client, dom0, dom5 } = await pair();
    await Promise.all([server.close(), server.close()]);
    await server.close();
    await client.close();
    await client.close();
    expect(codeOf(() => server.read(Buffer.alloc(1)))).toBe('ERR_VCHAN_CLOSED');
    expect(codeOf(() => client.write(Buffer.alloc(1)))).toBe('ERR_VCHAN_CLOSED');
    expect((await rejection(server.wait())).code).toBe('ERR_VCHAN_CLOSED');
    expect(await dom0.store.read(`${PATH}/ring-ref`)).toBeUndefined();
    await dom0.close();
    await dom5.close();
    expect(hv.held()).toMatchObject({ grants: 0, mappedPages: 0, ports: 0, watches: 0 });
  });

  it('rejects a pending wait when closed locally, and honours its AbortSignal', async () => {
    const { server } = await pair();
    const controller = new AbortController();
    const aborted = server.wait(controller.signal);
    controller.abort();
    expect((await rejection(aborted)).code).toBe('ERR_VCHAN_ABORTED');
    const pending = server.wait();
    await server.close();
    expect((await rejection(pending)).code).toBe('ERR_VCHAN_CLOSED');
  });

  it('server close removes its xenstore entries and releases everything', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const dom5 = hv.backend(5);
    const server = await Vchan.server({ peer: 5, path: PATH, readMin: 1 << 20, writeMin: 1 << 20, backend: dom0 });
    const client = await Vchan.client({ peer: 0, path: ABS, backend: dom5 });
    expect(hv.held().grants).toBe(1 + 256 + 256);
    expect(await dom0.store.read(`${PATH}/ring-ref`)).toMatch(/^[0-9]+$/);
    await client.close();
    await server.close();
    expect(await dom0.store.read(`${PATH}/ring-ref`)).toBeUndefined();
    expect(hv.held()).toMatchObject({ grants: 0, mappedPages: 0, ports: 0 });
  });

  it('publishes its entries readable by the peer only', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const server = await Vchan.server({ peer: 5, path: PATH, backend: dom0 });
    open.push(server);
    const dom6 = hv.backend(6);
    const denied = await rejection(dom6.store.read(`${ABS}/ring-ref`));
    expect(denied.code).toBe('EACCES');
    expect(await hv.backend(5).store.read(`${ABS}/ring-ref`)).toMatch(/^[0-9]+$/);
  });

  it('a client waits for the server with a watch, and an aborted wait releases everything', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const dom5 = hv.backend(5);
    const connecting = Vchan.client({ peer: 0, path: ABS, backend: dom5 });
    await new Promise((r) => setTimeout(r, 20));
    const server = await Vchan.server({ peer: 5, path: PATH, backend: dom0 });
    const client = await connecting;
    open.push(server, client);
    expect(client.isOpen()).toBe(1);
    // The server withdraws its entries once it sees the client: let that land before counting.
    expect(server.isOpen()).toBe(1);
    await server.offerWithdrawn();
    expect(await dom0.store.read(`${ABS}/ring-ref`)).toBeUndefined();

    const before = hv.held();
    const controller = new AbortController();
    const waiting = Vchan.client({ peer: 0, path: '/local/domain/0/data/vchan/5/2000', backend: dom5, signal: controller.signal });
    await new Promise((r) => setTimeout(r, 20));
    controller.abort();
    expect((await rejection(waiting)).code).toBe('ERR_VCHAN_ABORTED');
    expect(hv.held()).toEqual(before);

    const timedOut = await rejection(
      Vchan.client({ peer: 0, path: '/local/domain/0/data/vchan/5/3000', backend: dom5, signal: AbortSignal.timeout(30) }),
    );
    expect(timedOut.code).toBe('ERR_VCHAN_TIMEOUT');
    expect(hv.held()).toEqual(before);
  });

  it('an abort during setup after the port was bound releases it', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const dom5 = hv.backend(5);
    const server = await Vchan.server({ peer: 5, path: PATH, readMin: 1 << 16, writeMin: 1 << 16, backend: dom0 });
    open.push(server);
    const before = hv.held();
    const controller = new AbortController();
    // Abort as soon as the client has bound its port (the first thing after reading the entries).
    const bind = dom5.bindInterdomain.bind(dom5);
    dom5.bindInterdomain = async (...args) => {
      const channel = await bind(...args);
      controller.abort();
      return channel;
    };
    const error = await rejection(Vchan.client({ peer: 0, path: ABS, backend: dom5, signal: controller.signal }));
    expect(error.code).toBe('ERR_VCHAN_ABORTED');
    expect(hv.held()).toEqual(before);
  });

  it('rejects bad arguments naming them', async () => {
    const backend = new MemoryHypervisor().backend(0);
    const bad: Array<[Record<string, unknown>, ErrorConstructor, RegExp]> = [
      [{ peer: 1.5, path: PATH, backend }, TypeError, /peer/],
      [{ peer: '5', path: PATH, backend }, TypeError, /peer/],
      [{ peer: -1, path: PATH, backend }, RangeError, /peer/],
      [{ peer: 32768, path: PATH, backend }, RangeError, /peer/],
      [{ peer: 5, path: '', backend }, RangeError, /path/],
      [{ peer: 5, path: 42, backend }, TypeError, /path/],
      [{ peer: 5, path: 'data/' + 'x'.repeat(60), backend }, RangeError, /path.*49/],
      [{ peer: 5, path: 'data//x', backend }, RangeError, /path/],
      [{ peer: 5, path: PATH, readMin: 0, backend }, RangeError, /readMin/],
      [{ peer: 5, path: PATH, writeMin: (1 << 20) + 1, backend }, RangeError, /writeMin/],
      [{ peer: 5, path: PATH, readMin: 'big', backend }, TypeError, /readMin/],
      [{ peer: 5, path: PATH, backend: {} }, TypeError, /backend/],
    ];
    for (const [options, type, pattern] of bad) {
      await expect(Vchan.server(options as never), JSON.stringify(options, (k, v) => (k === 'backend' ? undefined : v))).rejects.toThrow(type);
      await expect(Vchan.server(options as never)).rejects.toThrow(pattern);
    }
    await expect(Vchan.client({ peer: 0, path: ABS, backend, signal: 'soon' } as never)).rejects.toThrow(/signal/);
    const { client } = await pair();
    expect(() => client.write('text' as never)).toThrow(/from must be a Buffer/);
    expect(() => client.read([1, 2] as never)).toThrow(/into must be a Buffer/);
    expect(() => client.send(null as never)).toThrow(TypeError);
    expect(() => client.recv({} as never)).toThrow(TypeError);
    expect(() => client.read(Buffer.alloc(4), 3, 2)).toThrow(RangeError);
    expect(() => client.write(Buffer.alloc(4), -1)).toThrow(RangeError);
    await expect(Vchan.client(null as never)).rejects.toThrow(TypeError);
  });
});

describe('a client facing a corrupt control page', () => {
  /** A hand-made server page: lets a test publish any orders and grant list. */
  async function craftedServer(dom0: MemoryBackend, leftOrder: number, rightOrder: number, grants: number[] = []) {
    const port = await dom0.bindUnboundPort(5, () => {});
    const control = await dom0.sharePages(5, 1);
    const view = new DataView(control.memory.buffer, control.memory.byteOffset);
    view.setUint16(Offsets.LEFT_ORDER, leftOrder, true);
    view.setUint16(Offsets.RIGHT_ORDER, rightOrder, true);
    grants.forEach((g, i) => view.setUint32(Offsets.GRANTS + 4 * i, g, true));
    control.memory[Offsets.SRV_LIVE] = Live.CONNECTED;
    control.memory[Offsets.CLI_LIVE] = Live.WAITING;
    await dom0.store.writeAll([
      [`${PATH}/ring-ref`, String(control.refs[0])],
      [`${PATH}/event-channel`, String(port.port)],
    ], [{ domid: 0, access: 'none' }, { domid: 5, access: 'read' }]);
    return { port, control };
  }

  const cases: Array<[string, number, number]> = [
    ['order below 10', 9, 12],
    ['order above 20', 12, 21],
    ['two rings of order 10 in the page', 10, 10],
    ['two rings of order 11 in the page', 11, 11],
    ['a grant list running into the in-page ring', 10, 20],
    ['garbage orders', 0xffff, 0],
  ];
  for (const [name, left, right] of cases) {
    it(`rejects ${name} with ERR_VCHAN_PROTOCOL and releases what it took`, async () => {
      const hv = new MemoryHypervisor();
      const dom0 = hv.backend(0);
      const dom5 = hv.backend(5);
      await craftedServer(dom0, left, right);
      const before = hv.held();
      const error = await rejection(Vchan.client({ peer: 0, path: ABS, backend: dom5 }));
      expect(error.code).toBe('ERR_VCHAN_PROTOCOL');
      expect(hv.held()).toEqual(before);
    });
  }

  it('rejects unparsable xenstore entries', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    await dom0.store.writeAll([[`${PATH}/ring-ref`, 'twelve'], [`${PATH}/event-channel`, '3']], [{ domid: 0, access: 'none' }, { domid: 5, access: 'read' }]);
    expect((await rejection(Vchan.client({ peer: 0, path: ABS, backend: hv.backend(5) }))).code).toBe('ERR_VCHAN_PROTOCOL');
    await dom0.store.writeAll([[`${PATH}/ring-ref`, '0']]);
    expect((await rejection(Vchan.client({ peer: 0, path: ABS, backend: hv.backend(5) }))).code).toBe('ERR_VCHAN_PROTOCOL');
  });

  it('copies the grant list once: later scribbles do not change what it maps', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const dom5 = hv.backend(5);
    const ring = await dom0.sharePages(5, 1);
    const { control } = await craftedServer(dom0, 12, 11, [...ring.refs]);
    const client = await Vchan.client({ peer: 0, path: ABS, backend: dom5 });
    open.push(client);
    new DataView(control.memory.buffer, control.memory.byteOffset).setUint32(Offsets.GRANTS, 0xdeadbeef, true);
    new DataView(control.memory.buffer, control.memory.byteOffset).setUint16(Offsets.LEFT_ORDER, 20, true);
    expect(client.write(Buffer.from('abc'))).toBe(3);
    expect(Buffer.from(ring.memory.subarray(0, 3)).toString()).toBe('abc');
    expect(client.writeSize).toBe(4096);
  });

  it('a hostile server moving its counter backwards gets ERR_VCHAN_PROTOCOL, not a hang', async () => {
    const { server, client } = await pair(4096, 4096);
    server.write(Buffer.alloc(100));
    expect(client.available()).toBe(100);
    // The server scribbles its own producer counter (right.prod) backwards.
    const page = (server as unknown as { parts: { page: { words: Uint32Array } } }).parts.page;
    page.words[Offsets.RIGHT_PROD / 4] = 50;
    expect(codeOf(() => client.read(Buffer.alloc(10)))).toBe('ERR_VCHAN_PROTOCOL');
    page.words[Offsets.RIGHT_PROD / 4] = 100 + 5000;
    expect(codeOf(() => client.available())).toBe('ERR_VCHAN_PROTOCOL');
  });
});
