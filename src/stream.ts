/**
 * VchanStream: a node:stream Duplex over a Vchan, shaped and behaving like
 * a net.Socket. Writes fill the ring as far as it goes and wait for space
 * only then; reads drain what is ready. Backpressure works both ways: we
 * take bytes out of the ring only when the consumer asks, so a slow
 * consumer stalls the peer's writer, not our memory.
 *
 * libvchan has no half-close: end() flushes our writes into the ring and then
 * closes the whole channel (the peer can still read what we wrote; what had
 * already arrived from it is still delivered here). When the peer closes,
 * the readable side ends after the data it left and, as net.Socket's default
 * allowHalfOpen: false does, the stream then ends and closes itself.
 */
import { Duplex, type DuplexOptions } from 'node:stream';
import type { Vchan } from './channel.js';
import { ErrorCodes, peerClosedError, type VchanError } from './errors.js';

/** Options of `new VchanStream()`: a Duplex's, less the implementation hooks. */
export type VchanStreamOptions = Omit<DuplexOptions, 'read' | 'write' | 'writev' | 'final' | 'destroy' | 'construct'>;

/**
 * Where a stream's channel comes from: a Vchan, a promise of one, or a
 * function that sets one up and is told (by `signal`) when the stream is
 * destroyed before the setup finished, so it can stop and release.
 */
export type VchanSource = Vchan | Promise<Vchan> | ((signal: AbortSignal) => Promise<Vchan>);

/** Who the stream talks to, known before the channel is set up. */
export interface VchanAddress {
  /** The peer's domain id. */
  readonly peer: number;
  /** Undefined until set up when it depends on our domain id (connect with a port). */
  readonly path?: string;
  /** The Qubes-style port, when the stream was made with one. */
  readonly port?: number;
}

/** Largest chunk pushed to the readable side. */
const READ_CHUNK = 64 * 1024;

/**
 * Carves read chunks out of 1 MiB slabs: one allocation per slab instead of
 * one per chunk (each fresh large Buffer costs an allocation, page faults
 * and GC pressure). A chunk the consumer keeps keeps its slab alive, as
 * Node's own small-Buffer pool does.
 */
class Slab {
  private static readonly SIZE = 1 << 20;
  private buffer = Buffer.allocUnsafe(0);
  private used = 0;

  take(length: number): Buffer {
    if (this.buffer.length - this.used < length) {
      this.buffer = Buffer.allocUnsafe(Math.max(Slab.SIZE, length));
      this.used = 0;
    }
    const chunk = this.buffer.subarray(this.used, this.used + length);
    // Keep chunks 8-byte aligned, so a consumer can view them as wider arrays.
    this.used += (length + 7) & ~7;
    return chunk;
  }
}

interface PendingWrite {
  chunks: Buffer[];
  index: number;
  offset: number;
  callback: (error?: Error | null) => void;
  /** The peer closed under this write: it fails with this once the readable side has ended. */
  failed?: Error;
}

/** An error on a VchanStream: a VchanError, or what destroy(err) was given. */
export type VchanStreamError =
  | VchanError
  | (Error & {
      /** The code of the error `destroy()` was given, if it had one. */
      code?: string;
    });

