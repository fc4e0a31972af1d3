/**
 * The xenstore wire protocol (xs_wire.h) as pure code: message types, the
 * 16-byte header, an incremental frame parser, NUL-separated payloads,
 * permission strings and error names. No I/O: used by the emulator's
 * xenstored and by the library's xenstore client alike.
 */

/** Message types, numbered as in xs_wire.h's `enum xsd_sockmsg_type`. */
export const XsType = {
  CONTROL: 0,
  DIRECTORY: 1,
  READ: 2,
  GET_PERMS: 3,
  WATCH: 4,
  UNWATCH: 5,
  TRANSACTION_START: 6,
  TRANSACTION_END: 7,
  INTRODUCE: 8,
  RELEASE: 9,
  GET_DOMAIN_PATH: 10,
  WRITE: 11,
  MKDIR: 12,
  RM: 13,
  SET_PERMS: 14,
  WATCH_EVENT: 15,
  ERROR: 16,
  IS_DOMAIN_INTRODUCED: 17,
  RESUME: 18,
  SET_TARGET: 19,
  // 20 was RESTRICT, removed from Xen; the number stays unused.
  RESET_WATCHES: 21,
  DIRECTORY_PART: 22,
  /** Guaranteed never to be a valid type. */
  INVALID: 0xffff,
} as const;
export type XsTypeName = keyof typeof XsType;
export type XsTypeCode = (typeof XsType)[XsTypeName];

const typeNames = new Map<number, XsTypeName>(
  (Object.keys(XsType) as XsTypeName[]).map((k) => [XsType[k], k]),
);

/** Name of a message type for logs and errors, e.g. `READ` or `type 42`. */
export function xsTypeName(type: number): string {
  return typeNames.get(type) ?? `type ${type}`;
}

export const XS_HEADER_SIZE = 16;
/** Largest payload either side may send (XENSTORE_PAYLOAD_MAX). */
export const XS_PAYLOAD_MAX = 4096;
/** Longest absolute path xenstored accepts (XENSTORE_ABS_PATH_MAX). */
export const XS_ABS_PATH_MAX = 3072;
/** xenstored's node-name alphabet (an empty path is refused separately). */
export const XS_PATH_CHARS = /^[A-Za-z0-9\-/_@]*$/;
/** Longest path below `/local/domain/<id>/`, or special path (XENSTORE_REL_PATH_MAX). */
export const XS_REL_PATH_MAX = 2048;

/**
 * Error names xenstored sends in an ERROR payload, in xs_wire.h's order, with
 * their Linux errno numbers. A client maps an unknown name to EINVAL, as
 * libxenstore does.
 */
export const XS_ERRORS = {
  EINVAL: 22,
  EACCES: 13,
  EEXIST: 17,
  EISDIR: 21,
  ENOENT: 2,
  ENOMEM: 12,
  ENOSPC: 28,
  EIO: 5,
  ENOTEMPTY: 39,
  ENOSYS: 38,
  EROFS: 30,
  EBUSY: 16,
  EAGAIN: 11,
  EISCONN: 106,
  E2BIG: 7,
  EPERM: 1,
} as const;
export type XsErrno = keyof typeof XS_ERRORS;

export function isXsErrno(name: string): name is XsErrno {
  return Object.prototype.hasOwnProperty.call(XS_ERRORS, name);
}

/** An ERROR payload: the errno name, NUL-terminated. */
export function encodeError(name: XsErrno): Buffer {
  return Buffer.from(`${name}\0`, 'latin1');
}

/** The errno name in an ERROR payload; unknown names read as EINVAL. */
export function decodeError(payload: Uint8Array): XsErrno {
  const name = splitStrings(payload)[0] ?? '';
  return isXsErrno(name) ? name : 'EINVAL';
}

export interface XsHeader {
  type: number;
  reqId: number;
  txId: number;
  len: number;
}

export interface XsMessage {
  type: number;
  reqId: number;
  txId: number;
  payload: Buffer;
}

/** Thrown for bytes that break the wire protocol (e.g. an oversize frame). */
export class XsWireError extends Error {
  readonly code: 'E2BIG' | 'EINVAL';
  constructor(code: 'E2BIG' | 'EINVAL', message: string) {
    super(message);
    this.name = 'XsWireError';
    this.code = code;
  }
}

