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

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Whole words from word index `word` into `out` (aligned, word-sized), at
 * memory speed (~3 GB/s): the high half of the word index is constant within
 * a call that stays inside one 2^32-word span.
 */
function fillWords(seed: number, word: number, out: Uint32Array): void {
  let lo = word % TWO32 | 0;
  const hiTerm = Math.imul((Math.floor(word / TWO32) ^ seed) >>> 0, 0x85ebca77);
  for (let i = 0; i < out.length; i++, lo = (lo + 1) | 0) {
    let x = (Math.imul(lo, 0x9e3779b1) + hiTerm) | 0;
    x ^= x >>> 16;
    x = Math.imul(x, 0x7feb352d);
    x ^= x >>> 15;
    x = Math.imul(x, 0x846ca68b);
    x ^= x >>> 16;
    out[i] = x;
  }
}

/** Byte-at-a-time: for the unaligned edges. */
function fillSlow(seed: number, pos: number, out: Uint8Array): void {
  for (let i = 0; i < out.length; i++) {
    const p = pos + i;
    out[i] = (patternWord(seed, Math.floor(p / 4)) >>> (8 * (p % 4))) & 0xff;
  }
}

/** Fills `out` with the stream bytes starting at position `pos`. */
export function fillPattern(seed: number, pos: number, out: Uint8Array): Uint8Array {
  // Leading bytes up to a stream word boundary.
  const head = Math.min(out.length, (4 - (pos % 4)) % 4);
  fillSlow(seed, pos, out.subarray(0, head));
  let i = head;
  if (LITTLE_ENDIAN && (out.byteOffset + i) % 4 === 0) {
    // Whole words straight into the buffer, split where hi32(word) changes.
    while (out.length - i >= 4) {
      const word = (pos + i) / 4;
      const span = Math.min((out.length - i) >>> 2, TWO32 - (word % TWO32));
      fillWords(seed, word, new Uint32Array(out.buffer, out.byteOffset + i, span));
      i += span * 4;
    }
  }
  fillSlow(seed, pos + i, out.subarray(i));
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

/**
 * Verifies a received stream by comparing it with the regenerated pattern
 * (memcmp speed, no hash): for transfers too big to hash in JavaScript.
 */
export class PatternChecker {
  received = 0;
  private scratch = new Uint8Array(0);

  constructor(readonly seed: number) {}

  /** Throws PatternMismatchError at the first wrong byte. */
  push(chunk: Uint8Array): void {
    // Regenerate from the word boundary below, into an aligned scratch buffer.
    const lead = this.received % 4;
    const need = lead + chunk.length;
    if (this.scratch.length < need) this.scratch = new Uint8Array(Math.max(need, 1 << 16));
    const expect = fillPattern(this.seed, this.received - lead, this.scratch.subarray(0, need)).subarray(lead);
    if (Buffer.compare(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length), Buffer.from(expect.buffer, expect.byteOffset, expect.length)) !== 0) {
      let i = 0;
      while (chunk[i] === expect[i]) i++;
      throw new PatternMismatchError(this.received + i, expect[i]!, chunk[i]!);
    }
    this.received += chunk.length;
  }
}
