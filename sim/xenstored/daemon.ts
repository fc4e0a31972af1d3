import type { Socket } from 'node:net';
import { isXsErrno, XsType, xsTypeName, type XsMessage, type XsPermission } from '../../src/xen/xenstore-wire.js';
import { Connection } from './connection.js';
import { XsError, fail } from './errors.js';
import { HANDLERS, type Daemon } from './handlers.js';
import type { XenstoredLimits } from './limits.js';
import * as ops from './operations.js';
import { domainPath, isSpecialPath, parentOf } from './paths.js';
import { DOM0, canRead, type Caller } from './perms.js';
import { Store, type StoredNode } from './store.js';
import { Transaction } from './transaction.js';
import { MAX_DOMID } from '../../src/validate.js';
import { watchEventPath, watchFires } from './watches.js';

// Domain ids from DOMID_FIRST_RESERVED (0x7ff0) on are not real domains.

export interface XenstoredStats {
  nodes: number;
  watches: number;
  transactions: number;
  connections: number;
  perDomain: Record<number, { watches: number; connections: number }>;
}

/** Asked before each request: an errno name makes it fail (injected faults, sim/broker/faults.ts). */
export type FaultHook = (domid: number, call: string) => string | undefined;

/** State and rules of the emulated xenstored; Xenstored is its public face. */
export class XenstoreDaemon implements Daemon {
  readonly store = new Store();
  private readonly domains = new Map<number, string>();
  private readonly connections = new Set<Connection>();
  private readonly special = new Map<string, XsPermission[]>([
    ['@introduceDomain', [{ domid: 0, access: 'n' }]],
    ['@releaseDomain', [{ domid: 0, access: 'n' }]],
  ]);
  private nextConnId = 1;
  private closed = false;

  constructor(
    readonly limits: XenstoredLimits,
    private readonly fault?: FaultHook,
  ) {
    this.store.write('/', { value: Buffer.alloc(0), perms: [{ domid: 0, access: 'n' }], children: [] });
    const ctx = this.privilegedContext();
    ops.mkdir(ctx, '/tool/xenstored');
    ops.mkdir(ctx, '/local/domain');
    this.addDomain(0, 'Domain-0');
  }

  // ---- connections and dispatch ----

  connect(socket: Socket, domid: number): void {
    checkDomid(domid);
    if (this.closed) {
      socket.destroy();
      return;
    }
    const conn = new Connection(this.nextConnId++, socket, domid, {
      onMessage: (c, m) => this.dispatch(c, m),
      onClose: (c) => this.connections.delete(c),
    });
    this.connections.add(conn);
  }

  private dispatch(conn: Connection, msg: XsMessage): void {
    const injected = this.fault?.(conn.domid, `xs:${xsTypeName(msg.type)}`);
    if (injected === 'ECONNRESET') return conn.close();
    if (injected !== undefined) {
      // A transaction whose end fails is over, as in xenstored (its changes are dropped).
      if (msg.type === XsType.TRANSACTION_END) conn.transactions.delete(msg.txId);
      return conn.replyError(msg, isXsErrno(injected) ? injected : 'EIO');
    }
    const handler = HANDLERS.get(msg.type);
    if (!handler) return conn.replyError(msg, 'ENOSYS');
    if (handler.privileged && !conn.caller.privileged) return conn.replyError(msg, 'EACCES');
    let tx: Transaction | undefined;
    if (!handler.ignoresTransaction && msg.txId !== 0) {
      tx = conn.transactions.get(msg.txId);
      if (!tx) return conn.replyError(msg, 'ENOENT');
    }
    try {
      const result = handler.run({ daemon: this, conn, msg, tx });
      if (result !== null) conn.reply(msg, msg.type, result);
    } catch (e) {
      if (e instanceof XsError) return conn.replyError(msg, e.code);
      // A bug here must not take the emulator down; the client sees EIO.
      process.emitWarning(`xenstored: ${xsTypeName(msg.type)} from domain ${conn.domid} failed: ${(e as Error).stack ?? e}`);
      conn.replyError(msg, 'EIO');
    }
  }

  context(conn: Connection, tx: Transaction | undefined): ops.OpContext {
    return this.contextFor(conn.caller, tx);
  }

  private contextFor(caller: Caller, tx: Transaction | undefined): ops.OpContext {
    return {
      caller,
      view: tx ?? this.store,
      limits: this.limits,
      special: this.special,
      fire: tx
        ? (path, exact, node, oldPerms) => tx.queueEvent(path, exact, oldPerms ?? node?.perms)
        : (path, exact, node, oldPerms) => this.fire(path, exact, node, oldPerms),
    };
  }

  private privilegedContext(): ops.OpContext {
    return this.contextFor(DOM0, undefined);
  }

  // ---- watches ----

  watchCount(domid: number): number {
    let n = 0;
    for (const c of this.connections) if (c.domid === domid) n += c.watches.length;
    return n;
  }

  /** Sends the change at `path` to every watch it reaches whose owner may know of it. */
  fire(path: string, exact: boolean, node: StoredNode | undefined, oldPerms?: readonly XsPermission[]): void {
    const special = isSpecialPath(path);
    for (const conn of this.connections) {
      if (conn.watches.length === 0) continue;
      const allowed = special ? this.specialReadable(conn.caller, path) : this.watchPermitted(conn.caller, path, node, oldPerms);
      if (!allowed) continue;
      // Copy: a client's reaction cannot change the list mid-loop, but be safe.
      for (const w of [...conn.watches]) {
        if (watchFires(w, path, exact)) conn.sendEvent(watchEventPath(w, path), w.token);
      }
    }
  }

