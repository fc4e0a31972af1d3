/**
 * Sharing our pages (gntalloc) and mapping a peer's (gntdev) with the same
 * call sequences as Xen's libxengntshr/libxengnttab, so the kernel sees
 * what it sees from C peers. Each step undoes the earlier ones on failure.
 */
import type { GrantMapping, GrantShare, UnmapNotify } from '../backend.js';
import { PAGE_SIZE } from '../layout.js';
import type { Devices } from './devices.js';
import { kernelError, sys } from './errors.js';
import { UnmapAction, type XenNative } from './native.js';

const NOTIFY_ACTION = UnmapAction.CLEAR_BYTE | UnmapAction.SEND_EVENT;

/** Runs `undo` steps, ignoring their errors: the original failure is what matters. */
function undo(...steps: Array<() => void>): void {
  for (const step of steps) {
    try {
      step();
    } catch {
      // best effort
    }
  }
}

/**
 * ALLOC_GREF (writable) → mmap → SET_UNMAP_NOTIFY → DEALLOC_GREF at once:
 * the kernel keeps the pages while they are mapped and revokes the grants
 * when the last user is gone, so munmap alone releases everything.
 */
export function sharePages(native: XenNative, devices: Devices, peer: number, count: number, notify?: UnmapNotify): GrantShare {
  const what = `sharing ${count} page${count === 1 ? '' : 's'} with domain ${peer}`;
  const fd = devices.fd('gntalloc');
  const { index, refs } = sys(what, () => native.gntallocAllocGref(fd, peer, count, true));
  const dealloc = (): void => native.gntallocDeallocGref(fd, index, count);
  let buffer: ArrayBuffer;
  try {
    buffer = native.mmap(fd, index, count * PAGE_SIZE, true);
  } catch (error) {
    undo(dealloc);
    throw kernelError(error, what);
  }
  try {
    if (notify) native.gntallocSetUnmapNotify(fd, index + notify.offset, NOTIFY_ACTION, notify.port);
    dealloc();
  } catch (error) {
    undo(() => native.munmap(buffer), dealloc);
    throw kernelError(error, what);
  }
  return {
    refs,
    memory: new Uint8Array(buffer),
    release: () => {
      sys(`unsharing pages from domain ${peer}`, () => native.munmap(buffer));
    },
  };
}

/**
 * Tracks how many grants one gntdev fd maps, and raises the fd's limit with
 * SET_MAX_GRANTS on kernels that still have a per-file limit.
 */
export class GntdevLimit {
  private mapped = 0;
  private allowed = 0;
  private perFileLimit = true;

  constructor(private readonly native: XenNative) {}

  reserve(fd: number, count: number): void {
    const needed = this.mapped + count;
    if (this.perFileLimit && needed > this.allowed) {
      // Grow in steps to save calls; if the module's limit refuses the step, ask for exactly what is needed.
      const step = Math.max(this.allowed * 2, 1024, needed);
      if (!this.raise(fd, step, false)) this.raise(fd, needed, true);
    }
    this.mapped = needed;
  }

  /** True once the limit is `target`; false when refused and `mustSucceed` is false. */
  private raise(fd: number, target: number, mustSucceed: boolean): boolean {
    if (!this.perFileLimit) return true;
    try {
      this.native.gntdevSetMaxGrants(fd, target);
      this.allowed = target;
      return true;
    } catch (error) {
      // Kernels without the ioctl (ENOTTY) have no per-file limit at all.
      if ((error as { code?: unknown }).code === 'ENOTTY') {
        this.perFileLimit = false;
        return true;
      }
      if (mustSucceed) throw kernelError(error, `allowing ${target} grant mappings`);
      return false;
    }
  }

  release(count: number): void {
    this.mapped -= count;
  }
}

/** MAP_GRANT_REF → mmap (read-only unless writable) → SET_UNMAP_NOTIFY; release: munmap → UNMAP_GRANT_REF. */
export function mapGrants(
  native: XenNative,
  devices: Devices,
  limit: GntdevLimit,
  peer: number,
  refs: readonly number[],
  writable: boolean,
  notify?: UnmapNotify,
): GrantMapping {
  const count = refs.length;
  const what = `mapping ${count} page${count === 1 ? '' : 's'} granted by domain ${peer}`;
  const fd = devices.fd('gntdev');
  limit.reserve(fd, count);
  let index: number;
  try {
    index = sys(what, () => native.gntdevMapGrantRef(fd, peer, refs));
  } catch (error) {
    limit.release(count);
    throw error;
  }
  const unmapGrants = (): void => {
    native.gntdevUnmapGrantRef(fd, index, count);
    limit.release(count);
  };
  let buffer: ArrayBuffer;
  try {
    buffer = native.mmap(fd, index, count * PAGE_SIZE, writable);
  } catch (error) {
    undo(unmapGrants);
    throw kernelError(error, what);
  }
  try {
    if (notify) native.gntdevSetUnmapNotify(fd, index + notify.offset, NOTIFY_ACTION, notify.port);
  } catch (error) {
    undo(() => native.munmap(buffer), unmapGrants);
    throw kernelError(error, what);
  }
  return {
    memory: new Uint8Array(buffer),
    release: () => {
      const now = sys(`unmapping pages of domain ${peer}`, () => native.munmap(buffer));
      // Only the first release gives the grants back.
      if (now && devices.isOpen('gntdev')) sys(`unmapping pages of domain ${peer}`, unmapGrants);
    },
  };
}
