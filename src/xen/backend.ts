/**
 * XenBackend: the Backend over Linux's Xen devices (through the native
 * shim) and xenstore (through XenStore). Devices open on first use; one
 * evtchn fd and one libuv watcher serve every port of the backend.
 */
import type { Backend, EventChannel, EventHandler, GrantMapping, GrantShare, UnmapNotify } from '../backend.js';
import { closedError, VchanError } from '../errors.js';
import { PAGE_SIZE } from '../layout.js';
import { checkDomid, checkObject, describe } from '../validate.js';
import { Devices } from './devices.js';
import { EventPorts } from './events.js';
import { GntdevLimit, mapGrants, sharePages } from './grants.js';
import { loadNative, type XenNative } from './native.js';
import { XenStore } from './xenstore.js';

/** Options of `new XenBackend()`. */
export interface XenBackendOptions {
  /** Directory of the gntalloc, gntdev and evtchn device nodes; default /dev/xen. */
  deviceDir?: string;
  /** A xenstore client to use (not closed by close()); default: a new one, closed by close(). */
  store?: XenStore;
  /** Socket or device for the backend's own xenstore client (see XenStoreOptions.path). */
  xenstorePath?: string;
}

/** One request shares or maps at most this many pages (a 1 MiB ring is 256). */
const MAX_PAGES = 1 << 16;

function checkCount(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new TypeError(`${name} must be an integer, got ${describe(value)}`);
  if (value < 1 || value > MAX_PAGES) throw new RangeError(`${name} must be in 1..${MAX_PAGES}, got ${value}`);
  return value;
}

function checkU32(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new TypeError(`${name} must be an integer, got ${describe(value)}`);
  if (value < 0 || value > 0xffffffff) throw new RangeError(`${name} must be in 0..4294967295, got ${value}`);
  return value;
}

function checkNotify(value: unknown): UnmapNotify | undefined {
  if (value === undefined) return undefined;
  const n = checkObject('notify', value);
  const offset = checkU32('notify.offset', n.offset);
  if (offset >= PAGE_SIZE) throw new RangeError(`notify.offset must be inside the first page (0..${PAGE_SIZE - 1}), got ${offset}`);
  return { offset, port: checkU32('notify.port', n.port) };
}

function checkHandler(value: unknown): EventHandler {
  if (typeof value !== 'function') throw new TypeError(`onEvent must be a function, got ${describe(value)}`);
  return value as EventHandler;
}

/** One offer scope per xenstore this process talks to (see Backend.offerScope). */
const scopes = new Map<string, object>();
function scopeFor(xenstore: string): object {
  let scope = scopes.get(xenstore);
  if (!scope) scopes.set(xenstore, (scope = { xenstore }));
  return scope;
}

/** The backend for real Xen: Linux's `/dev/xen` devices (the native addon) and xenstore. Devices open on first use; `close()` closes them and a xenstore connection it opened itself. */
export class XenBackend implements Backend {
  /** Its xenstore client. */
  readonly store: XenStore;
  /** Every XenBackend of this process on the same xenstore shares it: one process, one set of offers. */
  readonly offerScope: object;
  private readonly native: XenNative;
  private readonly devices: Devices;
  private readonly events: EventPorts;
  private readonly gntdevLimit: GntdevLimit;
  private readonly ownsStore: boolean;
  private domid: Promise<number> | undefined;
  private closed = false;

  constructor(options: XenBackendOptions = {}) {
    const o = checkObject('options', options);
    const deviceDir = o.deviceDir ?? '/dev/xen';
    if (typeof deviceDir !== 'string' || deviceDir.length === 0) throw new TypeError(`options.deviceDir must be a non-empty string, got ${describe(deviceDir)}`);
    if (o.store !== undefined && !(o.store instanceof XenStore)) throw new TypeError(`options.store must be a XenStore, got ${describe(o.store)}`);
    if (o.xenstorePath !== undefined && typeof o.xenstorePath !== 'string') {
      throw new TypeError(`options.xenstorePath must be a string, got ${describe(o.xenstorePath)}`);
    }
    this.native = loadNative();
    this.devices = new Devices(this.native, deviceDir.replace(/\/+$/, '') || '/');
    this.events = new EventPorts(this.native, this.devices);
    this.gntdevLimit = new GntdevLimit(this.native);
    this.ownsStore = o.store === undefined;
    this.offerScope = o.store === undefined ? scopeFor(o.xenstorePath ?? process.env.XENSTORED_PATH ?? '') : o.store;
    this.store = (o.store as XenStore | undefined) ?? new XenStore(o.xenstorePath === undefined ? {} : { path: o.xenstorePath });
  }

  /** This domain's id, read once from xenstore's relative `domid`. */
  domainId(): Promise<number> {
    if (!this.domid) {
      const reading = this.readDomid();
      this.domid = reading;
      // A failed read may succeed later (xenstore restarted): don't cache failures.
      reading.catch(() => {
        if (this.domid === reading) this.domid = undefined;
      });
    }
    return this.domid;
  }

  async sharePages(peer: number, count: number, notify?: UnmapNotify): Promise<GrantShare> {
    checkDomid('peer', peer);
    checkCount('count', count);
    const n = checkNotify(notify);
    this.assertOpen();
    return sharePages(this.native, this.devices, peer, count, n);
  }

  async mapGrants(peer: number, refs: readonly number[], writable: boolean, notify?: UnmapNotify): Promise<GrantMapping> {
    checkDomid('peer', peer);
    if (!Array.isArray(refs)) throw new TypeError(`refs must be an array of grant references, got ${describe(refs)}`);
    checkCount('refs.length', refs.length);
    refs.forEach((r: unknown, i) => checkU32(`refs[${i}]`, r));
    if (typeof writable !== 'boolean') throw new TypeError(`writable must be a boolean, got ${describe(writable)}`);
    const n = checkNotify(notify);
    this.assertOpen();
    return mapGrants(this.native, this.devices, this.gntdevLimit, peer, refs, writable, n);
  }

  async bindUnboundPort(peer: number, onEvent: EventHandler): Promise<EventChannel> {
    checkDomid('peer', peer);
    checkHandler(onEvent);
    this.assertOpen();
    return this.events.bindUnbound(peer, onEvent);
  }

  async bindInterdomain(peer: number, remotePort: number, onEvent: EventHandler): Promise<EventChannel> {
    checkDomid('peer', peer);
    checkU32('remotePort', remotePort);
    checkHandler(onEvent);
    this.assertOpen();
    return this.events.bindInterdomain(peer, remotePort, onEvent);
  }

  /**
   * Closes the devices (the kernel unbinds every port left) and the backend's
   * own xenstore client. Shares and mappings not yet released stay valid
   * until released. Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.events.close();
    this.devices.close();
    if (this.ownsStore) this.store.close();
  }

  private assertOpen(): void {
    if (this.closed) throw closedError();
  }

  private async readDomid(): Promise<number> {
    const value = await this.store.read('domid');
    if (value === undefined || !/^[0-9]{1,5}$/.test(value)) {
      throw new VchanError(
        'ENOENT',
        value === undefined
          ? 'cannot tell our own domain id: xenstore has no "domid" under this domain\'s home path'
          : `cannot tell our own domain id: xenstore "domid" holds ${JSON.stringify(value.slice(0, 20))}`,
      );
    }
    return Number(value);
  }
}
