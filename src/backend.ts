/**
 * The Backend is the protocol's only door to the operating system: sharing
 * and mapping grant pages, event channels, and xenstore. The real one talks
 * to Linux's Xen devices; the in-memory one (`xen-vchan/memory`) emulates a
 * hypervisor inside Node for tests. Protocol code never imports either.
 */

/** Armed on a share or mapping: when it goes away for any reason (close, crash), clear this byte and notify. */
export interface UnmapNotify {
  /** Byte offset inside the first page of the share or mapping. */
  readonly offset: number;
  /** Local event channel port to notify after clearing the byte. */
  readonly port: number;
}

/** Pages this domain shares with a peer (gntalloc). */
export interface GrantShare {
  /** One grant reference per page, in page order. */
  readonly refs: readonly number[];
  /** All pages, contiguous, `refs.length * 4096` bytes, page-aligned. */
  readonly memory: Uint8Array;
  /**
   * Stops sharing. The pages stay alive while the peer still maps them, as
   * the kernel does; an armed unmap notification fires now. Idempotent.
   */
  release(): void;
}

/** A peer's pages mapped into this process (gntdev). */
export interface GrantMapping {
  /** The mapped pages, contiguous, `refs.length * 4096` bytes. */
  readonly memory: Uint8Array;
  /** Unmaps; an armed unmap notification fires now. Idempotent. */
  release(): void;
}

/** One bound event channel port. */
export interface EventChannel {
  /** The local port number. */
  readonly port: number;
  /** Signals the remote end. Never blocks. */
  notify(): void;
  /** Unbinds the port; no callback runs afterwards. Idempotent. */
  close(): void;
  /** Optional: a bound port keeps the process alive (the default) … */
  ref?(): void;
  /** … or not, as with a socket's unref(). */
  unref?(): void;
}

/** What keeps the process alive while a channel is open; see EventChannel.ref and StoreWatch.ref. */
export interface KeepAliveHandle {
  /** Keep the process alive while this is open (the default). */
  ref?(): void;
  /** Let the process exit although this is open. */
  unref?(): void;
}

/**
 * Called when the port fired. An event that arrives while the handler runs
 * is not lost: it calls again. Returning exactly `false` says this wake-up found
 * nothing new; a backend may then delay the port's next wake-ups, so a peer
 * that floods events cannot keep us busy.
 */
export type EventHandler = () => unknown;

/** Access a xenstore permission grants: none, read, write or both. */
export type StoreAccess = 'none' | 'read' | 'write' | 'both';

/** A xenstore permission entry; the first one names the owner and the default for others. */
export interface StorePermission {
  /** The domain the entry is for. */
  readonly domid: number;
  /** What it may do. */
  readonly access: StoreAccess;
}

/** A registered xenstore watch (`Store.watch`). */
export interface StoreWatch {
  /** Removes the watch. Idempotent. */
  close(): Promise<void>;
  /** Optional: a watch keeps the process alive (the default) … */
  ref?(): void;
  /** … or not. */
  unref?(): void;
}

/** The xenstore operations the protocol uses. Relative paths resolve under /local/domain/<own id>/. */
export interface Store {
  /** The value at `path`, or undefined when it does not exist. */
  read(path: string): Promise<string | undefined>;
  /**
   * Writes every entry in one transaction, setting `permissions` on each
   * written node; retries the whole transaction on conflict (EAGAIN) until
   * it commits or `options.signal` aborts.
   */
  writeAll(
    entries: ReadonlyArray<readonly [path: string, value: string]>,
    permissions?: readonly StorePermission[],
    options?: { readonly signal?: AbortSignal },
  ): Promise<void>;
  /** Removes `path` and everything below it; a missing path is not an error. */
  remove(path: string): Promise<void>;
  /** Optional: the names of `path`'s children, or undefined when it does not exist (`peers: 'all'` needs it). */
  directory?(path: string): Promise<string[] | undefined>;
  /**
   * Calls `onChange` with the changed path for changes at or below `path`,
   * and once right after the watch is registered (as xenstored does).
   * Special paths `@releaseDomain` / `@introduceDomain` are allowed.
   */
  watch(path: string, onChange: (changed: string) => void): Promise<StoreWatch>;
  /**
   * Optional, for a store whose connection can be lost and made again
   * (`XenStore`): calls `listener` each time it is connected again, after its
   * watches were registered again. Returns a function that removes it.
   */
  onReconnect?(listener: () => void): () => void;
}

/** Everything the protocol needs from the system: grants, event channels, xenstore. `XenBackend` is the real one; `xen-vchan/memory` emulates one. */
export interface Backend {
  /** This domain's id. */
  domainId(): Promise<number>;

  /** Shares `count` fresh, zeroed, writable pages with domain `peer`. */
  sharePages(peer: number, count: number, notify?: UnmapNotify): Promise<GrantShare>;
  /** Maps `refs` granted by domain `peer`, contiguously. */
  mapGrants(peer: number, refs: readonly number[], writable: boolean, notify?: UnmapNotify): Promise<GrantMapping>;

  /** Allocates a port that domain `peer` may bind to. */
  bindUnboundPort(peer: number, onEvent: EventHandler): Promise<EventChannel>;
  /** Binds to `remotePort`, which domain `peer` offered to us. */
  bindInterdomain(peer: number, remotePort: number, onEvent: EventHandler): Promise<EventChannel>;

  /** This domain's xenstore. */
  readonly store: Store;

  /**
   * Optional: backends with the same scope are one process on one xenstore,
   * so a second offer on a path one of them already offers is EADDRINUSE.
   * Default: the backend object itself.
   */
  readonly offerScope?: object;
}
