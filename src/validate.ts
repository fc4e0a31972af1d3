/** Argument checks shared by the public entry points; each error names the argument. */
import { MAX_RING_SIZE } from './layout.js';

/**
 * The highest id a domain can have: Xen reserves 0x7FF0 (DOMID_FIRST_RESERVED)
 * and up for DOMID_SELF, DOMID_IO and the like, which no peer can be.
 */
export const MAX_DOMID = 0x7fef;

/** The largest vchan port number: listen/connect's `port` and the CLI's --port. */
export const MAX_PORT = 0x7fffffff;

/**
 * C libxenvchan formats `<path>/event-channel` into a 64-byte buffer, so a
 * longer path is silently truncated on the C side.
 */
export const MAX_PATH_LENGTH = 64 - '/event-channel'.length - 1;

export function checkDomid(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${name} must be an integer domain id, got ${describe(value)}`);
  }
  if (value < 0 || value > MAX_DOMID) throw new RangeError(`${name} must be in 0..${MAX_DOMID}, got ${value}`);
  return value;
}

export function checkRingMin(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${name} must be an integer byte count, got ${describe(value)}`);
  }
  if (value < 1 || value > MAX_RING_SIZE) throw new RangeError(`${name} must be in 1..${MAX_RING_SIZE} bytes, got ${value}`);
  return value;
}

export function checkPort(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new TypeError(`${name} must be an integer, got ${describe(value)}`);
  if (value < 0 || value > MAX_PORT) throw new RangeError(`${name} must be in 0..${MAX_PORT}, got ${value}`);
  return value;
}

const PATH_CHARS = /^[A-Za-z0-9_@/-]+$/;

/**
 * The shape of a vchan path every C peer accepts: xenstore's node alphabet,
 * no empty component, no trailing slash, short enough for libxenvchan's buffer.
 */
export function isVchanPath(text: string): boolean {
  return (
    text.length > 0 && text.length <= MAX_PATH_LENGTH && PATH_CHARS.test(text) && !text.includes('//') && !(text.length > 1 && text.endsWith('/'))
  );
}

export function checkPath(name: string, value: unknown): string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a xenstore path string, got ${describe(value)}`);
  if (value.length === 0) throw new RangeError(`${name} must not be empty`);
  if (value.length > MAX_PATH_LENGTH) {
    throw new RangeError(`${name} is ${value.length} characters; C libxenvchan peers accept at most ${MAX_PATH_LENGTH}`);
  }
  if (!isVchanPath(value)) {
    throw new RangeError(`${name} ${JSON.stringify(value)} is not a valid xenstore path (letters, digits, _ @ - and single /)`);
  }
  return value;
}

export function checkSignal(name: string, value: unknown): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal)) throw new TypeError(`${name} must be an AbortSignal, got ${describe(value)}`);
  return value;
}

export function checkObject(name: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null) throw new TypeError(`${name} must be an object, got ${describe(value)}`);
  return value as Record<string, unknown>;
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  return String(value);
}
