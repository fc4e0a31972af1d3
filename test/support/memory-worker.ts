/**
 * A worker that holds one process of the in-memory hypervisor and obeys
 * commands from the test (see memory-driver.ts): share, map, bind, notify,
 * peek/poke memory, store operations, close, destroy, crash.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { EventChannel, GrantMapping, GrantShare, StoreWatch, UnmapNotify } from '../../src/backend.js';
import { connectMemoryBackend, type MemoryLink } from '../../src/memory/index.js';

const port = parentPort!;
const backend = connectMemoryBackend((workerData as { link: MemoryLink }).link);
const channels = new Map<number, EventChannel>();
const events = new Map<number, number>();
const grants = new Map<number, GrantShare | GrantMapping>();
const watches = new Map<number, StoreWatch>();
let nextKey = 1;

function bind(channel: EventChannel): number {
  channels.set(channel.port, channel);
  events.set(channel.port, 0);
  return channel.port;
}

/** `echo`: answer every event with one back, for round-trip timing. */
function handler(mode: 'count' | 'echo', getPort: () => number): () => void {
  return () => {
    const p = getPort();
    events.set(p, (events.get(p) ?? 0) + 1);
    if (mode === 'echo') channels.get(p)?.notify();
    else port.postMessage({ event: p });
  };
}

function memoryOf(key: number): Uint8Array {
  const grant = grants.get(key);
  if (grant === undefined) throw new Error(`no grant ${key}`);
  return grant.memory;
}

const ops: Record<string, (...args: never[]) => unknown> = {
  async bindUnbound(peer: number, mode: 'count' | 'echo') {
    let p = 0;
    return (p = bind(await backend.bindUnboundPort(peer, handler(mode, () => p))));
  },
  async bindInterdomain(peer: number, remote: number, mode: 'count' | 'echo') {
    let p = 0;
    return (p = bind(await backend.bindInterdomain(peer, remote, handler(mode, () => p))));
  },
  /** Notifies `times` times in a row, then raises `done[0]` for a test that blocks its thread meanwhile. */
  notify(p: number, times = 1, done?: SharedArrayBuffer) {
    for (let i = 0; i < times; i++) channels.get(p)?.notify();
    if (done !== undefined) {
      const flag = new Int32Array(done);
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
    }
  },
  closePort(p: number) {
    channels.get(p)?.close();
  },
  events(p: number) {
    return events.get(p) ?? 0;
  },
  async share(peer: number, count: number, notify?: UnmapNotify) {
    const share = await backend.sharePages(peer, count, notify);
    const key = nextKey++;
    grants.set(key, share);
    return { key, refs: share.refs };
  },
  async map(peer: number, refs: number[], writable: boolean, notify?: UnmapNotify) {
    const mapping = await backend.mapGrants(peer, refs, writable, notify);
    const key = nextKey++;
    grants.set(key, mapping);
    return key;
  },
  peek(key: number, offset: number, length: number) {
    return [...memoryOf(key).subarray(offset, offset + length)];
  },
  poke(key: number, offset: number, bytes: number[]) {
    memoryOf(key).set(bytes, offset);
  },
  release(key: number) {
    grants.get(key)?.release();
  },
  storeRead(path: string) {
    return backend.store.read(path);
  },
  storeWrite(path: string, value: string) {
    return backend.store.writeAll([[path, value]]);
  },
  async watch(path: string) {
    const key = nextKey++;
    watches.set(key, await backend.store.watch(path, (changed) => port.postMessage({ watch: key, changed })));
    return key;
  },
  async unwatch(key: number) {
    await watches.get(key)?.close();
  },
  close() {
    return backend.close();
  },
  destroy() {
    backend.destroy();
  },
  crash() {
    setTimeout(() => {
      throw new Error('the worker crashed on purpose');
    }, 0);
  },
  exit() {
    process.exit(3);
  },
  /** From now on only the backend keeps this worker alive. */
  detach() {
    port.unref();
  },
};

port.on('message', async ({ id, op, args }: { id: number; op: string; args: never[] }) => {
  try {
    const fn = ops[op];
    if (fn === undefined) throw new Error(`unknown op ${op}`);
    port.postMessage({ id, value: await fn(...args) });
  } catch (error) {
    const e = error as { code?: string; message?: string; name?: string };
    port.postMessage({ id, error: { code: e.code, message: e.message, name: e.name } });
  }
});
port.postMessage({ ready: true });
