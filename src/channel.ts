/**
 * Vchan: one channel, shaped like C libxenvchan's API (server/client setup,
 * partial read/write, all-or-nothing send/recv, wait, close) but
 * non-blocking and promise-based. No streams here; see stream.ts.
 */
import type { Backend } from './backend.js';
import { abortedError, closedError, ErrorCodes, peerClosedError, VchanError } from './errors.js';
import { chooseOrders, Live, Notify, Offsets } from './layout.js';
import { absolutePath, claimOffer } from './offers.js';
import { checkRange } from './ring.js';
import { setupClient, setupServer, type ChannelParts, type Role } from './setup.js';
import { checkDomid, checkObject, checkPath, checkRingMin, checkSignal, describe } from './validate.js';

/** Default minimum ring sizes: 64 KiB each way, a good throughput/memory balance. */
export const DEFAULT_RING_MIN = 65536;

export interface VchanServerOptions {
  /** Domain id of the client that may connect. */
  peer: number;
  /** Xenstore path to publish under (relative paths resolve under our domain). */
  path: string;
  /** Minimum bytes of the ring we read (the C API's left_min). */
  readMin?: number;
  /** Minimum bytes of the ring we write (the C API's right_min). */
  writeMin?: number;
  /** The system to use: a `XenBackend`, or an in-memory one for tests. */
  backend: Backend;
  /** Aborts the setup (it may wait its turn for a xenstore transaction); everything taken is released. */
  signal?: AbortSignal;
}

export interface VchanClientOptions {
  /** Domain id of the server. */
  peer: number;
  /** Xenstore path the server published under. */
  path: string;
  /** The system to use: a `XenBackend`, or an in-memory one for tests. */
  backend: Backend;
  /** Aborts waiting for the server and the setup; everything taken is released. */
  signal?: AbortSignal;
  /**
   * With a `signal`: an offer found stale or already taken (EINVAL on bind
   * or map while the server's domain lives) is tried again once its
   * entries change, until `signal`, instead of failing at once.
   * Default: true when `signal` is given.
   */
  retryStale?: boolean;
}

/** Options of the calls that wait for the peer. */
export interface WaitOptions {
  /** Stops the wait with ERR_VCHAN_ABORTED (ERR_VCHAN_TIMEOUT for an AbortSignal.timeout()). */
  signal?: AbortSignal;
}

/** readExactly() allocates what it returns: at most 64 MiB at once. */
const MAX_READ_EXACTLY = 64 << 20;

/** 0 = closed, 1 = connected, 2 = server waiting for its client (as libxenvchan_is_open). */
export type OpenState = 0 | 1 | 2;

type Waiter = { resolve: () => void; reject: (error: unknown) => void };

function checkBackend(value: unknown): Backend {
  const b = value as Partial<Backend> | undefined;
  if (typeof b !== 'object' || b === null || typeof b.sharePages !== 'function' || typeof b.mapGrants !== 'function' || typeof b.store !== 'object') {
    throw new TypeError(`backend must implement Backend, got ${describe(value)}`);
  }
  return value as Backend;
}

/**
 * One channel with C libxenvchan's calls, non-blocking: `Vchan.server()` and
 * `Vchan.client()` set it up; `read`/`write`/`send`/`recv`, `dataReady`,
 * `bufferSpace`, `isOpen`, `wait` and `close` work as their C namesakes.
 */
export class Vchan {
  /** Which end this is. */
  readonly role: Role;
  /** The other end's domain id. */
  readonly peer: number;
  /** The xenstore path the channel is published under. */
  readonly path: string;
  private readonly parts: ChannelParts;
  /** Byte that holds requests addressed to us (we clear it after acting). */
  private readonly inboxOffset: number;
  /** Byte where we post requests addressed to the peer. */
  private readonly outboxOffset: number;
  private readonly peerLiveOffset: number;
  private readonly ownLiveOffset: number;
  /** Set once everything the channel holds is being released: by close(), or because the peer left. */
  private releasing: Promise<void> | undefined;
  private closedByUs = false;
  /** Once the peer is seen gone: what it left unread for us, copied out before the pages went. */
  private departure: Departure | undefined;
  private peerSeenConnected = false;
  private domainGone = false;
  /** Server: withdraws the offer (entries, then the path claim), once. */
  private withdrawal: (() => Promise<void>) | undefined;
  private withdrawing: Promise<void> | undefined;
  private markReleased!: () => void;
  private readonly releasedPromise = new Promise<void>((resolve) => (this.markReleased = resolve));
  private waiters: Waiter[] = [];
  private readonly listeners = new Set<() => void>();
  /** What the peer controls, as the last event saw it: its two counters and whether it is open. */
  private seenProduced = -1;
  private seenConsumed = -1;
  private seenOpen: OpenState | -1 = -1;

