/**
 * Backends in worker threads. The hypervisor's thread keeps the books; a
 * worker's MemoryBackend asks it over a MessagePort (setup, teardown, store)
 * while events and unmap notifications go through shared memory directly.
 * The port doubles as the process's lifeline: when the worker exits, crashes
 * or is terminated, Node closes it and the hypervisor releases what the
 * process held, firing its armed unmap notifications.
 */
import type { MessagePort } from 'node:worker_threads';
import { MemoryBackend } from './backend.js';
import type { HypervisorCalls, MapReply, PortReply, ShareReply, WatchSink } from './calls.js';
import { errorFromData, errorToData, sysError, type ErrorData } from './errno.js';
import type { ProcessState } from './process.js';
import { EventTable } from './shared.js';
import type { StorePermission, UnmapNotify } from '../backend.js';

export const LINK_KIND = 'xen-vchan/memory-link';

/**
 * One process of a domain, handed to a worker. Structured-cloneable; pass it
 * in `workerData` together with `transferList: link.transferList`.
 */
export interface MemoryLink {
  /** Marks the object as a link (checked by `connectMemoryBackend`). */
  readonly kind: typeof LINK_KIND;
  /** The process's id in its hypervisor. */
  readonly id: number;
  /** The domain the process belongs to. */
  readonly domid: number;
  /** The process's slot in the shared event table. */
  readonly bell: number;
  /** The hypervisor's event table, shared with every thread. */
  readonly table: SharedArrayBuffer;
  /** Carries the process's hypervisor calls to the thread that owns the hypervisor. */
  readonly port: MessagePort;
  /** The objects to transfer with the link (its MessagePort). */
  readonly transferList: MessagePort[];
}

type Request = { readonly call: number; readonly op: string; readonly args: unknown[] };
type Reply = { readonly call: number; readonly value?: unknown; readonly error?: ErrorData };
type WatchEvent = { readonly watch: number; readonly changed: string };

/** The HypervisorCalls a worker may make; destroy is the port closing. */
const OPS = new Set<string>([
  'share', 'map', 'unshare', 'unmap', 'bindUnbound', 'bindInterdomain', 'unbind',
  'storeRead', 'storeDirectory', 'storeWriteAll', 'storeRemove', 'storeWatch', 'storeUnwatch', 'close',
] satisfies Array<keyof HypervisorCalls>);

/** Hypervisor side: answers one process's requests; its port closing means the process died. */
export function serveLink(port: MessagePort, process: ProcessState): void {
  const calls = process as unknown as Record<string, (...args: unknown[]) => unknown>;
  port.on('message', (request: Request) => {
    if (!OPS.has(request.op)) return;
    const method = calls[request.op]!;
    let result: unknown;
    try {
      result = method.apply(process, request.args);
    } catch (error) {
      result = Promise.reject(error);
    }
    if (request.call === 0) return;
    Promise.resolve(result).then(
      (value) => port.postMessage({ call: request.call, value } satisfies Reply),
      (error: unknown) => port.postMessage({ call: request.call, error: errorToData(error) } satisfies Reply),
    );
  });
  port.on('close', () => process.destroy());
  // The Worker object keeps the hypervisor's thread alive, not this port.
  port.unref();
}

/** Worker side: HypervisorCalls over the link's port. */
class RemoteCalls implements HypervisorCalls {
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  private nextCall = 1;
  /** Bound ports and watches: while any exist the worker stays alive, as an open evtchn fd would keep it. */
  private interests = 0;
  private gone = false;

  constructor(
    private readonly port: MessagePort,
    private readonly sink: WatchSink,
  ) {
    port.on('message', (message: Reply | WatchEvent) => this.receive(message));
    port.on('close', () => this.lost());
    this.updateRef();
  }

  async share(peer: number, count: number, readOnly: boolean, notify: UnmapNotify | undefined): Promise<ShareReply> {
    return (await this.call('share', peer, count, readOnly, notify)) as ShareReply;
  }