function u32(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new RangeError(`xenstore header ${name} must be a u32, got ${v}`);
  }
  return v;
}

/** Writes the header into `target` at `offset` (a new 16-byte buffer if none). */
export function encodeHeader(h: XsHeader, target?: Uint8Array, offset = 0): Buffer {
  const out = target
    ? Buffer.from(target.buffer, target.byteOffset + offset, XS_HEADER_SIZE)
    : Buffer.alloc(XS_HEADER_SIZE);
  out.writeUInt32LE(u32('type', h.type), 0);
  out.writeUInt32LE(u32('req_id', h.reqId), 4);
  out.writeUInt32LE(u32('tx_id', h.txId), 8);
  out.writeUInt32LE(u32('len', h.len), 12);
  return out;
}

export function decodeHeader(buf: Uint8Array, offset = 0): XsHeader {
  if (buf.length - offset < XS_HEADER_SIZE) {
    throw new RangeError(`xenstore header needs ${XS_HEADER_SIZE} bytes, have ${buf.length - offset}`);
  }
  const dv = new DataView(buf.buffer, buf.byteOffset + offset, XS_HEADER_SIZE);
  return {
    type: dv.getUint32(0, true),
    reqId: dv.getUint32(4, true),
    txId: dv.getUint32(8, true),
    len: dv.getUint32(12, true),
  };
}

export type XsPayloadInput = Uint8Array | string | readonly string[];

function payloadBytes(p: XsPayloadInput): Uint8Array {
  if (typeof p === 'string') return Buffer.from(p, 'latin1');
  if (p instanceof Uint8Array) return p;
  return joinStrings(p as readonly string[]);
}

/**
 * One whole frame: header then payload. A string payload is sent as is (add
 * the `\0` yourself); a string array becomes NUL-terminated strings.
 * Throws XsWireError E2BIG past XS_PAYLOAD_MAX, as libxenstore refuses to send.
 */
export function encodeMessage(
  type: number,
  reqId: number,
  txId: number,
  payload: XsPayloadInput = '',
  maxPayload = XS_PAYLOAD_MAX,
): Buffer {
  const body = payloadBytes(payload);
  if (body.length > maxPayload) {
    throw new XsWireError('E2BIG', `xenstore payload of ${body.length} bytes exceeds the ${maxPayload}-byte limit`);
  }
  const out = Buffer.allocUnsafe(XS_HEADER_SIZE + body.length);
  encodeHeader({ type, reqId, txId, len: body.length }, out, 0);
  out.set(body, XS_HEADER_SIZE);
  return out;
}

/**
 * Turns a byte stream into frames. Chunks are queued, not concatenated, and
 * each byte is copied at most once (a frame that lies inside one chunk is a
 * zero-copy view of it), so cost stays linear however the stream is cut.
 */
export class XsFrameParser {
  private chunks: Buffer[] = [];
  private headOffset = 0; // bytes of chunks[0] already consumed
  private available = 0;
  private header: XsHeader | null = null;
  private broken = false;

  constructor(private readonly maxPayload = XS_PAYLOAD_MAX) {}

  /** Bytes received but not yet returned as frames. */
  get bufferedBytes(): number {
    return this.available;
  }

  /**
   * Adds bytes and returns every frame they complete, in order. Throws
   * XsWireError E2BIG on a header announcing more than the payload limit;
   * the stream cannot be resynchronised after that, so later calls throw too.
   */
  push(chunk: Uint8Array): XsMessage[] {
    if (this.broken) throw new XsWireError('EINVAL', 'xenstore stream already failed');
    if (chunk.length > 0) {
      this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
      this.available += chunk.length;
    }
    const out: XsMessage[] = [];
    for (;;) {
      if (!this.header) {
        if (this.available < XS_HEADER_SIZE) break;
        const h = decodeHeader(this.take(XS_HEADER_SIZE));
        if (h.len > this.maxPayload) {
          this.broken = true;
          throw new XsWireError('E2BIG', `xenstore frame announces ${h.len} payload bytes, limit is ${this.maxPayload}`);
        }
        this.header = h;
      }
      if (this.available < this.header.len) break;
      const h = this.header;
      this.header = null;
      out.push({ type: h.type, reqId: h.reqId, txId: h.txId, payload: this.take(h.len) });
    }
    return out;
  }