// Typed events, so listeners compile under --strict (merged into the class).
export interface VchanStream {
  /** Adds a listener for `'error'`: a `VchanError` with a stable `code`, or the error `destroy()` was given. */
  on(event: 'error', listener: (error: VchanStreamError) => void): this;
  /** Adds a listener for `'data'`: a chunk of what the peer wrote. */
  on(event: 'data', listener: (chunk: Buffer) => void): this;
  /** Adds a listener for `'close'`; `hadError` says whether `'error'` came first. */
  on(event: 'close', listener: (hadError: boolean) => void): this;
  /** Adds a listener for an event without arguments: `'connect'` (the peer is here), `'ready'`, `'listening'` (a server's offer is published), `'end'`, `'finish'`, `'drain'`, `'readable'`, `'timeout'`. */
  on(event: 'connect' | 'ready' | 'listening' | 'end' | 'finish' | 'drain' | 'readable' | 'timeout', listener: () => void): this;
  /** Adds a listener for any other event, as `EventEmitter` does. */
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  /** Adds a one-time listener for `'error'`: a `VchanError` with a stable `code`, or the error `destroy()` was given. */
  once(event: 'error', listener: (error: VchanStreamError) => void): this;
  /** Adds a one-time listener for `'data'`: a chunk of what the peer wrote. */
  once(event: 'data', listener: (chunk: Buffer) => void): this;
  /** Adds a one-time listener for `'close'`; `hadError` says whether `'error'` came first. */
  once(event: 'close', listener: (hadError: boolean) => void): this;
  /** Adds a one-time listener for an event without arguments: `'connect'` (the peer is here), `'ready'`, `'listening'` (a server's offer is published), `'end'`, `'finish'`, `'drain'`, `'readable'`, `'timeout'`. */
  once(event: 'connect' | 'ready' | 'listening' | 'end' | 'finish' | 'drain' | 'readable' | 'timeout', listener: () => void): this;
  /** Adds a one-time listener for any other event, as `EventEmitter` does. */
  once(event: string | symbol, listener: (...args: any[]) => void): this;
  /** Removes a listener for `'error'`: a `VchanError` with a stable `code`, or the error `destroy()` was given. */
  off(event: 'error', listener: (error: VchanStreamError) => void): this;
  /** Removes a listener for `'data'`: a chunk of what the peer wrote. */
  off(event: 'data', listener: (chunk: Buffer) => void): this;
  /** Removes a listener for `'close'`; `hadError` says whether `'error'` came first. */
  off(event: 'close', listener: (hadError: boolean) => void): this;
  /** Removes a listener for an event without arguments: `'connect'` (the peer is here), `'ready'`, `'listening'` (a server's offer is published), `'end'`, `'finish'`, `'drain'`, `'readable'`, `'timeout'`. */
  off(event: 'connect' | 'ready' | 'listening' | 'end' | 'finish' | 'drain' | 'readable' | 'timeout', listener: () => void): this;
  /** Removes a listener for any other event, as `EventEmitter` does. */
  off(event: string | symbol, listener: (...args: any[]) => void): this;
  /** Adds a listener (as `on`) for `'error'`: a `VchanError` with a stable `code`, or the error `destroy()` was given. */
  addListener(event: 'error', listener: (error: VchanStreamError) => void): this;
  /** Adds a listener (as `on`) for `'data'`: a chunk of what the peer wrote. */
  addListener(event: 'data', listener: (chunk: Buffer) => void): this;
  /** Adds a listener (as `on`) for `'close'`; `hadError` says whether `'error'` came first. */
  addListener(event: 'close', listener: (hadError: boolean) => void): this;
  /** Adds a listener (as `on`) for an event without arguments: `'connect'` (the peer is here), `'ready'`, `'listening'` (a server's offer is published), `'end'`, `'finish'`, `'drain'`, `'readable'`, `'timeout'`. */
  addListener(event: 'connect' | 'ready' | 'listening' | 'end' | 'finish' | 'drain' | 'readable' | 'timeout', listener: () => void): this;
  /** Adds a listener (as `on`) for any other event, as `EventEmitter` does. */
  addListener(event: string | symbol, listener: (...args: any[]) => void): this;
}

/**
 * A vchan as a `node:stream` Duplex that behaves like a `net.Socket`; made by
 * `listen()` and `connect()`, or from a `Vchan` (or its setup) with
 * `new VchanStream(source)`.
 */
export class VchanStream extends Duplex {
  private channel: Vchan | undefined;
  private readonly source: VchanSource;
  private readonly address: VchanAddress | undefined;
  /** Aborted when the stream is destroyed while the setup still runs. */
  private readonly setupAbort = new AbortController();
  private unsubscribe: (() => void) | undefined;
  private pendingWrite: PendingWrite | undefined;
  private wantRead = false;
  private draining = false;
  /** 'connect' was emitted: the peer is (or was) there, and its bytes may flow. */
  private connected = false;
  /** Bytes may be delivered: a turn has passed since 'connect'. */
  private readReady = false;
  /** Writes may move: 'connect' was emitted (or our own listener for it ran). */
  private writeReady = false;
  /** A write before 'connect' added the listener that moves it. */
  private flushOnConnect = false;
  /** 'listening' has had its own turn: a 'connect' may follow. */
  private mayConnect = false;
  private referenced = true;
  /** After our end(): what had arrived from the peer, copied out before the channel closed. */
  private tail: Buffer[] | undefined;
  /** An end() waiting for its chance to close (a server whose client has not read our data yet). */
  private finishing = false;
  /** Reports 'finish' once connected. */
  private finished: (() => void) | undefined;
  /** A server's end() came before its client: close only once the client has read what we wrote. */
  private waitForReader = false;
  private dispatched = 0;
  private received = 0;
  private readonly slab = new Slab();
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private idleMs = 0;