  async map(peer: number, refs: readonly number[], writable: boolean, notify: UnmapNotify | undefined): Promise<MapReply> {
    return (await this.call('map', peer, refs, writable, notify)) as MapReply;
  }

  unshare(id: number): void {
    this.send('unshare', id);
  }

  unmap(id: number): void {
    this.send('unmap', id);
  }

  async bindUnbound(peer: number): Promise<PortReply> {
    return this.interested((await this.call('bindUnbound', peer)) as PortReply);
  }

  async bindInterdomain(peer: number, remotePort: number): Promise<PortReply> {
    return this.interested((await this.call('bindInterdomain', peer, remotePort)) as PortReply);
  }

  unbind(port: number): void {
    this.send('unbind', port);
    this.lessInterested();
  }

  async storeRead(path: string): Promise<string | undefined> {
    return (await this.call('storeRead', path)) as string | undefined;
  }

  async storeDirectory(path: string): Promise<string[] | undefined> {
    return (await this.call('storeDirectory', path)) as string[] | undefined;
  }

  async storeWriteAll(entries: ReadonlyArray<readonly [string, string]>, perms: readonly StorePermission[] | undefined): Promise<void> {
    await this.call('storeWriteAll', entries, perms);
  }

  async storeRemove(path: string): Promise<void> {
    await this.call('storeRemove', path);
  }

  async storeWatch(path: string): Promise<number> {
    return this.interested((await this.call('storeWatch', path)) as number);
  }

  async storeUnwatch(id: number): Promise<void> {
    this.lessInterested();
    await this.call('storeUnwatch', id);
  }

  async close(): Promise<void> {
    if (this.gone) return;
    try {
      await this.call('close');
    } finally {
      this.port.close();
    }
  }

  destroy(): void {
    this.port.close();
  }

  private call(op: string, ...args: unknown[]): Promise<unknown> {
    if (this.gone) return Promise.reject(sysError('EBADF', 'the link to the in-memory hypervisor is closed'));
    const call = this.nextCall++;
    return new Promise((resolve, reject) => {
      this.pending.set(call, { resolve, reject });
      this.port.postMessage({ call, op, args } satisfies Request);
      this.updateRef();
    });
  }

  private send(op: string, ...args: unknown[]): void {
    if (!this.gone) this.port.postMessage({ call: 0, op, args } satisfies Request);
  }

  private receive(message: Reply | WatchEvent): void {
    if ('watch' in message) {
      this.sink(message.watch, message.changed);
      return;
    }
    const waiter = this.pending.get(message.call);
    if (waiter === undefined) return;
    this.pending.delete(message.call);
    this.updateRef();
    if (message.error !== undefined) waiter.reject(errorFromData(message.error));
    else waiter.resolve(message.value);
  }

  private lost(): void {
    this.gone = true;
    for (const waiter of this.pending.values()) waiter.reject(sysError('EBADF', 'the link to the in-memory hypervisor closed'));
    this.pending.clear();
  }

  private interested<T>(value: T): T {
    this.interests++;
    this.updateRef();
    return value;
  }

  private lessInterested(): void {
    this.interests = Math.max(0, this.interests - 1);
    this.updateRef();
  }

  private updateRef(): void {
    if (this.gone) return;
    if (this.pending.size > 0 || this.interests > 0) this.port.ref();
    else this.port.unref();
  }
}

const connected = new WeakSet<MessagePort>();

/** The Backend of the process `link` names, for use in the worker that received it. */
export function connectMemoryBackend(link: MemoryLink): MemoryBackend {
  if (typeof link !== 'object' || link === null || link.kind !== LINK_KIND) {
    throw new TypeError('link must be a MemoryLink from MemoryHypervisor#link');
  }
  if (connected.has(link.port)) throw new TypeError('this link is already connected; make one link per worker');
  connected.add(link.port);
  let backend: MemoryBackend | undefined;
  const calls = new RemoteCalls(link.port, (id, changed) => backend?.deliverWatch(id, changed));
  backend = new MemoryBackend(link.domid, new EventTable(link.table), link.bell, calls);
  return backend;
}
