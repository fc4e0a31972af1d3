/**
 * The Xen device files one backend uses, each opened on first use (a
 * client never needs gntalloc) and closed together.
 */
import { closedError } from '../errors.js';
import { sys } from './errors.js';
import type { XenNative } from './native.js';

export type DeviceName = 'gntalloc' | 'gntdev' | 'evtchn';

export class Devices {
  private readonly fds = new Map<DeviceName, number>();
  private closed = false;

  constructor(
    private readonly native: XenNative,
    private readonly dir: string,
  ) {}

  /** The open fd of `name`, opening it now if needed. */
  fd(name: DeviceName): number {
    if (this.closed) throw closedError();
    let fd = this.fds.get(name);
    if (fd === undefined) {
      const path = `${this.dir}/${name}`;
      fd = sys(`opening ${path}`, () => this.native.openDevice(path));
      this.fds.set(name, fd);
    }
    return fd;
  }

  isOpen(name: DeviceName): boolean {
    return this.fds.has(name);
  }

  /** Closes every device; idempotent. */
  close(): void {
    this.closed = true;
    for (const fd of this.fds.values()) {
      try {
        this.native.closeDevice(fd);
      } catch {
        // Closing is best effort: the fd is gone either way on Linux.
      }
    }
    this.fds.clear();
  }
}
