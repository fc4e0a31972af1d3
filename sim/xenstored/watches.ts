import { XS_REL_PATH_MAX } from '../../src/xen/xenstore-wire.js';
import { fail } from './errors.js';
import { canonicalize, checkNodePath, domainPath, isSpecialPath } from './paths.js';

export interface Watch {
  /** Canonical node path, or a special name like `@releaseDomain`. */
  readonly node: string;
  readonly token: string;
  /** Set for a watch registered with a relative path: events drop this prefix. */
  readonly relativeTo: string | null;
}

/** Validates and canonicalises a WATCH request from `domid`. */
export function makeWatch(domid: number, rawPath: string, token: string): Watch {
  if (isSpecialPath(rawPath)) {
    if (rawPath.length > XS_REL_PATH_MAX) fail('EINVAL', 'special watch name too long');
    return { node: rawPath, token, relativeTo: null };
  }
  const node = canonicalize(domid, rawPath);
  checkNodePath(node);
  return { node, token, relativeTo: rawPath.startsWith('/') ? null : domainPath(domid) };
}

/**
 * Does a change at `name` reach this watch? Exact events (a node deleted
 * as part of its ancestor's removal) only reach watches on that very node;
 * others reach watches at the node or above it — and a watch on `/` sees
 * everything, special events included, as in C xenstored.
 */
export function watchFires(w: Watch, name: string, exact: boolean): boolean {
  if (exact) return w.node === name;
  if (w.node === '/') return true;
  return name === w.node || name.startsWith(`${w.node}/`);
}

/** The path reported to the watcher: relative if it registered relative. */
export function watchEventPath(w: Watch, name: string): string {
  if (!w.relativeTo || !name.startsWith(w.relativeTo)) return name;
  const rest = name.slice(w.relativeTo.length);
  return rest.startsWith('/') ? rest.slice(1) : rest;
}