  private constructor(role: Role, peer: number, path: string, parts: ChannelParts) {
    this.role = role;
    this.peer = peer;
    this.path = path;
    this.parts = parts;
    const server = role === 'server';
    this.inboxOffset = server ? Offsets.SRV_NOTIFY : Offsets.CLI_NOTIFY;
    this.outboxOffset = server ? Offsets.CLI_NOTIFY : Offsets.SRV_NOTIFY;
    this.peerLiveOffset = server ? Offsets.CLI_LIVE : Offsets.SRV_LIVE;
    this.ownLiveOffset = server ? Offsets.SRV_LIVE : Offsets.CLI_LIVE;
  }

  /** Shares the pages, publishes them in xenstore and returns at once; the client connects later. */
  static async server(options: VchanServerOptions): Promise<Vchan> {
    const o = checkObject('options', options);
    const peer = checkDomid('peer', o.peer);
    const path = checkPath('path', o.path);
    const readMin = o.readMin === undefined ? DEFAULT_RING_MIN : checkRingMin('readMin', o.readMin);
    const writeMin = o.writeMin === undefined ? DEFAULT_RING_MIN : checkRingMin('writeMin', o.writeMin);
    const backend = checkBackend(o.backend);
    const signal = checkSignal('signal', o.signal);
    const orders = chooseOrders(readMin, writeMin);
    const relay = new EventRelay();
    const unclaim = claimOffer(backend, absolutePath(await backend.domainId(), path));
    let parts: ChannelParts;
    try {
      parts = await setupServer({
        backend, peer, path, leftOrder: orders.left, rightOrder: orders.right, onEvent: relay.fire, onPeerGone: relay.peerGone, signal,
      });
    } catch (error) {
      unclaim();
      throw error;
    }
    // Released last: the path is free again once the entries are gone.
    parts.releases.unshift(unclaim);
    const vchan = new Vchan('server', peer, path, parts);
    vchan.withdrawal = () => (vchan.withdrawing ??= parts.withdraw!().then(unclaim, (error: unknown) => {
      unclaim();
      throw error;
    }));
    return relay.attach(vchan);
  }

  /** Waits for the server's entries (xenstore watch), maps its pages and connects. */
  static async client(options: VchanClientOptions): Promise<Vchan> {
    const o = checkObject('options', options);
    const peer = checkDomid('peer', o.peer);
    const path = checkPath('path', o.path);
    const backend = checkBackend(o.backend);
    const signal = checkSignal('signal', o.signal);
    const relay = new EventRelay();
    if (o.retryStale !== undefined && typeof o.retryStale !== 'boolean') throw new TypeError(`retryStale must be a boolean, got ${describe(o.retryStale)}`);
    const retryStale = signal !== undefined && o.retryStale !== false;
    const parts = await setupClient({ backend, peer, path, signal, retryStale, onEvent: relay.fire, onPeerGone: relay.peerGone });
    return relay.attach(new Vchan('client', peer, path, parts));
  }

  /** Size in bytes of the ring we read. */
  get readSize(): number {
    return this.parts.reader.size;
  }

  /** Size in bytes of the ring we write. */
  get writeSize(): number {
    return this.parts.writer.size;
  }

  /** close() was called. (A channel whose peer left is released too, but not closed: its last bytes stay readable.) */
  get closed(): boolean {
    return this.closedByUs;
  }

  /**
   * Resolves once the pages, the port, the peer watch and (server) the
   * xenstore entries are released: after close(), or as soon as the peer is
   * seen gone. Never rejects.
   */
  released(): Promise<void> {
    return this.releasedPromise;
  }

  /**
   * Server: resolves once the offer's xenstore entries are gone and its path
   * may be offered again; withdraws them now if the client has not come.
   * Client: resolves at once. The channel itself stays open.
   */
  offerWithdrawn(): Promise<void> {
    return this.withdrawal ? this.withdrawal() : Promise.resolve();
  }

  /** The peer's domain was seen destroyed (not merely its process gone). */
  get peerDomainGone(): boolean {
    return this.domainGone;
  }

  /** The local event channel port (for diagnostics). */
  get port(): number {
    return this.parts.port.port;
  }

