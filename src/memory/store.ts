/**
 * An in-memory xenstore with xenstored's rules: permissions (first entry =
 * owner and default for everyone else; dom0 may do anything), new nodes
 * inheriting their parent's permissions but owned by an unprivileged writer,
 * relative paths under /local/domain/<id>/, watches that fire once when set
 * and then for changes at or below their path (only for nodes the watcher
 * may read), and the special watches @introduceDomain / @releaseDomain.
 * The first event of a new watch is the caller's to send, after its reply.
 */
import type { StoreAccess, StorePermission } from '../backend.js';
import { sysError } from './errno.js';
import { XS_ABS_PATH_MAX, XS_PATH_CHARS, XS_REL_PATH_MAX } from '../xen/xenstore-wire.js';

interface Node {
  value: string;
  perms: StorePermission[];
  readonly children: Map<string, Node>;
  /** Written by a backend, not a parent made on the way or a domain's skeleton. */
  written: boolean;
}

interface Watch {
  readonly domid: number;
  /** Absolute path or a special `@` name. */
  readonly path: string;
  /** Registered relative: events are reported relative too. */
  readonly relative: boolean;
  readonly deliver: (path: string) => void;
}

const SPECIAL = new Set(['@introduceDomain', '@releaseDomain']);
const VALUE_MAX = 4096;

function node(perms: StorePermission[], value = ''): Node {
  return { value, perms, children: new Map(), written: false };
}

function cloneNode(from: Node): Node {
  const copy: Node = { value: from.value, perms: from.perms, children: new Map(), written: from.written };
  for (const [name, child] of from.children) copy.children.set(name, cloneNode(child));
  return copy;
}

function accessOf(n: Node, domid: number): StoreAccess {
  if (domid === 0) return 'both';
  const [owner, ...others] = n.perms;
  if (owner === undefined) return 'none';
  if (owner.domid === domid) return 'both';
  return others.find((p) => p.domid === domid)?.access ?? owner.access;
}

const canRead = (n: Node, domid: number): boolean => ['read', 'both'].includes(accessOf(n, domid));
const canWrite = (n: Node, domid: number): boolean => ['write', 'both'].includes(accessOf(n, domid));

export function domainPath(domid: number): string {
  return `/local/domain/${domid}`;
}

/** Checks a path as xenstored does and makes it absolute. */
export function resolvePath(domid: number, path: string): string {
  if (typeof path !== 'string') throw new TypeError(`path must be a string, got ${typeof path}`);
  const absolute = path.startsWith('/');
  const bad =
    path === '' ||
    !XS_PATH_CHARS.test(path) ||
    path.includes('//') ||
    (path.endsWith('/') && path !== '/') ||
    path.length > (absolute ? XS_ABS_PATH_MAX : XS_REL_PATH_MAX);
  if (bad) throw sysError('EINVAL', `invalid xenstore path ${JSON.stringify(path)}`);
  return absolute ? path : `${domainPath(domid)}/${path}`;
}

function parts(path: string): string[] {
  return path === '/' ? [] : path.slice(1).split('/');
}

function isAtOrBelow(path: string, base: string): boolean {
  return path === base || base === '/' || path.startsWith(`${base}/`);
}

export class MemoryStore {
  // As xenstored's: owned by dom0, unreadable to others (so is /local/domain, made under it).
  private root: Node = node([{ domid: 0, access: 'none' }]);
  private readonly watches = new Map<number, Watch>();
  private nextWatch = 1;

  watchCount(): number {
    return this.watches.size;
  }

  /** Nodes written by backends that still exist. */
  entryCount(): number {
    let count = 0;
    const visit = (n: Node): void => {
      if (n.written) count++;
      n.children.forEach(visit);
    };
    visit(this.root);
    return count;
  }

  read(domid: number, path: string): string | undefined {
    const absolute = resolvePath(domid, path);
    const n = this.lookup(absolute);
    // As xenstored: a missing node is ENOENT only to a domain that may read its
    // nearest ancestor; to others EACCES hides whether it exists.
    if (!canRead(n ?? this.nearestAncestor(absolute), domid)) throw sysError('EACCES', `domain ${domid} may not read ${path}`);
    return n?.value;
  }

  /** The names of `path`'s children, or undefined when it does not exist (read rules as for read()). */
  directory(domid: number, path: string): string[] | undefined {
    const absolute = resolvePath(domid, path);
    const n = this.lookup(absolute);
    if (!canRead(n ?? this.nearestAncestor(absolute), domid)) throw sysError('EACCES', `domain ${domid} may not list ${path}`);
    return n ? [...n.children.keys()] : undefined;
  }

  /** All entries or none: on any failure the tree is restored as it was. */
  writeAll(domid: number, entries: ReadonlyArray<readonly [string, string]>, perms?: readonly StorePermission[]): void {
    const targets = entries.map(([path, value]) => {
      if (typeof value !== 'string') throw new TypeError(`the value for ${path} must be a string`);
      if (value.length > VALUE_MAX) throw sysError('EINVAL', `the value for ${path} is longer than ${VALUE_MAX} bytes`);
      return { path, absolute: resolvePath(domid, path), value };
    });
    const saved = cloneNode(this.root);
    try {
      for (const { path, absolute, value } of targets) {
        const n = this.create(domid, absolute, path);
        n.value = value;
        n.written = true;
        if (perms !== undefined) this.setPerms(domid, n, perms, path);
      }
    } catch (error) {
      this.root = saved;
      throw error;
    }
    for (const { absolute } of targets) this.fire(absolute, this.lookup(absolute));
  }

