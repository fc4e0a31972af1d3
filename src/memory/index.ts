/**
 * `xen-vchan/memory`: an in-memory hypervisor for tests — grants, event
 * channels, unmap notifications and xenstore with Xen's rules — in one
 * thread or across worker threads.
 *
 * ```ts
 * const hv = new MemoryHypervisor();
 * const dom0 = hv.backend(0);           // a process of domain 0, this thread
 * const link = hv.link(5);              // a process of domain 5, for a worker
 * new Worker(file, { workerData: { link }, transferList: link.transferList });
 * // in the worker: const dom5 = connectMemoryBackend(workerData.link);
 * ```
 *
 * Differences from real Xen, by design:
 * - A mapping is one Uint8Array, so `mapGrants` takes only consecutive
 *   pages of one share, in order (else `ENOTSUP`). vchan always maps so.
 * - Read-only mappings and released pages cannot be protected: writing a
 *   read-only mapping or touching memory after release() goes unnoticed.
 * - A domain exists while it has a backend; when its last backend closes or
 *   dies, /local/domain/<id> is removed and `@releaseDomain` fires (dom0 too).
 * - Grant refs are never reused, so a stale ref always fails with EINVAL.
 */
export { MemoryHypervisor, type MemoryHypervisorOptions, type HeldResources } from './hypervisor.js';
export { MemoryBackend, type ShareOptions } from './backend.js';
export { connectMemoryBackend, type MemoryLink } from './link.js';
