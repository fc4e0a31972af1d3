import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  XS_HEADER_SIZE,
  XS_PAYLOAD_MAX,
  XsFrameParser,
  XsType,
  XsWireError,
  decodeError,
  decodeHeader,
  decodeWatchEvent,
  encodeError,
  encodeHeader,
  encodeMessage,
  encodePermissions,
  encodeWatchEvent,
  encodeWritePayload,
  formatPermission,
  joinStrings,
  parsePermission,
  parsePermissions,
  splitStrings,
  splitWritePayload,
  xsTypeName,
} from '../../src/xen/xenstore-wire.js';

describe('xenstore wire: constants', () => {
  it('numbers message types as xs_wire.h does', () => {
    expect(XsType.DIRECTORY).toBe(1);
    expect(XsType.GET_DOMAIN_PATH).toBe(10);
    expect(XsType.WRITE).toBe(11);
    expect(XsType.WATCH_EVENT).toBe(15);
    expect(XsType.ERROR).toBe(16);
    expect(XsType.RESET_WATCHES).toBe(21);
    expect(XsType.DIRECTORY_PART).toBe(22);
    expect(xsTypeName(7)).toBe('TRANSACTION_END');
    expect(xsTypeName(20)).toBe('type 20');
  });
});

describe('xenstore wire: header', () => {
  it('is 16 bytes little-endian {type, req_id, tx_id, len}', () => {
    const h = encodeHeader({ type: 2, reqId: 0x01020304, txId: 7, len: 5 });
    expect(h.length).toBe(XS_HEADER_SIZE);
    expect([...h]).toEqual([2, 0, 0, 0, 4, 3, 2, 1, 7, 0, 0, 0, 5, 0, 0, 0]);
    expect(decodeHeader(h)).toEqual({ type: 2, reqId: 0x01020304, txId: 7, len: 5 });
  });

  it('round-trips any u32 fields, also at an offset', () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), (type, reqId, txId, len) => {
        const buf = Buffer.alloc(40);
        encodeHeader({ type, reqId, txId, len }, buf, 9);
        expect(decodeHeader(buf, 9)).toEqual({ type, reqId, txId, len });
      }),
    );
  });

  it('rejects non-u32 fields and short input', () => {
    expect(() => encodeHeader({ type: -1, reqId: 0, txId: 0, len: 0 })).toThrow(RangeError);
    expect(() => encodeHeader({ type: 1, reqId: 2 ** 32, txId: 0, len: 0 })).toThrow(RangeError);
    expect(() => decodeHeader(Buffer.alloc(15))).toThrow(RangeError);
  });

  it('encodeMessage refuses payloads over 4096 bytes with E2BIG', () => {
    expect(encodeMessage(XsType.WRITE, 1, 0, Buffer.alloc(XS_PAYLOAD_MAX)).length).toBe(16 + 4096);
    try {
      encodeMessage(XsType.WRITE, 1, 0, Buffer.alloc(XS_PAYLOAD_MAX + 1));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(XsWireError);
      expect((e as XsWireError).code).toBe('E2BIG');
    }
  });

  it('encodeMessage takes strings verbatim and arrays NUL-terminated', () => {
    const m1 = encodeMessage(XsType.READ, 3, 0, '/a\0');
    expect(m1.subarray(16).toString()).toBe('/a\0');
    const m2 = encodeMessage(XsType.WATCH, 3, 0, ['/a', 'tok']);
    expect(m2.subarray(16).toString()).toBe('/a\0tok\0');
    expect(decodeHeader(m2).len).toBe(7);
  });
});