  constructor(source: VchanSource, options: VchanStreamOptions = {}, address?: VchanAddress) {
    super({
      ...options,
      // As net.Socket: once the peer is gone and its data delivered, end and close.
      allowHalfOpen: options.allowHalfOpen ?? false,
      // Node's 16 KiB default would split every ring-full into several pushes.
      readableHighWaterMark: options.readableHighWaterMark ?? options.highWaterMark ?? READ_CHUNK,
      decodeStrings: true,
      objectMode: false,
    });
    this.source = source;
    this.address = address;
  }

  /** The underlying channel, once set up. */
  get vchan(): Vchan | undefined {
    return this.channel;
  }

  /** The peer's domain id (undefined for a wrapped Vchan still setting up). */
  get peer(): number | undefined {
    return this.address?.peer ?? this.channel?.peer;
  }

  /** The xenstore path of the channel. */
  get path(): string | undefined {
    return this.channel?.path ?? this.address?.path;
  }

  /** The Qubes-style port number, when the channel was given one. */
  get port(): number | undefined {
    return this.address?.port;
  }

  /** Bytes delivered to the readable side, as net.Socket#bytesRead. */
  get bytesRead(): number {
    return this.received;
  }

  /** Bytes written into the ring plus those still queued, as net.Socket#bytesWritten. */
  get bytesWritten(): number {
    return this.dispatched + this.writableLength;
  }

  /** True until the peer is there ('connect'), as net.Socket#connecting. */
  get connecting(): boolean {
    return !this.connected && !this.destroyed;
  }

  /** True while not connected, as net.Socket#pending. */
  get pending(): boolean {
    return !this.connected || this.destroyed;
  }

