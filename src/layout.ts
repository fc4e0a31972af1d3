/**
 * The shared control page of a vchan (Xen's `struct vchan_interface`), as
 * named constants and a typed view. Pure: no I/O, works on any Uint8Array.
 *
 * Terminology: `left` is the ring the client writes and the server reads,
 * `right` the ring the server writes and the client reads.
 */
import { protocolError } from './errors.js';

/** Bytes in a Xen page (and so in the control page). */
export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;

/** Byte offsets inside the control page (all little-endian). */
export const Offsets = {
  /** u32: how far the server has read the left ring. */
  LEFT_CONS: 0,
  /** u32: how far the client has written the left ring. */
  LEFT_PROD: 4,
  /** u32: how far the client has read the right ring. */
  RIGHT_CONS: 8,
  /** u32: how far the server has written the right ring. */
  RIGHT_PROD: 12,
  /** u16: log2 of the left ring's size. */
  LEFT_ORDER: 16,
  /** u16: log2 of the right ring's size. */
  RIGHT_ORDER: 18,
  /** u8: the client's liveness (`Live`). */
  CLI_LIVE: 20,
  /** u8: the server's liveness (`Live`). */
  SRV_LIVE: 21,
  /** u8: the wake-ups the client asked for (`Notify` bits). */
  CLI_NOTIFY: 22,
  /** u8: the wake-ups the server asked for (`Notify` bits). */
  SRV_NOTIFY: 23,
  /** Start of the u32 grant refs of the rings' pages: left ring first, then right. */
  GRANTS: 24,
} as const;

/** Wake-up request bits, stored in `cli_notify` / `srv_notify`. */
export const Notify = {
  /** "Wake me when you write." */
  WRITE: 1,
  /** "Wake me when you consume." */
  READ: 2,
} as const;

/** Liveness byte values (`cli_live`, `srv_live`). */
export const Live = {
  /** Gone, or never came. */
  EXITED: 0,
  /** Up and using the channel. */
  CONNECTED: 1,
  /** Only `cli_live`: the server is waiting for its client. */
  WAITING: 2,
} as const;

/** Smallest ring order (1 KiB), as in C libxenvchan. */
export const MIN_ORDER = 10;
/** Largest ring order (1 MiB), as in C libxenvchan. */
export const MAX_ORDER = 20;
export const MAX_RING_SIZE = 1 << MAX_ORDER;
/** Orders 10 and 11 put the ring inside the control page, at these offsets. */
const IN_PAGE_OFFSET: Readonly<Record<number, number>> = { 10: 1024, 11: 2048 };

/** Where a ring of some order lives: inside the control page at `offset`, or in `pages` pages of its own; `size` is its length in bytes. */
export type RingPlacement =
  | {
      /** The ring is inside the control page. */
      readonly inPage: true;
      /** Its byte offset in the control page. */
      readonly offset: number;
      /** Its length in bytes. */
      readonly size: number;
    }
  | {
      /** The ring has pages of its own. */
      readonly inPage: false;
      /** How many (each one grant ref). */
      readonly pages: number;
      /** Its length in bytes. */
      readonly size: number;
    };

export function isValidOrder(order: number): boolean {
  return Number.isInteger(order) && order >= MIN_ORDER && order <= MAX_ORDER;
}

/** Where a ring of `order` lives: a slice of the control page or its own granted pages. */
export function ringPlacement(order: number): RingPlacement {
  if (!isValidOrder(order)) throw new RangeError(`ring order ${order} is outside ${MIN_ORDER}..${MAX_ORDER}`);
  const size = 1 << order;
  const offset = IN_PAGE_OFFSET[order];
  if (offset !== undefined) return { inPage: true, offset, size };
  return { inPage: false, pages: 1 << (order - PAGE_SHIFT), size };
}

/** Number of grant refs a ring of `order` needs in the control page's list. */
export function grantCount(order: number): number {
  const placement = ringPlacement(order);
  return placement.inPage ? 0 : placement.pages;
}

/** Where each ring's grant refs sit in the control page's list (see `layoutFor`). */
export interface GrantListLayout {
  /** Index (in u32 entries from `Offsets.GRANTS`) of the left ring's first ref. */
  readonly leftStart: number;
  /** How many refs the left ring has (0 for an in-page ring). */
  readonly leftCount: number;
  /** Index of the right ring's first ref. */
  readonly rightStart: number;
  /** How many refs the right ring has (0 for an in-page ring). */
  readonly rightCount: number;
  /** Byte offset just past the list. */
  readonly end: number;
  /** First byte the list may not reach: an in-page ring or the page end. */
  readonly limit: number;
}

/**
 * Checks an order pair and lays out the grant list: left refs first, then
 * right. Throws ERR_VCHAN_PROTOCOL for a pair a client must refuse.
 */
