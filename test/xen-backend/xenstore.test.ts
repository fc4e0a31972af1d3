import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { XsConnection } from '../../src/xen/xenstore-connection.js';
import { XsType } from '../../src/xen/xenstore-wire.js';
import { VchanError } from '../../src/errors.js';
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

async function rejection(p: Promise<unknown>): Promise<VchanError> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(VchanError);
  return error as VchanError;
}

/** Collects watch events; `next()` waits for the next one. */
function eventQueue(): { push(path: string): void; next(): Promise<string>; pending: string[] } {
  const pending: string[] = [];
  const waiting: Array<(p: string) => void> = [];
  return {
    pending,
    push(path) {
      const w = waiting.shift();
      if (w) w(path);
      else pending.push(path);
    },
    next() {
      const p = pending.shift();
      if (p !== undefined) return Promise.resolve(p);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no watch event within 2 s')), 2000);
        waiting.push((path) => {
          clearTimeout(t);
          resolve(path);
        });
      });
    },
  };
}

describe('XenStore against the emulator xenstored', () => {
  it('reads, writes, lists and removes, absolute and relative', async () => {
    await dom0.write('/test/a', 'one');
    await dom0.write('/test/b', Buffer.from([0x68, 0x69]));
    expect(await dom0.read('/test/a')).toBe('one');
    expect(await dom0.read('/test/b')).toBe('hi');
    expect((await dom0.directory('/test'))?.sort()).toEqual(['a', 'b']);
    expect(await dom0.read('/test/missing')).toBeUndefined();
    expect(await dom0.directory('/test/missing')).toBeUndefined();
    await dom0.remove('/test');
    expect(await dom0.read('/test/a')).toBeUndefined();
    await dom0.remove('/test'); // missing: not an error

    // Relative paths live under the connection's own domain.
    await dom5.write('data/x', '42');
    expect(await dom0.read('/local/domain/5/data/x')).toBe('42');
    expect(await dom5.read('domid')).toBe('5');
    await dom5.mkdir('data/dir');
    expect(await dom5.directory('data')).toContain('dir');
    expect(await dom0.getDomainPath(5)).toBe('/local/domain/5');
  });

  it('lists a directory too big for one reply in DIRECTORY_PART slices', async () => {
    const names = Array.from({ length: 500 }, (_, i) => `child-with-a-long-name-${String(i).padStart(4, '0')}`);
    await dom0.transaction(async (tx) => {
      for (const n of names) await tx.write(`/big/${n}`, '');
    });
    const spy = vi.spyOn(XsConnection.prototype, 'request');
    const listed = await dom0.directory('/big');
    expect(spy.mock.calls.filter((c) => c[0] === XsType.DIRECTORY_PART).length).toBeGreaterThan(1);
    spy.mockRestore();
    expect(listed?.length).toBe(500);
    expect([...(listed ?? [])].sort()).toEqual(names);
    await dom0.remove('/big');
  });

  it('multiplexes many requests in flight by req_id', async () => {
    await Promise.all(Array.from({ length: 50 }, (_, i) => dom0.write(`/mux/${i}`, `v${i}`)));
    const values = await Promise.all(Array.from({ length: 50 }, (_, i) => dom0.read(`/mux/${i}`)));
    expect(values).toEqual(Array.from({ length: 50 }, (_, i) => `v${i}`));
    await dom0.remove('/mux');
  });

  it('sets and reads permissions; EACCES is a VchanError with the errno name', async () => {
    await dom0.write('/perm/node', 'secret');
    await dom0.setPermissions('/perm/node', [{ domid: 0, access: 'none' }]);
    const denied = await rejection(dom5.read('/perm/node'));
    expect(denied.code).toBe('EACCES');
    expect(denied.errno).toBe(-13);
    expect(denied.message).toMatch(/READ \/perm\/node: EACCES/);

    await dom0.setPermissions('/perm/node', [
      { domid: 0, access: 'none' },
      { domid: 5, access: 'read' },
    ]);
    expect(await dom0.getPermissions('/perm/node')).toEqual([
      { domid: 0, access: 'none' },
      { domid: 5, access: 'read' },
    ]);
    expect(await dom5.read('/perm/node')).toBe('secret');
    expect((await rejection(dom5.write('/perm/node', 'x'))).code).toBe('EACCES');
    expect(await dom0.getPermissions('/perm/missing')).toBeUndefined();
    await dom0.remove('/perm');
  });

  it('writeAll publishes every entry in one transaction with the permissions given', async () => {
    await dom5.writeAll(
      [
        ['data/vchan/0/1/ring-ref', '8'],
        ['data/vchan/0/1/event-channel', '9'],
      ],
      [
        { domid: 5, access: 'none' },
        { domid: 0, access: 'read' },
      ],
    );
    expect(await dom0.read('/local/domain/5/data/vchan/0/1/ring-ref')).toBe('8');
    expect(await dom5.getPermissions('data/vchan/0/1/event-channel')).toEqual([
      { domid: 5, access: 'none' },
      { domid: 0, access: 'read' },
    ]);
    await dom5.remove('data/vchan');
  });

  it('retries a transaction that conflicts (EAGAIN) and commits the second run', async () => {
    await dom0.write('/tx/counter', '0');
    let runs = 0;
    const result = await dom0.transaction(async (tx) => {
      runs++;
      const value = Number(await tx.read('/tx/counter'));
      // Another connection changes the node under the first run's feet.
      if (runs === 1) await dom0Other.write('/tx/counter', '10');
      await tx.write('/tx/counter', String(value + 1));
      return value + 1;
    });
    expect(runs).toBe(2);
    expect(result).toBe(11);
    expect(await dom0.read('/tx/counter')).toBe('11');
    await dom0.remove('/tx');
  });

  it('gives up with EAGAIN after maxAttempts conflicts, and aborts on other errors', async () => {
    const store = await XenStore.connect({ path: await server.socketFor(0), maxAttempts: 2 });
    await store.write('/tx2/n', '0');
    let runs = 0;
    const error = await rejection(
      store.transaction(async (tx) => {
        runs++;
        await tx.read('/tx2/n');
        await dom0Other.write('/tx2/n', String(runs));
        await tx.write('/tx2/n', 'mine');
      }),
    );
    expect(error.code).toBe('EAGAIN');
    expect(runs).toBe(2);

    const boom = new Error('boom');
    await expect(
      store.transaction(async (tx) => {
        await tx.write('/tx2/n', 'aborted');
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(await store.read('/tx2/n')).toBe('2');
    await store.remove('/tx2');
    store.close();
  });

  it('watches: fires on registration, on changes below the path, and stops after close', async () => {
    const events = eventQueue();
    const watch = await dom0.watch('/w', (p) => events.push(p));
    expect(await events.next()).toBe('/w');
    await dom0.write('/w/child', '1');
    expect(await events.next()).toBe('/w/child');
    await watch.close();
    await watch.close(); // idempotent
    await dom0.write('/w/other', '1');
    await dom0.read('/w/other'); // a round trip: any event would have arrived by now
    expect(events.pending).toEqual([]);
    await dom0.remove('/w');
  });

  it('watches relative paths and special paths', async () => {
    const rel = eventQueue();
    const w1 = await dom5.watch('data/rel', (p) => rel.push(p));
    expect(await rel.next()).toBe('data/rel');
    await dom5.write('data/rel/x', '1');
    expect(await rel.next()).toBe('data/rel/x');

    const released = eventQueue();
    const w2 = await dom0.watch('@releaseDomain', (p) => released.push(p));
    expect(await released.next()).toBe('@releaseDomain');
    await server.socketFor(7);
    server.xenstored.releaseDomain(7);
    expect(await released.next()).toBe('@releaseDomain');
    await w1.close();
    await w2.close();
  });

  it('rejects bad arguments with TypeError/RangeError naming the argument', async () => {
    await expect(dom0.read(42 as never)).rejects.toThrow(TypeError);
    await expect(dom0.read(42 as never)).rejects.toThrow(/path/);
    await expect(dom0.read('')).rejects.toThrow(RangeError);
    await expect(dom0.read('a\0b')).rejects.toThrow(RangeError);
    await expect(dom0.read('@releaseDomain')).rejects.toThrow(/special/);
    await expect(dom0.write('/x', 5 as never)).rejects.toThrow(/value/);
    await expect(dom0.setPermissions('/x', [])).rejects.toThrow(/permissions/);
    await expect(dom0.setPermissions('/x', [{ domid: 70000, access: 'read' }])).rejects.toThrow(RangeError);
    await expect(dom0.setPermissions('/x', [{ domid: 1, access: 'rw' as never }])).rejects.toThrow(/access/);
    await expect(dom0.watch('/x', 'cb' as never)).rejects.toThrow(/onChange/);
    await expect(dom0.getDomainPath(-1)).rejects.toThrow(RangeError);
    expect(() => new XenStore({ maxAttempts: 0 })).toThrow(/maxAttempts/);
    expect(() => new XenStore({ path: 3 as never })).toThrow(/options.path/);
  });
});

describe('XenStore connection life', () => {
  it('fails with ENOENT naming the path when there is no xenstore', async () => {
    const error = await rejection(XenStore.connect({ path: '/nonexistent/xenstored/socket' }));
    expect(error.code).toBe('ENOENT');
    expect(error.message).toMatch(/\/nonexistent\/xenstored\/socket/);
    expect(error.message).toMatch(/xensim run/);
    // Not to be mistaken for a missing node.
    const store = new XenStore({ path: '/nonexistent/xenstored/socket' });
    expect((await rejection(store.read('domid'))).code).toBe('ENOENT');
    expect((await rejection(store.remove('x'))).message).toMatch(/no xenstore connection/);
    store.close();
  });

  it('uses $XENSTORED_PATH when no path is given', async () => {
    const saved = process.env.XENSTORED_PATH;
    process.env.XENSTORED_PATH = await server.socketFor(5);
    try {
      const store = await XenStore.connect();
      expect(await store.read('domid')).toBe('5');
      store.close();
    } finally {
      if (saved === undefined) delete process.env.XENSTORED_PATH;
      else process.env.XENSTORED_PATH = saved;
    }
  });

  it('close() fails pending and later requests with ERR_VCHAN_CLOSED, and is idempotent', async () => {
    const store = await XenStore.connect({ path: await server.socketFor(0) });
    const pending = store.read('/local/domain/0/domid');
    store.close();
    store.close();
    expect((await rejection(pending)).code).toBe('ERR_VCHAN_CLOSED');
    expect((await rejection(store.read('/x'))).code).toBe('ERR_VCHAN_CLOSED');
  });

  it('reports a connection xenstored dropped as ECONNRESET', async () => {
    const own = await startXenstored();
    const store = await XenStore.connect({ path: await own.socketFor(0) });
    expect(await store.read('/local/domain/0/domid')).toBe('0');
    await own.close();
    const error = await rejection(store.read('/local/domain/0/domid'));
    expect(error.code).toBe('ECONNRESET');
    store.close();
  });

  it('makes a lost connection again: ECONNRESET until then, then every watch registered again (and fired), the reconnect listeners, requests', async () => {
    const own = await startXenstored();
    const store = await XenStore.connect({ path: await own.socketFor(0) });
    const events = eventQueue();
    const watch = await store.watch('/test/again', (p) => events.push(p));
    expect(await events.next()).toBe('/test/again');
    let reconnected = 0;
    const removeListener = store.onReconnect(() => reconnected++);
    own.xenstored.restart({ fresh: true, downMs: 150 });
    const started = Date.now();
    expect((await rejection(store.read('/local/domain/0/domid'))).code).toBe('ECONNRESET');
    // Back: the watch fires on its registration again, and changes reach it.
    expect(await events.next()).toBe('/test/again');
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect(reconnected).toBe(1);
    expect(await store.read('/local/domain/0/domid')).toBe('0');
    await store.writeAll([['/test/again/x', '1']]);
    expect(await events.next()).toBe('/test/again/x');
    removeListener();
    own.xenstored.restart();
    expect(await events.next()).toBe('/test/again');
    expect(reconnected).toBe(1);
    await watch.close();
    store.close();
    await own.close();
  });

  it('close() stops making a lost connection again', async () => {
    const own = await startXenstored();
    const store = await XenStore.connect({ path: await own.socketFor(0) });
    let reconnected = 0;
    store.onReconnect(() => reconnected++);
    own.xenstored.restart({ downMs: 100 });
    expect((await rejection(store.read('/local/domain/0/domid'))).code).toBe('ECONNRESET');
    store.close();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(reconnected).toBe(0);
    expect((await rejection(store.read('/x'))).code).toBe('ERR_VCHAN_CLOSED');
    await own.close();
  });
});

// A second dom0 connection, to make conflicting changes.
let dom0Other: XenStore;
beforeAll(async () => {
  dom0Other = await XenStore.connect({ path: await server.socketFor(0) });
});
afterAll(() => dom0Other?.close());
