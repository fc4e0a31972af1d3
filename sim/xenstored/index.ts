/**
 * The emulator's xenstored: Xen's xenstore wire protocol served on sockets,
 * one socket per connection and one domain per socket, with C xenstored's
 * (Xen 4.17) rules for permissions, watches, transactions and quotas.
 * Behaviour not emulated is listed in README.md beside this file.
 */
import type { Socket } from 'node:net';
import { XenstoreDaemon, type FaultHook, type XenstoredStats } from './daemon.js';
import { resolveLimits, type XenstoredLimits } from './limits.js';

export type { XenstoredLimits } from './limits.js';
export type { XenstoredStats } from './daemon.js';
export { DEFAULT_LIMITS } from './limits.js';

export class Xenstored {
  private daemon: XenstoreDaemon;
  /** Connections are refused until then (a restart in progress). */
  private downUntil = 0;

  /**
   * Starts with `/`, `/tool/xenstored` and `/local/domain/0` (domid, name).
   * `fault`, if given, is asked about every request (`xs:<TYPE>`): an errno
   * name fails it (ECONNRESET drops the connection).
   */
  constructor(
    private readonly options?: Partial<XenstoredLimits>,
    private readonly fault?: FaultHook,
  ) {
    this.daemon = new XenstoreDaemon(resolveLimits(options), fault);
  }

  /**
   * xenstored goes away and comes back: every connection is dropped (with
   * its watches and transactions), new ones are refused for `downMs`, and
   * with `fresh` the store starts again from nothing but the domains' homes
   * (what a xenstored restarted without its database has; otherwise the
   * store is kept, as after a restart from a saved database).
   */
  restart(options: { fresh?: boolean; downMs?: number } = {}): void {
    this.downUntil = Date.now() + (options.downMs ?? 0);
    if (!options.fresh) return this.daemon.dropConnections();
    const old = this.daemon;
    old.close();
    this.daemon = new XenstoreDaemon(resolveLimits(this.options), this.fault);
    for (const [domid, name] of old.domainList()) this.daemon.addDomain(domid, name);
  }

  /**
   * Creates `/local/domain/N` owned by N, with `domid` and `name` readable by
   * N and writable by dom0 only; fires `@introduceDomain`. Calling it again
   * for a known domain only refreshes those entries.
   */
  addDomain(domid: number, name?: string): void {
    this.daemon.addDomain(domid, name);
  }

  /** Serves the wire protocol on `socket` as domain `domid` (0 = privileged). */
  connect(socket: Socket, domid: number): void {
    if (Date.now() < this.downUntil) return void socket.destroy();
    this.daemon.connect(socket, domid);
  }

  /**
   * The domain is gone: closes its connections, removes `/local/domain/N`
   * (firing watches), revokes its permissions and fires `@releaseDomain`.
   */
  releaseDomain(domid: number): void {
    this.daemon.releaseDomain(domid);
  }

  stats(): XenstoredStats {
    return this.daemon.stats();
  }

  /** Closes every connection; later connects are refused. */
  close(): void {
    this.daemon.close();
  }
}
