import { XS_ABS_PATH_MAX, XS_PATH_CHARS, XS_REL_PATH_MAX } from '../../src/xen/xenstore-wire.js';
import { fail } from './errors.js';

// The part below a domain's home is limited separately from the whole path.
const DOMAIN_PREFIX = /^\/local\/domain\/\d{1,5}\//;

export function domainPath(domid: number): string {
  return `/local/domain/${domid}`;
}

/** `@releaseDomain` and friends: watchable names that are not nodes. */
export function isSpecialPath(p: string): boolean {
  return p.startsWith('@');
}

/** A relative path is resolved under the caller's home, as xenstored does. */
export function canonicalize(domid: number, p: string): string {
  return p.startsWith('/') || p.startsWith('@') ? p : `${domainPath(domid)}/${p}`;
}

/** EINVAL unless `p` is an absolute node path xenstored would accept. */
export function checkNodePath(p: string): void {
  if (!p.startsWith('/')) fail('EINVAL', `not an absolute path: ${p}`);
  if (p.length > 1 && p.endsWith('/')) fail('EINVAL', `trailing slash: ${p}`);
  if (p.includes('//')) fail('EINVAL', `empty path component: ${p}`);
  if (!XS_PATH_CHARS.test(p)) fail('EINVAL', `invalid character in path: ${p}`);
  if (p.length > XS_ABS_PATH_MAX) fail('EINVAL', `path longer than ${XS_ABS_PATH_MAX}`);
  const home = DOMAIN_PREFIX.exec(p);
  if (p.length - (home ? home[0].length : 0) > XS_REL_PATH_MAX) fail('EINVAL', `path longer than ${XS_REL_PATH_MAX} below the domain home`);
}

/** Canonical, validated node path for a request from `domid`. */
export function resolveNodePath(domid: number, raw: string | undefined): string {
  if (raw === undefined) fail('EINVAL', 'missing path');
  const p = canonicalize(domid, raw);
  checkNodePath(p);
  return p;
}

export function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

export function baseName(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

export function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

/** True when `p` is `base` or lies below it. */
export function isAtOrBelow(p: string, base: string): boolean {
  return base === '/' || p === base || p.startsWith(`${base}/`);
}
