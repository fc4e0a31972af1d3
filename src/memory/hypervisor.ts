/**
 * MemoryHypervisor: an in-memory stand-in for Xen plus the kernel drivers of
 * every domain, for tests. Each backend is one "process" of a domain; a
 * domain exists while it has at least one backend.
 */
import { MessageChannel } from 'node:worker_threads';
import { MemoryBackend } from './backend.js';
import { EventChannels } from './ports.js';
import { GrantTables } from './grants.js';
import { serveLink, LINK_KIND, type MemoryLink } from './link.js';
import { ProcessState } from './process.js';
import { IndexPool, EventTable } from './shared.js';
import { MemoryStore } from './store.js';
import { checkDomid } from '../validate.js';

export interface MemoryHypervisorOptions {
  /** Pages each domain may share at once (gntalloc's `limit`). Default 1024. */
  readonly grantLimit?: number;
  /** Event channel ports per domain (Xen's `max_event_channels`). Default 1023. */
  readonly portLimit?: number;
}

/** What the hypervisor holds right now; all zero once every backend closed. */
export interface HeldResources {
  /** Grant refs shared and not yet released. */
  readonly grants: number;
  /** Pages mapped by some backend. */
  readonly mappedPages: number;
  /** Bound event channel ports (unbound offers included). */
  readonly ports: number;
  /** Registered xenstore watches. */
  readonly watches: number;
  /** Store nodes written by backends (not parents made on the way, not a domain's own skeleton). */
  readonly storeEntries: number;
  /** Live backends, in this thread or linked to workers. */
  readonly backends: number;
}

/** What a ProcessState needs from the hypervisor. */
export interface Hypervisor {
  readonly table: EventTable;
  readonly grants: GrantTables;
  readonly channels: EventChannels;
  readonly store: MemoryStore;
  readonly armedPool: IndexPool;
  mappedPages: number;
  processGone(process: ProcessState): void;
}

const DOORBELLS = 1024;
const SLOTS = 16384;

function checkLimit(name: string, value: number | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) throw new RangeError(`${name} must be an integer 1..${max}, got ${value}`);
  return value;
}

export class MemoryHypervisor {
  private readonly hv: Hypervisor;
  private readonly doorbells = new IndexPool(DOORBELLS);
  private readonly processes = new Map<number, ProcessState>();
  private readonly domains = new Map<number, number>();
  private readonly ended = new Map<number, () => void>();
  private readonly owners = new WeakMap<MemoryBackend, ProcessState>();
  private nextProcess = 1;

  constructor(options: MemoryHypervisorOptions = {}) {
    const grantLimit = checkLimit('grantLimit', options.grantLimit, 1024, 1 << 20);
    const portLimit = checkLimit('portLimit', options.portLimit, 1023, SLOTS);
    const table = new EventTable({ doorbells: DOORBELLS, slots: SLOTS, armed: SLOTS });
    this.hv = {
      table,
      grants: new GrantTables(grantLimit),
      channels: new EventChannels(table, portLimit, (domid) => this.domains.has(domid)),
      store: new MemoryStore(),
      armedPool: new IndexPool(SLOTS),
      mappedPages: 0,
      processGone: (process) => this.processGone(process),
    };
  }

  /** A new process of domain `domid` in this thread. */
  backend(domid: number): MemoryBackend {
    checkDomid('domid', domid);
    let backend: MemoryBackend | undefined;
    const process = this.spawn(domid, (id, changed) => backend?.deliverWatch(id, changed));
    backend = new MemoryBackend(domid, this.hv.table, process.bell, process);
    this.owners.set(backend, process);
    return backend;
  }

  /**
   * A new process of domain `domid` for a worker thread: pass the link in
   * `workerData` with `transferList: link.transferList`, and call
   * connectMemoryBackend(link) in the worker. The process exists from now
   * on; when the worker exits, crashes or is terminated, everything it held
   * is released and its armed unmap notifications fire (await released(link)
   * to know when). One link per worker.
   */
  link(domid: number): MemoryLink {
    checkDomid('domid', domid);
    const { port1, port2 } = new MessageChannel();
    const process = this.spawn(domid, (id, changed) => port1.postMessage({ watch: id, changed }));
    serveLink(port1, process);
    return { kind: LINK_KIND, id: process.id, domid, bell: process.bell, table: this.hv.table.buffer, port: port2, transferList: [port2] };
  }

  /** Resolves once the process behind `of` (a backend or a link) has released everything. */
  released(of: MemoryBackend | MemoryLink): Promise<void> {
    const id = of instanceof MemoryBackend ? this.owners.get(of)?.id : of.id;
    if (id === undefined || !this.processes.has(id)) return Promise.resolve();
    return new Promise((resolve) => {
      const before = this.ended.get(id);
      this.ended.set(id, () => {
        before?.();
        resolve();
      });
    });
  }

  /** Counts what all domains still hold, to check a test left nothing behind. */
  held(): HeldResources {
    return {
      grants: this.hv.grants.count(),
      mappedPages: this.hv.mappedPages,
      ports: this.hv.channels.count(),
      watches: this.hv.store.watchCount(),
      storeEntries: this.hv.store.entryCount(),
      backends: this.processes.size,
    };
  }

  /** Domains that have at least one live backend. */
  domainIds(): number[] {
    return [...this.domains.keys()].sort((a, b) => a - b);
  }

  private spawn(domid: number, sink: (id: number, changed: string) => void): ProcessState {
    const bell = this.doorbells.take();
    if (bell === undefined) throw new RangeError(`the in-memory hypervisor runs at most ${DOORBELLS} backends at once`);
    const process = new ProcessState(this.hv, this.nextProcess++, domid, bell, sink);
    this.processes.set(process.id, process);
    const count = this.domains.get(domid) ?? 0;
    this.domains.set(domid, count + 1);
    if (count === 0) this.hv.store.introduce(domid);
    return process;
  }

  private processGone(process: ProcessState): void {
    if (!this.processes.delete(process.id)) return;
    // Wake any waiter still parked on the doorbell before it is reused.
    this.hv.table.ring(process.bell);
    this.doorbells.give(process.bell);
    const count = (this.domains.get(process.domid) ?? 1) - 1;
    if (count === 0) {
      this.domains.delete(process.domid);
      this.hv.store.release(process.domid);
    } else {
      this.domains.set(process.domid, count);
    }
    const ended = this.ended.get(process.id);
    this.ended.delete(process.id);
    ended?.();
  }
}