  private take(n: number): Buffer {
    this.available -= n;
    const first = this.chunks[0];
    if (n === 0 || !first) return Buffer.alloc(0);
    if (first.length - this.headOffset >= n) {
      const view = first.subarray(this.headOffset, this.headOffset + n);
      this.headOffset += n;
      if (this.headOffset === first.length) {
        this.chunks.shift();
        this.headOffset = 0;
      }
      return view;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0];
      if (!c) throw new Error('xenstore frame parser: internal accounting error');
      const piece = Math.min(c.length - this.headOffset, n - filled);
      c.copy(out, filled, this.headOffset, this.headOffset + piece);
      filled += piece;
      this.headOffset += piece;
      if (this.headOffset === c.length) {
        this.chunks.shift();
        this.headOffset = 0;
      }
    }
    return out;
  }
}

/** Each string followed by a NUL: `['a','b']` → `a\0b\0`. */
export function joinStrings(strings: readonly string[]): Buffer {
  return Buffer.from(strings.map((s) => `${s}\0`).join(''), 'latin1');
}

/**
 * The NUL-terminated strings of a payload, as xenstored counts them: bytes
 * after the last NUL are not a string. `a\0b\0` → `['a','b']`, `` → `[]`.
 */
export function splitStrings(payload: Uint8Array): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < payload.length; i++) {
    if (payload[i] === 0) {
      out.push(Buffer.from(payload.buffer, payload.byteOffset + start, i - start).toString('latin1'));
      start = i + 1;
    }
  }
  return out;
}

/**
 * A WRITE payload `path\0value`: the value is binary, may be empty and may
 * contain NULs. Null when there is no NUL at all (xenstored: EINVAL).
 */
export function splitWritePayload(payload: Uint8Array): { path: string; value: Buffer } | null {
  const nul = payload.indexOf(0);
  if (nul < 0) return null;
  const buf = Buffer.from(payload.buffer, payload.byteOffset, payload.length);
  return { path: buf.subarray(0, nul).toString('latin1'), value: buf.subarray(nul + 1) };
}

export function encodeWritePayload(path: string, value: Uint8Array | string): Buffer {
  const v = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const out = Buffer.allocUnsafe(path.length + 1 + v.length);
  out.write(path, 0, 'latin1');
  out[path.length] = 0;
  out.set(v, path.length + 1);
  return out;
}

/** A WATCH_EVENT payload: `path\0token\0`. */
export function encodeWatchEvent(path: string, token: string): Buffer {
  return joinStrings([path, token]);
}

export function decodeWatchEvent(payload: Uint8Array): { path: string; token: string } | null {
  const [path, token] = splitStrings(payload);
  return path === undefined || token === undefined ? null : { path, token };
}

/** `n` none, `r` read, `w` write, `b` both. */
export type XsAccess = 'n' | 'r' | 'w' | 'b';

/**
 * One entry of a node's permission list. The first entry names the owner
 * (who may do anything) and the access everyone else gets by default; later
 * entries give one domain its own access.
 */
export interface XsPermission {
  domid: number;
  access: XsAccess;
}

const PERM_RE = /^([nrwb])(\d{1,10})$/;

/** `r5` → `{ domid: 5, access: 'r' }`; null when malformed. */
export function parsePermission(s: string): XsPermission | null {
  const m = PERM_RE.exec(s);
  if (!m) return null;
  const domid = Number(m[2]);
  if (domid > 0xffffffff) return null;
  return { domid, access: m[1] as XsAccess };
}

export function formatPermission(p: XsPermission): string {
  return `${p.access}${p.domid}`;
}

/** Parses a whole list; null if any entry is malformed or the list is empty. */
export function parsePermissions(strings: readonly string[]): XsPermission[] | null {
  if (strings.length === 0) return null;
  const out: XsPermission[] = [];
  for (const s of strings) {
    const p = parsePermission(s);
    if (!p) return null;
    out.push(p);
  }
  return out;
}

/** A GET_PERMS reply / SET_PERMS tail: each entry NUL-terminated. */
export function encodePermissions(perms: readonly XsPermission[]): Buffer {
  return joinStrings(perms.map(formatPermission));
}

export function accessCanRead(a: XsAccess): boolean {
  return a === 'r' || a === 'b';
}

export function accessCanWrite(a: XsAccess): boolean {
  return a === 'w' || a === 'b';
}
