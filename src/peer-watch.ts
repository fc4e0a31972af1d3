/**
 * Notices that the peer's *domain* is gone. A destroyed domain runs no
 * unmap notification (its kernel never unmaps anything), so a channel to it
 * would otherwise wait forever. xenstored fires `@releaseDomain` when a
 * domain dies and the toolstack removes `/local/domain/<id>`; we watch both
 * and treat the domain as gone once its `domid` node disappears.
 *
 * One monitor per store, shared by every channel of the process: one
 * `@releaseDomain` watch and one watch of each peer domain's home, and per
 * event one look at each domain concerned — never one per channel, so a
 * domain's death costs the same with 1 channel or 1000, and the watches
 * stay far inside xenstored's quota.
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
/**
 * Whether `peer`'s domain exists, as its `domid` node says. A node we may not
 * read (a domU looking at dom0), or a store that fails, counts as alive: only
 * a node seen missing means destroyed.
 */
export async function domainExists(store: Store, peer: number): Promise<boolean> {
  try {
    return (await store.read(`/local/domain/${peer}/domid`)) !== undefined;
  } catch {
    return true;
  }
}

export interface PeerWatch extends StoreWatch {
  /** The peer's domain certainly existed (its client connected): look again, with that known. */
  existed(): void;
}

interface Follower {
  /** The domain was alive (or certainly existed) while this one followed it. */
  seen: boolean;
  referenced: boolean;
  readonly onGone: () => void;
}

interface FollowedDomain {
  readonly followers: Set<Follower>;
  readonly home: Promise<StoreWatch>;
  checking?: Promise<void>;
  again: boolean;
}

class DomainMonitor {
  private readonly domains = new Map<number, FollowedDomain>();
  private release: Promise<StoreWatch> | undefined;

  constructor(private readonly store: Store) {}

  async follow(peer: number, existed: boolean, onGone: () => void): Promise<PeerWatch> {
    const follower: Follower = { seen: existed, referenced: true, onGone };
    const domain = this.domainOf(peer);
    domain.followers.add(follower);
    const release = (this.release ??= this.watchOrNothing('@releaseDomain', () => this.checkAll()));
    let closed = false;
    const handle: PeerWatch = {
      close: async () => {
        if (closed) return;
        closed = true;
        domain.followers.delete(follower);
        this.refreshReferenced(domain);
        await this.dropIfUnfollowed(peer, domain);
      },
      ref: () => {
        follower.referenced = true;
        this.refreshReferenced(domain);
      },
      unref: () => {
        follower.referenced = false;
        this.refreshReferenced(domain);
      },
      existed: () => {
        if (closed || follower.seen) return;
        follower.seen = true;
        void this.check(peer, domain);
      },
    };
    try {
      await Promise.all([domain.home, release]);
    } catch (error) {
      await handle.close();
      throw error;
    }
    // Look now rather than wait for the watches' first events, which may come late.
    await this.check(peer, domain);
    return handle;
  }

  private domainOf(peer: number): FollowedDomain {
    let domain = this.domains.get(peer);
    if (!domain) {
      const home = this.watchOrNothing(`/local/domain/${peer}`, () => {
        const d = this.domains.get(peer);
        if (d) void this.check(peer, d);
      });
      domain = { followers: new Set(), home, again: false };
      this.domains.set(peer, domain);
      // A failed registration is retried by the next follower, not cached.
      home.catch(() => this.domains.get(peer) === domain && this.domains.delete(peer));
    }
    return domain;
  }

  /**
   * Some stores refuse these watches to unprivileged domains (EACCES,
   * EPERM): the unmap notification still covers a peer process that dies.
   * Anything else (a quota: E2BIG) is the caller's error.
   */
  private async watchOrNothing(path: string, onChange: () => void): Promise<StoreWatch> {
    try {
      return await this.store.watch(path, onChange);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === 'EACCES' || code === 'EPERM') return { close: async () => undefined };
      if (path === '@releaseDomain') this.release = undefined;
      throw error;
    }
  }

  private checkAll(): void {
    for (const [peer, domain] of this.domains) void this.check(peer, domain);
  }

  /** One look at the domain for all its followers; events during a look coalesce into one more. */
  private check(peer: number, domain: FollowedDomain): Promise<void> {
    if (domain.checking) {
      domain.again = true;
      return domain.checking;
    }
    domain.checking = (async () => {
      do {
        domain.again = false;
        const alive = await domainExists(this.store, peer);
        for (const follower of [...domain.followers]) {
          if (alive) follower.seen = true;
          else if (follower.seen) {
            domain.followers.delete(follower);
            follower.onGone();
          }
        }
      } while (domain.again && domain.followers.size > 0);
    })().finally(() => (domain.checking = undefined));
    return domain.checking;
  }

  private async dropIfUnfollowed(peer: number, domain: FollowedDomain): Promise<void> {
    const closing: Array<Promise<StoreWatch>> = [];
    if (domain.followers.size === 0 && this.domains.get(peer) === domain) {
      this.domains.delete(peer);
      closing.push(domain.home);
    }
    if (this.domains.size === 0 && this.release) {
      closing.push(this.release);
      this.release = undefined;
    }
    await Promise.allSettled(closing.map(async (w) => (await w).close()));
  }

  /** A watch keeps the process alive while any of its followers wants it to. */
  private refreshReferenced(domain: FollowedDomain): void {
    const wanted = (d: FollowedDomain) => [...d.followers].some((f) => f.referenced);
    void domain.home.then((w) => (wanted(domain) ? w.ref?.() : w.unref?.()), () => undefined);
    const any = [...this.domains.values()].some(wanted);
    void this.release?.then((w) => (any ? w.ref?.() : w.unref?.()), () => undefined);
  }
}

const monitors = new WeakMap<Store, DomainMonitor>();

/** Calls `onGone` once when domain `peer` is seen destroyed; see the file comment for `existed`. */
export async function watchPeerDomain(store: Store, peer: number, existed: boolean, onGone: () => void): Promise<PeerWatch> {
  let monitor = monitors.get(store);
  if (!monitor) monitors.set(store, (monitor = new DomainMonitor(store)));
  return monitor.follow(peer, existed, onGone);
}
