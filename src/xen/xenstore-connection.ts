/**
 * One connection to xenstored: frames requests, matches replies to them by
 * req_id (many may be in flight), and hands watch events to their token's
 * handler. Keeps the process alive only while it has requests or watches.
 */
import { closedError, VchanError } from '../errors.js';
import { openTransport, type XsTransport } from './xenstore-transport.js';
import {
  decodeError,
  decodeWatchEvent,
  encodeMessage,
  XS_ERRORS,
  XsFrameParser,
  XsType,
  xsTypeName,
  type XsMessage,
  type XsPayloadInput,
} from './xenstore-wire.js';

interface Pending {
  type: number;
  /** What the request was about, for error messages. */
  subject: string;
  resolve(payload: Buffer): void;
  reject(error: unknown): void;
}

export type WatchHandler = (path: string) => void;

/** The error xenstored answered with, named by its errno, e.g. code 'ENOENT'. */
export function xenstoreError(name: string, type: number, subject: string): VchanError {
  const errno = (XS_ERRORS as Record<string, number>)[name];
  return new VchanError(name, `xenstore ${xsTypeName(type)} ${subject}: ${name}${hintFor(name, type)}`, {
    syscall: `xenstore ${xsTypeName(type)}`,
    ...(errno === undefined ? {} : { errno: -errno }),
  });
}

/**
 * What the errno means for that request. The quotas are C xenstored's
 * per-domain ones (dom0 is exempt); the remedy is on the xenstored command
 * line, or fewer of whatever holds them.
 */
function hintFor(name: string, type: number): string {
  if (name === 'E2BIG' && type === XsType.WATCH) {
    return ' (this domain holds xenstored\'s maximum number of watches, -W/--watch-nb, default 128: every process of the domain counts; raise it in dom0 or hold fewer)';
  }
  if (name === 'ENOSPC' && type === XsType.TRANSACTION_START) {
    return ' (this connection has xenstored\'s maximum of open transactions, -t/--transaction, default 10)';
  }
  if (name === 'ENOSPC' && (type === XsType.WRITE || type === XsType.MKDIR || type === XsType.SET_PERMS)) {
    return ' (xenstore quota reached: this domain owns xenstored\'s maximum number of nodes, -E/--entry-nb, default 1000, or the node would pass -S/--entry-size; raise them in dom0 or offer fewer channels)';
  }
  return hints[name] ?? '';
}

const hints: Record<string, string> = {
  EACCES: ' (permission denied: the node belongs to another domain)',
  ENOSPC: ' (xenstore quota reached for this domain)',
  E2BIG: ' (request or value larger than xenstore allows)',
  EAGAIN: ' (transaction conflict)',
};

export class XsConnection {
  private transport: XsTransport | undefined;
  private readonly ready: Promise<XsTransport>;
  private readonly parser = new XsFrameParser();
  private readonly pending = new Map<number, Pending>();
  private readonly watches = new Map<string, WatchHandler>();
  /** Watches that do not keep the process alive (StoreWatch.unref). */
  private readonly unreferenced = new Set<string>();
  private nextReqId = 1;
  /** Settles when the last queued request has (one-at-a-time transports). */
  private queue: Promise<unknown> = Promise.resolve();
  private failure: unknown;
  private closed = false;

  /** `onLost` runs when an established connection goes away by itself (not after close()). */
  constructor(path: string | undefined, onLost?: () => void) {
    this.ready = openTransport(path, {
      onData: (chunk) => this.onData(chunk),
      onClose: (error) => {
        const lost = !this.closed;
        this.fail(error ? lostError(error) : closedError());
        if (lost) onLost?.();
      },
    }).then(
      (transport) => {
        if (this.closed) {
          transport.close();
          throw this.failure;
        }
        this.transport = transport;
        this.updateKeepAlive();
        return transport;
      },
      (error: unknown) => {
        this.fail(error);
        throw error;
      },
    );
    // A failed connect is reported by every request; don't let it go unhandled meanwhile.
    this.ready.catch(() => undefined);
  }

