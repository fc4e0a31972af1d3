/**
 * Parses and checks the command-line values. Every message names the
 * option and quotes what was given, so a typo is found at a glance.
 */
import { MAX_RING_SIZE } from '../layout.js';
import { isVchanPath, MAX_DOMID, MAX_PATH_LENGTH, MAX_PORT } from '../validate.js';
import { UsageError } from './errors.js';

const DECIMAL = /^(0|[1-9][0-9]*)$/;

function wholeNumber(text: string): number | undefined {
  return DECIMAL.test(text) ? Number(text) : undefined;
}

export function parseDomid(option: string, text: string): number {
  const n = wholeNumber(text);
  if (n === undefined || n > MAX_DOMID) throw new UsageError(`${option} must be a domain id (0..${MAX_DOMID}), got '${text}'`);
  return n;
}

export function parsePort(option: string, text: string): number {
  const n = wholeNumber(text);
  if (n === undefined || n > MAX_PORT) throw new UsageError(`${option} must be a port number (0..${MAX_PORT}), got '${text}'`);
  return n;
}

export function parseXenstorePath(option: string, text: string): string {
  if (!isVchanPath(text)) {
    throw new UsageError(
      `${option} must be a xenstore path of 1..${MAX_PATH_LENGTH} characters (letters, digits, _ @ - and single /), got '${text}'`,
    );
  }
  return text;
}

const SIZE = /^(0|[1-9][0-9]*)([kKmM]?)$/;

/** Bytes, optionally with K or M (KiB, MiB): `4096`, `64K`, `1M`. */
export function parseRingSize(option: string, text: string): number {
  const m = SIZE.exec(text);
  const n = m ? Number(m[1]) * (m[2] === '' ? 1 : /k/i.test(m[2]!) ? 1024 : 1 << 20) : undefined;
  if (n === undefined || n < 1 || n > MAX_RING_SIZE) {
    throw new UsageError(`${option} must be a ring size of 1..${MAX_RING_SIZE} bytes (K and M suffixes allowed), got '${text}'`);
  }
  return n;
}

/** Milliseconds; `forever` (or `inf`) when `allowForever`. */
export function parseMilliseconds(option: string, text: string, allowForever = false): number {
  if (allowForever && (text === 'forever' || text === 'inf')) return Infinity;
  const n = wholeNumber(text);
  if (n === undefined) throw new UsageError(`${option} must be a number of milliseconds${allowForever ? " or 'forever'" : ''}, got '${text}'`);
  return n;
}

export type Address = { port: number } | { path: string };

/** Exactly one of --port and --path. */
export function parseAddress(options: { port?: string; path?: string }): Address {
  if (options.port !== undefined && options.path !== undefined) throw new UsageError('give either --port or --path, not both');
  if (options.port !== undefined) return { port: parsePort('--port', options.port) };
  if (options.path !== undefined) return { path: parseXenstorePath('--path', options.path) };
  throw new UsageError('--port <n> or --path <xs-path> is required');
}

export function describeAddress(address: Address): string {
  return 'port' in address ? `port ${address.port}` : address.path;
}
