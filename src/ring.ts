/**
 * One data ring of a vchan: free-running u32 producer/consumer counters in
 * the control page plus a power-of-two data area. Pure: no I/O, no events.
 *
 * Safety rules (PROTOCOL §4): the peer's counter is read exactly once per
 * call; our own counter is kept privately and only ever written to the
 * shared page, never read back (the peer could scribble on it); a peer
 * counter that runs backwards or past the ring is a protocol error, and no
 * byte outside the data area is ever touched.
 */
import { protocolError } from './errors.js';

/** Below this many bytes a plain loop beats creating a view for `set`. */
const SMALL_COPY = 16;

function copyBytes(src: Uint8Array, srcStart: number, dst: Uint8Array, dstStart: number, count: number): void {
  if (count <= SMALL_COPY) {
    for (let i = 0; i < count; i++) dst[dstStart + i] = src[srcStart + i]!;
  } else {
    dst.set(src.subarray(srcStart, srcStart + count), dstStart);
  }
}

export function checkRange(buffer: Uint8Array, offset: number, length: number): void {
  if (!Number.isInteger(offset) || offset < 0 || offset > buffer.length) {
    throw new RangeError(`offset ${offset} is outside the buffer of ${buffer.length} bytes`);
  }
  if (!Number.isInteger(length) || length < 0 || offset + length > buffer.length) {
    throw new RangeError(`length ${length} at offset ${offset} runs past the buffer of ${buffer.length} bytes`);
  }
}

/** Where a ring's two counters sit, as u32 indices into the control page's word view. */
export interface RingIndices {
  /** The control page's u32 view. */
  readonly words: Uint32Array;
  /** Index of the ring's consumer counter in `words`. */
  readonly cons: number;
  /** Index of the ring's producer counter in `words`. */
  readonly prod: number;
}

abstract class RingEnd {
  /** The ring's bytes (shared memory). */
  readonly data: Uint8Array;
  /** The ring's length in bytes, a power of two. */
  readonly size: number;
  protected readonly mask: number;
  protected readonly words: Uint32Array;
  protected readonly consAt: number;
  protected readonly prodAt: number;

  constructor(data: Uint8Array, indices: RingIndices) {
    const size = data.length;
    if (size < 2 || (size & (size - 1)) !== 0) throw new RangeError(`ring size ${size} is not a power of two`);
    this.data = data;
    this.size = size;
    this.mask = size - 1;
    this.words = indices.words;
    this.consAt = indices.cons;
    this.prodAt = indices.prod;
  }
}

/** The end of a ring we consume: the peer produces. */
export class RingReader extends RingEnd {
  /** Our consumer counter; authoritative, mirrored to the page. */
  private cons: number;
  /** The peer's counter as last seen, to catch it moving backwards. */
  private lastProd: number;

  /** `start` is the counter value both sides begin at (0 for a fresh page). */
  constructor(data: Uint8Array, indices: RingIndices, start = 0) {
    super(data, indices);
    this.cons = start >>> 0;
    this.lastProd = this.cons;
  }

  /** The peer's producer counter as last read and validated (it only moves forward). */
  get peerCounter(): number {
    return this.lastProd;
  }

  /** Bytes ready to read. Throws ERR_VCHAN_PROTOCOL if the peer corrupted its counter. */
  ready(): number {
    return this.readyFrom(Atomics.load(this.words, this.prodAt));
  }

  private readyFrom(prod: number): number {
    // The peer may only move prod forward, and never more than a ring ahead of us.
    const advance = (prod - this.lastProd) >>> 0;
    const allowed = (this.cons + this.size - this.lastProd) >>> 0;
    if (advance > allowed) {
      throw protocolError(`producer index ${prod} moved backwards or past the ring (consumer ${this.cons}, size ${this.size})`);
    }
    this.lastProd = prod;
    return (prod - this.cons) >>> 0;
  }

  /** Copies up to `length` ready bytes into `into` and consumes them; returns the count. */
  read(into: Uint8Array, offset = 0, length = into.length - offset): number {
    const count = this.copyOut(into, offset, length);
    if (count > 0) {
      this.cons = (this.cons + count) >>> 0;
      Atomics.store(this.words, this.consAt, this.cons);
    }
    return count;
  }

