/**
 * The part of the emulated hypervisor that lives in shared memory, so any
 * thread can signal an event channel without a round trip through the
 * thread that owns the hypervisor:
 *
 * - one doorbell word per backend ("process"): bumped and Atomics.notify'd
 *   when one of its ports fires; the backend waits on it with waitAsync;
 * - one slot per bound port: the peer's slot (-1 when unconnected), the
 *   pending flag (doubles as the mask: set = fired and not yet delivered),
 *   and the owning backend's doorbell;
 * - one flag per armed unmap notification, so the backend's thread and the
 *   hypervisor's thread (after the backend died) fire it at most once.
 *
 * Only the hypervisor's thread allocates indices and links slots; any
 * thread may notify, take pending flags and fire armed notifications.
 */

const PEER = 0;
const PENDING = 1;
const OWNER = 2;
const SLOT_WORDS = 4;
const HEADER_WORDS = 4;

export interface TableSizes {
  readonly doorbells: number;
  readonly slots: number;
  readonly armed: number;
}

export class EventTable {
  readonly buffer: SharedArrayBuffer;
  readonly sizes: TableSizes;
  private readonly words: Int32Array;
  private readonly slotBase: number;
  private readonly armedBase: number;

  /** Creates a table (`sizes` given) or wraps one received from another thread. */
  constructor(source: SharedArrayBuffer | TableSizes) {
    if (source instanceof SharedArrayBuffer) {
      this.buffer = source;
      const header = new Int32Array(source, 0, HEADER_WORDS);
      this.sizes = { doorbells: header[0]!, slots: header[1]!, armed: header[2]! };
    } else {
      this.sizes = { ...source };
      const total = HEADER_WORDS + source.doorbells + source.slots * SLOT_WORDS + source.armed;
      this.buffer = new SharedArrayBuffer(total * 4);
      const header = new Int32Array(this.buffer, 0, HEADER_WORDS);
      header[0] = source.doorbells;
      header[1] = source.slots;
      header[2] = source.armed;
    }
    this.words = new Int32Array(this.buffer);
    this.slotBase = HEADER_WORDS + this.sizes.doorbells;
    this.armedBase = this.slotBase + this.sizes.slots * SLOT_WORDS;
  }

  /** The Int32Array and index a backend waits on with Atomics.waitAsync. */
  doorbell(bell: number): { readonly words: Int32Array; readonly index: number } {
    return { words: this.words, index: HEADER_WORDS + bell };
  }

  ring(bell: number): void {
    const index = HEADER_WORDS + bell;
    Atomics.add(this.words, index, 1);
    Atomics.notify(this.words, index);
  }

  /**
   * Sends an event from `slot` to its peer. A peer already pending is
   * masked: the event merges into the one not yet delivered.
   */
  notify(slot: number): void {
    const peer = Atomics.load(this.words, this.slotBase + slot * SLOT_WORDS + PEER);
    if (peer < 0) return;
    const at = this.slotBase + peer * SLOT_WORDS;
    if (Atomics.exchange(this.words, at + PENDING, 1) !== 0) return;
    this.ring(Atomics.load(this.words, at + OWNER));
  }

  /** Clears `slot`'s pending flag (unmasks it); true when it had fired. */
  take(slot: number): boolean {
    return Atomics.exchange(this.words, this.slotBase + slot * SLOT_WORDS + PENDING, 0) !== 0;
  }

  /** Hypervisor only: a fresh, unconnected slot owned by doorbell `bell`. */
  initSlot(slot: number, bell: number): void {
    const at = this.slotBase + slot * SLOT_WORDS;
    Atomics.store(this.words, at + PEER, -1);
    Atomics.store(this.words, at + PENDING, 0);
    Atomics.store(this.words, at + OWNER, bell);
  }

  /** Hypervisor only: connects two slots both ways. */
  link(a: number, b: number): void {
    Atomics.store(this.words, this.slotBase + a * SLOT_WORDS + PEER, b);
    Atomics.store(this.words, this.slotBase + b * SLOT_WORDS + PEER, a);
  }

  /** Hypervisor only: `slot` stops sending anywhere. */
  unlink(slot: number): void {
    Atomics.store(this.words, this.slotBase + slot * SLOT_WORDS + PEER, -1);
  }

  /** Hypervisor only: arms notification flag `index`. */
  arm(index: number): void {
    Atomics.store(this.words, this.armedBase + index, 1);
  }

  /**
   * Fires an armed unmap notification, at most once whichever thread gets
   * here first: clear the byte, then send the event (the order of current
   * kernels). Returns whether this call fired it.
   */
  fire(index: number, memory: Uint8Array, offset: number, slot: number): boolean {
    if (Atomics.compareExchange(this.words, this.armedBase + index, 1, 0) !== 1) return false;
    Atomics.store(memory, offset, 0);
    this.notify(slot);
    return true;
  }
}

/**
 * Hands out indices 0..size-1, reusing freed ones oldest first so a stale
 * index held by a slow thread is unlikely to meet its next owner soon.
 */
export class IndexPool {
  private next = 0;
  private readonly free: number[] = [];
  private head = 0;

  constructor(readonly size: number) {}

  take(): number | undefined {
    if (this.head < this.free.length) {
      const index = this.free[this.head++]!;
      if (this.head > 1024 && this.head * 2 > this.free.length) {
        this.free.splice(0, this.head);
        this.head = 0;
      }
      return index;
    }
    return this.next < this.size ? this.next++ : undefined;
  }

  give(index: number): void {
    this.free.push(index);
  }
}