  /** Like libxenvchan_is_open: 0 closed, 1 connected, 2 (server only) client not yet connected. */
  isOpen(): OpenState {
    if (this.closedByUs || this.departure) return 0;
    const live = this.parts.page.loadByte(this.peerLiveOffset);
    // A peer that went away stays gone, whatever it writes later.
    if (live === Live.CONNECTED) {
      if (!this.peerSeenConnected) {
        this.peerSeenConnected = true;
        // A client that connected certainly had a domain: if it is gone already, it was destroyed.
        this.parts.peerExisted?.();
        // Taken: no second client may find these entries (Qubes' libvchan withdraws them at once too).
        this.offerWithdrawn().catch(() => undefined);
      }
      return 1;
    }
    if (live === Live.WAITING && this.role === 'server') return this.peerSeenConnected ? 1 : 2;
    this.depart();
    return 0;
  }

  /** Bytes ready to read, without asking the peer for a notification. */
  available(): number {
    this.assertNotClosed();
    if (this.departure) return this.departure.left();
    return this.parts.reader.ready();
  }

  /** Bytes ready to read; asks the peer to notify us when it writes more. */
  dataReady(): number {
    this.assertNotClosed();
    if (this.departure) return this.departure.left();
    this.request(Notify.WRITE);
    return this.parts.reader.ready();
  }

  /**
   * Free bytes in the write ring; asks the peer to notify us when it reads.
   * Once the peer is gone: the space as it left it (so `writeSize -
   * bufferSpace()` is what it never read).
   */
  bufferSpace(): number {
    this.assertNotClosed();
    if (this.departure) return this.departure.space;
    this.request(Notify.READ);
    return this.parts.writer.space();
  }

  /**
   * Reads up to `length` bytes; returns how many (0 when nothing is ready).
   * Throws ERR_VCHAN_PEER_CLOSED once the peer is gone and the ring is empty.
   */
  read(into: Uint8Array, offset = 0, length = into.length - offset): number {
    checkBytes('into', into);
    checkRange(into, offset, length);
    this.assertNotClosed();
    if (this.departure) return this.departure.read(into, offset, length);
    const reader = this.parts.reader;
    let ready = reader.ready();
    if (ready < length) {
      // We will drain what is there: ask to hear about more, then look again (it may have raced in).
      this.request(Notify.WRITE);
      ready = reader.ready();
    }
    // Liveness is read after the counter, so bytes written just before the peer left are in the copy.
    if (ready === 0 && length > 0 && this.isOpen() === 0) return this.departure!.read(into, offset, length);
    const count = Math.min(ready, length);
    if (count > 0) {
      reader.readKnown(into, offset, count);
      this.acknowledge(Notify.READ);
    }
    return count;
  }

  /** Writes up to `length` bytes; returns how many fit (0 when the ring is full). */
  write(from: Uint8Array, offset = 0, length = from.length - offset): number {
    checkBytes('from', from);
    checkRange(from, offset, length);
    this.assertWritable();
    const writer = this.parts.writer;
    let space = writer.space();
    if (space < length) {
      this.request(Notify.READ);
      space = writer.space();
    }
    const count = Math.min(space, length);
    if (count > 0) {
      writer.writeKnown(from, offset, count);
      this.acknowledge(Notify.WRITE);
    }
    return count;
  }

  /** Writes all of `from` or nothing; returns from.length or 0. */
  send(from: Uint8Array): number {
    checkBytes('from', from);
    this.assertWritable();
    const writer = this.parts.writer;
    if (from.length > writer.size) throw tooBig('send', from.length, writer.size);
    if (writer.space() < from.length) {
      this.request(Notify.READ);
      if (writer.space() < from.length) return 0;
    }
    writer.writeKnown(from, 0, from.length);
    if (from.length > 0) this.acknowledge(Notify.WRITE);
    return from.length;
  }

  /** Fills all of `into` or reads nothing; returns into.length or 0. */
  recv(into: Uint8Array): number {
    checkBytes('into', into);
    this.assertNotClosed();
    const reader = this.parts.reader;
    if (into.length > reader.size) throw tooBig('recv', into.length, reader.size);
    if (this.departure) return this.departure.recv(into);
    if (reader.ready() < into.length) {
      this.request(Notify.WRITE);
      if (reader.ready() < into.length) {
        // As in read(): once the peer is seen gone, what it left is in the copy.
        if (this.isOpen() !== 0) return 0;
        return this.departure!.recv(into);
      }
    }
    reader.readKnown(into, 0, into.length);
    if (into.length > 0) this.acknowledge(Notify.READ);
    return into.length;
  }

