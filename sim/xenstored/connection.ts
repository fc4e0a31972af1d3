import type { Socket } from 'node:net';
import {
  XS_PAYLOAD_MAX,
  XsFrameParser,
  XsType,
  encodeError,
  encodeMessage,
  encodeWatchEvent,
  type XsErrno,
  type XsMessage,
} from '../../src/xen/xenstore-wire.js';
import { callerFor, type Caller } from './perms.js';
import type { Transaction } from './transaction.js';
import type { Watch } from './watches.js';

export interface ConnectionHooks {
  onMessage(conn: Connection, msg: XsMessage): void;
  onClose(conn: Connection): void;
}

/**
 * One client socket speaking the wire protocol as one domain. Owns its
 * watches and transactions: they go when the socket goes.
 */
export class Connection {
  readonly caller: Caller;
  readonly watches: Watch[] = [];
  readonly transactions = new Map<number, Transaction>();
  private nextTxId = 1;
  private readonly parser = new XsFrameParser();
  private closed = false;

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    domid: number,
    private readonly hooks: ConnectionHooks,
  ) {
    this.caller = callerFor(domid);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => this.close());
    // 'close' follows; without a listener an error would crash the process.
    socket.on('error', () => this.close());
  }

  get domid(): number {
    return this.caller.domid;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** A free transaction id: never 0 (that means "no transaction"). */
  allocTransactionId(): number {
    for (;;) {
      const id = this.nextTxId;
      this.nextTxId = id >= 0xffffffff ? 1 : id + 1;
      if (id !== 0 && !this.transactions.has(id)) return id;
    }
  }

  /** Answers `req` with the same req_id and tx_id, as xenstored does. */
  reply(req: XsMessage, type: number, payload: Buffer | string): void {
    const body = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
    if (body.length > XS_PAYLOAD_MAX) {
      this.replyError(req, 'E2BIG');
      return;
    }
    this.send(encodeMessage(type, req.reqId, req.txId, body));
  }

  replyError(req: XsMessage, code: XsErrno): void {
    this.send(encodeMessage(XsType.ERROR, req.reqId, req.txId, encodeError(code)));
  }

  /** Unsolicited: req_id 0, tx_id 0. Over-long events are dropped, as xenstored does. */
  sendEvent(path: string, token: string): void {
    const body = encodeWatchEvent(path, token);
    if (body.length > XS_PAYLOAD_MAX) return;
    this.send(encodeMessage(XsType.WATCH_EVENT, 0, 0, body));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.watches.length = 0;
    this.transactions.clear();
    this.socket.destroy();
    this.hooks.onClose(this);
  }

  private send(frame: Buffer): void {
    if (!this.closed && this.socket.writable) this.socket.write(frame);
  }

  private onData(chunk: Buffer): void {
    let msgs: XsMessage[];
    try {
      msgs = this.parser.push(chunk);
    } catch {
      // An oversize frame cannot be skipped safely: drop the client, as xenstored does.
      this.close();
      return;
    }
    // Replies to one burst of requests leave in as few writes as possible.
    this.socket.cork();
    try {
      for (const m of msgs) {
        if (this.closed) break;
        this.hooks.onMessage(this, m);
      }
    } finally {
      if (!this.socket.destroyed) this.socket.uncork();
    }
  }
}
