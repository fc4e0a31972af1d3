/**
 * Drives a memory-worker.ts thread from a test: `await w.call('share', 0, 1)`.
 */
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { MemoryHypervisor, MemoryLink } from '../../src/memory/index.js';
import { bundleWorker } from './bundle-worker.js';

interface WorkerError {
  code?: string;
  message?: string;
  name?: string;
}

export class WorkerProcess {
  readonly worker: Worker;
  readonly link: MemoryLink;
  /** Ports whose handler ran, in order (handlers in 'count' mode). */
  readonly events: number[] = [];
  /** Watch events: [watch key, changed path]. */
  readonly watchEvents: Array<[number, string]> = [];
  readonly exited: Promise<number>;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
  private nextId = 1;

  private constructor(hv: MemoryHypervisor, domid: number) {
    this.link = hv.link(domid);
    const file = bundleWorker(fileURLToPath(new URL('./memory-worker.ts', import.meta.url)));
    this.worker = new Worker(file, { workerData: { link: this.link }, transferList: this.link.transferList });
    this.worker.on('message', (m: { id?: number; value?: unknown; error?: WorkerError; event?: number; watch?: number; changed?: string }) => {
      if (m.event !== undefined) this.events.push(m.event);
      if (m.watch !== undefined) this.watchEvents.push([m.watch, m.changed!]);
      if (m.id === undefined) return;
      const waiter = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.error !== undefined) waiter?.reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
      else waiter?.resolve(m.value);
    });
    // A crash is part of some tests; keep it from failing the run.
    this.worker.on('error', () => {});
    this.exited = new Promise((resolve) => {
      this.worker.once('exit', (code: number) => {
        for (const waiter of this.pending.values()) waiter.reject(new Error(`the worker exited with code ${code}`));
        this.pending.clear();
        resolve(code);
      });
    });
  }

  static async start(hv: MemoryHypervisor, domid: number): Promise<WorkerProcess> {
    const w = new WorkerProcess(hv, domid);
    await once(w.worker, 'message');
    return w;
  }

  call<T = unknown>(op: string, ...args: unknown[]): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, op, args });
    });
  }
}
