import type { Device, IoctlResult, Mapping } from './device.js';
import { need } from './device.js';
import type { EventChannels } from './events.js';
import { fail } from './errno.js';
import type { Gref, GrantTables } from './grants.js';
import { armNotify } from './notify.js';
import { Ioctl, Kind, PAGE_SIZE } from './wire.js';

const GNTALLOC_FLAG_WRITABLE = 1;

/**
 * An open /dev/xen/gntalloc: shares fresh pages. Its file offsets index
 * the grants it allocated until they are DEALLOCed; mapped pages keep a
 * grant alive after that, which is how libxengnttab uses it.
 */
export class GntallocDevice implements Device {
  readonly kind = Kind.GNTALLOC;
  /** File page index -> grant, the kernel's per-file list. */
  private readonly list = new Map<number, Gref>();
  private nextIndex = 0;

  constructor(
    readonly id: number,
    readonly domid: number,
    private readonly grants: GrantTables,
    private readonly events: EventChannels,
  ) {}

  ioctl(cmd: number, arg: Buffer): IoctlResult {
    switch (cmd) {
      case Ioctl.GNTALLOC_ALLOC_GREF: {
        need(arg, 8);
        const grantee = arg.readUInt16LE(0);
        const writable = (arg.readUInt16LE(2) & GNTALLOC_FLAG_WRITABLE) !== 0;
        const count = arg.readUInt32LE(4);
        const grefs = this.grants.alloc(this.domid, grantee, writable, count);
        const index = this.nextIndex;
        this.nextIndex += count;
        const out = Buffer.alloc(8 + 4 * count);
        out.writeBigUInt64LE(BigInt(index) * BigInt(PAGE_SIZE), 0);
        grefs.forEach((g, i) => {
          this.list.set(index + i, g);
          out.writeUInt32LE(g.ref, 8 + 4 * i);
        });
        return { result: 0, out };
      }
      case Ioctl.GNTALLOC_DEALLOC_GREF: {
        need(arg, 12);
        const first = pageIndex(arg.readBigUInt64LE(0));
        const grefs = this.find(first, arg.readUInt32LE(8));
        if (!grefs) fail('EINVAL', 'DEALLOC_GREF of grants this file does not hold');
        grefs.forEach((g, i) => {
          this.list.delete(first + i);
          this.grants.dropUser(g);
        });
        return { result: 0 };
      }
      case Ioctl.GNT_SET_UNMAP_NOTIFY: {
        need(arg, 16);
        const index = arg.readBigUInt64LE(0);
        const g = this.list.get(pageIndex(index));
        if (!g) fail('ENOENT', 'SET_UNMAP_NOTIFY on a grant this file does not hold');
        const n = armNotify(this.events, this.domid, arg.readUInt32LE(8), Number(index % BigInt(PAGE_SIZE)), arg.readUInt32LE(12));
        this.grants.setNotify(g, n);
        return { result: 0 };
      }
      default:
        fail('ENOTTY');
    }
  }

  mmap(offset: number, count: number): Mapping {
    const first = offset / PAGE_SIZE;
    const grefs = this.find(first, count);
    if (!grefs) fail('ENOENT', 'mmap of grants this file does not hold');
    for (const g of grefs) g.granterUsers++;
    return {
      pages: grefs.map((g) => g.page),
      release: (i) => this.grants.dropUser(grefs[i]!),
    };
  }

  close(): void {
    for (const g of this.list.values()) this.grants.dropUser(g);
    this.list.clear();
  }

  describe(): Record<string, number> {
    return { grants: this.list.size };
  }

  private find(first: number, count: number): Gref[] | null {
    if (count === 0) return null;
    const out: Gref[] = [];
    for (let i = 0; i < count; i++) {
      const g = this.list.get(first + i);
      if (!g) return null;
      out.push(g);
    }
    return out;
  }
}

function pageIndex(offset: bigint): number {
  return Number(offset / BigInt(PAGE_SIZE));
}
