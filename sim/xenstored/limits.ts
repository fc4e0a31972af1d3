/**
 * Per-domain limits, with C xenstored's defaults (Xen 4.17). Like xenstored,
 * they bind unprivileged domains only: dom0 is never refused for quota.
 */
export interface XenstoredLimits {
  /** Nodes one domain may own (xenstored -E, quota_nb_entry_per_domain). Past it: ENOSPC. */
  maxNodesPerDomain: number;
  /**
   * Stored size of one node — 24-byte record header + 8 bytes per permission
   * + value + NUL-terminated child names — must stay below this
   * (xenstored -S, quota_max_entry_size). Past it: ENOSPC.
   */
  maxNodeSize: number;
  /** Watches one domain may hold over all its connections (xenstored -W). Past it: E2BIG. */
  maxWatchesPerDomain: number;
  /** Open transactions per connection (xenstored -t). Past it: ENOSPC. */
  maxTransactionsPerConnection: number;
  /** Entries in one node's permission list (xenstored -A). Past it: ENOSPC. */
  maxPermsPerNode: number;
}

export const DEFAULT_LIMITS: Readonly<XenstoredLimits> = Object.freeze({
  maxNodesPerDomain: 1000,
  maxNodeSize: 2048,
  maxWatchesPerDomain: 128,
  maxTransactionsPerConnection: 10,
  maxPermsPerNode: 5,
});

export function resolveLimits(options: Partial<XenstoredLimits> = {}): XenstoredLimits {
  const out: XenstoredLimits = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof XenstoredLimits)[]) {
    const v = options[key];
    if (v === undefined) continue;
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`xenstored limit ${key} must be a non-negative integer, got ${v}`);
    out[key] = v;
  }
  return out;
}
