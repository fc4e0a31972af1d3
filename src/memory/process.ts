/**
 * The hypervisor's record of one backend (one "process" of a domain): what
 * it shares, maps, binds and watches, so all of it can be released when the
 * process closes or dies — armed unmap notifications fire then, as the
 * kernel fires them when a dying process's mappings go away.
 */
import type { StorePermission, UnmapNotify } from '../backend.js';
import type { ArmedReply, HypervisorCalls, MapReply, PortReply, ShareReply, WatchSink } from './calls.js';
import { sysError } from './errno.js';
import type { Share } from './grants.js';
import type { Port } from './ports.js';
import type { Hypervisor } from './hypervisor.js';

interface Armed {
  readonly reply: ArmedReply;
  readonly port: Port;
  readonly memory: Uint8Array;
}

interface Held {
  readonly share: Share;
  readonly pages: number;
  readonly armed: Armed | undefined;
}

export class ProcessState implements HypervisorCalls {
  private readonly shares = new Map<number, Held>();
  private readonly mappings = new Map<number, Held>();
  private readonly ports = new Map<number, Port>();
  private readonly watches = new Set<number>();
  private nextId = 1;
  private outbox: Array<[number, string]> = [];
  private flushing = false;
  private gone = false;

  constructor(
    private readonly hv: Hypervisor,
    readonly id: number,
    readonly domid: number,
    readonly bell: number,
    private readonly sink: WatchSink,
  ) {}

  async share(peer: number, count: number, readOnly: boolean, notify: UnmapNotify | undefined): Promise<ShareReply> {
    this.check('GNTALLOC_ALLOC_GREF');
    const port = notify === undefined ? undefined : this.notifyPort(notify);
    const share = this.hv.grants.share(this.domid, peer, count, readOnly);
    let armed: Armed | undefined;
    try {
      armed = port === undefined ? undefined : this.arm(port, notify!.offset, new Uint8Array(share.buffer));
    } catch (error) {
      this.hv.grants.unshare(share); // all or nothing, as the ioctls are
      throw error;
    }
    const id = this.nextId++;
    this.shares.set(id, { share, pages: count, armed });
    return { id, refs: [...share.refs], buffer: share.buffer, ...(armed && { armed: armed.reply }) };
  }

  async map(peer: number, refs: readonly number[], writable: boolean, notify: UnmapNotify | undefined): Promise<MapReply> {
    this.check('GNTDEV_MAP_GRANT_REF');
    const port = notify === undefined ? undefined : this.notifyPort(notify);
    const target = this.hv.grants.resolve(this.domid, peer, refs, writable);
    const memory = new Uint8Array(target.share.buffer, target.byteOffset, target.byteLength);
    const armed = port === undefined ? undefined : this.arm(port, notify!.offset, memory);
    const id = this.nextId++;
    this.mappings.set(id, { share: target.share, pages: refs.length, armed });
    this.hv.mappedPages += refs.length;
    return {
      id,
      buffer: target.share.buffer,
      byteOffset: target.byteOffset,
      byteLength: target.byteLength,
      ...(armed && { armed: armed.reply }),
    };
  }

  unshare(id: number): void {
    const held = this.shares.get(id);
    if (held === undefined) return;
    this.shares.delete(id);
    this.disarm(held.armed);
    this.hv.grants.unshare(held.share);
  }

  unmap(id: number): void {
    const held = this.mappings.get(id);
    if (held === undefined) return;
    this.mappings.delete(id);
    this.disarm(held.armed);
    this.hv.mappedPages -= held.pages;
  }

  async bindUnbound(peer: number): Promise<PortReply> {
    this.check('IOCTL_EVTCHN_BIND_UNBOUND_PORT');
    return this.keep(this.hv.channels.allocUnbound(this.domid, this.bell, peer));
  }

  async bindInterdomain(peer: number, remotePort: number): Promise<PortReply> {
    this.check('IOCTL_EVTCHN_BIND_INTERDOMAIN');
    return this.keep(this.hv.channels.bindInterdomain(this.domid, this.bell, peer, remotePort));
  }

