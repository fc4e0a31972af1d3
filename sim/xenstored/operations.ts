/**
 * The node operations of xenstored, on any NodeView (live tree or a
 * transaction), with C xenstored's permission and quota rules.
 */
import {
  XS_PAYLOAD_MAX,
  encodePermissions,
  joinStrings,
  parsePermissions,
  type XsErrno,
  type XsPermission,
} from '../../src/xen/xenstore-wire.js';
import type { XenstoredLimits } from './limits.js';
import { XsError, fail } from './errors.js';
import { baseName, childPath, isSpecialPath, parentOf, resolveNodePath } from './paths.js';
import { PERM_OWNER, PERM_READ, PERM_WRITE, canRead, permFor, type Caller } from './perms.js';
import { nodeSize, ownerOf, type NodeData, type NodeView, type StoredNode } from './store.js';

export interface OpContext {
  caller: Caller;
  view: NodeView;
  limits: XenstoredLimits;
  /** Permissions of `@introduceDomain` / `@releaseDomain` (not transactional). */
  special: Map<string, XsPermission[]>;
  /** Announces a change: at once, or on commit inside a transaction. */
  fire(path: string, exact: boolean, node: StoredNode | undefined, oldPerms?: readonly XsPermission[]): void;
}

const EMPTY = Buffer.alloc(0);

function isErr(e: unknown, code: XsErrno): boolean {
  return e instanceof XsError && e.code === code;
}

/** What the caller may do at the nearest existing ancestor of `path`. */
function ancestorPerm(ctx: OpContext, path: string): number {
  let p = path;
  while (p !== '/') {
    p = parentOf(p);
    const n = ctx.view.read(p);
    if (n) return permFor(ctx.caller, n.perms);
  }
  return 0;
}

/**
 * The node if the caller has all of `want` on it. Failing that EACCES — or
 * ENOENT when the node is missing, but only if the caller has `want` at the
 * nearest ancestor: otherwise EACCES hides whether the node exists.
 */
export function getNode(ctx: OpContext, path: string, want: number): StoredNode {
  const node = ctx.view.read(path);
  if (node && (permFor(ctx.caller, node.perms) & want) === want) return node;
  const code: XsErrno = node || (ancestorPerm(ctx, path) & want) === 0 ? 'EACCES' : 'ENOENT';
  throw new XsError(code, `${code} on ${path}`);
}

function checkSize(ctx: OpContext, data: NodeData): void {
  if (!ctx.caller.privileged && nodeSize(data) >= ctx.limits.maxNodeSize) {
    fail('ENOSPC', `node of ${nodeSize(data)} bytes reaches the ${ctx.limits.maxNodeSize}-byte limit`);
  }
}

/**
 * Creates `path` and any missing ancestors. New nodes copy their parent's
 * permissions; an unprivileged creator becomes their owner. All checks run
 * before anything is written, so a refusal leaves the tree untouched.
 */
function createNode(ctx: OpContext, path: string, value: Buffer): StoredNode {
  const missing = [path];
  let top = parentOf(path);
  let parent = ctx.view.read(top);
  while (!parent) {
    if (top === '/') fail('EIO', 'root node missing');
    missing.push(top);
    top = parentOf(top);
    parent = ctx.view.read(top);
  }
  missing.reverse();
  const first = missing[0] as string;

  const { caller, limits } = ctx;
  if (!caller.privileged && ctx.view.ownedBy(caller.domid) + missing.length > limits.maxNodesPerDomain) {
    fail('ENOSPC', `domain ${caller.domid} would own more than ${limits.maxNodesPerDomain} nodes`);
  }
  const perms: XsPermission[] = parent.perms.map((p) => ({ ...p }));
  if (!caller.privileged && perms[0]) perms[0] = { domid: caller.domid, access: perms[0].access };

  const plan: [string, NodeData][] = [[top, { ...parent, children: [...parent.children, baseName(first)] }]];
  missing.forEach((p, i) => {
    const next = missing[i + 1];
    plan.push([p, { value: next ? EMPTY : value, perms, children: next ? [baseName(next)] : [] }]);
  });
  for (const [, data] of plan) checkSize(ctx, data);

  let created: StoredNode | undefined;
  for (const [p, data] of plan) created = ctx.view.write(p, data);
  return created as StoredNode;
}

export function readValue(ctx: OpContext, raw: string | undefined): Buffer {
  return getNode(ctx, resolveNodePath(ctx.caller.domid, raw), PERM_READ).value;
}

export function writeValue(ctx: OpContext, raw: string | undefined, value: Buffer): void {
  const path = resolveNodePath(ctx.caller.domid, raw);
  let node: StoredNode;
  try {
    const old = getNode(ctx, path, PERM_WRITE);
    const data = { ...old, value: Buffer.from(value) };
    checkSize(ctx, data);
    node = ctx.view.write(path, data);
  } catch (e) {
    if (!isErr(e, 'ENOENT')) throw e;
    node = createNode(ctx, path, Buffer.from(value));
  }
  ctx.fire(path, false, node);
}