describe('xenstore wire: frame parser', () => {
  const frames = [
    encodeMessage(XsType.READ, 1, 0, '/local/domain/0/name\0'),
    encodeMessage(XsType.WRITE, 2, 9, encodeWritePayload('/x', Buffer.from([0, 1, 2]))),
    encodeMessage(XsType.TRANSACTION_START, 3, 0, Buffer.alloc(0)),
    encodeMessage(XsType.DIRECTORY, 4, 0, Buffer.alloc(4096, 0x61)),
  ];
  const stream = Buffer.concat(frames);

  function check(msgs: ReturnType<XsFrameParser['push']>): void {
    expect(msgs.map((m) => [m.type, m.reqId, m.txId, m.payload.length])).toEqual([
      [XsType.READ, 1, 0, 21],
      [XsType.WRITE, 2, 9, 6],
      [XsType.TRANSACTION_START, 3, 0, 0],
      [XsType.DIRECTORY, 4, 0, 4096],
    ]);
    expect(msgs[1]?.payload.equals(encodeWritePayload('/x', Buffer.from([0, 1, 2])))).toBe(true);
  }

  it('handles coalesced frames in one chunk', () => {
    const p = new XsFrameParser();
    check(p.push(stream));
    expect(p.bufferedBytes).toBe(0);
  });

  it('handles byte-at-a-time delivery', () => {
    const p = new XsFrameParser();
    const got = [];
    for (let i = 0; i < stream.length; i++) got.push(...p.push(stream.subarray(i, i + 1)));
    check(got);
  });

  it('handles any split of the stream', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: stream.length }), { maxLength: 20 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const p = new XsFrameParser();
        const got = [];
        let prev = 0;
        for (const c of [...points, stream.length]) {
          got.push(...p.push(stream.subarray(prev, c)));
          prev = c;
        }
        check(got);
        expect(p.bufferedBytes).toBe(0);
      }),
    );
  });

  it('keeps a partial frame buffered until it completes', () => {
    const p = new XsFrameParser();
    expect(p.push(stream.subarray(0, 10))).toEqual([]);
    expect(p.bufferedBytes).toBe(10);
    expect(p.push(stream.subarray(10, 20))).toEqual([]);
    expect(p.push(stream.subarray(20, 37)).length).toBe(1);
  });

  it('fails on a frame announcing more than 4096 bytes, and stays failed', () => {
    const p = new XsFrameParser();
    const bad = encodeHeader({ type: XsType.WRITE, reqId: 1, txId: 0, len: 4097 });
    expect(() => p.push(bad)).toThrow(/4097/);
    expect(() => p.push(stream)).toThrow(XsWireError);
  });

  it('is linear: 10k small frames fed in 7-byte slices', () => {
    const many = Buffer.concat(Array.from({ length: 10_000 }, (_, i) => encodeMessage(XsType.READ, i, 0, `/k${i}\0`)));
    const p = new XsFrameParser();
    let n = 0;
    const t0 = performance.now();
    for (let i = 0; i < many.length; i += 7) n += p.push(many.subarray(i, i + 7)).length;
    expect(n).toBe(10_000);
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});

describe('xenstore wire: payload helpers', () => {
  it('joins and splits NUL-terminated strings as xenstored counts them', () => {
    expect(joinStrings(['a', 'bc']).toString()).toBe('a\0bc\0');
    expect(splitStrings(Buffer.from('a\0bc\0'))).toEqual(['a', 'bc']);
    expect(splitStrings(Buffer.from(''))).toEqual([]);
    expect(splitStrings(Buffer.from('a\0\0'))).toEqual(['a', '']);
    // trailing bytes without a NUL are not a string
    expect(splitStrings(Buffer.from('a\0tail'))).toEqual(['a']);
  });

  it('splits a WRITE payload with a binary value', () => {
    const w = splitWritePayload(Buffer.from('/p\0v\0x'));
    expect(w?.path).toBe('/p');
    expect(w?.value.toString('latin1')).toBe('v\0x');
    expect(splitWritePayload(Buffer.from('/p\0'))?.value.length).toBe(0);
    expect(splitWritePayload(Buffer.from('/p'))).toBeNull();
  });

  it('encodes and decodes watch events', () => {
    const e = encodeWatchEvent('/local/domain/0/x', 'tok');
    expect(e.toString()).toBe('/local/domain/0/x\0tok\0');
    expect(decodeWatchEvent(e)).toEqual({ path: '/local/domain/0/x', token: 'tok' });
    expect(decodeWatchEvent(Buffer.from('x\0'))).toBeNull();
  });

  it('encodes and decodes error names', () => {
    expect(encodeError('EAGAIN').toString()).toBe('EAGAIN\0');
    expect(decodeError(Buffer.from('EACCES\0'))).toBe('EACCES');
    expect(decodeError(Buffer.from('EWHATEVER\0'))).toBe('EINVAL');
  });
});

describe('xenstore wire: permissions', () => {
  it('parses and formats n/r/w/b entries', () => {
    expect(parsePermission('n0')).toEqual({ domid: 0, access: 'n' });
    expect(parsePermission('r5')).toEqual({ domid: 5, access: 'r' });
    expect(parsePermission('w12')).toEqual({ domid: 12, access: 'w' });
    expect(parsePermission('b32752')).toEqual({ domid: 32752, access: 'b' });
    expect(formatPermission({ domid: 7, access: 'b' })).toBe('b7');
    for (const bad of ['', 'x1', 'r', 'r-1', 'r1x', 'R1', 'r99999999999']) expect(parsePermission(bad)).toBeNull();
  });

  it('handles whole lists: first entry is owner + default', () => {
    expect(parsePermissions(['n0', 'r5'])).toEqual([
      { domid: 0, access: 'n' },
      { domid: 5, access: 'r' },
    ]);
    expect(parsePermissions([])).toBeNull();
    expect(parsePermissions(['n0', 'q5'])).toBeNull();
    expect(encodePermissions([{ domid: 3, access: 'n' }, { domid: 0, access: 'b' }]).toString()).toBe('n3\0b0\0');
  });
});
