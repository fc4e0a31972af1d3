/**
 * A xenstore client in TypeScript: reads, writes, directories, permissions,
 * transactions (queued, retried on EAGAIN), and watches as callbacks (one
 * WATCH per distinct path), over the
 * xenstored socket or /dev/xen/xenbus. Relative paths resolve under
 * /local/domain/<own id>/ (xenstored does that for us). Errors are
 * VchanErrors whose `code` is xenstore's errno name (ENOENT, EACCES, ...).
 */
import type { Store, StoreAccess, StorePermission, StoreWatch } from '../backend.js';
import { VchanError } from '../errors.js';
import { checkObject, checkSignal, describe } from '../validate.js';
import { pauseAfterConflict, TransactionTurns } from './transaction-turns.js';
import { WatchMux } from './watch-mux.js';
import { XsConnection } from './xenstore-connection.js';
import {
  encodePermissions,
  encodeWritePayload,
  joinStrings,
  parsePermissions,
  splitStrings,
  XS_ABS_PATH_MAX,
  XsType,
  type XsAccess,
} from './xenstore-wire.js';

/** Options of `new XenStore()`. */
export interface XenStoreOptions {
  /**
   * The xenstored socket or device to use. Default: $XENSTORED_PATH or
   * /var/run/xenstored/socket, and /dev/xen/xenbus when that socket does not exist.
   */
  path?: string;
  /**
   * How many times a conflicting (EAGAIN) transaction runs before failing
   * with EAGAIN; default: until it commits (or its signal aborts).
   */
  maxAttempts?: number;
}

/** Options of `XenStore.transaction()` and `writeAll()`. */
export interface TransactionOptions {
  /** Stops waiting for a turn or retrying after a conflict (ERR_VCHAN_ABORTED / ERR_VCHAN_TIMEOUT). */
  signal?: AbortSignal;
}

/** Operations that may run inside a transaction. */
export interface XenStoreOps {
  /** The value at `path`, or undefined when it does not exist. */
  read(path: string): Promise<string | undefined>;
  /** The raw bytes at `path`, or undefined when it does not exist. */
  readBytes(path: string): Promise<Buffer | undefined>;
  /** Names of the children of `path`, or undefined when it does not exist. */
  directory(path: string): Promise<string[] | undefined>;
  /** Sets `path` to `value`, creating it (and missing parents) if need be. */
  write(path: string, value: string | Uint8Array): Promise<void>;
  /** Creates `path` with an empty value; an existing node is left as it is. */
  mkdir(path: string): Promise<void>;
  /** Removes `path` and everything below it; a missing path is not an error. */
  remove(path: string): Promise<void>;
  /** The node's permissions (owner first), or undefined when it does not exist. */
  getPermissions(path: string): Promise<StorePermission[] | undefined>;
  /** Replaces the node's permissions (owner first). */
  setPermissions(path: string, permissions: readonly StorePermission[]): Promise<void>;
}

const ACCESS_TO_WIRE: Record<StoreAccess, XsAccess> = { none: 'n', read: 'r', write: 'w', both: 'b' };
const WIRE_TO_ACCESS: Record<XsAccess, StoreAccess> = { n: 'none', r: 'read', w: 'write', b: 'both' };

