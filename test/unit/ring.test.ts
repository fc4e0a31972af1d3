import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RingReader, RingWriter } from '../../src/ring.js';
import { VchanError } from '../../src/errors.js';

const GUARD = 64;
const GUARD_BYTE = 0xa5;

/** A ring's data area with guard bytes on both sides, and a shared counters word array. */
function makeRing(size: number, start: number) {
  const backing = new Uint8Array(size + 2 * GUARD).fill(GUARD_BYTE);
  const data = backing.subarray(GUARD, GUARD + size);
  const words = new Uint32Array(4);
  words[0] = start >>> 0; // cons
  words[1] = start >>> 0; // prod
  const indices = { words, cons: 0, prod: 1 };
  const writer = new RingWriter(data, indices, start);
  const reader = new RingReader(data, indices, start);
  const guardsIntact = () =>
    backing.subarray(0, GUARD).every((b) => b === GUARD_BYTE) && backing.subarray(GUARD + size).every((b) => b === GUARD_BYTE);
  return { data, words, writer, reader, guardsIntact };
}

function expectProtocolError(fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(VchanError);
    expect((error as VchanError).code).toBe('ERR_VCHAN_PROTOCOL');
    return;
  }
  expect.unreachable('no ERR_VCHAN_PROTOCOL thrown');
}

describe('ring', () => {
  it('behaves like a FIFO model across the 2^32 counter wrap', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('write' as const), length: fc.nat(3000) }),
      fc.record({ kind: fc.constant('read' as const), length: fc.nat(3000) }),
      fc.record({ kind: fc.constant('peek' as const), length: fc.nat(3000) }),
    );
    fc.assert(
      fc.property(
        fc.constantFrom(2, 16, 1024, 2048, 4096),
        fc.integer({ min: 0xffffffff - 5000, max: 0xffffffff }),
        fc.array(op, { maxLength: 200 }),
        (size, start, ops) => {
          const ring = makeRing(size, start);
          const model: number[] = [];
          let next = 0;
          for (const o of ops) {
            if (o.kind === 'write') {
              const src = new Uint8Array(o.length).map(() => next++ & 0xff);
              const n = ring.writer.write(src);
              expect(n).toBe(Math.min(o.length, size - model.length));
              model.push(...src.subarray(0, n));
              next -= o.length - n;
            } else {
              const into = new Uint8Array(o.length);
              const n = o.kind === 'read' ? ring.reader.read(into) : ring.reader.peek(into);
              expect(n).toBe(Math.min(o.length, model.length));
              expect([...into.subarray(0, n)]).toEqual(model.slice(0, n));
              if (o.kind === 'read') model.splice(0, n);
            }
            expect(ring.reader.ready()).toBe(model.length);
            expect(ring.writer.space()).toBe(size - model.length);
            expect(ring.guardsIntact()).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('copies into and out of a buffer range', () => {
    const ring = makeRing(16, 0xfffffff8);
    const src = Uint8Array.from({ length: 20 }, (_, i) => i);
    expect(ring.writer.write(src, 5, 12)).toBe(12);
    const into = new Uint8Array(20);
    expect(ring.reader.read(into, 3, 4)).toBe(4);
    expect([...into.subarray(3, 7)]).toEqual([5, 6, 7, 8]);
    expect(() => ring.reader.read(into, 18, 4)).toThrow(RangeError);
    expect(() => ring.writer.write(src, -1, 2)).toThrow(RangeError);
    expect(ring.words[1]).toBe((0xfffffff8 + 12) >>> 0);
    expect(ring.words[0]).toBe((0xfffffff8 + 4) >>> 0);
  });

  it('reports a producer that runs past the ring or backwards as a protocol error', () => {
    const ring = makeRing(1024, 100);
    ring.words[1] = 100 + 1025; // more than a ring ahead of the consumer
    expectProtocolError(() => ring.reader.ready());
    expectProtocolError(() => ring.reader.read(new Uint8Array(10)));
    ring.words[1] = 100 + 50;
    expect(ring.reader.ready()).toBe(50);
    ring.words[1] = 100 + 40; // backwards
    expectProtocolError(() => ring.reader.ready());
    ring.words[1] = 99; // behind the consumer
    expectProtocolError(() => ring.reader.ready());
    expect(ring.guardsIntact()).toBe(true);
  });

  it('reports a consumer that runs past the producer or backwards as a protocol error', () => {
    const ring = makeRing(1024, 0xfffffff0);
    expect(ring.writer.write(new Uint8Array(100))).toBe(100);
    ring.words[0] = (0xfffffff0 + 101) >>> 0; // consumed more than was produced
    expectProtocolError(() => ring.writer.space());
    expectProtocolError(() => ring.writer.write(new Uint8Array(1)));
    ring.words[0] = (0xfffffff0 + 60) >>> 0;
    expect(ring.writer.space()).toBe(1024 - 40);
    ring.words[0] = (0xfffffff0 + 59) >>> 0; // backwards
    expectProtocolError(() => ring.writer.space());
  });

  it('never touches memory outside the ring whatever the peer writes', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(), fc.nat(), fc.nat(5000))), (scribbles) => {
        const ring = makeRing(1024, 0);
        for (const [cons, prod, length] of scribbles) {
          ring.words[0] = cons;
          ring.words[1] = prod;
          for (const op of [
            () => ring.reader.read(new Uint8Array(length)),
            () => ring.reader.peek(new Uint8Array(length)),
            () => ring.writer.write(new Uint8Array(length).fill(7)),
          ]) {
            try {
              const n = op();
              expect(n).toBeLessThanOrEqual(1024);
            } catch (error) {
              expect((error as VchanError).code).toBe('ERR_VCHAN_PROTOCOL');
            }
          }
          expect(ring.guardsIntact()).toBe(true);
        }
      }),
    );
  });

  it('publishes its own counter and never reads it back', () => {
    const ring = makeRing(64, 0);
    ring.writer.write(new Uint8Array(10));
    ring.words[1] = 999; // peer scribbles on our producer counter
    ring.words[0] = 5;
    expect(ring.writer.space()).toBe(64 - 5); // computed from our private prod = 10
    ring.writer.write(new Uint8Array(1));
    expect(ring.words[1]).toBe(11);
  });

  it('readKnown/writeKnown move exactly what the last ready()/space() reported, and no more', () => {
    const ring = makeRing(64, 0xfffffff0);
    expect(ring.writer.space()).toBe(64);
    ring.writer.writeKnown(Uint8Array.from({ length: 40 }, (_, i) => i), 0, 40);
    expect(() => ring.writer.writeKnown(new Uint8Array(30), 0, 30)).toThrow(RangeError); // only 24 left
    expect(ring.reader.ready()).toBe(40);
    const into = new Uint8Array(40);
    ring.reader.readKnown(into, 0, 30);
    expect([...into.subarray(0, 30)]).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(() => ring.reader.readKnown(into, 0, 11)).toThrow(RangeError); // only 10 left
    expect(() => ring.reader.readKnown(into, 35, 10)).toThrow(RangeError); // past the buffer
    expect(ring.guardsIntact()).toBe(true);
  });

  it('skips ready bytes', () => {
    const ring = makeRing(64, 0);
    ring.writer.write(Uint8Array.of(1, 2, 3, 4));
    ring.reader.skip(2);
    const into = new Uint8Array(4);
    expect(ring.reader.read(into)).toBe(2);
    expect([...into.subarray(0, 2)]).toEqual([3, 4]);
    expect(() => ring.reader.skip(1)).toThrow(RangeError);
  });
});
