import { describe, expect, it } from 'vitest';
import { chooseOrders, ControlPage, grantCount, layoutFor, Live, Notify, Offsets, ringPlacement } from '../../src/layout.js';
import { VchanError } from '../../src/errors.js';

describe('control page layout', () => {
  it('matches struct vchan_interface of xen/io/libxenvchan.h', () => {
    // struct ring_shared { u32 cons, prod; } left, right; u16 left_order, right_order;
    // u8 cli_live, srv_live, cli_notify, srv_notify; u32 grants[];
    expect(Offsets).toEqual({
      LEFT_CONS: 0, LEFT_PROD: 4, RIGHT_CONS: 8, RIGHT_PROD: 12,
      LEFT_ORDER: 16, RIGHT_ORDER: 18,
      CLI_LIVE: 20, SRV_LIVE: 21, CLI_NOTIFY: 22, SRV_NOTIFY: 23,
      GRANTS: 24,
    });
    expect(Notify).toEqual({ WRITE: 1, READ: 2 });
    expect(Live).toEqual({ EXITED: 0, CONNECTED: 1, WAITING: 2 });
  });

  it('places every order 10..20', () => {
    expect(ringPlacement(10)).toEqual({ inPage: true, offset: 1024, size: 1024 });
    expect(ringPlacement(11)).toEqual({ inPage: true, offset: 2048, size: 2048 });
    for (let order = 12; order <= 20; order++) {
      expect(ringPlacement(order)).toEqual({ inPage: false, pages: 1 << (order - 12), size: 1 << order });
      expect(grantCount(order)).toBe(1 << (order - 12));
    }
    expect(grantCount(10)).toBe(0);
    expect(grantCount(11)).toBe(0);
    expect(() => ringPlacement(9)).toThrow(RangeError);
    expect(() => ringPlacement(21)).toThrow(RangeError);
  });

  it('accepts every valid order pair and lays the grant list out left first', () => {
    for (let left = 10; left <= 20; left++) {
      for (let right = 10; right <= 20; right++) {
        const inPageClash = left === right && left < 12;
        const limit = Math.min(left === 10 || right === 10 ? 1024 : 4096, left === 11 || right === 11 ? 2048 : 4096);
        const end = 24 + 4 * (grantCount(left) + grantCount(right));
        if (inPageClash || end > limit) {
          expect(() => layoutFor(left, right), `${left},${right}`).toThrow(VchanError);
          continue;
        }
        const layout = layoutFor(left, right);
        expect(layout.leftStart).toBe(0);
        expect(layout.rightStart).toBe(grantCount(left));
        expect(layout.end).toBe(end);
      }
    }
  });

  it('rejects invalid pairs with ERR_VCHAN_PROTOCOL', () => {
    for (const [l, r] of [[10, 10], [11, 11], [9, 12], [12, 21], [0, 0], [65535, 12], [10, 20]] as const) {
      try {
        layoutFor(l, r);
        expect.unreachable(`${l},${r} accepted`);
      } catch (error) {
        expect((error as VchanError).code).toBe('ERR_VCHAN_PROTOCOL');
      }
    }
    // (10, 20): 256 refs end at byte 1048, past the in-page ring at 1024.
    expect(() => layoutFor(10, 19)).not.toThrow();
    expect(() => layoutFor(11, 20)).not.toThrow();
    expect(() => layoutFor(20, 20)).not.toThrow();
  });

  it('chooses orders like C libxenvchan_server_init', () => {
    expect(chooseOrders(1024, 2048)).toEqual({ left: 10, right: 11 });
    expect(chooseOrders(1, 1)).toEqual({ left: 10, right: 11 });
    expect(chooseOrders(2048, 1024)).toEqual({ left: 11, right: 10 });
    expect(chooseOrders(2048, 2048)).toEqual({ left: 11, right: 12 });
    expect(chooseOrders(2048, 65536)).toEqual({ left: 11, right: 16 });
    expect(chooseOrders(65536, 2048)).toEqual({ left: 16, right: 11 });
    expect(chooseOrders(4096, 4096)).toEqual({ left: 12, right: 12 });
    expect(chooseOrders(4097, 1 << 20)).toEqual({ left: 13, right: 20 });
    for (let l = 1; l <= 1 << 20; l *= 3) {
      for (let r = 1; r <= 1 << 20; r *= 5) {
        const { left, right } = chooseOrders(l, r);
        expect(1 << left).toBeGreaterThanOrEqual(l);
        expect(1 << right).toBeGreaterThanOrEqual(r);
        expect(() => layoutFor(left, right)).not.toThrow();
      }
    }
  });

  it('reads and writes fields through the typed view', () => {
    const page = new ControlPage(new Uint8Array(4096));
    page.storeOrder(Offsets.LEFT_ORDER, 13);
    page.storeOrder(Offsets.RIGHT_ORDER, 16);
    page.writeGrants(0, [7, 8]);
    page.storeByte(Offsets.CLI_LIVE, 2);
    expect(page.bytes[16]).toBe(13);
    expect(page.bytes[18]).toBe(16);
    expect(new DataView(page.bytes.buffer).getUint32(24, true)).toBe(7);
    expect(new DataView(page.bytes.buffer).getUint32(28, true)).toBe(8);
    expect(page.readGrants(0, 2)).toEqual([7, 8]);
    expect(page.orByte(Offsets.SRV_NOTIFY, 2)).toBe(0);
    expect(page.andByte(Offsets.SRV_NOTIFY, ~2 & 0xff)).toBe(2);
    expect(page.bytes[20]).toBe(2);
    expect(() => new ControlPage(new Uint8Array(100))).toThrow(RangeError);
  });
});
