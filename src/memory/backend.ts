/**
 * MemoryBackend: the Backend one emulated process sees. It runs in the
 * thread that uses it; the hypervisor's bookkeeping may live in another
 * thread (see link.ts). Events and unmap notifications go straight through
 * shared memory, so they cost no round trip to the hypervisor's thread.
 */
import type {
  Backend,
  EventChannel,
  EventHandler,
  GrantMapping,
  GrantShare,
  Store,
  StorePermission,
  StoreWatch,
  UnmapNotify,
} from '../backend.js';
import { abortedError } from '../errors.js';
import { PAGE_SIZE } from '../layout.js';
import { checkDomid, checkObject, checkSignal } from '../validate.js';
import type { ArmedReply, HypervisorCalls } from './calls.js';
import { sysError } from './errno.js';
import { KeepAlive, type Hold } from './keep-alive.js';
import { EventPump } from './pump.js';
import { EventTable } from './shared.js';
import { checkPermissions } from './store.js';

/** Extra to Backend#sharePages, for tests of the read-only rules. */
export interface ShareOptions {
  /** Grant the pages read-only, so the peer may map them only with `writable: false`. */
  readonly readOnly?: boolean;
}

function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${typeof value}`);
  if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`${name} must be an integer ${min}..${max}, got ${value}`);
  return value;
}

function checkNotify(notify: UnmapNotify | undefined): UnmapNotify | undefined {
  if (notify === undefined) return undefined;
  if (typeof notify !== 'object' || notify === null) throw new TypeError('notify must be an object { offset, port }');
  return {
    offset: checkInteger('notify.offset', notify.offset, 0, PAGE_SIZE - 1),
    port: checkInteger('notify.port', notify.port, 0, 0x7fffffff),
  };
}

function checkHandler(onEvent: unknown): EventHandler {
  if (typeof onEvent !== 'function') throw new TypeError('onEvent must be a function');
  return onEvent as EventHandler;
}

function checkPath(path: unknown): string {
  if (typeof path !== 'string') throw new TypeError(`path must be a string, got ${typeof path}`);
  return path;
}

/** A share or mapping this backend holds: releasing fires its notification here, at once. */
class Held {
  private done = false;

  constructor(
    private readonly owner: MemoryBackend,
    readonly memory: Uint8Array,
    private readonly armed: ArmedReply | undefined,
    private readonly drop: () => void,
  ) {}

  release(): void {
    if (this.done) return;
    this.abandon();
    this.drop();
  }

  /** The process is going away: fire, and let the hypervisor do the rest. */
  abandon(): void {
    if (this.done) return;
    this.done = true;
    this.owner.forget(this);
    if (this.armed !== undefined) this.owner.table.fire(this.armed.index, this.memory, this.armed.offset, this.armed.slot);
  }
}

export class MemoryBackend implements Backend {
  readonly store: Store;
  /** @internal */
  readonly table: EventTable;
  private readonly pump: EventPump;
  private readonly held = new Set<Held>();
  private readonly channels = new Set<() => void>();
  private readonly watchers = new Map<number, (changed: string) => void>();
  private readonly watchHolds = new Map<number, Hold>();
  private readonly keepAlive = new KeepAlive();
  private closed = false;

  /** @internal Use MemoryHypervisor#backend or connectMemoryBackend. */
  constructor(
    /** The domain this backend is a process of. */
    readonly domid: number,
    table: EventTable,
    bell: number,
    private readonly calls: HypervisorCalls,
  ) {
    this.table = table;
    this.pump = new EventPump(table, bell);
    this.store = this.makeStore();
  }

  /** True once close() or destroy() ran. */
  get isClosed(): boolean {
    return this.closed;
  }

  async domainId(): Promise<number> {
    return this.domid;
  }

  async sharePages(peer: number, count: number, notify?: UnmapNotify, options: ShareOptions = {}): Promise<GrantShare> {
    checkDomid('peer', peer);
    checkInteger('count', count, 1, 0x7fffffff);
    const armedAt = checkNotify(notify);
    this.checkOpen('GNTALLOC_ALLOC_GREF');
    const reply = await this.calls.share(peer, count, options.readOnly === true, armedAt);
    const held = this.keep(new Uint8Array(reply.buffer), reply.armed, () => this.calls.unshare(reply.id));
    return { refs: reply.refs, memory: held.memory, release: () => held.release() };
  }

  async mapGrants(peer: number, refs: readonly number[], writable: boolean, notify?: UnmapNotify): Promise<GrantMapping> {
    checkDomid('peer', peer);
    if (!Array.isArray(refs) || refs.length === 0) throw new TypeError('refs must be a non-empty array of grant refs');
    refs.forEach((ref, i) => checkInteger(`refs[${i}]`, ref, 0, 0xffffffff));
    if (typeof writable !== 'boolean') throw new TypeError('writable must be a boolean');
    const armedAt = checkNotify(notify);
    this.checkOpen('GNTDEV_MAP_GRANT_REF');
    const reply = await this.calls.map(peer, [...refs], writable, armedAt);
    const memory = new Uint8Array(reply.buffer, reply.byteOffset, reply.byteLength);
    const held = this.keep(memory, reply.armed, () => this.calls.unmap(reply.id));
    return { memory, release: () => held.release() };
  }

  async bindUnboundPort(peer: number, onEvent: EventHandler): Promise<EventChannel> {
    checkDomid('peer', peer);
    const handler = checkHandler(onEvent);
    this.checkOpen('IOCTL_EVTCHN_BIND_UNBOUND_PORT');
    const reply = await this.calls.bindUnbound(peer);
    return this.channel(reply.port, reply.slot, handler);
  }

  async bindInterdomain(peer: number, remotePort: number, onEvent: EventHandler): Promise<EventChannel> {
    checkDomid('peer', peer);
    // Any u32, as the ioctl takes it; a port that is not offered to us is EINVAL, as on Xen.
    checkInteger('remotePort', remotePort, 0, 0xffffffff);
    const handler = checkHandler(onEvent);
    this.checkOpen('IOCTL_EVTCHN_BIND_INTERDOMAIN');
    const reply = await this.calls.bindInterdomain(peer, remotePort);
    return this.channel(reply.port, reply.slot, handler);
  }

  /**
   * Ends this process in order: every share, mapping, port and watch is
   * released (armed unmap notifications fire, as on any unmap). Resolves
   * when the hypervisor holds nothing more for it. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.shutdown();
    await this.calls.close();
  }

  /**
   * The process dies (a crash, `kill -9`): the same release as close(), but
   * at once and without waiting for anything. Idempotent.
   */
  destroy(): void {
    if (this.closed) return;
    this.shutdown();
    this.calls.destroy();
  }

  /** @internal Watch events from the hypervisor. */
  deliverWatch(id: number, changed: string): void {
    this.watchers.get(id)?.(changed);
  }

  /** @internal */
  forget(held: Held): void {
    this.held.delete(held);
  }

  private shutdown(): void {
    this.closed = true;
    this.pump.stop();
    for (const held of [...this.held]) held.abandon();
    for (const close of [...this.channels]) close();
    this.watchers.clear();
    for (const hold of this.watchHolds.values()) hold.release();
    this.watchHolds.clear();
  }

  private checkOpen(syscall?: string): void {
    if (this.closed) throw sysError('EBADF', `this memory backend of domain ${this.domid} is closed`, syscall);
  }

  private keep(memory: Uint8Array, armed: ArmedReply | undefined, drop: () => void): Held {
    const held = new Held(this, memory, armed, drop);
    if (this.closed) {
      // Closed while the call was in flight: the hypervisor already released it.
      held.abandon();
    } else {
      this.held.add(held);
    }
    return held;
  }

  private channel(port: number, slot: number, handler: EventHandler): EventChannel {
    let open = !this.closed;
    const hold = open ? this.keepAlive.hold() : undefined;
    const close = (): void => {
      if (!open) return;
      open = false;
      hold?.release();
      this.channels.delete(close);
      this.pump.remove(slot);
      if (!this.closed) this.calls.unbind(port);
    };
    if (open) {
      this.channels.add(close);
      this.pump.add(slot, handler);
    }
    const table = this.table;
    return {
      port,
      notify(): void {
        // Notifying an unbound port does nothing, as Xen ignores it.
        if (open) table.notify(slot);
      },
      close,
      ref: () => hold?.ref(),
      unref: () => hold?.unref(),
    };
  }

  private makeStore(): Store {
    return {
      read: async (path) => {
        checkPath(path);
        this.checkOpen();
        return this.calls.storeRead(path);
      },
      directory: async (path) => {
        checkPath(path);
        this.checkOpen();
        return this.calls.storeDirectory(path);
      },
      writeAll: async (entries, permissions, options) => {
        if (!Array.isArray(entries)) throw new TypeError('entries must be an array of [path, value] pairs');
        const pairs = entries.map((entry, i): [string, string] => {
          const [path, value] = Array.isArray(entry) ? entry : [];
          if (typeof path !== 'string' || typeof value !== 'string') throw new TypeError(`entries[${i}] must be a [path, value] pair of strings`);
          return [path, value];
        });
        const perms: StorePermission[] | undefined = permissions === undefined ? undefined : checkPermissions(permissions);
        const signal = checkSignal('options.signal', options === undefined ? undefined : checkObject('options', options).signal);
        // One store, no other writers in flight: a transaction here never conflicts, so there is no retry to abort.
        if (signal?.aborted) throw abortedError(signal);
        this.checkOpen();
        await this.calls.storeWriteAll(pairs, perms);
      },
      remove: async (path) => {
        checkPath(path);
        this.checkOpen();
        await this.calls.storeRemove(path);
      },
      watch: async (path, onChange): Promise<StoreWatch> => {
        checkPath(path);
        if (typeof onChange !== 'function') throw new TypeError('onChange must be a function');
        this.checkOpen();
        // Held from the request on: a connect() waiting for its server keeps the process alive.
        const hold = this.keepAlive.hold();
        let id: number;
        try {
          id = await this.calls.storeWatch(path);
        } catch (error) {
          hold.release();
          throw error;
        }
        if (this.closed) {
          hold.release();
          return { close: async () => {} };
        }
        this.watchers.set(id, onChange);
        this.watchHolds.set(id, hold);
        return {
          close: async () => {
            hold.release();
            this.watchHolds.delete(id);
            if (!this.watchers.delete(id)) return;
            await this.calls.storeUnwatch(id);
          },
          ref: () => hold.ref(),
          unref: () => hold.unref(),
        };
      },
    };
  }
}