  remove(domid: number, path: string): void {
    const absolute = resolvePath(domid, path);
    if (absolute === '/') throw sysError('EINVAL', 'the root node cannot be removed');
    const names = parts(absolute);
    const parent = this.lookup(`/${names.slice(0, -1).join('/')}`);
    const name = names[names.length - 1]!;
    const target = parent?.children.get(name);
    if (parent === undefined || target === undefined) return;
    if (!canWrite(target, domid)) throw sysError('EACCES', `domain ${domid} may not remove ${path}`);
    parent.children.delete(name);
    // As xenstored: each removed node below tells the watches set exactly on
    // it (children first), then the node tells the watches at or above it.
    const below = (n: Node, path: string): void => {
      for (const [childName, child] of n.children) {
        const childPath = `${path}/${childName}`;
        below(child, childPath);
        this.fire(childPath, child, true);
      }
    };
    below(target, absolute);
    this.fire(absolute, target);
  }

  watch(domid: number, path: string, deliver: (path: string) => void): number {
    const special = SPECIAL.has(path);
    if (!special && path.startsWith('@')) throw sysError('EINVAL', `unknown special watch ${path}`);
    const absolute = special ? path : resolvePath(domid, path);
    const id = this.nextWatch++;
    this.watches.set(id, { domid, path: absolute, relative: !special && !path.startsWith('/'), deliver });
    return id;
  }

  unwatch(id: number): void {
    this.watches.delete(id);
  }

  /** A domain appears: its skeleton as the toolstack writes it, then @introduceDomain. */
  introduce(domid: number): void {
    const base = domainPath(domid);
    const readable: StorePermission[] =
      domid === 0 ? [{ domid: 0, access: 'none' }] : [{ domid: 0, access: 'none' }, { domid, access: 'read' }];
    const domain = this.create(0, base, base);
    domain.perms = readable;
    const id = this.create(0, `${base}/domid`, 'domid');
    id.perms = readable;
    id.value = String(domid);
    this.create(0, `${base}/data`, 'data').perms = [{ domid, access: 'none' }];
    this.fireSpecial('@introduceDomain');
  }

  /** A domain is gone: the toolstack removes its subtree, then @releaseDomain. */
  release(domid: number): void {
    this.remove(0, domainPath(domid));
    this.fireSpecial('@releaseDomain');
  }

  private nearestAncestor(absolute: string): Node {
    let n = this.root;
    for (const name of parts(absolute)) {
      const child = n.children.get(name);
      if (child === undefined) break;
      n = child;
    }
    return n;
  }

  private lookup(absolute: string): Node | undefined {
    let n: Node | undefined = this.root;
    for (const name of parts(absolute)) {
      n = n.children.get(name);
      if (n === undefined) return undefined;
    }
    return n;
  }

  /** The node at `absolute`, made (with missing parents) if it does not exist. */
  private create(domid: number, absolute: string, shown: string): Node {
    let n = this.root;
    let made = false;
    for (const name of parts(absolute)) {
      let child = n.children.get(name);
      if (child === undefined) {
        if (!made && !canWrite(n, domid)) throw sysError('EACCES', `domain ${domid} may not create ${shown}`);
        made = true;
        const [owner, ...others] = n.perms;
        const perms = owner === undefined || domid === 0 ? n.perms : [{ domid, access: owner.access }, ...others];
        child = node(perms);
        n.children.set(name, child);
      }
      n = child;
    }
    if (!made && !canWrite(n, domid)) throw sysError('EACCES', `domain ${domid} may not write ${shown}`);
    return n;
  }

  private setPerms(domid: number, n: Node, perms: readonly StorePermission[], shown: string): void {
    const owner = n.perms[0]?.domid;
    if (domid !== 0 && owner !== domid) throw sysError('EACCES', `domain ${domid} does not own ${shown}`);
    if (domid !== 0 && perms[0]?.domid !== owner) {
      throw sysError('EPERM', `domain ${domid} may not give ${shown} to domain ${perms[0]?.domid}`);
    }
    n.perms = perms.map(({ domid: d, access }) => ({ domid: d, access }));
  }

  /**
   * Tells the watches at or above `changed` (only those set exactly on it
   * when `exact`) that may read node `n`.
   */
  private fire(changed: string, n: Node | undefined, exact = false): void {
    for (const w of [...this.watches.values()]) {
      if (SPECIAL.has(w.path)) continue;
      if (exact ? w.path !== changed : !isAtOrBelow(changed, w.path)) continue;
      if (n !== undefined && !canRead(n, w.domid)) continue;
      const prefix = `${domainPath(w.domid)}/`;
      w.deliver(w.relative && changed.startsWith(prefix) ? changed.slice(prefix.length) : changed);
    }
  }

  private fireSpecial(name: string): void {
    for (const w of [...this.watches.values()]) if (w.path === name) w.deliver(name);
  }
}

/** Checks a permission list handed in by a caller. */
export function checkPermissions(perms: unknown): StorePermission[] {
  if (!Array.isArray(perms) || perms.length === 0) throw new TypeError('permissions must be a non-empty array');
  return perms.map((p: unknown, i) => {
    const entry = p as Partial<StorePermission> | null;
    if (typeof entry !== 'object' || entry === null) throw new TypeError(`permissions[${i}] must be an object`);
    const { domid, access } = entry;
    if (typeof domid !== 'number' || !Number.isInteger(domid) || domid < 0 || domid > 0xffff) {
      throw new RangeError(`permissions[${i}].domid must be an integer 0..65535, got ${String(domid)}`);
    }
    if (access !== 'none' && access !== 'read' && access !== 'write' && access !== 'both') {
      throw new TypeError(`permissions[${i}].access must be 'none', 'read', 'write' or 'both', got ${String(access)}`);
    }
    return { domid, access };
  });
}