  private specialReadable(caller: Caller, name: string): boolean {
    const perms = this.special.get(name);
    return perms !== undefined && canRead(caller, perms);
  }

  /** The watcher may read the node (before or after the change) or its parent. */
  private watchPermitted(caller: Caller, path: string, node: StoredNode | undefined, oldPerms?: readonly XsPermission[]): boolean {
    if (caller.privileged) return true;
    if (oldPerms && canRead(caller, oldPerms)) return true;
    const n = node ?? this.store.read(path);
    if (!n) return false;
    if (canRead(caller, n.perms)) return true;
    const parent = this.store.read(parentOf(path));
    return parent !== undefined && canRead(caller, parent.perms);
  }

  // ---- transactions ----

  startTransaction(conn: Connection): number {
    if (!conn.caller.privileged && conn.transactions.size >= this.limits.maxTransactionsPerConnection) {
      fail('ENOSPC', `more than ${this.limits.maxTransactionsPerConnection} open transactions`);
    }
    const id = conn.allocTransactionId();
    conn.transactions.set(id, new Transaction(id, this.store));
    return id;
  }

  endTransaction(conn: Connection, tx: Transaction, commit: boolean): void {
    conn.transactions.delete(tx.id);
    if (!commit) return;
    if (!conn.caller.privileged) {
      for (const domid of tx.grownOwners()) {
        if (domid !== 0 && tx.ownedBy(domid) > this.limits.maxNodesPerDomain) {
          fail('ENOSPC', `domain ${domid} would own more than ${this.limits.maxNodesPerDomain} nodes`);
        }
      }
    }
    for (const e of tx.commit()) this.fire(e.path, e.exact, undefined, e.oldPerms);
  }

  // ---- domains ----

  hasDomain(domid: number): boolean {
    return this.domains.has(domid);
  }

  introduce(domid: number): void {
    this.addDomain(domid);
  }

  release(domid: number): void {
    this.releaseDomain(domid);
  }

  addDomain(domid: number, name?: string): void {
    checkDomid(domid);
    const known = this.domains.has(domid);
    const label = name ?? this.domains.get(domid) ?? (domid === 0 ? 'Domain-0' : `Domain-${domid}`);
    this.domains.set(domid, label);
    const ctx = this.privilegedContext();
    const home = domainPath(domid);
    // The home belongs to the domain; its identity entries only to dom0.
    const readOnly = domid === 0 ? ['n0'] : ['n0', `r${domid}`];
    ops.mkdir(ctx, home);
    ops.setPerms(ctx, [home, `n${domid}`]);
    ops.writeValue(ctx, `${home}/domid`, Buffer.from(String(domid)));
    ops.setPerms(ctx, [`${home}/domid`, ...readOnly]);
    ops.writeValue(ctx, `${home}/name`, Buffer.from(label));
    ops.setPerms(ctx, [`${home}/name`, ...readOnly]);
    if (!known && domid !== 0) this.fire('@introduceDomain', false, undefined);
  }

  releaseDomain(domid: number): void {
    checkDomid(domid);
    if (domid === 0) throw new RangeError('xenstored: domain 0 cannot be released');
    if (!this.domains.has(domid)) return;
    this.domains.delete(domid);
    // The domain is gone, and so is everything it had open.
    for (const c of [...this.connections]) if (c.domid === domid) c.close();
    const ctx = this.privilegedContext();
    if (this.store.read(domainPath(domid))) ops.rm(ctx, domainPath(domid));
    this.revokePermissions(domid);
    this.fire('@releaseDomain', false, undefined);
  }

  /**
   * A later domain reusing this id must inherit nothing: nodes it owned pass
   * to dom0 and its entries leave every permission list.
   */
  private revokePermissions(domid: number): void {
    const strip = (perms: readonly XsPermission[]): XsPermission[] | null => {
      if (!perms.some((p) => p.domid === domid)) return null;
      const [owner, ...rest] = perms;
      const head = owner && owner.domid === domid ? { domid: 0, access: owner.access } : owner;
      return [...(head ? [head] : []), ...rest.filter((p) => p.domid !== domid)];
    };
    for (const path of [...this.store.paths()]) {
      const node = this.store.read(path);
      const perms = node && strip(node.perms);
      if (node && perms) this.store.write(path, { ...node, perms });
    }
    for (const [name, perms] of this.special) {
      const next = strip(perms);
      if (next) this.special.set(name, next);
    }
  }

  // ---- introspection and shutdown ----

  stats(): XenstoredStats {
    const perDomain: XenstoredStats['perDomain'] = {};
    for (const domid of this.domains.keys()) perDomain[domid] = { watches: 0, connections: 0 };
    let watches = 0;
    let transactions = 0;
    for (const c of this.connections) {
      const d = (perDomain[c.domid] ??= { watches: 0, connections: 0 });
      d.watches += c.watches.length;
      d.connections += 1;
      watches += c.watches.length;
      transactions += c.transactions.size;
    }
    return { nodes: this.store.size, watches, transactions, connections: this.connections.size, perDomain };
  }

  close(): void {
    this.closed = true;
    for (const c of [...this.connections]) c.close();
  }

  /** Drops every connection (their watches and transactions go with them); the store stays. */
  dropConnections(): void {
    for (const c of [...this.connections]) c.close();
  }

  /** The introduced domains and their names. */
  domainList(): Array<[number, string]> {
    return [...this.domains];
  }
}

function checkDomid(domid: number): void {
  if (!Number.isInteger(domid) || domid < 0 || domid > MAX_DOMID) {
    throw new RangeError(`xenstored: domain id must be an integer 0..${MAX_DOMID}, got ${domid}`);
  }
}