  /**
   * Reads exactly `count` bytes that the last ready() reported, without
   * looking at the shared counter again (the caller just did).
   */
  readKnown(into: Uint8Array, offset: number, count: number): void {
    checkRange(into, offset, count);
    if (count > ((this.lastProd - this.cons) >>> 0)) throw new RangeError(`cannot read ${count} bytes: fewer were ready`);
    this.copyRange(into, offset, count);
    this.cons = (this.cons + count) >>> 0;
    Atomics.store(this.words, this.consAt, this.cons);
  }

  /** Like read() but leaves the bytes in the ring. */
  peek(into: Uint8Array, offset = 0, length = into.length - offset): number {
    return this.copyOut(into, offset, length);
  }

  /** Consumes exactly `count` ready bytes without copying them. */
  skip(count: number): void {
    const ready = this.ready();
    if (!Number.isInteger(count) || count < 0 || count > ready) throw new RangeError(`cannot skip ${count} of ${ready} ready bytes`);
    this.cons = (this.cons + count) >>> 0;
    Atomics.store(this.words, this.consAt, this.cons);
  }

  private copyOut(into: Uint8Array, offset: number, length: number): number {
    checkRange(into, offset, length);
    // Atomics.load is sequentially consistent: the data reads below cannot move before it.
    const count = Math.min(this.ready(), length);
    if (count > 0) this.copyRange(into, offset, count);
    return count;
  }

  /** Copies `count` bytes from the consumer position, in two pieces at the wrap. */
  private copyRange(into: Uint8Array, offset: number, count: number): void {
    const start = this.cons & this.mask;
    const first = Math.min(count, this.size - start);
    copyBytes(this.data, start, into, offset, first);
    if (first < count) copyBytes(this.data, 0, into, offset + first, count - first);
  }
}

/** The end of a ring we produce into: the peer consumes. */
export class RingWriter extends RingEnd {
  private prod: number;
  private lastCons: number;

  constructor(data: Uint8Array, indices: RingIndices, start = 0) {
    super(data, indices);
    this.prod = start >>> 0;
    this.lastCons = this.prod;
  }

  /** The peer's consumer counter as last read and validated (it only moves forward). */
  get peerCounter(): number {
    return this.lastCons;
  }

  /** Free bytes. Throws ERR_VCHAN_PROTOCOL if the peer corrupted its counter. */
  space(): number {
    const cons = Atomics.load(this.words, this.consAt);
    // The peer may only move cons forward, and never past what we produced.
    const advance = (cons - this.lastCons) >>> 0;
    const allowed = (this.prod - this.lastCons) >>> 0;
    if (advance > allowed) {
      throw protocolError(`consumer index ${cons} moved backwards or past the producer (producer ${this.prod}, size ${this.size})`);
    }
    this.lastCons = cons;
    return this.size - ((this.prod - cons) >>> 0);
  }

  /** Copies up to `length` bytes of `from` into free space and publishes them; returns the count. */
  write(from: Uint8Array, offset = 0, length = from.length - offset): number {
    checkRange(from, offset, length);
    const count = Math.min(this.space(), length);
    if (count > 0) this.publish(from, offset, count);
    return count;
  }

  /**
   * Writes exactly `count` bytes into space the last space() reported,
   * without looking at the shared counter again (the caller just did).
   */
  writeKnown(from: Uint8Array, offset: number, count: number): void {
    checkRange(from, offset, count);
    if (count > this.size - ((this.prod - this.lastCons) >>> 0)) throw new RangeError(`cannot write ${count} bytes: less space was free`);
    this.publish(from, offset, count);
  }

  private publish(from: Uint8Array, offset: number, count: number): void {
    const start = this.prod & this.mask;
    const first = Math.min(count, this.size - start);
    copyBytes(from, offset, this.data, start, first);
    if (first < count) copyBytes(from, offset + first, this.data, 0, count - first);
    // Sequentially consistent store: the data above is visible before the new prod.
    this.prod = (this.prod + count) >>> 0;
    Atomics.store(this.words, this.prodAt, this.prod);
  }
}
