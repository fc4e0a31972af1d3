/**
 * listen() and connect(): the node:net-shaped entry points. Each returns a
 * VchanStream at once; setup runs behind it ('listening', 'connect', or
 * 'error'). Without a `backend` option streams share the process's default
 * XenBackend (src/xen/default-backend.ts).
 */
import type { Backend } from './backend.js';
import { Vchan } from './channel.js';
import { abortedError } from './errors.js';
import { VchanStream, type VchanAddress, type VchanStreamOptions } from './stream.js';
import { checkDomid, checkObject, checkPath, checkPort, checkRingMin, checkSignal, describe } from './validate.js';
import { leaseDefaultBackend, type BackendLease } from './xen/default-backend.js';

/** Options of `listen()`: where to offer the channel, to whom, and the stream's options. */
export interface ListenOptions extends VchanStreamOptions {
  /** Domain id of the client that may connect. */
  peer: number;
  /** Xenstore path to publish under; relative paths resolve under our domain. */
  path?: string;
  /** Qubes convention instead of a path: publishes under `data/vchan/<peer>/<port>`. */
  port?: number;
  /** Minimum bytes of the ring we read; default 64 KiB. */
  readMin?: number;
  /** Minimum bytes of the ring we write; default 64 KiB. */
  writeMin?: number;
  /** Stops waiting for the client (ERR_VCHAN_ABORTED): the stream is destroyed, everything released. */
  signal?: AbortSignal;
  /** Milliseconds to wait for the client before ERR_VCHAN_TIMEOUT. */
  timeout?: number;
  /** Default: the process's shared XenBackend (one xenstore connection for every stream). */
  backend?: Backend;
}

/** Options of `connect()`: whose channel, where, and the stream's options. */
export interface ConnectOptions extends VchanStreamOptions {
  /** Domain id of the server. */
  peer: number;
  /** The server's xenstore path. */
  path?: string;
  /** Qubes convention: `/local/domain/<peer>/data/vchan/<our domid>/<port>`. */
  port?: number;
  /** Gives up waiting for the server (ERR_VCHAN_ABORTED), releasing everything. */
  signal?: AbortSignal;
  /** Milliseconds to wait for the server before ERR_VCHAN_TIMEOUT. */
  timeout?: number;
  /** Default: the process's shared XenBackend (one xenstore connection for every stream). */
  backend?: Backend;
}

/** Exactly one of path and port. */
export function checkAddress(o: Record<string, unknown>): { path: string } | { port: number } {
  if (o.path !== undefined && o.port !== undefined) throw new TypeError('give either path or port, not both');
  if (o.path !== undefined) return { path: checkPath('path', o.path) };
  if (o.port !== undefined) return { port: checkPort('port', o.port) };
  throw new TypeError('path or port is required');
}

const CHANNEL_KEYS = new Set(['peer', 'path', 'port', 'readMin', 'writeMin', 'backend', 'signal', 'timeout']);

/** What is left for the Duplex (highWaterMark and friends). */
function streamOptions(o: Record<string, unknown>): VchanStreamOptions {
  return Object.fromEntries(Object.entries(o).filter(([key]) => !CHANNEL_KEYS.has(key))) as VchanStreamOptions;
}

/** `timeout` in milliseconds, if given: the deadline for the peer to come. */
function setupDeadline(o: Record<string, unknown>): AbortSignal | undefined {
  if (o.timeout === undefined) return undefined;
  if (typeof o.timeout !== 'number') throw new TypeError(`timeout must be a number of milliseconds, got ${describe(o.timeout)}`);
  if (!Number.isFinite(o.timeout) || o.timeout < 0) {
    throw new RangeError(`timeout must be a non-negative number of milliseconds, got ${describe(o.timeout)}`);
  }
  return AbortSignal.timeout(o.timeout);
}

function checkListener(value: unknown): (() => void) | undefined {
  if (value !== undefined && typeof value !== 'function') throw new TypeError(`listener must be a function, got ${describe(value)}`);
  return value as (() => void) | undefined;
}

/** Signals that are set, combined. */
function anyOf(...signals: Array<AbortSignal | undefined>): AbortSignal | undefined {
  const set = signals.filter((s): s is AbortSignal => s !== undefined);
  return set.length <= 1 ? set[0] : AbortSignal.any(set);
}

