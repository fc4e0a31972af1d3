/**
 * `peers: 'all'`: the running domains but our own, followed as they are
 * created and destroyed (`@introduceDomain`, `@releaseDomain`). Only a
 * domain that may list /local/domain (dom0, a privileged driver domain)
 * can do this; elsewhere it fails with one named error.
 */
import type { Store, StoreWatch } from './backend.js';
import { VchanError } from './errors.js';

export class AllDomains {
  private watches: StoreWatch[] = [];
  private listing: Promise<void> | undefined;
  private again = false;
  private closed = false;

  constructor(
    private readonly store: Store,
    private readonly self: number,
    /** Called with the domain ids present now, each time they may have changed. */
    private readonly onDomains: (domains: number[]) => void,
  ) {}

  /** Lists once (rejects with the named error if it may not), then follows. */
  async start(): Promise<void> {
    await this.list();
    for (const path of ['@introduceDomain', '@releaseDomain']) {
      const watch = await this.store.watch(path, () => void this.relist());
      if (this.closed) void watch.close().catch(() => undefined);
      else this.watches.push(watch);
    }
  }

  private async list(): Promise<void> {
    if (!this.store.directory) throw new VchanError('ENOTSUP', "peers: 'all' needs a store that can list /local/domain (this backend's cannot)");
    let names: string[] | undefined;
    try {
      names = await this.store.directory('/local/domain');
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code !== 'EACCES' && code !== 'EPERM') throw error;
      throw new VchanError(code, "peers: 'all' needs a domain that may list /local/domain (dom0 or a privileged driver domain); name the peers instead", {
        cause: error,
      });
    }
    if (this.closed) return;
    const domains = (names ?? []).filter((n) => /^[0-9]+$/.test(n)).map(Number).filter((d) => d !== this.self);
    this.onDomains(domains);
  }

  /** Events during a listing coalesce into one more. */
  private relist(): void {
    if (this.closed) return;
    if (this.listing) {
      this.again = true;
      return;
    }
    this.listing = (async () => {
      do {
        this.again = false;
        await this.list().catch(() => undefined); // the next event lists again
      } while (this.again && !this.closed);
    })().finally(() => (this.listing = undefined));
  }

  async close(): Promise<void> {
    this.closed = true;
    const watches = this.watches;
    this.watches = [];
    await Promise.allSettled(watches.map((w) => w.close()));
  }

  ref(): void {
    for (const w of this.watches) w.ref?.();
  }

  unref(): void {
    for (const w of this.watches) w.unref?.();
  }
}
