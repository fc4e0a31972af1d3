/**
 * createServer(): a net.Server-shaped service for many peer domains. It
 * keeps one offer published per domain and, each time a client takes it,
 * emits 'connection' and offers a fresh one (src/server-peer.ts), so
 * clients come one after another from each domain and in parallel from
 * many. Offers, watches and the xenstore connection come from one backend
 * (the process's shared one unless `backend` is given).
 */
import { EventEmitter } from 'node:events';
import type { Backend } from './backend.js';
import { VchanError } from './errors.js';
import { checkAddress } from './net.js';
import { AllDomains } from './server-all.js';
import { PeerOffers, type PeerHost } from './server-peer.js';
import type { VchanStream, VchanStreamOptions } from './stream.js';
import { checkDomid, checkObject, checkRingMin, describe } from './validate.js';
import { leaseDefaultBackend, type BackendLease } from './xen/default-backend.js';

/** Options of `createServer()`: the connections' stream options, and the backend. */
export interface VchanServerOptions extends VchanStreamOptions {
  /** Default: the process's shared XenBackend. */
  backend?: Backend;
  /** At most this many open connections from one domain; its next offer waits until one closes. */
  maxConnectionsPerPeer?: number;
}

/** Options of `server.listen()`. */
export interface ServerListenOptions {
  /** The one domain to serve (or `peers`). */
  peer?: number;
  /**
   * The domains to serve, each with its own offer; `'all'`: every running
   * domain but ours, followed as domains are created and destroyed (only
   * for a domain that may list /local/domain: dom0, a driver domain).
   */
  peers?: readonly number[] | 'all';
  /** Qubes convention: each peer's offer at `data/vchan/<peer>/<port>`. */
  port?: number;
  /** Xenstore path of the offer (one peer only: two peers cannot share one path). */
  path?: string;
  /** Minimum bytes of each ring we read; default 64 KiB. */
  readMin?: number;
  /** Minimum bytes of each ring we write; default 64 KiB. */
  writeMin?: number;
}

/** What `server.address()` returns while listening. */
export interface VchanServerAddress {
  /** The domains offered a channel now (with `peers: 'all'`, those running at this moment). */
  peers: number[];
  /** Listening with `peers: 'all'`. */
  all?: true;
  /** The xenstore path of each offer, as given to listen() (relative to our domain's home). */
  path?: string;
  /** The vchan port of each offer, when listen() was given one. */
  port?: number;
}

const SERVER_KEYS = new Set(['backend', 'maxConnectionsPerPeer']);

function checkLimit(name: string, value: unknown): number {
  if (typeof value !== 'number' || Number.isNaN(value)) throw new TypeError(`${name} must be a number, got ${describe(value)}`);
  if (value < 0 || (!Number.isInteger(value) && value !== Infinity)) {
    throw new RangeError(`${name} must be a non-negative integer or Infinity, got ${value}`);
  }
  return value;
}

function checkPeers(o: Record<string, unknown>): number[] | 'all' {
  if (o.peer !== undefined && o.peers !== undefined) throw new TypeError('give either peer or peers, not both');
  if (o.peer !== undefined) return [checkDomid('peer', o.peer)];
  if (o.peers === undefined) throw new TypeError('peer or peers is required');
  if (o.peers === 'all') return 'all';
  if (!Array.isArray(o.peers)) throw new TypeError(`peers must be an array of domain ids or 'all', got ${describe(o.peers)}`);
  if (o.peers.length === 0) throw new RangeError('peers must name at least one domain');
  const peers = o.peers.map((p, i) => checkDomid(`peers[${i}]`, p));
  if (new Set(peers).size !== peers.length) throw new RangeError('peers names a domain twice');
  return peers;
}

/** A server of vchan connections, shaped like net.Server. */
export class VchanServer extends EventEmitter {
  /** At most this many open connections in all; further offers wait until one closes. */
  maxConnections = Infinity;
  /** At most this many open connections from one domain. */
  maxConnectionsPerPeer: number;
  private readonly given: Backend | undefined;
  private readonly streamOptions: VchanStreamOptions;
  private lease: BackendLease | undefined;
  private offers = new Map<number, PeerOffers>();
  private readonly open = new Map<number, Set<VchanStream>>();
  private count = 0;
  private bound: { peers: number[] | 'all'; path?: string; port?: number } | undefined;
  private all: AllDomains | undefined;
  /** Offers of domains that went away, being withdrawn. */
  private dropping: Array<Promise<void>> = [];
  private closing = false;
  private stopping: Promise<void> | undefined;
  private referenced = true;

  constructor(options: VchanServerOptions = {}, connectionListener?: (stream: VchanStream) => void) {
    super();
    const o = checkObject('options', options);
    if (o.backend !== undefined && (typeof o.backend !== 'object' || o.backend === null)) {
      throw new TypeError(`backend must implement Backend, got ${describe(o.backend)}`);
    }
    this.given = o.backend as Backend | undefined;
    this.maxConnectionsPerPeer = o.maxConnectionsPerPeer === undefined ? Infinity : checkLimit('maxConnectionsPerPeer', o.maxConnectionsPerPeer);
    this.streamOptions = Object.fromEntries(Object.entries(o).filter(([k]) => !SERVER_KEYS.has(k))) as VchanStreamOptions;
    if (connectionListener !== undefined) {
      if (typeof connectionListener !== 'function') throw new TypeError(`connectionListener must be a function, got ${describe(connectionListener)}`);
      this.on('connection', connectionListener);
    }
  }

  /** True between listen() and close(). */
  get listening(): boolean {
    return this.bound !== undefined && !this.closing;
  }

