import { closeSync, ftruncateSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { fail } from './errno.js';
import { SLOT_BYTES, SLOT_GEN_SHIFT, SLOT_MASKED } from './wire.js';

/** Where a bound port's state word is, and the generation it carries. */
export interface Slot {
  index: number;
  gen: number;
}

const GEN_MASK = 0x3fffffff;

/**
 * The event-channel slots every process maps (a file next to the page pool),
 * one per bound port, two u32 words each:
 *   state:  gen << 2 | pending << 1 | masked. Notifiers and the port's owner
 *           flip the low bits with compare-and-swap in the preload. The broker
 *           writes it whole only when a port gets or loses its owner, each
 *           time with a generation never used before, so a sender still
 *           holding the old one fails its CAS and asks the broker again.
 *   raised: set to 1 by the broker when it fires the port (it cannot CAS);
 *           the owner's preload takes it with an atomic exchange, on reading
 *           the broker's wake-up or when unmasking, and fires the port then.
 */
export class EventSlots {
  private readonly fd: number;
  private readonly free: number[] = [];
  private next = 0;
  private gen = 0;
  private closed = false;
  private readonly word = Buffer.alloc(4);

  constructor(
    readonly path: string,
    readonly max: number,
  ) {
    this.fd = openSync(path, 'wx+', 0o600);
    ftruncateSync(this.fd, max * SLOT_BYTES); // sparse: only touched pages cost memory
  }

  alloc(): Slot {
    const index = this.free.pop() ?? (this.next < this.max ? this.next++ : -1);
    if (index < 0) fail('ENOSPC', `no event channel slot left (limit ${this.max})`);
    const gen = this.freshGen();
    this.store(index * SLOT_BYTES + 4, 0);
    this.store(index * SLOT_BYTES, (gen << SLOT_GEN_SHIFT) >>> 0);
    return { index, gen };
  }

  release(slot: Slot): void {
    if (this.closed) return;
    this.store(slot.index * SLOT_BYTES, (this.freshGen() << SLOT_GEN_SHIFT) >>> 0); // stale senders now fail their CAS
    this.free.push(slot.index);
  }

  /**
   * The broker fires a port: raise it, then say whether its owner needs a
   * wake-up (the port is unmasked). Raise-then-look against the owner's
   * unmask-then-take means at least one side sees the other (each syscall
   * here takes a page lock, a full barrier on x86).
   */
  raise(slot: Slot): boolean {
    if (this.closed) return false;
    this.store(slot.index * SLOT_BYTES + 4, 1);
    readSync(this.fd, this.word, 0, 4, slot.index * SLOT_BYTES);
    const state = this.word.readUInt32LE(0);
    return state >>> SLOT_GEN_SHIFT === slot.gen && !(state & SLOT_MASKED);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
    try {
      unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }

  private freshGen(): number {
    this.gen = (this.gen + 1) & GEN_MASK || 1;
    return this.gen;
  }

  /** A plain aligned store: state words are stored only while (re)assigned,
   * raised words only ever set to 1 here. */
  private store(offset: number, value: number): void {
    this.word.writeUInt32LE(value);
    writeSync(this.fd, this.word, 0, 4, offset);
  }
}
