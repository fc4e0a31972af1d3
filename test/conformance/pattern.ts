/**
 * What each end sends: byte i of its stream is a printable character fixed
 * by (role, i), so strings and Buffers carry the same bytes, and the hash of
 * any prefix is known without the bytes themselves (the comparison needs the
 * hash of "what net received, less the writes the table lets fail").
 */
import { createHash } from 'node:crypto';
import type { Role } from './scenario.js';

const PERIOD = 89; // prime, so no write size lines up with it
const MAX = 2 * 1024 * 1024;
const streams = new Map<Role, Buffer>();

function stream(role: Role): Buffer {
  let s = streams.get(role);
  if (!s) {
    s = Buffer.allocUnsafe(MAX + PERIOD);
    const shift = role === 'server' ? 0 : 41;
    for (let i = 0; i < s.length; i++) s[i] = 0x21 + ((i + shift) % PERIOD);
    streams.set(role, s);
  }
  return s;
}

/** The bytes `role` writes at stream offset `offset`. */
export function payload(role: Role, offset: number, length: number): Buffer {
  return stream(role).subarray(offset % PERIOD, (offset % PERIOD) + length);
}

/** Hash of the first `length` bytes `role` sends. */
export function prefixHash(role: Role, length: number): string {
  return createHash('sha1').update(stream(role).subarray(0, length)).digest('hex').slice(0, 12);
}
