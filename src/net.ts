/**
 * listen() and connect(): the node:net-shaped entry points. Each returns a
 * VchanStream at once; setup runs behind it ('listening', 'connect', or
 * 'error'). Without a `backend` option each stream gets its own XenBackend,
 * closed with the stream.
 */
import type { Backend } from './backend.js';
import { Vchan } from './channel.js';
import { abortedError } from './errors.js';
import { VchanStream, type VchanStreamOptions } from './stream.js';
import { checkDomid, checkObject, checkPath, checkRingMin, checkSignal, describe } from './validate.js';
import { XenBackend } from './xen/backend.js';

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
  /** Default: a new XenBackend, closed with the stream. */
  backend?: Backend;
}

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
  backend?: Backend;
}

const MAX_PORT = 0x7fffffff;

function checkPort(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new TypeError(`port must be an integer, got ${describe(value)}`);
  if (value < 0 || value > MAX_PORT) throw new RangeError(`port must be in 0..${MAX_PORT}, got ${value}`);
  return value;
}

/** Exactly one of path and port. */
function checkAddress(o: Record<string, unknown>): { path: string } | { port: number } {
  if (o.path !== undefined && o.port !== undefined) throw new TypeError('give either path or port, not both');
  if (o.path !== undefined) return { path: checkPath('path', o.path) };
  if (o.port !== undefined) return { port: checkPort(o.port) };
  throw new TypeError('path or port is required');
}

const CHANNEL_KEYS = new Set(['peer', 'path', 'port', 'readMin', 'writeMin', 'backend', 'signal', 'timeout']);

/** What is left for the Duplex (highWaterMark and friends). */
function streamOptions(o: Record<string, unknown>): VchanStreamOptions {
  return Object.fromEntries(Object.entries(o).filter(([key]) => !CHANNEL_KEYS.has(key))) as VchanStreamOptions;
}

/** The caller's signal combined with a `timeout` in milliseconds, if any. */
function waitSignal(o: Record<string, unknown>): AbortSignal | undefined {
  const signal = checkSignal('signal', o.signal);
  if (o.timeout === undefined) return signal;
  if (typeof o.timeout !== 'number') throw new TypeError(`timeout must be a number of milliseconds, got ${describe(o.timeout)}`);
  if (!Number.isFinite(o.timeout) || o.timeout < 0) {
    throw new RangeError(`timeout must be a non-negative number of milliseconds, got ${describe(o.timeout)}`);
  }
  const deadline = AbortSignal.timeout(o.timeout);
  return signal ? AbortSignal.any([signal, deadline]) : deadline;
}

/**
 * Runs `setup` with the given or a new backend. A backend we created is
 * closed with the channel: at 'finish' (end() closed the channel; the
 * readable side may never be consumed, so 'close' may never come) or 'close'.
 */
function withBackend(given: unknown, setup: (backend: Backend) => Promise<Vchan>, options: VchanStreamOptions): VchanStream {
  if (given !== undefined && (typeof given !== 'object' || given === null)) {
    throw new TypeError(`backend must implement Backend, got ${describe(given)}`);
  }
  let owned: XenBackend | undefined;
  const vchan = (async () => {
    const backend = (given as Backend | undefined) ?? (owned = new XenBackend());
    return setup(backend);
  })();
  const stream = new VchanStream(vchan, options);
  if (given === undefined) {
    const release = (): void => {
      stream.off('finish', release).off('close', release);
      owned?.close();
    };
    stream.once('finish', release).once('close', release);
  }
  return stream;
}

/** Publishes a channel for `peer` and returns its stream; 'listening' once published, 'connect' once the client is live. */
export function listen(options: ListenOptions): VchanStream {
  const o = checkObject('options', options);
  const peer = checkDomid('peer', o.peer);
  const address = checkAddress(o);
  const readMin = o.readMin === undefined ? undefined : checkRingMin('readMin', o.readMin);
  const writeMin = o.writeMin === undefined ? undefined : checkRingMin('writeMin', o.writeMin);
  const path = 'path' in address ? address.path : `data/vchan/${peer}/${address.port}`;
  const signal = waitSignal(o);
  const stream = withBackend(o.backend, (backend) => Vchan.server({ peer, path, readMin, writeMin, backend }), streamOptions(o));
  if (signal) giveUpUnlessConnected(stream, signal);
  return stream;
}

/** Destroys a listening stream whose client has not come when `signal` fires. */
function giveUpUnlessConnected(stream: VchanStream, signal: AbortSignal): void {
  const onAbort = (): void => {
    if (!stream.destroyed) stream.destroy(abortedError(signal));
  };
  if (signal.aborted) return queueMicrotask(onAbort);
  signal.addEventListener('abort', onAbort, { once: true });
  const done = (): void => signal.removeEventListener('abort', onAbort);
  stream.once('connect', done).once('close', done);
}

/** Connects to `peer`'s channel (waiting for it with a xenstore watch); 'connect' once live. */
export function connect(options: ConnectOptions): VchanStream {
  const o = checkObject('options', options);
  const peer = checkDomid('peer', o.peer);
  const address = checkAddress(o);
  const signal = waitSignal(o);
  return withBackend(
    o.backend,
    async (backend) => {
      const path = 'path' in address ? address.path : `/local/domain/${peer}/data/vchan/${await backend.domainId()}/${address.port}`;
      return Vchan.client({ peer, path, backend, ...(signal ? { signal } : {}) });
    },
    streamOptions(o),
  );
}
