/**
 * The test byte stream shared with the C peers (test/c/pattern.h): both must
 * produce identical bytes, so change them together.
 *
 * Byte at stream position p, for a u32 seed:
 *   w = floor(p / 4); x = lo32(w) * 0x9E3779B1 + (hi32(w) ^ seed) * 0x85EBCA77  (mod 2^32)
 *   x ^= x >>> 16; x *= 0x7FEB352D; x ^= x >>> 15; x *= 0x846CA68B; x ^= x >>> 16
 *   byte = (x >>> (8 * (p % 4))) & 0xFF
 * Random access (any position, any chunking) and no repeats within 16 GiB.
 *
 * Stream hash: FNV-1a 64 over the bytes, as 16 lowercase hex digits.
 */

const TWO32 = 4294967296;

/** Default seeds: each side's rx seed is the other's tx seed. */
export const DEFAULT_SEEDS = {
  server: { tx: 1, rx: 2 },
  client: { tx: 2, rx: 1 },
} as const;

export function patternWord(seed: number, word: number): number {
  const lo = word % TWO32;
  const hi = Math.floor(word / TWO32);
  let x = (Math.imul(lo, 0x9e3779b1) + Math.imul((hi ^ seed) >>> 0, 0x85ebca77)) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Fills `out` with the stream bytes starting at position `pos`. */
export function fillPattern(seed: number, pos: number, out: Uint8Array): Uint8Array {
  const len = out.length;
  let i = 0;
  while (i < len && (pos + i) % 4 !== 0) {
    const p = pos + i;
    out[i++] = (patternWord(seed, Math.floor(p / 4)) >>> (8 * (p % 4))) & 0xff;
  }
  let w = (pos + i) / 4;
  for (; i + 4 <= len; i += 4, w++) {
    const x = patternWord(seed, w);
    out[i] = x & 0xff;
    out[i + 1] = (x >>> 8) & 0xff;
    out[i + 2] = (x >>> 16) & 0xff;
    out[i + 3] = x >>> 24;
  }
  for (; i < len; i++) {
    const p = pos + i;
    out[i] = (patternWord(seed, Math.floor(p / 4)) >>> (8 * (p % 4))) & 0xff;
  }
  return out;
}

export function patternBytes(seed: number, pos: number, len: number): Uint8Array {
  return fillPattern(seed, pos, new Uint8Array(len));
}

/** Index into `data` of the first byte that differs from the stream, or -1. */
export function findPatternMismatch(seed: number, pos: number, data: Uint8Array): number {
  const expect = patternBytes(seed, pos, data.length);
  for (let i = 0; i < data.length; i++) if (data[i] !== expect[i]) return i;
  return -1;
}

/** FNV-1a 64 in two 32-bit halves: every intermediate stays below 2^53. */
export class Fnv1a64 {
  private lo = 0x84222325;
  private hi = 0xcbf29ce4;

  update(data: Uint8Array): this {
    let lo = this.lo;
    let hi = this.hi;
    for (let i = 0; i < data.length; i++) {
      lo = (lo ^ data[i]!) >>> 0;
      // h * (2^40 + 0x1b3) = h * 0x1b3 + (h << 40)
      const t = lo * 0x1b3;
      const carry = Math.floor(t / TWO32);
      hi = (hi * 0x1b3 + carry + ((lo << 8) >>> 0)) % TWO32;
      lo = t % TWO32;
    }
    this.lo = lo;
    this.hi = hi;
    return this;
  }

  digest(): string {
    return this.hi.toString(16).padStart(8, '0') + this.lo.toString(16).padStart(8, '0');
  }
}

export function fnv1a64(data: Uint8Array): string {
  return new Fnv1a64().update(data).digest();
}

/** Hash of the first `len` stream bytes, i.e. what a peer reports as rxHash. */
export function patternHash(seed: number, len: number, pos = 0): string {
  const h = new Fnv1a64();
  const buf = new Uint8Array(Math.min(len, 1 << 20));
  for (let done = 0; done < len; ) {
    const n = Math.min(buf.length, len - done);
    const view = n === buf.length ? buf : buf.subarray(0, n);
    h.update(fillPattern(seed, pos + done, view));
    done += n;
  }
  return h.digest();
}

export class PatternMismatchError extends Error {
  constructor(
    readonly position: number,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`pattern mismatch at byte ${position}: expected 0x${expected.toString(16)}, got 0x${actual.toString(16)}`);
    this.name = 'PatternMismatchError';
  }
}

/** Produces the stream chunk by chunk for a sender. */
export class PatternSource {
  position = 0;
  private readonly hash = new Fnv1a64();

  constructor(readonly seed: number) {}

  next(len: number): Uint8Array {
    const out = patternBytes(this.seed, this.position, len);
    this.position += len;
    this.hash.update(out);
    return out;
  }

  /** FNV-1a 64 of everything produced so far (the C peer's txHash). */
  digest(): string {
    return this.hash.digest();
  }
}

/** Checks a received stream chunk by chunk, whatever the chunking. */
export class PatternVerifier {
  received = 0;
  private readonly hash = new Fnv1a64();

  constructor(readonly seed: number) {}

  /** Throws PatternMismatchError at the first wrong byte. */
  push(chunk: Uint8Array): void {
    const expect = patternBytes(this.seed, this.received, chunk.length);
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] !== expect[i]) throw new PatternMismatchError(this.received + i, expect[i]!, chunk[i]!);
    }
    this.hash.update(chunk);
    this.received += chunk.length;
  }

  /** FNV-1a 64 of everything accepted so far (the C peer's rxHash). */
  digest(): string {
    return this.hash.digest();
  }
}
