import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { Xenstored } from '../xenstored/index.js';
import { serveConnection, type ConnectionHost, type Peer } from './connections.js';
import type { Device } from './device.js';
import { fail } from './errno.js';
import { EventChannels } from './events.js';
import { EvtchnDevice } from './evtchn.js';
import { GntallocDevice } from './gntalloc.js';
import { GntdevDevice } from './gntdev.js';
import { GrantTables } from './grants.js';
import { Domain } from './domains.js';
import { PagePool } from './pages.js';
import { Session } from './session.js';
import { EventSlots } from './slots.js';
import { Kind } from './wire.js';
import { MAX_DOMID } from '../../src/validate.js';
import { serveControl } from './control.js';
import { Faults } from './faults.js';

export interface BrokerOptions {
  /** State directory: sockets and the pid file. */
  dir: string;
  /** gntalloc pages per domain (Linux's default 1024). */
  gntallocLimit?: number;
  /** Pages the whole emulated host may share at once. */
  maxPages?: number;
}

/** Bound ports on the whole host (a 1 MiB sparse file of state words). */
const MAX_SLOTS = 1 << 18;

/** One emulated Xen host: domains, grants, event channels and xenstore. */
export class Broker implements ConnectionHost {
  /** Calls made to fail on purpose (`xensim fail`). */
  readonly faults = new Faults();
  readonly xenstored = new Xenstored({}, (domid, call) => this.faults.take(domid, call));
  readonly pool: PagePool;
  readonly events: EventChannels;
  readonly grants: GrantTables;
  readonly slots: EventSlots;
  private readonly domains = new Map<number, Domain>();
  private readonly peers = new Set<Peer>();
  private readonly devices = new Map<number, Device>();
  private nextId = 1;
  private ctl: Server | null = null;
  private readonly controls = new Set<Socket>();
  private closed = false;
  readonly stopped: Promise<void>;
  private resolveStopped!: () => void;

  constructor(readonly options: BrokerOptions) {
    mkdirSync(options.dir, { recursive: true, mode: 0o700 });
    this.pool = new PagePool(options.dir, options.maxPages ?? 1 << 20);
    this.slots = new EventSlots(this.pool.path.replace(/\.pages$/, '.events'), MAX_SLOTS);
    this.events = new EventChannels((d) => this.domains.get(d)?.alive ?? false, this.slots);
    // evtchn FIFOs (made by the preloads); any left by a killed broker go
    rmSync(this.fifoDir, { recursive: true, force: true });
    mkdirSync(this.fifoDir, { mode: 0o700 });
    this.grants = new GrantTables(this.pool, this.events, {
      gntallocLimit: options.gntallocLimit ?? 1024,
      maxRefs: 32768,
    });
    this.stopped = new Promise((r) => (this.resolveStopped = r));
  }

  get fifoDir(): string {
    return join(this.options.dir, 'evtchn');
  }

  get controlPath(): string {
    return join(this.options.dir, 'ctl.sock');
  }

  async start(): Promise<void> {
    await this.createDomain(0, 'Domain-0', true);
    rmSync(this.controlPath, { force: true });
    this.ctl = createServer((s) => {
      this.controls.add(s);
      s.once('close', () => this.controls.delete(s));
      serveControl(this, s);
    });
    await new Promise<void>((resolve, reject) => {
      this.ctl!.once('error', reject);
      this.ctl!.listen(this.controlPath, resolve);
    });
    writeFileSync(join(this.options.dir, 'broker.pid'), `${process.pid}\n`);
  }

  stop(): void {
    if (this.closed) return;
    this.closed = true;
    this.ctl?.close();
    rmSync(this.controlPath, { force: true });
    rmSync(join(this.options.dir, 'broker.pid'), { force: true });
    for (const peer of [...this.peers]) {
      this.dropped(peer); // now, while the pool is still open
      peer.socket.destroy();
    }
    // after the reply to `stop` has gone out
    for (const c of this.controls) c.end();
    for (const d of this.domains.values()) d.close();
    this.xenstored.close();
    this.pool.close();
    this.slots.close();
    rmSync(this.fifoDir, { recursive: true, force: true });
    this.resolveStopped();
  }

  // ---- domains ----

  domain(domid: number): Domain | undefined {
    return this.domains.get(domid);
  }

  async createDomain(domid: number, name?: string, explicit = false): Promise<Domain> {
    if (!Number.isInteger(domid) || domid < 0 || domid > MAX_DOMID) fail('EINVAL', `bad domain id ${domid}`);
    let d = this.domains.get(domid);
    if (d) {
      if (explicit) d.explicit = true;
      await d.ready;
      return d;
    }
    d = new Domain(domid, name ?? (domid === 0 ? 'Domain-0' : `dom${domid}`), explicit, this.options.dir);
    this.domains.set(domid, d);
    const dom = d;
    d.ready = d.listen(
      (s: Socket) => serveConnection(this, domid, s),
      (s: Socket) => this.xenstored.connect(s, dom.domid),
    );
    this.xenstored.addDomain(domid, d.name);
    await d.ready;
    return d;
  }

