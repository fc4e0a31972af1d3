/**
 * VchanStream: a node:stream Duplex over a Vchan. Writes fill the ring as
 * far as it goes and wait for space only then; reads drain what is ready.
 * Backpressure works both ways: we take bytes out of the ring only when the
 * consumer asks, so a slow consumer stalls the peer's writer, not our memory.
 *
 * libvchan has no half-close: end() flushes our writes into the ring and then
 * closes the whole channel (the peer can still read what we wrote). When the
 * peer closes, the readable side ends after the data already in the ring and
 * later writes fail with ERR_VCHAN_PEER_CLOSED (so the writable side stays
 * open by default: allowHalfOpen is Node's default, true).
 */
import { Duplex, type DuplexOptions } from 'node:stream';
import type { Vchan } from './channel.js';
import { peerClosedError } from './errors.js';

export type VchanStreamOptions = Omit<DuplexOptions, 'read' | 'write' | 'writev' | 'final' | 'destroy' | 'construct'>;

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
}

export class VchanStream extends Duplex {
  private channel: Vchan | undefined;
  private readonly source: Vchan | Promise<Vchan>;
  private unsubscribe: (() => void) | undefined;
  private pending: PendingWrite | undefined;
  private wantRead = false;
  private draining = false;
  private connected = false;
  private readonly slab = new Slab();
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private idleMs = 0;

  constructor(source: Vchan | Promise<Vchan>, options: VchanStreamOptions = {}) {
    super({
      ...options,
      // Node's 16 KiB default would split every ring-full into several pushes.
      readableHighWaterMark: options.readableHighWaterMark ?? options.highWaterMark ?? READ_CHUNK,
      decodeStrings: true,
      objectMode: false,
    });
    this.source = source;
  }

  /** The underlying channel, once set up. */
  get vchan(): Vchan | undefined {
    return this.channel;
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

  /** No-op: an open channel keeps the process alive, as a ref'ed socket does. */
  ref(): this {
    return this;
  }

  /** No-op: an open channel keeps the process alive until it is closed. */
  unref(): this {
    return this;
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

  override _construct(callback: (error?: Error | null) => void): void {
    Promise.resolve(this.source).then(
      (vchan) => {
        this.channel = vchan;
        this.unsubscribe = vchan.onEvent(() => this.onChannelEvent());
        callback();
        this.emit('ready');
        if (vchan.role === 'server') this.emit('listening');
        this.checkConnected();
      },
      (error: Error) => callback(error),
    );
  }

  override _read(): void {
    this.wantRead = true;
    this.drain();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.pending = { chunks: [chunk], index: 0, offset: 0, callback };
    this.continueWrite();
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.pending = { chunks: chunks.map((c) => c.chunk), index: 0, offset: 0, callback };
    this.continueWrite();
  }

  override _final(callback: (error?: Error | null) => void): void {
    // All writes are in the ring now. Keep what already arrived, then close.
    this.drain(true);
    this.closeChannel().then(() => {
      this.push(null);
      callback();
    }, callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const pending = this.pending;
    this.pending = undefined;
    pending?.callback(error ?? peerClosedError('the stream was destroyed'));
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

  private onChannelEvent(): void {
    this.checkConnected();
    if (this.pending) this.continueWrite();
    if (this.wantRead) this.drain();
  }

  private checkConnected(): void {
    if (this.connected || !this.channel || this.channel.closed) return;
    // A client that came and went before we looked still connected: report it,
    // then the readable side delivers its data and ends.
    if (this.channel.isOpen() !== 2) {
      this.connected = true;
      this.emit('connect');
    }
  }

  /** Writes pending chunks until done or the ring is full (then the next event resumes). */
  private continueWrite(): void {
    const pending = this.pending;
    const vchan = this.channel;
    if (!pending || !vchan) return;
    try {
      while (pending.index < pending.chunks.length) {
        const chunk = pending.chunks[pending.index]!;
        const left = chunk.length - pending.offset;
        const written = left === 0 ? 0 : vchan.write(chunk, pending.offset, left);
        pending.offset += written;
        if (written > 0) this.idleTimer?.refresh();
        if (pending.offset === chunk.length) {
          pending.index++;
          pending.offset = 0;
        } else if (written === 0) {
          return; // ring full: vchan.write asked the peer to tell us when it reads
        }
      }
    } catch (error) {
      this.pending = undefined;
      pending.callback(error as Error);
      return;
    }
    this.pending = undefined;
    pending.callback();
  }

  /**
   * Moves ready bytes from the ring into the readable buffer while the
   * consumer wants more (or unconditionally when `all`). Ends the readable
   * side once the peer is gone and the ring is empty.
   */
  private drain(all = false): void {
    const vchan = this.channel;
    if (!vchan || vchan.closed || this.draining) return;
    this.draining = true;
    try {
      while (this.wantRead || all) {
        let ready = vchan.available();
        if (ready === 0) ready = vchan.dataReady(); // ask for a wake-up, then look again
        if (ready === 0) {
          if (vchan.isOpen() !== 0) return;
          // Liveness was read after the counter: the peer may have written its last bytes and closed in between.
          ready = vchan.available();
          if (ready === 0) {
            this.wantRead = false;
            this.push(null);
            return;
          }
        }
        const chunk = this.slab.take(Math.min(ready, READ_CHUNK));
        vchan.read(chunk);
        this.idleTimer?.refresh();
        if (!this.push(chunk)) this.wantRead = false;
      }
    } catch (error) {
      this.destroy(error as Error);
    } finally {
      this.draining = false;
    }
  }
}
