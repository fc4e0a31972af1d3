/**
 * Loads the native shim (native/*.cc: prebuilt under prebuilds/, or built by
 * node-gyp into build/, which node-gyp-build prefers) and declares its types. Every function is one kernel operation; they throw Errors carrying
 * `code` (errno name), `errno` (negative) and `syscall`, which errors.ts
 * turns into VchanErrors. Loaded lazily, so importing the library works on
 * machines where the addon was not built.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ErrorCodes, VchanError } from '../errors.js';
import { packageRoot } from '../package-root.js';

/** Flags of SET_UNMAP_NOTIFY, as the kernel numbers them. */
export const UnmapAction = { CLEAR_BYTE: 1, SEND_EVENT: 2 } as const;

/** Called per wake-up: in evtchn mode with every fired port (still masked: see evtchnUnmask). */
export type WatcherCallback = (error: NativeError | null, ports?: number[]) => void;

export interface NativeWatcher {
  /** Stops watching; idempotent, safe inside the callback. */
  close(): void;
  /** Keep the event loop alive while watching (the default). */
  ref(): void;
  /** Let the process exit even though the watcher is active. */
  unref(): void;
}

export interface NativeError extends Error {
  code: string;
  errno: number;
  syscall: string;
  path?: string;
}

export interface XenNative {
  /** open(path, O_RDWR | O_CLOEXEC). */
  openDevice(path: string): number;
  closeDevice(fd: number): void;

  /** Shares `count` fresh pages with `domid`; `index` is their mmap offset. */
  gntallocAllocGref(fd: number, domid: number, count: number, writable: boolean): { index: number; refs: number[] };
  gntallocDeallocGref(fd: number, index: number, count: number): void;
  /** `index` is the page's mmap offset plus the byte offset inside it. */
  gntallocSetUnmapNotify(fd: number, index: number, action: number, port: number): void;

  /** Reserves a mapping of `refs` granted by `domid`; returns its mmap offset. */
  gntdevMapGrantRef(fd: number, domid: number, refs: readonly number[]): number;
  gntdevUnmapGrantRef(fd: number, index: number, count: number): void;
  gntdevSetUnmapNotify(fd: number, index: number, action: number, port: number): void;
  gntdevSetMaxGrants(fd: number, count: number): void;

  evtchnBindUnboundPort(fd: number, remoteDomain: number): number;
  evtchnBindInterdomain(fd: number, remoteDomain: number, remotePort: number): number;
  evtchnUnbind(fd: number, port: number): void;
  evtchnNotify(fd: number, port: number): void;
  /** Re-enables a port that fired; an event that came while it was masked is delivered now. */
  evtchnUnmask(fd: number, port: number): void;

  /**
   * MAP_SHARED mapping of a device range as an external ArrayBuffer. Read-only
   * (PROT_READ) when not writable: writing through it then faults.
   */
  mmap(fd: number, offset: number, length: number, writable: boolean): ArrayBuffer;
  /** Detaches the buffer, then munmaps. True if it unmapped now, false if already released. */
  munmap(buffer: ArrayBuffer): boolean;

  /** Watches `fd` with uv_poll; sets it non-blocking. */
  Watcher: new (fd: number, evtchn: boolean, callback: WatcherCallback) => NativeWatcher;
}

let loaded: XenNative | undefined;

/** The shim, loaded on first use; a VchanError ERR_VCHAN_NATIVE says how to build it. */
export function loadNative(): XenNative {
  if (loaded) return loaded;
  try {
    const root = packageRoot();
    const require = createRequire(join(root, 'package.json'));
    const load = require('node-gyp-build') as (dir: string) => unknown;
    loaded = load(root) as XenNative;
    return loaded;
  } catch (error) {
    throw new VchanError(
      ErrorCodes.NATIVE,
      `the native Xen shim could not be loaded (${(error as Error).message}); the package ships it prebuilt for linux-x64 (glibc) only: elsewhere build it with \`npm rebuild xen-vchan\` (needs python3, make and a C++ compiler)`,
      { cause: error },
    );
  }
}
