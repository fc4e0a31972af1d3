/**
 * The shared control page of a vchan (Xen's `struct vchan_interface`), as
 * named constants and a typed view. Pure: no I/O, works on any Uint8Array.
 *
 * Terminology: `left` is the ring the client writes and the server reads,
 * `right` the ring the server writes and the client reads.
 */
import { protocolError } from './errors.js';

export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;

/** Byte offsets inside the control page (all little-endian). */
export const Offsets = {
  LEFT_CONS: 0,
  LEFT_PROD: 4,
  RIGHT_CONS: 8,
  RIGHT_PROD: 12,
  LEFT_ORDER: 16,
  RIGHT_ORDER: 18,
  CLI_LIVE: 20,
  SRV_LIVE: 21,
  CLI_NOTIFY: 22,
  SRV_NOTIFY: 23,
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
  EXITED: 0,
  CONNECTED: 1,
  /** Only `cli_live`: the server is waiting for its client. */
  WAITING: 2,
} as const;

export const MIN_ORDER = 10;
export const MAX_ORDER = 20;
export const MAX_RING_SIZE = 1 << MAX_ORDER;
/** Orders 10 and 11 put the ring inside the control page, at these offsets. */
const IN_PAGE_OFFSET: Readonly<Record<number, number>> = { 10: 1024, 11: 2048 };

export type RingPlacement =
  | { readonly inPage: true; readonly offset: number; readonly size: number }
  | { readonly inPage: false; readonly pages: number; readonly size: number };

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

export interface GrantListLayout {
  /** Index (in u32 entries from `Offsets.GRANTS`) of the left ring's first ref. */
  readonly leftStart: number;
  readonly leftCount: number;
  readonly rightStart: number;
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
export function chooseOrders(leftMin: number, rightMin: number): { left: number; right: number } {
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
  readonly bytes: Uint8Array;
  /** u32 view of the first 24 bytes' indices and of the grant list. */
  readonly words: Uint32Array;
  readonly halfwords: Uint16Array;

  constructor(bytes: Uint8Array) {
    if (bytes.byteLength < PAGE_SIZE) throw new RangeError(`a control page needs ${PAGE_SIZE} bytes, got ${bytes.byteLength}`);
    if (bytes.byteOffset % 4 !== 0) throw new RangeError('a control page must be 4-byte aligned');
    this.bytes = bytes.subarray(0, PAGE_SIZE);
    this.words = new Uint32Array(bytes.buffer, bytes.byteOffset, PAGE_SIZE / 4);
    this.halfwords = new Uint16Array(bytes.buffer, bytes.byteOffset, PAGE_SIZE / 2);
  }

  loadByte(offset: number): number {
    return Atomics.load(this.bytes, offset);
  }

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

  loadOrder(offset: typeof Offsets.LEFT_ORDER | typeof Offsets.RIGHT_ORDER): number {
    return Atomics.load(this.halfwords, offset >> 1);
  }

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

  writeGrants(start: number, refs: readonly number[]): void {
    const base = Offsets.GRANTS / 4 + start;
    refs.forEach((ref, i) => Atomics.store(this.words, base + i, ref));
  }
}
