/*
 * The test stream shared by our C peers and test/support/pattern.ts.
 * Both sides must produce identical bytes, so keep this in sync with the TS.
 *
 * Byte at stream position p (p = 0, 1, 2, ... ; seed is a u32):
 *   w    = p >> 2                      (64-bit word index)
 *   x    = lo32(w) * 0x9E3779B1 + (hi32(w) ^ seed) * 0x85EBCA77   (mod 2^32)
 *   x   ^= x >> 16;  x *= 0x7FEB352D;  x ^= x >> 15;
 *   x   *= 0x846CA68B;  x ^= x >> 16                              (mod 2^32)
 *   byte = (x >> (8 * (p & 3))) & 0xFF   (the word, little-endian)
 * Every step is a bijection of lo32(w), so words do not repeat within 16 GiB
 * and a shifted or dropped chunk never lines up again by accident.
 *
 * Hash of a received stream: FNV-1a 64 over the bytes (basis
 * 0xcbf29ce484222325, prime 0x100000001b3), printed as 16 lowercase hex digits.
 */
#ifndef VCHAN_TEST_PATTERN_H
#define VCHAN_TEST_PATTERN_H
#include <stddef.h>
#include <stdint.h>

static inline uint32_t pattern_word(uint32_t seed, uint64_t w)
{
	uint32_t x = (uint32_t)w * 0x9E3779B1u + ((uint32_t)(w >> 32) ^ seed) * 0x85EBCA77u;
	x ^= x >> 16;
	x *= 0x7FEB352Du;
	x ^= x >> 15;
	x *= 0x846CA68Bu;
	x ^= x >> 16;
	return x;
}

static inline void pattern_fill(uint32_t seed, uint64_t pos, uint8_t *out, size_t len)
{
	size_t i = 0;
	/* leading bytes up to a word boundary, then whole words, then the tail */
	while (i < len && ((pos + i) & 3)) {
		uint64_t p = pos + i;
		out[i++] = (uint8_t)(pattern_word(seed, p >> 2) >> (8 * (p & 3)));
	}
	for (; i + 4 <= len; i += 4) {
		uint32_t x = pattern_word(seed, (pos + i) >> 2);
		out[i] = (uint8_t)x;
		out[i + 1] = (uint8_t)(x >> 8);
		out[i + 2] = (uint8_t)(x >> 16);
		out[i + 3] = (uint8_t)(x >> 24);
	}
	for (; i < len; i++) {
		uint64_t p = pos + i;
		out[i] = (uint8_t)(pattern_word(seed, p >> 2) >> (8 * (p & 3)));
	}
}

#define FNV64_BASIS 0xcbf29ce484222325ull
#define FNV64_PRIME 0x100000001b3ull

static inline uint64_t fnv64_update(uint64_t h, const uint8_t *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		h ^= data[i];
		h *= FNV64_PRIME;
	}
	return h;
}

#endif