  /** Resolves once connected; rejects with the reason it could not. */
  async connected(): Promise<void> {
    await this.ready;
  }

  /** Sends one request; resolves with the reply payload or rejects with its xenstore error. */
  async request(type: number, txId: number, payload: XsPayloadInput, subject: string): Promise<Buffer> {
    const transport = await this.ready;
    if (!transport.oneAtATime) return this.send(transport, type, txId, payload, subject);
    const turn = this.queue.then(() => this.send(transport, type, txId, payload, subject));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  private send(transport: XsTransport, type: number, txId: number, payload: XsPayloadInput, subject: string): Promise<Buffer> {
    if (this.closed) return Promise.reject(this.failure);
    const reqId = this.allocReqId();
    const frame = encodeMessage(type, reqId, txId, payload);
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.set(reqId, { type, subject, resolve, reject });
      this.updateKeepAlive();
      try {
        transport.write(frame);
      } catch (error) {
        this.pending.delete(reqId);
        this.updateKeepAlive();
        reject(error);
      }
    });
  }

  /** Routes WATCH_EVENTs carrying `token` to `handler` until removed. */
  addWatchHandler(token: string, handler: WatchHandler): void {
    this.watches.set(token, handler);
    this.updateKeepAlive();
  }

  removeWatchHandler(token: string): void {
    this.watches.delete(token);
    this.unreferenced.delete(token);
    this.updateKeepAlive();
  }

  /** Whether the watch with `token` keeps the process alive (the default). */
  setWatchReferenced(token: string, on: boolean): void {
    if (!this.watches.has(token)) return;
    if (on) this.unreferenced.delete(token);
    else this.unreferenced.add(token);
    this.updateKeepAlive();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    // Closed after it was lost: from now on requests say it was closed, as after any close().
    if (this.closed) this.failure = closedError();
    this.fail(closedError());
  }

  private allocReqId(): number {
    // Never 0: xenstored's unsolicited watch events carry req_id 0.
    for (;;) {
      const id = this.nextReqId;
      this.nextReqId = id >= 0xffffffff ? 1 : id + 1;
      if (!this.pending.has(id)) return id;
    }
  }

  private onData(chunk: Buffer): void {
    let messages: XsMessage[];
    try {
      messages = this.parser.push(chunk);
    } catch (error) {
      this.fail(new VchanError('EPROTO', `xenstore sent a malformed frame: ${(error as Error).message}`, { cause: error }));
      return;
    }
    for (const msg of messages) this.dispatch(msg);
  }

  private dispatch(msg: XsMessage): void {
    if (msg.type === XsType.WATCH_EVENT) {
      const event = decodeWatchEvent(msg.payload);
      const handler = event && this.watches.get(event.token);
      if (event && handler) {
        try {
          handler(event.path);
        } catch (error) {
          // Report like an uncaught exception, but keep serving the other frames.
          queueMicrotask(() => {
            throw error;
          });
        }
      }
      return;
    }
    const p = this.pending.get(msg.reqId);
    if (!p) return; // a reply to nothing we asked: ignore, as libxenstore does
    this.pending.delete(msg.reqId);
    this.updateKeepAlive();
    if (msg.type === XsType.ERROR) p.reject(xenstoreError(decodeError(msg.payload), p.type, p.subject));
    else p.resolve(Buffer.from(msg.payload));
  }

  private fail(error: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.failure = error;
    this.watches.clear();
    this.unreferenced.clear();
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(error);
    this.transport?.close();
  }

  private updateKeepAlive(): void {
    this.transport?.setKeepAlive(!this.closed && (this.pending.size > 0 || this.watches.size > this.unreferenced.size));
  }
}

function lostError(cause: Error): VchanError {
  return new VchanError('ECONNRESET', `xenstore connection lost: ${cause.message}`, { cause });
}