/** Creates an empty node; an existing one is fine and changes nothing. */
export function mkdir(ctx: OpContext, raw: string | undefined): void {
  const path = resolveNodePath(ctx.caller.domid, raw);
  try {
    getNode(ctx, path, PERM_WRITE);
  } catch (e) {
    if (!isErr(e, 'ENOENT')) throw e;
    ctx.fire(path, false, createNode(ctx, path, EMPTY));
  }
}

function deleteTree(ctx: OpContext, path: string, node: StoredNode, top: boolean): void {
  for (const name of node.children) {
    const cp = childPath(path, name);
    const child = ctx.view.read(cp);
    if (child) deleteTree(ctx, cp, child, false);
  }
  // Watches on a removed descendant hear about it by its own name.
  if (!top) ctx.fire(path, true, node);
  ctx.view.remove(path);
}

/** Removes a subtree. Removing a missing node is fine if its parent exists. */
export function rm(ctx: OpContext, raw: string | undefined): void {
  const path = resolveNodePath(ctx.caller.domid, raw);
  let node: StoredNode;
  try {
    node = getNode(ctx, path, PERM_WRITE);
  } catch (e) {
    if (isErr(e, 'ENOENT') && ctx.view.read(parentOf(path))) return;
    throw e;
  }
  if (path === '/') fail('EINVAL', 'cannot remove /');
  const parentPath = parentOf(path);
  const parent = ctx.view.read(parentPath);
  if (!parent) fail('EINVAL', `parent of ${path} missing`);
  // Fire while the node's permissions are still there to check watchers against.
  ctx.fire(path, false, node);
  deleteTree(ctx, path, node, true);
  const name = baseName(path);
  // Shrinking a parent is never refused for size.
  ctx.view.write(parentPath, { ...parent, children: parent.children.filter((c) => c !== name) });
}

export function directory(ctx: OpContext, raw: string | undefined): Buffer {
  return joinStrings(getNode(ctx, resolveNodePath(ctx.caller.domid, raw), PERM_READ).children);
}

/**
 * A slice of a long child list: `<generation>\0` then as many whole names
 * (from byte `offset` of the NUL-separated list) as fit in one payload, and
 * an extra `\0` once the list is finished. Clients restart when the
 * generation changes between slices.
 */
export function directoryPart(ctx: OpContext, raw: string | undefined, offsetStr: string): Buffer {
  const node = getNode(ctx, resolveNodePath(ctx.caller.domid, raw), PERM_READ);
  const list = joinStrings(node.children);
  const gen = Buffer.from(`${node.generation}\0`, 'latin1');
  const off = Math.max(0, parseInt(offsetStr, 10) || 0);
  if (off >= list.length) return Buffer.concat([gen, Buffer.from([0])]);
  const room = XS_PAYLOAD_MAX - gen.length - 1;
  let len = 0;
  for (;;) {
    const end = list.indexOf(0, off + len);
    const nameLen = end - (off + len);
    if (len + nameLen >= room) break;
    len += nameLen + 1;
    if (off + len === list.length) break;
  }
  const done = off + len === list.length;
  return Buffer.concat([gen, list.subarray(off, off + len), done ? Buffer.from([0]) : EMPTY]);
}

function specialPerms(ctx: OpContext, name: string): XsPermission[] {
  const perms = ctx.special.get(name);
  if (!perms) fail('EINVAL', `unknown special node ${name}`);
  return perms;
}

export function getPerms(ctx: OpContext, raw: string | undefined): Buffer {
  if (raw !== undefined && isSpecialPath(raw)) {
    const perms = specialPerms(ctx, raw);
    if (!canRead(ctx.caller, perms)) fail('EACCES');
    return encodePermissions(perms);
  }
  return encodePermissions(getNode(ctx, resolveNodePath(ctx.caller.domid, raw), PERM_READ).perms);
}

/** SET_PERMS payload strings: path, then one entry per permission. */
export function setPerms(ctx: OpContext, args: string[]): void {
  const [raw, ...entries] = args;
  if (raw === undefined || entries.length === 0) fail('EINVAL', 'SET_PERMS needs a path and permissions');
  if (!ctx.caller.privileged && entries.length > ctx.limits.maxPermsPerNode) {
    fail('ENOSPC', `more than ${ctx.limits.maxPermsPerNode} permission entries`);
  }
  const perms = parsePermissions(entries);
  if (!perms) fail('EINVAL', `bad permissions ${entries.join(',')}`);
  const want = PERM_WRITE | PERM_OWNER;

  if (isSpecialPath(raw)) {
    const old = specialPerms(ctx, raw);
    if ((permFor(ctx.caller, old) & want) !== want) fail('EACCES');
    ctx.special.set(raw, perms);
    return;
  }
  const path = resolveNodePath(ctx.caller.domid, raw);
  const node = getNode(ctx, path, want);
  if (!ctx.caller.privileged && perms[0]?.domid !== ownerOf(node)) fail('EPERM', 'only dom0 may change a node owner');
  const data = { ...node, perms };
  checkSize(ctx, data);
  const written = ctx.view.write(path, data);
  // Watchers who could read it before the change hear about it too.
  ctx.fire(path, false, written, node.perms);
}
