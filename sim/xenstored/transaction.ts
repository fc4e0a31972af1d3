import type { XsPermission } from '../../src/xen/xenstore-wire.js';
import { XsError } from './errors.js';
import { NO_GENERATION, ownerOf, type NodeData, type NodeView, type Store, type StoredNode } from './store.js';

interface Access {
  /** Generation seen at first read, checked again at commit. */
  generation: number;
  checkGeneration: boolean;
  modified: boolean;
}

/** A change to announce to watchers once the transaction commits. */
export interface PendingEvent {
  path: string;
  exact: boolean;
  oldPerms: readonly XsPermission[] | undefined;
}

/**
 * Optimistic transaction, as C xenstored runs them: each node is read from
 * the live tree on first access and kept privately from then on; writes stay
 * private. Commit fails with EAGAIN if any node read has changed in the live
 * tree since (including appearing or disappearing), else applies the writes.
 */
export class Transaction implements NodeView {
  private readonly overlay = new Map<string, StoredNode | null>();
  private readonly accessed = new Map<string, Access>();
  private readonly ownerDelta = new Map<number, number>();
  private readonly events = new Map<string, PendingEvent>();

  constructor(
    readonly id: number,
    private readonly store: Store,
  ) {}

  read(path: string): StoredNode | undefined {
    const mine = this.overlay.get(path);
    if (mine !== undefined) return mine ?? undefined;
    const live = this.store.read(path);
    this.accessed.set(path, { generation: live?.generation ?? NO_GENERATION, checkGeneration: true, modified: false });
    this.overlay.set(path, live ?? null);
    return live;
  }

  write(path: string, data: NodeData): StoredNode {
    const old = this.peek(path);
    if (old) this.count(ownerOf(old), -1);
    const node: StoredNode = { value: data.value, perms: data.perms, children: data.children, generation: this.store.nextGeneration() };
    this.count(ownerOf(node), +1);
    this.overlay.set(path, node);
    this.markModified(path);
    return node;
  }

  remove(path: string): void {
    const old = this.peek(path);
    if (old) this.count(ownerOf(old), -1);
    this.overlay.set(path, null);
    this.markModified(path);
  }

  ownedBy(domid: number): number {
    return this.store.ownedBy(domid) + (this.ownerDelta.get(domid) ?? 0);
  }

  /** Domains whose node count grows if this transaction commits. */
  grownOwners(): number[] {
    return [...this.ownerDelta].filter(([, d]) => d > 0).map(([domid]) => domid);
  }

  queueEvent(path: string, exact: boolean, oldPerms?: readonly XsPermission[]): void {
    const prev = this.events.get(path);
    // A non-exact event reaches a superset of watchers; keep the wider one.
    this.events.set(path, { path, exact: prev ? prev.exact && exact : exact, oldPerms: prev?.oldPerms ?? oldPerms });
  }

  /** Validates and applies; returns the events to fire. Throws EAGAIN on conflict. */
  commit(): PendingEvent[] {
    for (const [path, a] of this.accessed) {
      if (!a.checkGeneration) continue;
      const now = this.store.read(path)?.generation ?? NO_GENERATION;
      if (now !== a.generation) throw new XsError('EAGAIN', `transaction ${this.id}: ${path} changed`);
    }
    for (const [path, a] of this.accessed) {
      if (!a.modified) continue;
      const node = this.overlay.get(path);
      if (node) this.store.write(path, node);
      else this.store.remove(path);
    }
    return [...this.events.values()];
  }

  private peek(path: string): StoredNode | undefined {
    const mine = this.overlay.get(path);
    return mine !== undefined ? (mine ?? undefined) : this.store.read(path);
  }

  private markModified(path: string): void {
    const a = this.accessed.get(path);
    if (a) a.modified = true;
    else this.accessed.set(path, { generation: NO_GENERATION, checkGeneration: false, modified: true });
  }

  private count(domid: number, delta: number): void {
    this.ownerDelta.set(domid, (this.ownerDelta.get(domid) ?? 0) + delta);
  }
}
