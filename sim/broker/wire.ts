// Messages between libxensim.so and the broker; sim/preload/wire.h holds the
// same numbers. Little-endian.

export const Op = { HELLO: 1, OPEN_DEV: 2, IOCTL: 3, MMAP: 4, UNMAP: 5, TARGET: 7 } as const;
export const Kind = { GNTALLOC: 1, GNTDEV: 2, EVTCHN: 3 } as const;
export type DeviceKind = (typeof Kind)[keyof typeof Kind];

// Linux include/uapi/xen/{gntalloc,gntdev,evtchn}.h
export const Ioctl = {
  GNTALLOC_ALLOC_GREF: 0x00184705,
  GNTALLOC_DEALLOC_GREF: 0x00104706,
  GNT_SET_UNMAP_NOTIFY: 0x00104707,
  GNTDEV_MAP_GRANT_REF: 0x00184700,
  GNTDEV_UNMAP_GRANT_REF: 0x00104701,
  EVTCHN_BIND_INTERDOMAIN: 0x00084501,
  EVTCHN_BIND_UNBOUND_PORT: 0x00044502,
  EVTCHN_UNBIND: 0x00044503,
  EVTCHN_NOTIFY: 0x00044504,
  EVTCHN_RESET: 0x00004505,
  EVTCHN_RESTRICT_DOMID: 0x00024506,
} as const;

export const UNMAP_NOTIFY_CLEAR_BYTE = 1;
export const UNMAP_NOTIFY_SEND_EVENT = 2;
export const PAGE_SIZE = 4096;

/** The broker's wake-up for a port it raised, written to the owner's evtchn
 * FIFO: the owner's preload applies the mask rule before the program sees it. */
export const FROM_BROKER = 0x80000000;
/** An event slot: u32 state (gen << SLOT_GEN_SHIFT | pending << 1 | masked), u32 raised. */
export const SLOT_BYTES = 8;
export const SLOT_GEN_SHIFT = 2;
export const SLOT_MASKED = 1;

/**
 * Byte offsets and sizes of wire.h's structs, as the broker reads and writes
 * them (test/sim/wire.test.ts compares them with what the C compiler says).
 */
export const Layout = {
  /** struct xsim_req: u32 op, dev, len, arg. */
  req: { bytes: 16, op: 0, dev: 4, len: 8, arg: 12 },
  /** struct xsim_rep: i32 result, u32 len. */
  rep: { bytes: 8, result: 0, len: 4 },
  /** struct xsim_mmap_req: u64 offset, u32 count, prot. */
  mmap: { offset: 0, count: 8, prot: 12 },
  /** struct xsim_slot: u32 index, gen. */
  slot: { bytes: 8, index: 0, gen: 4 },
  /** struct xsim_target: u32 port, struct xsim_slot, u32 dev; the FIFO path follows. */
  target: { bytes: 16, port: 0, slot: 4, dev: 12 },
} as const;

export interface Request {
  op: number;
  dev: number;
  arg: number;
  payload: Buffer;
}

const REQ_HEADER = Layout.req.bytes;
/** Requests bigger than this are a broken or hostile client. */
const MAX_PAYLOAD = 16 << 20;

/** Splits a byte stream into requests. */
export class RequestReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Request[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Request[] = [];
    while (this.buf.length >= REQ_HEADER) {
      const len = this.buf.readUInt32LE(Layout.req.len);
      if (len > MAX_PAYLOAD) throw new Error(`request payload of ${len} bytes`);
      if (this.buf.length < REQ_HEADER + len) break;
      out.push({
        op: this.buf.readUInt32LE(Layout.req.op),
        dev: this.buf.readUInt32LE(Layout.req.dev),
        arg: this.buf.readUInt32LE(Layout.req.arg),
        payload: this.buf.subarray(REQ_HEADER, REQ_HEADER + len),
      });
      this.buf = this.buf.subarray(REQ_HEADER + len);
    }
    return out;
  }

}

export function reply(result: number, payload?: Buffer): Buffer {
  const h = Buffer.alloc(Layout.rep.bytes);
  h.writeInt32LE(result, Layout.rep.result);
  h.writeUInt32LE(payload?.length ?? 0, Layout.rep.len);
  return payload?.length ? Buffer.concat([h, payload]) : h;
}