/**
 * Makes the stream over `setup`, run with the given or the shared default
 * backend. The stream's use of the default one ends with the channel: as
 * soon as the channel is released (end(), destroy(), or the peer seen
 * gone), or at 'close' if setup never finished.
 */
function makeStream(
  given: unknown,
  setup: (backend: Backend, cancel: AbortSignal) => Promise<Vchan>,
  options: VchanStreamOptions,
  address: VchanAddress,
): VchanStream {
  if (given !== undefined && (typeof given !== 'object' || given === null)) {
    throw new TypeError(`backend must implement Backend, got ${describe(given)}`);
  }
  let lease: BackendLease | undefined;
  const stream = new VchanStream(
    async (cancel) => {
      const backend = (given as Backend | undefined) ?? (lease = leaseDefaultBackend()).backend;
      const vchan = await setup(backend, cancel);
      void vchan.released().then(release);
      return vchan;
    },
    options,
    address,
  );
  const release = (): void => {
    lease?.release();
  };
  if (given === undefined) stream.once('close', release);
  return stream;
}

/**
 * Destroys the stream with ERR_VCHAN_ABORTED (ERR_VCHAN_TIMEOUT for a
 * deadline) when `signal` fires before `until` (or before 'close').
 */
function abortOn(stream: VchanStream, signal: AbortSignal | undefined, until?: 'connect'): void {
  if (!signal) return;
  const onAbort = (): void => {
    if (!stream.destroyed) stream.destroy(abortedError(signal));
  };
  if (signal.aborted) return queueMicrotask(onAbort);
  signal.addEventListener('abort', onAbort, { once: true });
  const done = (): void => signal.removeEventListener('abort', onAbort);
  if (until) stream.once(until, done);
  stream.once('close', done);
}

/**
 * Publishes a channel for `peer` and returns its stream; 'listening' once
 * published, 'connect' once the client is live (`listener` is added for
 * 'connect').
 */
export function listen(options: ListenOptions, listener?: () => void): VchanStream {
  const o = checkObject('options', options);
  const peer = checkDomid('peer', o.peer);
  const address = checkAddress(o);
  const readMin = o.readMin === undefined ? undefined : checkRingMin('readMin', o.readMin);
  const writeMin = o.writeMin === undefined ? undefined : checkRingMin('writeMin', o.writeMin);
  const path = 'path' in address ? address.path : `data/vchan/${peer}/${address.port}`;
  const signal = checkSignal('signal', o.signal);
  const deadline = setupDeadline(o);
  const onConnect = checkListener(listener);
  const stream = makeStream(
    o.backend,
    (backend, cancel) => Vchan.server({ peer, path, readMin, writeMin, backend, signal: cancel }),
    streamOptions(o),
    { peer, path, ...('port' in address ? { port: address.port } : {}) },
  );
  abortOn(stream, signal);
  abortOn(stream, deadline, 'connect');
  if (onConnect) stream.once('connect', onConnect);
  return stream;
}

/**
 * Connects to `peer`'s channel (waiting for it with a xenstore watch) and
 * returns its stream; 'connect' once live (`listener` is added for it).
 */
export function connect(options: ConnectOptions, listener?: () => void): VchanStream {
  const o = checkObject('options', options);
  const peer = checkDomid('peer', o.peer);
  const address = checkAddress(o);
  const signal = checkSignal('signal', o.signal);
  const deadline = setupDeadline(o);
  const onConnect = checkListener(listener);
  const stream = makeStream(
    o.backend,
    async (backend, cancel) => {
      const wait = anyOf(cancel, signal, deadline)!;
      const path = 'path' in address ? address.path : `/local/domain/${peer}/data/vchan/${await backend.domainId()}/${address.port}`;
      // Bounded by the caller only: without a timeout or signal a stale offer fails at once, never waits silently.
      return Vchan.client({ peer, path, backend, signal: wait, retryStale: signal !== undefined || deadline !== undefined });
    },
    streamOptions(o),
    'path' in address ? { peer, path: address.path } : { peer, port: address.port },
  );
  abortOn(stream, signal);
  if (onConnect) stream.once('connect', onConnect);
  return stream;
}