function checkPath(name: string, value: unknown, special = false): string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a xenstore path string, got ${describe(value)}`);
  if (value.length === 0) throw new RangeError(`${name} must not be empty`);
  if (value.includes('\0')) throw new RangeError(`${name} must not contain NUL`);
  if (value.length > XS_ABS_PATH_MAX) throw new RangeError(`${name} is longer than ${XS_ABS_PATH_MAX} characters`);
  if (!special && value.startsWith('@')) throw new RangeError(`${name} ${JSON.stringify(value)}: special @ paths are only for watches`);
  return value;
}

function checkPermissions(name: string, value: unknown): readonly StorePermission[] {
  if (!Array.isArray(value) || value.length === 0) throw new TypeError(`${name} must be a non-empty array of {domid, access}`);
  value.forEach((p: unknown, i) => {
    const perm = p as Partial<StorePermission> | null;
    if (typeof perm !== 'object' || perm === null) throw new TypeError(`${name}[${i}] must be {domid, access}, got ${describe(p)}`);
    if (typeof perm.domid !== 'number' || !Number.isInteger(perm.domid)) throw new TypeError(`${name}[${i}].domid must be an integer`);
    if (perm.domid < 0 || perm.domid > 0xffff) throw new RangeError(`${name}[${i}].domid must be in 0..65535, got ${perm.domid}`);
    if (typeof perm.access !== 'string' || !(perm.access in ACCESS_TO_WIRE)) {
      throw new TypeError(`${name}[${i}].access must be 'none', 'read', 'write' or 'both', got ${describe(perm.access)}`);
    }
  });
  return value as readonly StorePermission[];
}

/** xenstored answered ENOENT (not: the connection itself could not be made). */
function isMissing(error: unknown): boolean {
  return error instanceof VchanError && error.code === 'ENOENT' && error.syscall?.startsWith('xenstore ') === true;
}

/** The operations, bound to one transaction id (0 = none). */
class Ops implements XenStoreOps {
  constructor(
    protected conn: XsConnection,
    protected readonly txId: number,
  ) {}

  async readBytes(path: string): Promise<Buffer | undefined> {
    checkPath('path', path);
    try {
      return await this.conn.request(XsType.READ, this.txId, joinStrings([path]), path);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async read(path: string): Promise<string | undefined> {
    return (await this.readBytes(path))?.toString('utf8');
  }

  async directory(path: string): Promise<string[] | undefined> {
    checkPath('path', path);
    try {
      return splitStrings(await this.conn.request(XsType.DIRECTORY, this.txId, joinStrings([path]), path));
    } catch (error) {
      if (isMissing(error)) return undefined;
      // Too many children for one reply: fetch the list in slices.
      if (error instanceof VchanError && error.code === 'E2BIG') return this.directoryInParts(path);
      throw error;
    }
  }

  /**
   * DIRECTORY_PART: each reply is `<generation>\0` and a slice of the
   * NUL-separated list, with one more `\0` after the last slice. A changed
   * generation means the list changed meanwhile: start again.
   */
  private async directoryInParts(path: string): Promise<string[] | undefined> {
    for (let attempt = 0; attempt < 16; attempt++) {
      const slices: Buffer[] = [];
      let generation: string | undefined;
      let offset = 0;
      for (;;) {
        let reply: Buffer;
        try {
          reply = await this.conn.request(XsType.DIRECTORY_PART, this.txId, joinStrings([path, String(offset)]), path);
        } catch (error) {
          if (isMissing(error)) return undefined;
          throw error;
        }
        const nul = reply.indexOf(0);
        if (nul < 0) throw new VchanError('EPROTO', `xenstore DIRECTORY_PART ${path}: malformed reply`);
        const gen = reply.toString('latin1', 0, nul);
        if (generation !== undefined && gen !== generation) break;
        generation = gen;
        const body = reply.subarray(nul + 1);
        const last = body.length === 1 || (body.length >= 2 && body[body.length - 2] === 0 && body[body.length - 1] === 0);
        if (last) {
          slices.push(body.subarray(0, body.length - 1));
          return splitStrings(Buffer.concat(slices));
        }
        if (body.length === 0) throw new VchanError('EPROTO', `xenstore DIRECTORY_PART ${path}: empty slice`);
        slices.push(body);
        offset += body.length;
      }
    }
    throw new VchanError('EAGAIN', `xenstore DIRECTORY_PART ${path}: the directory kept changing while being listed`);
  }

  async write(path: string, value: string | Uint8Array): Promise<void> {
    checkPath('path', path);
    if (typeof value !== 'string' && !(value instanceof Uint8Array)) {
      throw new TypeError(`value must be a string or Uint8Array, got ${describe(value)}`);
    }
    await this.conn.request(XsType.WRITE, this.txId, encodeWritePayload(path, value), path);
  }

  async mkdir(path: string): Promise<void> {
    checkPath('path', path);
    await this.conn.request(XsType.MKDIR, this.txId, joinStrings([path]), path);
  }

  async remove(path: string): Promise<void> {
    checkPath('path', path);
    try {
      await this.conn.request(XsType.RM, this.txId, joinStrings([path]), path);
    } catch (error) {
      if (!isMissing(error)) throw error;
    }
  }

  async getPermissions(path: string): Promise<StorePermission[] | undefined> {
    checkPath('path', path);
    let reply: Buffer;
    try {
      reply = await this.conn.request(XsType.GET_PERMS, this.txId, joinStrings([path]), path);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    const perms = parsePermissions(splitStrings(reply));
    if (!perms) throw new VchanError('EPROTO', `xenstore GET_PERMS ${path}: malformed reply`);
    return perms.map((p) => ({ domid: p.domid, access: WIRE_TO_ACCESS[p.access] }));
  }

  async setPermissions(path: string, permissions: readonly StorePermission[]): Promise<void> {
    checkPath('path', path);
    checkPermissions('permissions', permissions);
    const wire = encodePermissions(permissions.map((p) => ({ domid: p.domid, access: ACCESS_TO_WIRE[p.access] })));
    await this.conn.request(XsType.SET_PERMS, this.txId, Buffer.concat([joinStrings([path]), wire]), path);
  }
}

/** Waits between attempts to connect again after the connection was lost: doubling, up to the last. */
const RECONNECT_MS = { first: 20, max: 1000 };

export class XenStore extends Ops implements Store {
  private readonly maxAttempts: number;
  private readonly turns = new TransactionTurns();
  private readonly watches: WatchMux;
  private readonly path: string | undefined;
  private readonly reconnectListeners = new Set<() => void>();
  private closedByUser = false;
  private reconnecting = false;

  /** Starts connecting at once; requests wait for the connection. See also XenStore.connect. */
  constructor(options: XenStoreOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`options must be an object, got ${describe(options)}`);
    const { path, maxAttempts = Infinity } = options;
    if (path !== undefined && (typeof path !== 'string' || path.length === 0)) {
      throw new TypeError(`options.path must be a non-empty string, got ${describe(path)}`);
    }
    if (!(Number.isInteger(maxAttempts) || maxAttempts === Infinity) || maxAttempts < 1) {
      throw new RangeError(`options.maxAttempts must be a positive integer or Infinity, got ${describe(maxAttempts)}`);
    }
    const lost = { self: undefined as XenStore | undefined };
    super(new XsConnection(path, () => lost.self?.lost()), 0);
    lost.self = this;
    this.path = path;
    this.maxAttempts = maxAttempts;
    this.watches = new WatchMux(() => this.conn);
  }

  /**
   * The connection went away (xenstored restarted, its socket closed):
   * requests in flight have failed with ECONNRESET, and so does every request
   * until a new connection answers; one is tried after 20 ms, then after
   * twice as long each time (up to 1 s), until one does or close() is called.
   * On the new connection every watch is registered again (so each fires
   * once, as on registration), then the reconnect listeners run.
   */
  private lost(): void {
    if (this.closedByUser || this.reconnecting) return;
    this.reconnecting = true;
    void this.reconnect();
  }

  private async reconnect(): Promise<void> {
    for (let wait = RECONNECT_MS.first; ; wait = Math.min(2 * wait, RECONNECT_MS.max)) {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, wait);
        // Watches that keep the process alive keep it alive while they wait for a connection too.
        if (!this.watches.anyReferenced()) timer.unref();
      });
      if (this.closedByUser) return;
      const conn = new XsConnection(this.path, () => this.lost());
      try {
        // Connected is not enough (a restarting xenstored may accept and drop): it must answer.
        await conn.request(XsType.GET_DOMAIN_PATH, 0, joinStrings(['0']), 'probe');
      } catch {
        conn.close();
        continue;
      }
      if (this.closedByUser) return conn.close();
      if (conn.isClosed) continue;
      this.conn = conn;
      this.reconnecting = false;
      this.watches.registerAgain(conn);
      for (const listener of [...this.reconnectListeners]) listener();
      return;
    }
  }

  /** Calls `listener` after each reconnection (see lost()); returns a function that removes it. */
  onReconnect(listener: () => void): () => void {
    if (typeof listener !== 'function') throw new TypeError(`listener must be a function, got ${describe(listener)}`);
    const entry = () => listener();
    this.reconnectListeners.add(entry);
    return () => void this.reconnectListeners.delete(entry);
  }

  /** A connected client; rejects (ENOENT, ECONNREFUSED, ...) when xenstore cannot be reached. */
  static async connect(options?: XenStoreOptions): Promise<XenStore> {
    const store = new XenStore(options);
    await store.conn.connected();
    return store;
  }

  /** The home path of `domid` (/local/domain/<domid>). */
  async getDomainPath(domid: number): Promise<string> {
    if (!Number.isInteger(domid)) throw new TypeError(`domid must be an integer, got ${describe(domid)}`);
    if (domid < 0 || domid > 0xffff) throw new RangeError(`domid must be in 0..65535, got ${domid}`);
    const reply = await this.conn.request(XsType.GET_DOMAIN_PATH, 0, joinStrings([String(domid)]), String(domid));
    return splitStrings(reply)[0] ?? reply.toString('latin1');
  }

  /** Whether the connection is gone (closed, or lost: every request now fails). */
  get isClosed(): boolean {
    return this.conn.isClosed;
  }

  /**
   * Runs `body` in a transaction and commits it; on a conflict (EAGAIN) runs
   * it again from the start after a short random pause, so `body` must be
   * safe to repeat. Any other error aborts the transaction and is rethrown.
   * Transactions of one XenStore run one at a time, in call order.
   */
  async transaction<T>(body: (tx: XenStoreOps) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    if (typeof body !== 'function') throw new TypeError(`body must be a function, got ${describe(body)}`);
    const signal = checkTransactionOptions(options);
    return this.turns.run(() => this.attempts(body, signal), signal);
  }

  private async attempts<T>(body: (tx: XenStoreOps) => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      if (attempt > 1) await pauseAfterConflict(attempt, signal);
      const reply = await this.conn.request(XsType.TRANSACTION_START, 0, joinStrings(['']), 'start');
      const txId = Number(splitStrings(reply)[0] ?? reply.toString('latin1'));
      if (!Number.isInteger(txId) || txId <= 0) throw new VchanError('EPROTO', 'xenstore TRANSACTION_START: malformed transaction id');
      let result: T;
      try {
        result = await body(new Ops(this.conn, txId));
      } catch (error) {
        await this.conn.request(XsType.TRANSACTION_END, txId, joinStrings(['F']), 'abort').catch(() => undefined);
        if (isConflict(error) && attempt < this.maxAttempts) continue;
        throw error;
      }
      try {
        await this.conn.request(XsType.TRANSACTION_END, txId, joinStrings(['T']), 'commit');
        return result;
      } catch (error) {
        if (!isConflict(error) || attempt >= this.maxAttempts) throw error;
      }
    }
  }

  async writeAll(
    entries: ReadonlyArray<readonly [path: string, value: string]>,
    permissions?: readonly StorePermission[],
    options: TransactionOptions = {},
  ): Promise<void> {
    if (!Array.isArray(entries)) throw new TypeError(`entries must be an array of [path, value], got ${describe(entries)}`);
    entries.forEach((e: unknown, i) => {
      if (!Array.isArray(e) || e.length !== 2) throw new TypeError(`entries[${i}] must be [path, value]`);
      checkPath(`entries[${i}][0]`, e[0]);
      if (typeof e[1] !== 'string') throw new TypeError(`entries[${i}][1] must be a string, got ${describe(e[1])}`);
    });
    if (permissions !== undefined) checkPermissions('permissions', permissions);
    await this.transaction(async (tx) => {
      for (const [path, value] of entries) {
        await tx.write(path, value);
        if (permissions) await tx.setPermissions(path, permissions);
      }
    }, options);
  }

  /**
   * Calls `onChange(path)` for every change at or below `path`, and once
   * right after registration (xenstored does that). `path` may be a special
   * path such as `@releaseDomain`. Watches of the same path share one
   * registration with xenstored (its watch quota counts registrations). An
   * exception in `onChange` is reported like an uncaught one.
   */
  async watch(path: string, onChange: (changed: string) => void): Promise<StoreWatch> {
    checkPath('path', path, true);
    if (typeof onChange !== 'function') throw new TypeError(`onChange must be a function, got ${describe(onChange)}`);
    return this.watches.watch(path, onChange);
  }

  /** Closes the connection (and stops making a lost one again); pending requests fail with ERR_VCHAN_CLOSED. Idempotent. */
  close(): void {
    this.closedByUser = true;
    this.reconnectListeners.clear();
    this.conn.close();
  }
}

function checkTransactionOptions(options: unknown): AbortSignal | undefined {
  return checkSignal('options.signal', checkObject('options', options).signal);
}

function isConflict(error: unknown): boolean {
  return error instanceof VchanError && error.code === 'EAGAIN';
}
