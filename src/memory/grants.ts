/**
 * Grant tables: which pages each domain shares, with whom, and whether
 * writable — and the checks Xen makes before a domain may map them.
 */
import { PAGE_SIZE } from '../layout.js';
import { sysError } from './errno.js';

/** Xen keeps the first grant refs for the kernel's own use. */
const FIRST_REF = 8;

export interface Share {
  readonly granter: number;
  readonly grantee: number;
  readonly readOnly: boolean;
  readonly refs: readonly number[];
  /** Fresh shared memory is zeroed, which is what sharing must guarantee. */
  readonly buffer: SharedArrayBuffer;
  granted: boolean;
}

interface RefEntry {
  readonly share: Share;
  readonly page: number;
}

/** Where a mapping's pages sit inside a share's buffer. */
export interface MapTarget {
  readonly share: Share;
  readonly byteOffset: number;
  readonly byteLength: number;
}

export class GrantTables {
  private readonly refs = new Map<number, Map<number, RefEntry>>();
  private readonly nextRef = new Map<number, number>();
  private live = 0;

  constructor(private readonly limit: number) {}

  /** Pages domain `granter` shares right now. */
  usedBy(granter: number): number {
    return this.refs.get(granter)?.size ?? 0;
  }

  count(): number {
    return this.live;
  }

  share(granter: number, grantee: number, count: number, readOnly: boolean): Share {
    const used = this.usedBy(granter);
    if (used + count > this.limit) {
      throw sysError(
        'ENOSPC',
        `domain ${granter} would share ${used + count} pages, over its grant limit of ${this.limit} pages ` +
          `(gntalloc's "limit"; raise it with new MemoryHypervisor({ grantLimit }))`,
        'GNTALLOC_ALLOC_GREF',
      );
    }
    let table = this.refs.get(granter);
    if (table === undefined) this.refs.set(granter, (table = new Map()));
    let next = this.nextRef.get(granter) ?? FIRST_REF;
    const refs: number[] = [];
    for (let page = 0; page < count; page++) refs.push(next++);
    this.nextRef.set(granter, next);
    const share: Share = {
      granter,
      grantee,
      readOnly,
      refs,
      buffer: new SharedArrayBuffer(count * PAGE_SIZE),
      granted: true,
    };
    refs.forEach((ref, page) => table.set(ref, { share, page }));
    this.live += count;
    return share;
  }

  /** Revokes the grants; existing mappings keep the pages (they are only garbage once unmapped). */
  unshare(share: Share): void {
    if (!share.granted) return;
    share.granted = false;
    const table = this.refs.get(share.granter);
    for (const ref of share.refs) table?.delete(ref);
    if (table?.size === 0) this.refs.delete(share.granter);
    this.live -= share.refs.length;
  }

  /**
   * Checks that domain `mapper` may map `refs` of domain `granter` and finds
   * them. A mapping is one contiguous Uint8Array, so the refs must be
   * consecutive pages of one share, in order; real Xen could map any refs.
   */
  resolve(mapper: number, granter: number, refs: readonly number[], writable: boolean): MapTarget {
    const table = this.refs.get(granter);
    const entries = refs.map((ref) => {
      const entry = table?.get(ref);
      if (entry === undefined) {
        throw sysError('EINVAL', `grant ref ${ref} of domain ${granter} is not granted (never shared, or revoked)`, 'GNTDEV_MAP_GRANT_REF');
      }
      if (entry.share.grantee !== mapper) {
        throw sysError('EPERM', `grant ref ${ref} of domain ${granter} is granted to domain ${entry.share.grantee}, not ${mapper}`, 'GNTDEV_MAP_GRANT_REF');
      }
      if (writable && entry.share.readOnly) {
        throw sysError('EPERM', `grant ref ${ref} of domain ${granter} is read-only and cannot be mapped writable`, 'GNTDEV_MAP_GRANT_REF');
      }
      return entry;
    });
    const first = entries[0]!;
    entries.forEach((entry, i) => {
      if (entry.share !== first.share || entry.page !== first.page + i) {
        throw sysError(
          'ENOTSUP',
          `the in-memory hypervisor maps only consecutive pages of one share, in order; refs [${refs.join(', ')}] are not`,
          'GNTDEV_MAP_GRANT_REF',
        );
      }
    });
    return { share: first.share, byteOffset: first.page * PAGE_SIZE, byteLength: refs.length * PAGE_SIZE };
  }
}
