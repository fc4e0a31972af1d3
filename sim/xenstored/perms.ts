import type { XsAccess, XsPermission } from '../../src/xen/xenstore-wire.js';

export const PERM_READ = 1;
export const PERM_WRITE = 2;
export const PERM_OWNER = 4;
const ALL = PERM_READ | PERM_WRITE | PERM_OWNER;

/** Who is asking. Only dom0 is privileged in the emulator. */
export interface Caller {
  domid: number;
  privileged: boolean;
}

export const DOM0: Caller = Object.freeze({ domid: 0, privileged: true });

export function callerFor(domid: number): Caller {
  return domid === 0 ? DOM0 : { domid, privileged: false };
}

function bits(a: XsAccess): number {
  return (a === 'r' || a === 'b' ? PERM_READ : 0) | (a === 'w' || a === 'b' ? PERM_WRITE : 0);
}

/**
 * What `caller` may do to a node with these permissions: the privileged
 * domain and the owner (first entry) may do anything; otherwise the first
 * later entry naming the caller decides, else the first entry's default.
 */
export function permFor(caller: Caller, perms: readonly XsPermission[]): number {
  const owner = perms[0];
  if (caller.privileged || owner?.domid === caller.domid) return ALL;
  for (let i = 1; i < perms.length; i++) {
    const p = perms[i];
    if (p && p.domid === caller.domid) return bits(p.access);
  }
  return owner ? bits(owner.access) : 0;
}

export function canRead(caller: Caller, perms: readonly XsPermission[]): boolean {
  return (permFor(caller, perms) & PERM_READ) !== 0;
}
