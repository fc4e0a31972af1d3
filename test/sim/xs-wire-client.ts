/**
 * A minimal xenstore client for tests, built on our wire codec: one request
 * at a time per call, replies matched by req_id, watch events queued.
 */
import net from 'node:net';
import {
  XsFrameParser,
  XsType,
  decodeError,
  decodeWatchEvent,
  encodeMessage,
  type XsErrno,
  type XsMessage,
  type XsPayloadInput,
} from '../../src/xen/xenstore-wire.js';

export class XsRequestError extends Error {
  constructor(
    readonly code: XsErrno,
    what: string,
  ) {
    super(`${what}: ${code}`);
  }
}

export class XsWireClient {
  private readonly parser = new XsFrameParser();
  private readonly pending = new Map<number, (m: XsMessage) => void>();
  private nextReq = 1;
  readonly events: { path: string; token: string }[] = [];
  private eventWaiters: (() => void)[] = [];
  readonly closed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const m of this.parser.push(chunk)) {
        if (m.type === XsType.WATCH_EVENT) {
          const e = decodeWatchEvent(m.payload);
          if (e) this.events.push(e);
          for (const w of this.eventWaiters.splice(0)) w();
        } else {
          this.pending.get(m.reqId)?.(m);
          this.pending.delete(m.reqId);
        }
      }
    });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
  }

  static connect(path: string): Promise<XsWireClient> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection(path, () => resolve(new XsWireClient(s)));
      s.once('error', reject);
    });
  }

  /** Sends one request and resolves with the raw reply (ERROR included). */
  request(type: number, payload: XsPayloadInput, txId = 0): Promise<XsMessage> {
    const reqId = this.nextReq++;
    return new Promise((resolve, reject) => {
      this.pending.set(reqId, resolve);
      this.socket.write(encodeMessage(type, reqId, txId, payload));
      this.closed.then(() => reject(new Error(`connection closed before reply to request ${reqId}`)));
    });
  }

  /** Like request, but an ERROR reply throws XsRequestError with its errno name. */
  async call(type: number, payload: XsPayloadInput, txId = 0): Promise<Buffer> {
    const m = await this.request(type, payload, txId);
    if (m.type === XsType.ERROR) throw new XsRequestError(decodeError(m.payload), `request type ${type}`);
    if (m.type !== type) throw new Error(`reply type ${m.type} to request type ${type}`);
    return m.payload;
  }

  /** The errno name a request fails with, or 'OK' if it succeeds. */
  async errorOf(type: number, payload: XsPayloadInput, txId = 0): Promise<XsErrno | 'OK'> {
    const m = await this.request(type, payload, txId);
    return m.type === XsType.ERROR ? decodeError(m.payload) : 'OK';
  }

  read(path: string, txId = 0): Promise<string> {
    return this.call(XsType.READ, `${path}\0`, txId).then((b) => b.toString());
  }

  write(path: string, value: string, txId = 0): Promise<Buffer> {
    return this.call(XsType.WRITE, `${path}\0${value}`, txId);
  }

  watch(path: string, token: string): Promise<Buffer> {
    return this.call(XsType.WATCH, [path, token]);
  }

  async startTransaction(): Promise<number> {
    return Number((await this.call(XsType.TRANSACTION_START, '\0')).toString().replace(/\0$/, ''));
  }

  endTransaction(txId: number, commit: boolean): Promise<Buffer> {
    return this.call(XsType.TRANSACTION_END, commit ? 'T\0' : 'F\0', txId);
  }

  /** Resolves once at least `n` events have arrived in total. */
  async waitForEvents(n: number, timeoutMs = 2000): Promise<{ path: string; token: string }[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.events.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${n} watch events, got ${JSON.stringify(this.events)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.eventWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.events;
  }

  close(): Promise<void> {
    this.socket.end();
    return this.closed;
  }
}