  /** Offers a channel to each domain named; 'listening' (and `callback`) once every first offer is published. */
  listen(options: ServerListenOptions, callback?: () => void): this {
    const o = checkObject('options', options);
    const peers = checkPeers(o);
    const where = checkAddress(o);
    if ('path' in where && peers.length !== 1) throw new RangeError('path serves one peer: give port to serve several peers');
    const readMin = o.readMin === undefined ? undefined : checkRingMin('readMin', o.readMin);
    const writeMin = o.writeMin === undefined ? undefined : checkRingMin('writeMin', o.writeMin);
    if (callback !== undefined && typeof callback !== 'function') throw new TypeError(`callback must be a function, got ${describe(callback)}`);
    if (this.bound) throw new VchanError('ERR_SERVER_ALREADY_LISTEN', 'listen() was called again: close() the server first');
    this.closing = false;
    this.stopping = undefined;
    this.bound = { peers, ...where };
    if (callback) this.once('listening', callback);
    const backend = this.given ?? (this.lease = leaseDefaultBackend()).backend;
    const host: PeerHost = {
      backend,
      where,
      readMin,
      writeMin,
      streamOptions: this.streamOptions,
      hasRoom: (peer) => this.count < this.maxConnections && (this.open.get(peer)?.size ?? 0) < this.maxConnectionsPerPeer,
      connection: (peer, stream) => this.accept(peer, stream),
      error: (_peer, error) => this.emit('error', error),
      settled: () => this.maybeClosed(),
    };
    this.offers = new Map();
    this.dropping = [];
    void backend
      .domainId()
      .then(async (self) => {
        const add = (peer: number): void => {
          const known = this.offers.get(peer);
          if (known && !known.domainDestroyed) return;
          const offer = new PeerOffers(peer, host);
          this.offers.set(peer, offer);
          if (!this.referenced) offer.unref();
          void offer.start(self);
        };
        if (peers !== 'all') {
          for (const peer of peers) add(peer);
        } else {
          const all = (this.all = new AllDomains(backend.store, self, (present) => {
            if (this.closing) return;
            for (const peer of present) add(peer);
            // Gone from /local/domain: withdraw, and forget (a new domain may get its id later).
            for (const [peer, offer] of this.offers) {
              if (present.includes(peer)) continue;
              this.offers.delete(peer);
              this.dropping.push(offer.stop());
            }
          }));
          await all.start();
          if (!this.referenced) all.unref();
        }
        await Promise.all([...this.offers.values()].map((offer) => offer.first));
        // A later tick, as net.Server: listeners added after listen() hear it.
        if (this.bound && !this.closing) setImmediate(() => this.listening && this.emit('listening'));
      })
      .catch((error: unknown) => this.emit('error', error));
    return this;
  }

  private accept(peer: number, stream: VchanStream): void {
    let set = this.open.get(peer);
    if (!set) this.open.set(peer, (set = new Set()));
    set.add(stream);
    this.count++;
    stream.once('close', () => {
      set.delete(stream);
      this.count--;
      // Room again: the domains waiting for it get their offers back.
      for (const offer of this.offers.values()) offer.offer();
      this.maybeClosed();
    });
    this.emit('connection', stream);
  }

  /** Withdraws every offer; open connections go on. 'close' (and `callback`) once the last has closed. */
  close(callback?: (error?: Error) => void): this {
    if (callback !== undefined && typeof callback !== 'function') throw new TypeError(`callback must be a function, got ${describe(callback)}`);
    if (!this.bound || this.closing) {
      if (callback) {
        const error = new VchanError('ERR_SERVER_NOT_RUNNING', 'the server is not listening');
        if (this.closing) this.once('close', () => callback(error));
        else process.nextTick(callback, error);
      }
      return this;
    }
    if (callback) this.once('close', () => callback());
    this.closing = true;
    const all = this.all;
    this.all = undefined;
    this.stopping = Promise.all([...[...this.offers.values()].map((offer) => offer.stop()), ...this.dropping, all?.close()]).then(() => undefined);
    void this.stopping.then(() => this.maybeClosed());
    return this;
  }

  private maybeClosed(): void {
    if (!this.closing || this.count > 0 || !this.stopping) return;
    const stopping = this.stopping;
    void stopping.then(() => {
      if (this.stopping !== stopping || this.count > 0 || !this.bound) return;
      this.bound = undefined;
      this.stopping = undefined;
      this.lease?.release();
      this.lease = undefined;
      this.emit('close');
    });
  }

  /** Open connections, to `callback(null, count)` as net.Server. */
  getConnections(callback: (error: Error | null, count: number) => void): this {
    if (typeof callback !== 'function') throw new TypeError(`callback must be a function, got ${describe(callback)}`);
    process.nextTick(callback, null, this.count);
    return this;
  }

  /** The domains and the path or port offered, or null when not listening. */
  address(): VchanServerAddress | null {
    if (!this.listening) return null;
    const { peers, ...where } = this.bound!;
    if (peers !== 'all') return { ...where, peers: [...peers] };
    return { ...where, peers: [...this.offers.keys()], all: true };
  }

  /** Keeps the process alive while listening (the default). */
  ref(): this {
    this.referenced = true;
    for (const offer of this.offers.values()) offer.ref();
    this.all?.ref();
    return this;
  }

  /** Lets the process exit although the server listens; open connections keep their own ref. */
  unref(): this {
    this.referenced = false;
    for (const offer of this.offers.values()) offer.unref();
    this.all?.unref();
    return this;
  }
}

/** As net.createServer: `createServer([options], [connectionListener])`. */
export function createServer(
  options?: VchanServerOptions | ((stream: VchanStream) => void),
  connectionListener?: (stream: VchanStream) => void,
): VchanServer {
  if (typeof options === 'function') return new VchanServer({}, options);
  return new VchanServer(options ?? {}, connectionListener);
}
