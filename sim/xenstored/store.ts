import type { XsPermission } from '../../src/xen/xenstore-wire.js';

/** Generation of a node that does not exist (for transaction checks). */
export const NO_GENERATION = -1;

/** A node's contents. Never mutated in place: writers store a new object. */
export interface NodeData {
  readonly value: Buffer;
  readonly perms: readonly XsPermission[];
  /** Child names in creation order, as xenstored lists them. */
  readonly children: readonly string[];
}

export interface StoredNode extends NodeData {
  /** Changes on every write; transactions compare it to detect conflicts. */
  readonly generation: number;
}

// sizeof(struct xs_tdb_record_hdr) padded, and sizeof(struct xs_permissions).
const RECORD_HEADER = 24;
const PERM_ENTRY = 8;

/** Size xenstored accounts a node at (what maxNodeSize bounds). */
export function nodeSize(n: NodeData): number {
  let size = RECORD_HEADER + PERM_ENTRY * n.perms.length + n.value.length;
  for (const c of n.children) size += c.length + 1;
  return size;
}

export function ownerOf(n: NodeData): number {
  return n.perms[0]?.domid ?? 0;
}

/**
 * Where operations read and write nodes: the live tree, or a transaction's
 * private view of it.
 */
export interface NodeView {
  read(path: string): StoredNode | undefined;
  write(path: string, data: NodeData): StoredNode;
  remove(path: string): void;
  /** Nodes currently owned by `domid` as this view sees them. */
  ownedBy(domid: number): number;
}

/** The live tree: path → node, with per-owner node counts kept current. */
export class Store implements NodeView {
  private readonly nodes = new Map<string, StoredNode>();
  private readonly owned = new Map<number, number>();
  private generation = 0;

  get size(): number {
    return this.nodes.size;
  }

  nextGeneration(): number {
    return this.generation++;
  }

  read(path: string): StoredNode | undefined {
    return this.nodes.get(path);
  }

  write(path: string, data: NodeData): StoredNode {
    const node: StoredNode = { value: data.value, perms: data.perms, children: data.children, generation: this.nextGeneration() };
    const old = this.nodes.get(path);
    if (old) this.count(ownerOf(old), -1);
    this.count(ownerOf(node), +1);
    this.nodes.set(path, node);
    return node;
  }

  remove(path: string): void {
    const old = this.nodes.get(path);
    if (!old) return;
    this.count(ownerOf(old), -1);
    this.nodes.delete(path);
  }

  ownedBy(domid: number): number {
    return this.owned.get(domid) ?? 0;
  }

  paths(): IterableIterator<string> {
    return this.nodes.keys();
  }

  private count(domid: number, delta: number): void {
    const n = (this.owned.get(domid) ?? 0) + delta;
    if (n === 0) this.owned.delete(domid);
    else this.owned.set(domid, n);
  }
}
