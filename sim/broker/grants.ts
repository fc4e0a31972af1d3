import type { EventChannels } from './events.js';
import type { PagePool } from './pages.js';
import { fail } from './errno.js';
import { disarmNotify, runNotify, type UnmapNotify } from './notify.js';

/** One granted page. */
export class Gref {
  /** gntalloc's users: the file's list plus each mapped page of the granter. */
  granterUsers = 1;
  /** Grantee mappings; the page outlives the grant while any remain. */
  remoteMaps = 0;
  revoked = false;
  notify: UnmapNotify | null = null;
  constructor(
    readonly domid: number,
    readonly ref: number,
    readonly grantee: number,
    readonly writable: boolean,
    readonly page: number,
  ) {}
}

interface Table {
  refs: Map<number, Gref>;
  free: number[];
  next: number;
  /** Pages counted against the gntalloc limit (live grants). */
  active: number;
}

/** Linux keeps the first few grant refs for itself. */
const FIRST_REF = 8;

export interface GrantLimits {
  /** gntalloc's `limit` module parameter, per domain. */
  gntallocLimit: number;
  /** Grant table size per domain (v1 entries). */
  maxRefs: number;
}

/**
 * Grant tables of every domain. A grant is revoked when its granter lets
 * go (DEALLOC plus munmap, or death); its page stays until the grantee's
 * last mapping goes, as a foreign mapping pins the page in Xen.
 */
export class GrantTables {
  private readonly tables = new Map<number, Table>();

  constructor(
    readonly pool: PagePool,
    private readonly events: EventChannels,
    readonly limits: GrantLimits,
  ) {}

  /** Grants alive (not yet reclaimed), in one domain or all. */
  count(domid?: number): number {
    if (domid !== undefined) return this.tables.get(domid)?.refs.size ?? 0;
    let n = 0;
    for (const t of this.tables.values()) n += t.refs.size;
    return n;
  }

  alloc(domid: number, grantee: number, writable: boolean, count: number): Gref[] {
    const t = this.table(domid);
    if (t.active + count > this.limits.gntallocLimit)
      fail('ENOSPC', `gntalloc limit: domain ${domid} has ${t.active} of ${this.limits.gntallocLimit} pages shared, asked for ${count}`);
    if (t.refs.size + count > this.limits.maxRefs) fail('ENOSPC', `grant table of domain ${domid} is full`);
    const pages = this.pool.alloc(count);
    const out = pages.map((page) => {
      const ref = t.free.pop() ?? t.next++;
      const g = new Gref(domid, ref, grantee, writable, page);
      t.refs.set(ref, g);
      return g;
    });
    t.active += count;
    return out;
  }

  /** A granter user (file list entry or mapped page) went away. */
  dropUser(g: Gref): void {
    if (--g.granterUsers > 0 || g.revoked) return;
    runNotify(this.pool, this.events, g.notify, g.page, g.notify?.clear ?? 0);
    g.notify = null;
    g.revoked = true;
    this.table(g.domid).active--;
    this.reclaim(g);
  }

  setNotify(g: Gref, n: UnmapNotify): void {
    disarmNotify(this.events, g.notify);
    g.notify = n;
  }

  /** The grant-table check of a map hypercall; every failure is EINVAL at mmap. */
  mapForeign(mapper: number, granter: number, ref: number, writable: boolean): Gref {
    const g = this.tables.get(granter)?.refs.get(ref);
    if (!g || g.revoked) fail('EINVAL', `grant ${ref} of domain ${granter} does not exist`);
    if (g.grantee !== mapper) fail('EINVAL', `grant ${ref} of domain ${granter} is for domain ${g.grantee}, not ${mapper}`);
    if (writable && !g.writable) fail('EINVAL', `grant ${ref} of domain ${granter} is read-only`);
    g.remoteMaps++;
    return g;
  }

  unmapForeign(g: Gref): void {
    g.remoteMaps--;
    this.reclaim(g);
  }

  /** A destroyed domain's grants are revoked whatever holds them. */
  destroyDomain(domid: number): void {
    const t = this.tables.get(domid);
    if (!t) return;
    for (const g of [...t.refs.values()]) {
      if (g.revoked) continue;
      disarmNotify(this.events, g.notify);
      g.notify = null;
      g.revoked = true;
      t.active--;
      this.reclaim(g);
    }
  }

  private reclaim(g: Gref): void {
    if (!g.revoked || g.remoteMaps > 0) return;
    const t = this.table(g.domid);
    if (t.refs.get(g.ref) !== g) return;
    t.refs.delete(g.ref);
    t.free.push(g.ref);
    this.pool.release(g.page);
  }

  private table(domid: number): Table {
    let t = this.tables.get(domid);
    if (!t) this.tables.set(domid, (t = { refs: new Map(), free: [], next: FIRST_REF, active: 0 }));
    return t;
  }
}