  unbind(port: number): void {
    const record = this.ports.get(port);
    if (record === undefined) return;
    this.ports.delete(port);
    this.hv.channels.unbind(record);
  }

  async storeRead(path: string): Promise<string | undefined> {
    this.check();
    return this.hv.store.read(this.domid, path);
  }

  async storeDirectory(path: string): Promise<string[] | undefined> {
    this.check();
    return this.hv.store.directory(this.domid, path);
  }

  async storeWriteAll(entries: ReadonlyArray<readonly [string, string]>, perms: readonly StorePermission[] | undefined): Promise<void> {
    this.check();
    this.hv.store.writeAll(this.domid, entries, perms);
  }

  async storeRemove(path: string): Promise<void> {
    this.check();
    this.hv.store.remove(this.domid, path);
  }

  async storeWatch(path: string): Promise<number> {
    this.check();
    const id: number = this.hv.store.watch(this.domid, path, (changed) => this.post(id, changed));
    this.watches.add(id);
    // xenstored fires every new watch once, whether or not the node exists.
    this.post(id, path);
    return id;
  }

  async storeUnwatch(id: number): Promise<void> {
    if (this.watches.delete(id)) this.hv.store.unwatch(id);
  }

  async close(): Promise<void> {
    this.destroy();
  }

  destroy(): void {
    if (this.gone) return;
    // Unmap notifications first: they still need their ports bound.
    for (const held of [...this.shares.values(), ...this.mappings.values()]) this.fire(held.armed);
    for (const id of [...this.shares.keys()]) this.unshare(id);
    for (const id of [...this.mappings.keys()]) this.unmap(id);
    for (const port of [...this.ports.keys()]) this.unbind(port);
    for (const id of this.watches) this.hv.store.unwatch(id);
    this.watches.clear();
    this.outbox = [];
    this.gone = true;
    this.hv.processGone(this);
  }

  private check(syscall?: string): void {
    if (this.gone) throw sysError('EBADF', `this backend of domain ${this.domid} is closed`, syscall);
  }

  private keep(port: Port): PortReply {
    this.ports.set(port.port, port);
    return { port: port.port, slot: port.slot };
  }

  /** The kernel wants the notify port bound (by any process of the domain) before arming. */
  private notifyPort(notify: UnmapNotify): Port {
    const port = this.hv.channels.find(this.domid, notify.port);
    if (port === undefined || !port.bound) {
      throw sysError('EINVAL', `unmap notification port ${notify.port} is not bound in domain ${this.domid}`, 'SET_UNMAP_NOTIFY');
    }
    return port;
  }

  private arm(port: Port, offset: number, memory: Uint8Array): Armed {
    const index = this.hv.armedPool.take();
    if (index === undefined) throw sysError('ENOSPC', 'too many armed unmap notifications in the in-memory hypervisor', 'SET_UNMAP_NOTIFY');
    this.hv.table.arm(index);
    port.armed++;
    return { reply: { index, slot: port.slot, offset }, port, memory };
  }

  private fire(armed: Armed | undefined): void {
    if (armed !== undefined) this.hv.table.fire(armed.reply.index, armed.memory, armed.reply.offset, armed.reply.slot);
  }

  /** Releasing fires the notification (if the backend's thread did not already), then frees it. */
  private disarm(armed: Armed | undefined): void {
    if (armed === undefined) return;
    this.fire(armed);
    this.hv.armedPool.give(armed.reply.index);
    this.hv.channels.disarm(armed.port);
  }

  /** Watch events go out in order, after the reply that registered the watch. */
  private post(id: number, path: string): void {
    this.outbox.push([id, path]);
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => {
      this.flushing = false;
      const batch = this.outbox;
      this.outbox = [];
      for (const [watch, changed] of batch) if (this.watches.has(watch)) this.sink(watch, changed);
    });
  }
}