  /** Keeps a domain alive until the returned function is called. */
  async hold(domid: number, name?: string): Promise<{ domain: Domain; release: () => void }> {
    const domain = await this.createDomain(domid, name);
    domain.holds++;
    let done = false;
    return {
      domain,
      release: () => {
        if (done) return;
        done = true;
        domain.holds--;
        if (!domain.alive) this.destroyDomain(domid, true);
      },
    };
  }

  /**
   * Everything of the domain goes, as when Xen destroys it; dom0 stays. A
   * destroyed domain's kernel runs no unmap notification, so what its
   * processes armed is disarmed first. When it goes because its last `run`
   * command exited (`processesExited`), those processes ended first and their
   * notifications run, as at any exit.
   */
  destroyDomain(domid: number, processesExited = false): void {
    const d = this.domains.get(domid);
    if (!d || domid === 0 || this.closed) return;
    this.domains.delete(domid);
    d.close();
    const doomed = [...this.peers].filter((peer) => (peer.type === 'session' ? peer.session.domid : peer.device.domid) === domid);
    if (!processesExited) {
      this.grants.destroyDomain(domid);
      for (const peer of doomed) if (peer.type === 'device') peer.device.domainDestroyed?.();
    }
    for (const peer of doomed) {
      this.dropped(peer);
      peer.socket.destroy();
    }
    this.events.destroyDomain(domid);
    this.grants.destroyDomain(domid);
    this.xenstored.releaseDomain(domid);
  }

  // ---- ConnectionHost ----

  newSession(domid: number, pid: number): Session {
    return new Session(this.nextId++, domid, pid, (id) => this.devices.get(id), this.faults);
  }

  newDevice(domid: number, kind: number): Device {
    const id = this.nextId++;
    switch (kind) {
      case Kind.GNTALLOC:
        return new GntallocDevice(id, domid, this.grants, this.events);
      case Kind.GNTDEV:
        return new GntdevDevice(id, domid, this.grants, this.events);
      case Kind.EVTCHN:
        return new EvtchnDevice(id, domid, this.events, join(this.fifoDir, String(id)));
      default:
        fail('ENODEV');
    }
  }

  registered(peer: Peer): void {
    this.peers.add(peer);
    if (peer.type === 'device') this.devices.set(peer.device.id, peer.device);
  }

  dropped(peer: Peer): void {
    if (!this.peers.delete(peer)) return;
    if (peer.type === 'session') {
      peer.session.destroy();
    } else {
      this.devices.delete(peer.device.id);
      peer.device.close();
    }
  }

  /** Session id, then the page file and the event slot file, NUL-separated. */
  helloPayload(session: Session): Buffer {
    const id = Buffer.alloc(4);
    id.writeUInt32LE(session.id);
    return Buffer.concat([id, Buffer.from(`${this.pool.path}\0${this.slots.path}`)]);
  }

  // ---- status ----

  status(): BrokerStatus {
    const xs = this.xenstored.stats();
    const processes = new Map<number, ProcessStatus>();
    const proc = (pid: number, domid: number) => {
      let p = processes.get(pid);
      if (!p) processes.set(pid, (p = { pid, domid, mappings: 0, mappedPages: 0, devices: [] }));
      return p;
    };
    let mappedPages = 0;
    for (const peer of this.peers) {
      if (peer.type === 'session') {
        const p = proc(peer.session.pid, peer.session.domid);
        p.mappings += peer.session.mappings;
        p.mappedPages += peer.session.mappedPages;
        mappedPages += peer.session.mappedPages;
      } else {
        const kind = ({ 1: 'gntalloc', 2: 'gntdev', 3: 'evtchn' } as const)[peer.device.kind];
        proc(peer.pid, peer.device.domid).devices.push({ id: peer.device.id, kind, ...peer.device.describe() });
      }
    }
    (globalThis as { gc?: () => void }).gc?.();
    const mem = process.memoryUsage();
    return {
      pid: process.pid,
      dir: this.options.dir,
      domains: [...this.domains.values()].map((d) => ({
        domid: d.domid,
        name: d.name,
        holds: d.holds,
        explicit: d.explicit,
        grants: this.grants.count(d.domid),
        ports: this.events.count(d.domid),
        watches: xs.perDomain[d.domid]?.watches ?? 0,
        xenstoreConnections: xs.perDomain[d.domid]?.connections ?? 0,
      })),
      grants: this.grants.count(),
      pages: this.pool.live,
      mappedPages,
      ports: this.events.count(),
      watches: xs.watches,
      xenstore: { nodes: xs.nodes, transactions: xs.transactions, connections: xs.connections },
      processes: [...processes.values()],
      memory: { rss: mem.rss, heapUsed: mem.heapUsed, poolFilePages: this.pool.extent },
    };
  }
}

export interface ProcessStatus {
  pid: number;
  domid: number;
  mappings: number;
  mappedPages: number;
  devices: Record<string, number | string>[];
}

export interface BrokerStatus {
  pid: number;
  dir: string;
  domains: {
    domid: number;
    name: string;
    holds: number;
    explicit: boolean;
    grants: number;
    ports: number;
    watches: number;
    xenstoreConnections: number;
  }[];
  grants: number;
  pages: number;
  mappedPages: number;
  ports: number;
  watches: number;
  xenstore: { nodes: number; transactions: number; connections: number };
  processes: ProcessStatus[];
  memory: { rss: number; heapUsed: number; poolFilePages: number };
}
