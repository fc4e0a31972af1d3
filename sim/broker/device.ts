import type { DeviceKind } from './wire.js';

/** What an ioctl answers: its return value and bytes to copy back. */
export interface IoctlResult {
  result: number;
  out?: Buffer;
}

/** One mmap of a grant device: the pool pages, released page by page. */
export interface Mapping {
  readonly pages: number[];
  /** Page `i` of the mapping is gone from the process. */
  release(i: number): void;
}

/** One open of /dev/xen/{gntalloc,gntdev,evtchn}. */
export interface Device {
  readonly id: number;
  readonly kind: DeviceKind;
  readonly domid: number;
  ioctl(cmd: number, arg: Buffer): IoctlResult;
  mmap?(offset: number, count: number, prot: number): Mapping;
  /** The last fd on it closed (or its process died). */
  close(): void;
  /** Its domain is being destroyed: drop what it armed, unrun (a dead kernel unmaps nothing). */
  domainDestroyed?(): void;
  /** Extra bytes for OPEN_DEV's reply. */
  openPayload?(): Buffer;
  /** For status: resources the open holds. */
  describe(): Record<string, number>;
}

export function need(arg: Buffer, size: number): void {
  if (arg.length < size) throw new RangeError(`ioctl argument of ${arg.length} bytes, need ${size}`);
}
