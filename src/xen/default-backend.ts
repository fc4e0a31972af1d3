/**
 * The XenBackend that streams and servers use when given none: one per
 * process, shared, so that a process with hundreds of channels holds one
 * xenstore connection (xenstored counts connections and watches per
 * domain) and one set of device fds. It lives while anything uses it and
 * is closed when the last user lets go; the next user opens a fresh one.
 * A lost xenstore connection is not a reason for a new one: its XenStore
 * connects again by itself.
 */
import { XenBackend } from './backend.js';

/** A use of the shared backend; `release()` is idempotent. */
export interface BackendLease {
  readonly backend: XenBackend;
  release(): void;
}

let shared: { backend: XenBackend; users: number } | undefined;

export function leaseDefaultBackend(): BackendLease {
  if (!shared) shared = { backend: new XenBackend(), users: 0 };
  const entry = shared;
  entry.users++;
  let released = false;
  return {
    backend: entry.backend,
    release() {
      if (released) return;
      released = true;
      if (--entry.users > 0) return;
      entry.backend.close();
      if (shared === entry) shared = undefined;
    },
  };
}
