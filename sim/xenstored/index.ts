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
  private readonly daemon: XenstoreDaemon;

  /** Starts with `/`, `/tool/xenstored` and `/local/domain/0` (domid, name). */
  /** `fault`, if given, is asked about every request (`xs:<TYPE>`): an errno name fails it (ECONNRESET drops the connection). */
  constructor(options?: Partial<XenstoredLimits>, fault?: FaultHook) {
    this.daemon = new XenstoreDaemon(resolveLimits(options), fault);
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