  /**
   * Resolves at the next event from the peer (data, space, liveness). Resolves
   * at once when the peer is already gone, so loops re-check instead of hanging.
   */
  wait(signal?: AbortSignal): Promise<void> {
    checkSignal('signal', signal);
    if (this.closedByUs) return Promise.reject(closedError());
    if (signal?.aborted) return Promise.reject(abortedError(signal));
    if (this.isOpen() === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(abortedError(signal!));
      };
      const waiter: Waiter = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      this.waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Writes all of `from`, waiting for the peer to make room as often as it
   * takes. Rejects with ERR_VCHAN_PEER_CLOSED if the peer leaves first (what
   * went into the ring before stays there), ERR_VCHAN_ABORTED on `signal`.
   */
  async writeAll(from: Uint8Array, options: WaitOptions = {}): Promise<void> {
    checkBytes('from', from);
    const signal = checkSignal('options.signal', checkObject('options', options).signal);
    let done = this.write(from);
    while (done < from.length) {
      await this.wait(signal);
      done += this.write(from, done, from.length - done);
    }
  }

  /**
   * Reads exactly `length` bytes (any number: longer than the ring too),
   * waiting for the peer as often as it takes. Rejects with
   * ERR_VCHAN_PEER_CLOSED, saying how many had arrived, if the peer leaves
   * before all did (those are consumed), ERR_VCHAN_ABORTED on `signal`.
   */
  async readExactly(length: number, options: WaitOptions = {}): Promise<Buffer> {
    if (typeof length !== 'number' || !Number.isInteger(length)) throw new TypeError(`length must be an integer, got ${describe(length)}`);
    if (length < 0 || length > MAX_READ_EXACTLY) throw new RangeError(`length must be in 0..${MAX_READ_EXACTLY}, got ${length}`);
    const signal = checkSignal('options.signal', checkObject('options', options).signal);
    const into = Buffer.allocUnsafe(length);
    let done = 0;
    try {
      done += this.read(into, done, length - done);
      while (done < length) {
        await this.wait(signal);
        done += this.read(into, done, length - done);
      }
    } catch (error) {
      if (error instanceof VchanError && error.code === ErrorCodes.PEER_CLOSED) {
        throw peerClosedError(`the peer closed the channel after ${done} of the ${length} bytes asked for`);
      }
      throw error;
    }
    return into;
  }

  /**
   * Resolves once the peer has read everything we wrote (our write ring is
   * empty), driven by the peer's read notifications, never by polling.
   * Rejects with ERR_VCHAN_PEER_CLOSED if the peer left with bytes of ours
   * unread, ERR_VCHAN_CLOSED after close(), ERR_VCHAN_ABORTED on `signal`.
   */
  async drained(options: WaitOptions = {}): Promise<void> {
    const signal = checkSignal('options.signal', checkObject('options', options).signal);
    // bufferSpace() asks the peer to notify us when it reads: each wait() ends at such a read.
    while (this.bufferSpace() < this.writeSize) {
      if (this.departure) throw peerClosedError();
      await this.wait(signal);
    }
  }

  /** Calls `listener` on every event until the returned function is called. */
  onEvent(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Closes: marks us gone and wakes the peer, then releases every page, the
   * port and (server) the xenstore entries. Data already in the rings stays
   * readable by the peer. Safe to call more than once.
   */
  close(): Promise<void> {
    if (!this.closedByUs) {
      this.closedByUs = true;
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w.reject(closedError());
      this.listeners.clear();
    }
    return this.release();
  }

  /** Marks the peer gone without a liveness change (e.g. its domain was destroyed). */
  markPeerGone(): void {
    this.domainGone = true;
    if (this.closedByUs || this.departure) return;
    this.depart();
  }

  /** Keeps the process alive while the channel is open (the default), as a ref'ed socket does. */
  ref(): void {
    for (const handle of this.parts.handles) handle.ref?.();
  }

  /** Lets the process exit although the channel is open, as an unref'ed socket does. */
  unref(): void {
    for (const handle of this.parts.handles) handle.unref?.();
  }

  /**
   * @internal Called by the backend's event handler. Wakes every waiter and
   * listener; returns false when the peer changed nothing since the last
   * event (a flood), so the backend can slow its wake-ups down.
   */
  dispatch(): boolean {
    if (this.releasing) return false;
    const changed = this.peerMoved();
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve();
    for (const listener of this.listeners) listener();
    return changed;
  }

  /**
   * Whether the peer's counters or liveness moved since the last call. Uses
   * the validated counters, which only move forward and at most a ring ahead
   * of us, so a peer cannot fake endless progress; a corrupt counter counts
   * as a change (the reader then sees ERR_VCHAN_PROTOCOL).
   */
  private peerMoved(): boolean {
    const { reader, writer } = this.parts;
    try {
      reader.ready();
      writer.space();
    } catch {
      return true;
    }
    const open = this.isOpen();
    const moved = reader.peerCounter !== this.seenProduced || writer.peerCounter !== this.seenConsumed || open !== this.seenOpen;
    this.seenProduced = reader.peerCounter;
    this.seenConsumed = writer.peerCounter;
    this.seenOpen = open;
    return moved;
  }

  /**
   * The peer is seen gone: copy what it left unread (at most one ring, 1 MiB)
   * out of the shared pages, then release everything at once. A dead peer's
   * kernel asked us to unmap; until we do, its domain cannot free those pages.
   */
  private depart(): void {
    const { reader, writer } = this.parts;
    let unread = Buffer.alloc(0);
    let failure: unknown;
    let space = 0;
    try {
      const count = reader.ready();
      unread = Buffer.allocUnsafe(count);
      reader.readKnown(unread, 0, count);
      space = writer.space();
    } catch (error) {
      failure = error; // corrupt counters: the reader gets ERR_VCHAN_PROTOCOL instead of bytes
    }
    this.departure = new Departure(unread, space, failure);
    void this.release();
    // Wake everyone once more (after the current caller returns): reads now see the copy, then the end.
    queueMicrotask(() => {
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w.resolve();
      for (const listener of [...this.listeners]) listener();
      this.listeners.clear();
    });
  }

  /** Marks us gone, wakes the peer and releases every part, once. */
  private release(): Promise<void> {
    if (this.releasing) return this.releasing;
    const { page, port, releases } = this.parts;
    page.storeByte(this.ownLiveOffset, Live.EXITED);
    try {
      port.notify();
    } catch {
      // The peer's end of the port is gone with it: nobody left to wake.
    }
    this.releasing = releases.releaseAll();
    this.releasing.then(this.markReleased, this.markReleased);
    return this.releasing;
  }

  private request(bit: number): void {
    this.parts.page.orByte(this.outboxOffset, bit);
  }

  /** Clears the peer's request for `bit` and notifies only if it had asked. */
  private acknowledge(bit: number): void {
    const page = this.parts.page;
    // A plain load first: the atomic AND is only worth it when the bit is set.
    // Safe: our counter was published (seq-cst) before this load, and a peer
    // that sets the bit afterwards re-reads that counter before sleeping.
    if ((page.loadByte(this.inboxOffset) & bit) === 0) return;
    const previous = page.andByte(this.inboxOffset, ~bit & 0xff);
    if (previous & bit) this.parts.port.notify();
  }

  private assertNotClosed(): void {
    if (this.closedByUs) throw closedError();
  }

  private assertWritable(): void {
    this.assertNotClosed();
    if (this.isOpen() === 0) throw peerClosedError();
  }
}

function checkBytes(name: string, value: unknown): void {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${name} must be a Buffer or Uint8Array, got ${describe(value)}`);
}

function tooBig(op: string, length: number, size: number): VchanError {
  return new VchanError(ErrorCodes.TOO_BIG, `${op} of ${length} bytes can never fit a ring of ${size} bytes`);
}

/** What a departed peer left unread, served by read/recv until empty, then ERR_VCHAN_PEER_CLOSED. */
class Departure {
  private offset = 0;

  constructor(
    private readonly unread: Buffer,
    /** Free space of our write ring when the peer left. */
    readonly space: number,
    private readonly failure: unknown,
  ) {}

  left(): number {
    return this.unread.length - this.offset;
  }

  read(into: Uint8Array, offset: number, length: number): number {
    if (length === 0) return 0;
    const count = Math.min(length, this.left());
    if (count === 0) throw this.failure ?? peerClosedError();
    into.set(this.unread.subarray(this.offset, this.offset + count), offset);
    this.offset += count;
    return count;
  }

  recv(into: Uint8Array): number {
    if (into.length === 0) return 0;
    if (this.left() < into.length) throw this.failure ?? peerClosedError();
    return this.read(into, 0, into.length);
  }
}

/** Routes backend events to the Vchan once it exists (events before that have nothing to wake). */
class EventRelay {
  private target: Vchan | undefined;
  private goneEarly = false;
  // Events before the Vchan exists are part of setup: never treated as a flood.
  readonly fire = (): boolean => this.target?.dispatch() ?? true;
  readonly peerGone = (): void => {
    if (this.target) this.target.markPeerGone();
    else this.goneEarly = true;
  };

  attach(vchan: Vchan): Vchan {
    this.target = vchan;
    if (this.goneEarly) vchan.markPeerGone();
    return vchan;
  }
}