  /** As net.Socket#readyState. */
  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }

  // node:net.Socket look-alikes, so code written for sockets (http.Agent
  // keep-alive, servers fed with emit('connection')) runs unchanged.
  /** No-op: a vchan has no keep-alive probes; a peer that dies is seen at once. */
  setKeepAlive(): this {
    return this;
  }

  /** No-op: every write goes into the ring at once. */
  setNoDelay(): this {
    return this;
  }

  /** The open channel keeps the process alive (the default). */
  ref(): this {
    this.referenced = true;
    this.channel?.ref();
    return this;
  }

  /** The open channel no longer keeps the process alive (an idle keep-alive socket in a pool). */
  unref(): this {
    this.referenced = false;
    this.channel?.unref();
    return this;
  }

  /** As net.Socket: end(), then destroy() once finished. */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  /** Closes at once, dropping what is not yet in the ring (net.Socket's RST). */
  resetAndDestroy(): this {
    return this.destroy();
  }

  /**
   * As net.Socket: 'timeout' after `ms` without bytes read or written (0
   * turns it off); the stream stays open. `callback` is a once-listener.
   */
  setTimeout(ms: number, callback?: () => void): this {
    if (typeof ms !== 'number') throw new TypeError(`ms must be a number of milliseconds, got ${typeof ms}`);
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`ms must be a finite number ≥ 0, got ${ms}`);
    if (callback !== undefined && typeof callback !== 'function') throw new TypeError('callback must be a function');
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (callback) {
      if (ms === 0) this.off('timeout', callback);
      else this.once('timeout', callback);
    }
    this.idleMs = ms;
    if (ms > 0 && !this.destroyed) {
      this.idleTimer = setTimeout(() => this.emit('timeout'), ms);
      this.idleTimer.unref();
    }
    return this;
  }

  /** The idle timeout set by setTimeout(), if any. */
  get timeout(): number | undefined {
    return this.idleTimer ? this.idleMs : undefined;
  }

  /** As net: the first write before 'connect' adds the 'connect' listener that moves what was written. */
  override write(chunk: any, callback?: (error: Error | null | undefined) => void): boolean;
  override write(chunk: any, encoding: BufferEncoding, callback?: (error: Error | null | undefined) => void): boolean;
  override write(...args: [any, any?, any?]): boolean {
    if (!this.connected && !this.flushOnConnect) {
      this.flushOnConnect = true;
      this.once('connect', () => {
        this.writeReady = true;
        this.continueWrite();
      });
    }
    return super.write(...(args as [any, BufferEncoding, () => void]));
  }

  /** Also stops a setup still running (Node would wait for it before _destroy). */
  override destroy(error?: Error): this {
    if (!this.channel && !this.destroyed) this.setupAbort.abort(error ?? new Error('the stream was destroyed'));
    return super.destroy(error);
  }

  /** @internal Node's Duplex implementation. */
  override _construct(callback: (error?: Error | null) => void): void {
    const source = this.source;
    const setup = typeof source === 'function' ? source(this.setupAbort.signal) : source;
    Promise.resolve(setup).then(
      (vchan) => {
        this.channel = vchan;
        if (this.destroyed) return callback(); // _destroy closes it
        this.unsubscribe = vchan.onEvent(() => this.onChannelEvent());
        if (!this.referenced) vchan.unref();
        callback();
        // Never in the caller's turn: a listener attached in reaction to the previous event must be able to exist.
        process.nextTick(() => this.announce(vchan));
      },
      // Destroyed meanwhile: the setup's failure is only its cancellation.
      (error: Error) => callback(this.destroyed ? null : error),
    );
  }

  /** @internal Node's Duplex implementation. */
  override _read(): void {
    this.wantRead = true;
    this.drain();
  }

  /** @internal Node's Duplex implementation. */
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.pendingWrite = { chunks: [chunk], index: 0, offset: 0, callback };
    this.continueWrite();
  }

  /** @internal Node's Duplex implementation. */
  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.pendingWrite = { chunks: chunks.map((c) => c.chunk), index: 0, offset: 0, callback };
    this.continueWrite();
  }

  /** @internal Node's Duplex implementation. */
  override _final(callback: (error?: Error | null) => void): void {
    // All writes are in the ring now. A server whose client has not come yet keeps its offer for it.
    this.waitForReader = this.channel?.role === 'server' && this.channel.isOpen() === 2;
    this.finishing = true;
    this.tryFinish();
    // Our bytes are all in the ring: 'finish' (as net's once the kernel has them),
    // never before 'connect' (the close itself may wait for a reader).
    this.finished = () => {
      this.finished = undefined;
      // A microtask: after the promise reactions already queued (an 'end' awaited), before the next I/O.
      queueMicrotask(() => !this.destroyed && callback());
    };
    if (this.connected) this.finished();
  }

  /** @internal Node's Duplex implementation. */
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.finishing = false;
    const pending = this.pendingWrite;
    this.pendingWrite = undefined;
    // Our own destroy(), not the peer: Node's code for a write cut short by it (net says ERR_SOCKET_CLOSED).
    pending?.callback(error ?? Object.assign(new Error('the stream was destroyed'), { code: 'ERR_STREAM_DESTROYED' }));
    this.closeChannel().then(
      () => callback(error),
      (closeError: Error) => callback(error ?? closeError),
    );
  }

  private closeChannel(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    return this.channel ? this.channel.close() : Promise.resolve();
  }

  /** 'connect' (client) or 'ready' and 'listening' (server), each in a turn of its own. */
  private announce(vchan: Vchan): void {
    if (this.destroyed) return;
    if (vchan.role === 'client') {
      this.mayConnect = true;
      this.checkConnected();
      this.emit('ready');
      return;
    }
    this.emit('ready');
    this.emit('listening');
    setImmediate(() => {
      this.mayConnect = true;
      this.onChannelEvent();
    });
  }

  private onChannelEvent(): void {
    if (this.destroyed) return;
    this.checkConnected();
    if (this.pendingWrite) this.continueWrite();
    if (this.wantRead) this.drain();
    this.tryFinish();
  }

  private checkConnected(): void {
    if (this.connected || !this.mayConnect || !this.channel) return;
    // A client that came and went before we looked still connected: report it,
    // then the readable side delivers its data and ends. So did a channel our
    // own end() closed before this turn (a client that wrote and ended at once).
    if (this.channel.closed || this.channel.isOpen() !== 2) {
      this.connected = true;
      // No bytes move while the 'connect' listeners run (writeReady and readReady are set after
      // them, though a write there may wake us at once); one that destroyed the stream reads
      // nothing at all, as net.
      this.emit('connect');
      this.finished?.();
      if (this.destroyed) return;
      this.writeReady = true;
      if (this.pendingWrite) this.continueWrite();
      // As net.Socket: start reading (into the buffer, up to the high-water mark), from the next
      // turn on, as a socket's first bytes (or its EOF) come from a later poll.
      setImmediate(() => {
        this.readReady = true;
        if (this.destroyed) return;
        this.read(0);
        if (this.wantRead) this.drain();
      });
    }
  }

  /** Closes for end() once nothing holds it back; keeps what had arrived, for the readable side. */
  private tryFinish(): void {
    const vchan = this.channel;
    if (!this.finishing || !vchan) return;
    if (this.waitForReader && !vchan.closed) {
      const open = vchan.isOpen();
      // bufferSpace() asks the client to tell us when it reads.
      if (open === 2 || (open === 1 && vchan.bufferSpace() < vchan.writeSize)) return;
    }
    this.finishing = false;
    try {
      this.tail = this.takeUnread(vchan);
    } catch (error) {
      this.destroy(error as Error);
      return;
    }
    // The readable side ends once the copied bytes are read.
    if (this.wantRead) this.drain();
    this.closeChannel().catch((error: Error) => this.destroy(error));
  }

  /** Everything the peer had written, out of the ring (at most one ring: 1 MiB). */
  private takeUnread(vchan: Vchan): Buffer[] {
    const chunks: Buffer[] = [];
    if (vchan.closed) return chunks;
    for (let ready = vchan.available(); ready > 0; ready = vchan.available()) {
      const chunk = this.slab.take(Math.min(ready, READ_CHUNK));
      vchan.read(chunk);
      chunks.push(chunk);
    }
    return chunks;
  }

  /** Writes pending chunks until done or the ring is full (then the next event resumes). */
  private continueWrite(): void {
    const pending = this.pendingWrite;
    const vchan = this.channel;
    if (!pending || !vchan) return;
    // As net: what was written before 'connect' moves in a 'connect' listener of its own (see write()),
    // so listeners added before that write run first (one may destroy us or end()).
    if (!this.writeReady) return;
    if (pending.failed) {
      if (!this.readableEnded) return;
      this.pendingWrite = undefined;
      return pending.callback(pending.failed);
    }
    try {
      while (pending.index < pending.chunks.length) {
        const chunk = pending.chunks[pending.index]!;
        const left = chunk.length - pending.offset;
        const written = left === 0 ? 0 : vchan.write(chunk, pending.offset, left);
        pending.offset += written;
        this.dispatched += written;
        if (written > 0) this.idleTimer?.refresh();
        if (pending.offset === chunk.length) {
          pending.index++;
          pending.offset = 0;
        } else if (written === 0) {
          return; // ring full: vchan.write asked the peer to tell us when it reads
        }
      }
    } catch (error) {
      // The peer closed under our write: what it wrote is delivered first, then 'end', then the
      // write fails (its failure would destroy the stream, and the peer's last bytes with it).
      if ((error as VchanError).code === ErrorCodes.PEER_CLOSED && !this.readableEnded) {
        pending.failed = error as Error;
        this.once('end', () => this.continueWrite());
        if (this.wantRead) this.drain();
        return;
      }
      this.pendingWrite = undefined;
      pending.callback(error as Error);
      return;
    }
    this.pendingWrite = undefined;
    pending.callback();
  }

  /**
   * Moves ready bytes to the readable side while the consumer wants more.
   * Ends the readable side once the peer is gone and what it left is read,
   * or (after our end()) once the copied bytes are read.
   */
  private drain(): void {
    if (this.draining || !this.readReady) return;
    this.draining = true;
    try {
      while (this.wantRead) {
        const chunk = this.nextChunk();
        if (chunk === undefined) return;
        if (chunk === null) {
          this.wantRead = false;
          this.push(null);
          // As net.Socket does at EOF: 'end' comes even if nothing is reading (once the buffer is empty).
          process.nextTick(() => this.read(0));
          return;
        }
        this.received += chunk.length;
        this.idleTimer?.refresh();
        if (!this.push(chunk)) this.wantRead = false;
      }
    } catch (error) {
      this.destroy(error as Error);
    } finally {
      this.draining = false;
    }
  }

  /** The next chunk for the readable side; undefined: none yet; null: the end. */
  private nextChunk(): Buffer | null | undefined {
    if (this.tail) return this.tail.shift() ?? null;
    const vchan = this.channel;
    if (!vchan || vchan.closed) return undefined;
    let ready = vchan.available();
    if (ready === 0) ready = vchan.dataReady(); // ask for a wake-up, then look again
    if (ready === 0) {
      if (vchan.isOpen() !== 0) return undefined;
      // The peer is gone: what it wrote last is readable still (the channel kept a copy).
      ready = vchan.available();
      if (ready === 0) return null;
    }
    const chunk = this.slab.take(Math.min(ready, READ_CHUNK));
    vchan.read(chunk);
    return chunk;
  }
}
