/**
 * The paths this process offers channels on. node:net refuses a second
 * listen() on an address in use with EADDRINUSE; without this, a second
 * offer would overwrite the first one's xenstore entries and leave one of
 * the two servers waiting for ever. Another process's offer on the same
 * path is not ours to know about: it is overwritten, as C libxenvchan does.
 */
import type { Backend } from './backend.js';
import { VchanError } from './errors.js';

const offered = new WeakMap<object, Map<string, symbol>>();

/** Claims `path` (absolute) in the backend's scope; returns the release. Throws EADDRINUSE if taken. */
export function claimOffer(backend: Backend, path: string): () => void {
  const scope = backend.offerScope ?? backend;
  let paths = offered.get(scope);
  if (!paths) offered.set(scope, (paths = new Map()));
  if (paths.has(path)) {
    throw new VchanError('EADDRINUSE', `this process already offers a channel at ${path}: close that one first`, {
      syscall: 'listen',
      errno: -98,
    });
  }
  const claim = Symbol(path);
  paths.set(path, claim);
  const held = paths;
  // Only our own claim: the path may be offered afresh once this one let it go.
  return () => void (held.get(path) === claim && held.delete(path));
}

/** `path` as xenstore resolves it for domain `self`. */
export function absolutePath(self: number, path: string): string {
  return path.startsWith('/') ? path : `/local/domain/${self}/${path}`;
}