export function layoutFor(leftOrder: number, rightOrder: number): GrantListLayout {
  if (!isValidOrder(leftOrder)) throw protocolError(`left ring order ${leftOrder} is outside ${MIN_ORDER}..${MAX_ORDER}`);
  if (!isValidOrder(rightOrder)) throw protocolError(`right ring order ${rightOrder} is outside ${MIN_ORDER}..${MAX_ORDER}`);
  if (leftOrder === rightOrder && leftOrder < PAGE_SHIFT) {
    throw protocolError(`both rings of order ${leftOrder} would overlap inside the control page`);
  }
  const leftCount = grantCount(leftOrder);
  const rightCount = grantCount(rightOrder);
  const end = Offsets.GRANTS + 4 * (leftCount + rightCount);
  let limit = PAGE_SIZE;
  for (const order of [leftOrder, rightOrder]) {
    const placement = ringPlacement(order);
    if (placement.inPage) limit = Math.min(limit, placement.offset);
  }
  if (end > limit) {
    throw protocolError(`grant list of ${leftCount + rightCount} refs runs past byte ${limit} of the control page`);
  }
  return { leftStart: 0, leftCount, rightStart: leftCount, rightCount, end, limit };
}

/** Smallest order whose ring holds `bytes`, never below one page (as the C library does). */
function pageOrderFor(bytes: number): number {
  let order = PAGE_SHIFT;
  while (bytes > 1 << order) order++;
  return order;
}

/**
 * The ring orders a server picks for the requested minimum sizes, exactly as
 * C libxenvchan does: in-page rings when the requests are small enough
 * (sparing granted pages), otherwise the smallest page-sized orders.
 */
export function chooseOrders(
  leftMin: number,
  rightMin: number,
): {
  /** Order of the left ring (client to server). */
  left: number;
  /** Order of the right ring (server to client). */
  right: number;
} {
  let left = pageOrderFor(leftMin);
  let right = pageOrderFor(rightMin);
  const SMALL = 1 << 10;
  const LARGE = 1 << 11;
  if (leftMin <= SMALL && rightMin <= LARGE) {
    left = 10;
    right = 11;
  } else if (leftMin <= LARGE && rightMin <= SMALL) {
    left = 11;
    right = 10;
  } else if (leftMin <= LARGE) {
    left = 11;
  } else if (rightMin <= LARGE) {
    right = 11;
  }
  return { left, right };
}

/**
 * A typed view of a control page. Shared fields are accessed with Atomics,
 * which are sequentially consistent and so double as the memory barriers the
 * protocol requires (PROTOCOL §4–§5).
 */
export class ControlPage {
  /** The page's 4096 bytes. */
  readonly bytes: Uint8Array;
  /** u32 view of the first 24 bytes' indices and of the grant list. */
  readonly words: Uint32Array;
  /** u16 view, for the two ring orders. */
  readonly halfwords: Uint16Array;

  constructor(bytes: Uint8Array) {
    if (bytes.byteLength < PAGE_SIZE) throw new RangeError(`a control page needs ${PAGE_SIZE} bytes, got ${bytes.byteLength}`);
    if (bytes.byteOffset % 4 !== 0) throw new RangeError('a control page must be 4-byte aligned');
    this.bytes = bytes.subarray(0, PAGE_SIZE);
    this.words = new Uint32Array(bytes.buffer, bytes.byteOffset, PAGE_SIZE / 4);
    this.halfwords = new Uint16Array(bytes.buffer, bytes.byteOffset, PAGE_SIZE / 2);
  }

  /** Atomic load of the byte at `offset` (one of `Offsets`). */
  loadByte(offset: number): number {
    return Atomics.load(this.bytes, offset);
  }

  /** Atomic store of a byte at `offset`. */
  storeByte(offset: number, value: number): void {
    Atomics.store(this.bytes, offset, value);
  }

  /** Atomic OR into a byte; returns the previous value. */
  orByte(offset: number, bits: number): number {
    return Atomics.or(this.bytes, offset, bits);
  }

  /** Atomic AND into a byte; returns the previous value. */
  andByte(offset: number, bits: number): number {
    return Atomics.and(this.bytes, offset, bits);
  }

  /** A ring's order, read once. */
  loadOrder(offset: typeof Offsets.LEFT_ORDER | typeof Offsets.RIGHT_ORDER): number {
    return Atomics.load(this.halfwords, offset >> 1);
  }

  /** Publishes a ring's order. */
  storeOrder(offset: typeof Offsets.LEFT_ORDER | typeof Offsets.RIGHT_ORDER, order: number): void {
    Atomics.store(this.halfwords, offset >> 1, order);
  }

  /** Copies `count` grant refs starting at list index `start`, each read once. */
  readGrants(start: number, count: number): number[] {
    const base = Offsets.GRANTS / 4 + start;
    const refs = new Array<number>(count);
    for (let i = 0; i < count; i++) refs[i] = Atomics.load(this.words, base + i);
    return refs;
  }

  /** Stores grant refs into the list from index `start`. */
  writeGrants(start: number, refs: readonly number[]): void {
    const base = Offsets.GRANTS / 4 + start;
    refs.forEach((ref, i) => Atomics.store(this.words, base + i, ref));
  }
}
