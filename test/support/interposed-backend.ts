/**
 * A Backend that forwards every call to a real one and lets a test step in
 * before each setup call: to destroy a domain at exactly that point, or to
 * make the call fail as the kernel or xenstored would. The library under
 * test runs unchanged; only the world around it moves.
 */
import type { Backend, EventHandler, Store, StoreWatch, UnmapNotify } from '../../src/backend.js';

/** The Backend calls that setup makes and that can fail on Xen. */
export type CallName =
  | 'domainId'
  | 'sharePages'
  | 'mapGrants'
  | 'bindUnboundPort'
  | 'bindInterdomain'
  | 'store.read'
  | 'store.writeAll'
  | 'store.remove'
  | 'store.watch'
  | 'watch.close';

export interface Call {
  readonly name: CallName;
  /** 1 for the first call through this backend, counting every name. */
  readonly index: number;
  readonly args: readonly unknown[];
}

/** Runs before the call; throwing (or rejecting) makes the call fail with that error. */
export type BeforeCall = (call: Call) => void | Promise<void>;

export interface InterposedBackend extends Backend {
  /** Every call so far, in order. */
  readonly calls: readonly Call[];
}

export function interpose(inner: Backend, before: BeforeCall): InterposedBackend {
  const calls: Call[] = [];
  const step = async <T>(name: CallName, args: readonly unknown[], run: () => Promise<T>): Promise<T> => {
    const call = { name, index: calls.length + 1, args };
    calls.push(call);
    await before(call);
    return run();
  };
  const watchOf = (watch: StoreWatch): StoreWatch => ({
    close: () => step('watch.close', [], () => watch.close()),
  });
  const store: Store = {
    read: (path) => step('store.read', [path], () => inner.store.read(path)),
    writeAll: (entries, permissions, options) =>
      step('store.writeAll', [entries, permissions], () => inner.store.writeAll(entries, permissions, options)),
    remove: (path) => step('store.remove', [path], () => inner.store.remove(path)),
    watch: (path, onChange) => step('store.watch', [path], async () => watchOf(await inner.store.watch(path, onChange))),
  };
  return {
    calls,
    store,
    domainId: () => step('domainId', [], () => inner.domainId()),
    sharePages: (peer: number, count: number, notify?: UnmapNotify) =>
      step('sharePages', [peer, count, notify], () => inner.sharePages(peer, count, notify)),
    mapGrants: (peer: number, refs: readonly number[], writable: boolean, notify?: UnmapNotify) =>
      step('mapGrants', [peer, refs, writable, notify], () => inner.mapGrants(peer, refs, writable, notify)),
    bindUnboundPort: (peer: number, onEvent: EventHandler) => step('bindUnboundPort', [peer], () => inner.bindUnboundPort(peer, onEvent)),
    bindInterdomain: (peer: number, remotePort: number, onEvent: EventHandler) =>
      step('bindInterdomain', [peer, remotePort], () => inner.bindInterdomain(peer, remotePort, onEvent)),
  };
}
