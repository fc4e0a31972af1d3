// The byte stream test/c/vchan-peer.c sends and expects (defined in
// test/c/pattern.h): byte p of the stream with a given seed is byte p % 4,
// little-endian, of a 32-bit hash of the word index p / 4. Both sides can
// generate any stretch of it, so each checks what arrives without a copy
// of what was sent.

/** The 32-bit word at index `w` (w < 2^32 here: streams under 16 GiB). */
function word(seed, w) {
  let x = (Math.imul(w, 0x9e3779b1) + Math.imul(seed, 0x85ebca77)) | 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Fills `out` with the stream's bytes from `position` on. */
export function fillPattern(seed, position, out) {
  for (let i = 0; i < out.length; ) {
    const p = position + i;
    const x = word(seed, Math.floor(p / 4));
    // the rest of this word, from byte p % 4
    for (let b = p % 4; b < 4 && i < out.length; b++, i++) out[i] = (x >>> (8 * b)) & 0xff;
  }
  return out;
}
