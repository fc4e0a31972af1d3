/**
 * Notices that the peer's *domain* is gone. A destroyed domain runs no
 * unmap notification (its kernel never unmaps anything), so a channel to it
 * would otherwise wait forever. xenstored fires `@releaseDomain` when a
 * domain dies and the toolstack removes `/local/domain/<id>`; we watch both
 * and treat the domain as gone once its `domid` node disappears.
 *
 * A server may listen for a domain that has not been created yet, so for it
 * only a domain that was seen alive can die. A client's peer certainly
 * existed (it published entries and granted the pages we mapped): pass
 * `existed`, and a home already gone at the first look means destroyed.
 * A server learns later that its client existed (it mapped the page and went
 * live): it calls `existed()`, and a home gone by then means destroyed too.
 * Unreadable (EACCES, as in a domU looking at dom0) counts as alive.
 */
import type { Store, StoreWatch } from './backend.js';

/** A watch on the peer's domain. */
export interface PeerWatch extends StoreWatch {
  /** The peer's domain certainly existed (its client connected): look again, with that known. */
  existed(): void;
}

export async function watchPeerDomain(store: Store, peer: number, existed: boolean, onGone: () => void): Promise<PeerWatch> {
  const node = `/local/domain/${peer}/domid`;
  let seen = existed;
  let gone = false;
  let checking: Promise<void> | undefined;
  let again = false;

  const exists = async (): Promise<boolean> => {
    try {
      return (await store.read(node)) !== undefined;
    } catch {
      return true;
    }
  };
  // Events arriving during a check coalesce into one more check.
  const check = (): void => {
    if (gone) return;
    if (checking) {
      again = true;
      return;
    }
    checking = (async () => {
      do {
        again = false;
        const alive = await exists();
        if (alive) seen = true;
        else if (seen && !gone) {
          gone = true;
          onGone();
        }
      } while (again && !gone);
    })().finally(() => (checking = undefined));
  };

  const watches: StoreWatch[] = [];
  try {
    watches.push(await store.watch('@releaseDomain', check));
    watches.push(await store.watch(`/local/domain/${peer}`, check));
  } catch {
    // Some stores refuse special watches to unprivileged domains: the unmap
    // notification still covers a peer process that dies.
  }
  // Look now rather than wait for the watches' first events, which may come late.
  check();
  await checking;
  return {
    async close() {
      gone = true;
      await Promise.allSettled(watches.map((w) => w.close()));
    },
    ref: () => watches.forEach((w) => w.ref?.()),
    unref: () => watches.forEach((w) => w.unref?.()),
    existed() {
      if (seen) return;
      seen = true;
      check();
    },
  };
}
