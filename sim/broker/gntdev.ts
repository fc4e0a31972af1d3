import type { Device, IoctlResult, Mapping } from './device.js';
import { need } from './device.js';
import type { EventChannels } from './events.js';
import { fail } from './errno.js';
import type { Gref, GrantTables } from './grants.js';
import { armNotify, disarmNotify, runNotify, type UnmapNotify } from './notify.js';
import { Ioctl, Kind, PAGE_SIZE } from './wire.js';

const PROT_WRITE = 2;
/** gntdev's `limit` module parameter: pages per MAP_GRANT_REF. */
const MAX_MAP_COUNT = 65536;

/** A MAP_GRANT_REF: grants to map, alive while listed or mmapped. */
class GrantMap {
  inList = true;
  vmas = 0;
  /** The foreign grants once the first mmap mapped them. */
  grefs: Gref[] | null = null;
  readonly = false;
  notify: UnmapNotify | null = null;
  constructor(
    readonly index: number,
    readonly refs: { domid: number; ref: number }[],
  ) {}
}

/**
 * An open /dev/xen/gntdev: maps other domains' grants. The grant checks
 * happen at mmap (EINVAL, like a failed map hypercall); unmap notification
 * runs when the map is both unlisted and unmapped.
 */
export class GntdevDevice implements Device {
  readonly kind = Kind.GNTDEV;
  private maps: GrantMap[] = [];
  /** Maps with an armed notification, listed or still mmapped. */
  private readonly armed = new Set<GrantMap>();

  constructor(
    readonly id: number,
    readonly domid: number,
    private readonly grants: GrantTables,
    private readonly events: EventChannels,
  ) {}

  ioctl(cmd: number, arg: Buffer): IoctlResult {
    switch (cmd) {
      case Ioctl.GNTDEV_MAP_GRANT_REF: {
        need(arg, 16);
        const count = arg.readUInt32LE(0);
        if (count === 0 || count > MAX_MAP_COUNT) fail('EINVAL', `MAP_GRANT_REF of ${count} pages`);
        need(arg, 16 + 8 * count);
        const refs = Array.from({ length: count }, (_, i) => ({
          domid: arg.readUInt32LE(16 + 8 * i),
          ref: arg.readUInt32LE(20 + 8 * i),
        }));
        const map = new GrantMap(this.freeIndex(count), refs);
        this.maps.push(map);
        this.maps.sort((a, b) => a.index - b.index);
        const out = Buffer.alloc(8);
        out.writeBigUInt64LE(BigInt(map.index) * BigInt(PAGE_SIZE));
        return { result: 0, out };
      }
      case Ioctl.GNTDEV_UNMAP_GRANT_REF: {
        need(arg, 12);
        const map = this.exact(Number(arg.readBigUInt64LE(0) / BigInt(PAGE_SIZE)), arg.readUInt32LE(8));
        if (!map) fail('ENOENT', 'UNMAP_GRANT_REF of a map this file does not hold');
        map.inList = false;
        this.maps = this.maps.filter((m) => m !== map);
        this.settle(map);
        return { result: 0 };
      }
      case Ioctl.GNT_SET_UNMAP_NOTIFY: {
        need(arg, 16);
        const at = Number(arg.readBigUInt64LE(0));
        const begin = (m: GrantMap) => m.index * PAGE_SIZE;
        const map = this.maps.find((m) => at >= begin(m) && at < begin(m) + m.refs.length * PAGE_SIZE);
        if (!map) fail('ENOENT', 'SET_UNMAP_NOTIFY outside any map');
        const action = arg.readUInt32LE(8);
        if (action & 1 && map.readonly) fail('EINVAL', 'cannot clear a byte in a read-only map');
        const n = armNotify(this.events, this.domid, action, at - begin(map), arg.readUInt32LE(12));
        disarmNotify(this.events, map.notify);
        map.notify = n;
        this.armed.add(map);
        return { result: 0 };
      }
      default:
        fail('ENOTTY');
    }
  }

  mmap(offset: number, count: number, prot: number): Mapping {
    const map = this.exact(offset / PAGE_SIZE, count);
    if (!map) fail('EINVAL', 'mmap does not match a MAP_GRANT_REF');
    const writable = (prot & PROT_WRITE) !== 0;
    if (!map.grefs) {
      map.grefs = this.mapAll(map.refs, writable);
      map.readonly = !writable;
    } else if (writable && map.readonly) {
      fail('EINVAL', 'map was mapped read-only');
    }
    map.vmas++;
    const grefs = map.grefs;
    let left = count;
    return {
      pages: grefs.map((g) => g.page),
      release: () => {
        if (--left === 0) {
          map.vmas--;
          this.settle(map);
        }
      },
    };
  }

  close(): void {
    const maps = this.maps;
    this.maps = [];
    for (const m of maps) {
      m.inList = false;
      this.settle(m);
    }
  }

  domainDestroyed(): void {
    for (const map of this.armed) {
      disarmNotify(this.events, map.notify);
      map.notify = null;
    }
    this.armed.clear();
  }

  describe(): Record<string, number> {
    return { maps: this.maps.length };
  }

  /** All or nothing, as gntdev unwinds a partly failed map. */
  private mapAll(refs: { domid: number; ref: number }[], writable: boolean): Gref[] {
    const done: Gref[] = [];
    try {
      for (const r of refs) done.push(this.grants.mapForeign(this.domid, r.domid, r.ref, writable));
      return done;
    } catch (e) {
      for (const g of done) this.grants.unmapForeign(g);
      throw e;
    }
  }

  /** Frees the map once nothing holds it: notification first, then the grants. */
  private settle(map: GrantMap): void {
    if (map.inList || map.vmas > 0) return;
    const n = map.notify;
    map.notify = null;
    this.armed.delete(map);
    const clear = n?.clear ?? 0;
    const page = map.grefs?.[Math.floor(clear / PAGE_SIZE)]?.page ?? null;
    runNotify(this.grants.pool, this.events, n, page, clear % PAGE_SIZE);
    for (const g of map.grefs ?? []) this.grants.unmapForeign(g);
    map.grefs = null;
  }

  private exact(index: number, count: number): GrantMap | undefined {
    return this.maps.find((m) => m.index === index && m.refs.length === count);
  }

  /** Lowest gap in the file's offset space, as gntdev_add_map picks. */
  private freeIndex(count: number): number {
    let at = 0;
    for (const m of this.maps) {
      if (m.index - at >= count) break;
      at = Math.max(at, m.index + m.refs.length);
    }
    return at;
  }
}
