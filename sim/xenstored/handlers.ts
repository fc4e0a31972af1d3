/** One handler per message type: decode the payload, run, build the reply. */
import { XsType, splitStrings, splitWritePayload, type XsMessage } from '../../src/xen/xenstore-wire.js';
import type { Connection } from './connection.js';
import type { XenstoredLimits } from './limits.js';
import { fail } from './errors.js';
import * as ops from './operations.js';
import { domainPath } from './paths.js';
import type { Transaction } from './transaction.js';
import { makeWatch, watchEventPath } from './watches.js';

/** What a handler needs from the daemon. */
export interface Daemon {
  readonly limits: XenstoredLimits;
  context(conn: Connection, tx: Transaction | undefined): ops.OpContext;
  watchCount(domid: number): number;
  startTransaction(conn: Connection): number;
  endTransaction(conn: Connection, tx: Transaction, commit: boolean): void;
  hasDomain(domid: number): boolean;
  introduce(domid: number): void;
  release(domid: number): void;
}

export interface Request {
  daemon: Daemon;
  conn: Connection;
  msg: XsMessage;
  tx: Transaction | undefined;
}

/** The payload to answer with, or null when the handler has replied itself. */
type Result = Buffer | string | null;

export interface Handler {
  run(req: Request): Result;
  /** Refused with EACCES to unprivileged domains. */
  privileged?: boolean;
  /** Runs outside any transaction whatever tx_id says (WATCH, UNWATCH). */
  ignoresTransaction?: boolean;
}

const OK = 'OK\0';

/** The payload as exactly one NUL-terminated string, else undefined (→ EINVAL). */
function oneArg(payload: Buffer): string | undefined {
  const nul = payload.indexOf(0);
  return nul >= 0 && nul === payload.length - 1 ? payload.toString('latin1', 0, nul) : undefined;
}

/** xenstored reads numbers with atoi: leading digits, else 0. */
function atoi(s: string | undefined): number {
  const n = parseInt(s ?? '', 10);
  return Number.isFinite(n) ? n : 0;
}

function ctxOf(req: Request): ops.OpContext {
  return req.daemon.context(req.conn, req.tx);
}

export const HANDLERS = new Map<number, Handler>([
  [XsType.DIRECTORY, { run: (r) => ops.directory(ctxOf(r), oneArg(r.msg.payload)) }],
  [
    XsType.DIRECTORY_PART,
    {
      run: (r) => {
        const args = splitStrings(r.msg.payload);
        if (args.length !== 2) fail('EINVAL', 'DIRECTORY_PART needs a path and an offset');
        return ops.directoryPart(ctxOf(r), args[0], args[1] ?? '');
      },
    },
  ],
  [XsType.READ, { run: (r) => ops.readValue(ctxOf(r), oneArg(r.msg.payload)) }],
  [XsType.GET_PERMS, { run: (r) => ops.getPerms(ctxOf(r), oneArg(r.msg.payload)) }],
  [
    XsType.WRITE,
    {
      run: (r) => {
        const w = splitWritePayload(r.msg.payload);
        if (!w) fail('EINVAL', 'WRITE payload has no path');
        ops.writeValue(ctxOf(r), w.path, w.value);
        return OK;
      },
    },
  ],
  [XsType.MKDIR, { run: (r) => (ops.mkdir(ctxOf(r), oneArg(r.msg.payload)), OK) }],
  [XsType.RM, { run: (r) => (ops.rm(ctxOf(r), oneArg(r.msg.payload)), OK) }],
  [XsType.SET_PERMS, { run: (r) => (ops.setPerms(ctxOf(r), splitStrings(r.msg.payload)), OK) }],
  [
    XsType.WATCH,
    {
      ignoresTransaction: true,
      run: ({ daemon, conn, msg }) => {
        const args = splitStrings(msg.payload);
        if (args.length !== 2) fail('EINVAL', 'WATCH needs a path and a token');
        const w = makeWatch(conn.domid, args[0] as string, args[1] as string);
        if (conn.watches.some((x) => x.node === w.node && x.token === w.token)) fail('EEXIST');
        if (!conn.caller.privileged && daemon.watchCount(conn.domid) >= daemon.limits.maxWatchesPerDomain) {
          fail('E2BIG', `domain ${conn.domid} holds the maximum number of watches`);
        }
        conn.watches.push(w);
        conn.reply(msg, XsType.WATCH, OK);
        // Every new watch fires once at once, as xenstored does.
        conn.sendEvent(watchEventPath(w, w.node), w.token);
        return null;
      },
    },
  ],
  [
    XsType.UNWATCH,
    {
      ignoresTransaction: true,
      run: ({ conn, msg }) => {
        const args = splitStrings(msg.payload);
        if (args.length !== 2) fail('EINVAL', 'UNWATCH needs a path and a token');
        const w = makeWatch(conn.domid, args[0] as string, args[1] as string);
        const i = conn.watches.findIndex((x) => x.node === w.node && x.token === w.token);
        if (i < 0) fail('ENOENT', 'no such watch');
        conn.watches.splice(i, 1);
        return OK;
      },
    },
  ],
  [
    XsType.TRANSACTION_START,
    {
      run: ({ daemon, conn, tx }) => {
        if (tx) fail('EBUSY', 'transactions do not nest');
        return `${daemon.startTransaction(conn)}\0`;
      },
    },
  ],
  [
    XsType.TRANSACTION_END,
    {
      run: ({ daemon, conn, msg, tx }) => {
        const arg = oneArg(msg.payload);
        if (arg !== 'T' && arg !== 'F') fail('EINVAL', 'TRANSACTION_END takes T or F');
        if (!tx) fail('ENOENT', 'no transaction');
        daemon.endTransaction(conn, tx, arg === 'T');
        return OK;
      },
    },
  ],
  [
    XsType.GET_DOMAIN_PATH,
    {
      run: ({ msg }) => {
        const arg = oneArg(msg.payload);
        if (arg === undefined) fail('EINVAL');
        return `${domainPath(atoi(arg))}\0`;
      },
    },
  ],
  [
    XsType.INTRODUCE,
    {
      privileged: true,
      run: ({ daemon, msg }) => {
        const args = splitStrings(msg.payload);
        if (args.length < 3) fail('EINVAL', 'INTRODUCE needs domid, mfn and port');
        daemon.introduce(atoi(args[0]));
        return OK;
      },
    },
  ],
  [
    XsType.RELEASE,
    {
      privileged: true,
      run: ({ daemon, msg }) => {
        const domid = atoi(oneArg(msg.payload));
        if (domid === 0) fail('EINVAL', 'dom0 cannot be released');
        if (!daemon.hasDomain(domid)) fail('ENOENT');
        daemon.release(domid);
        return OK;
      },
    },
  ],
  [
    XsType.IS_DOMAIN_INTRODUCED,
    {
      privileged: true,
      run: ({ daemon, msg }) => (daemon.hasDomain(atoi(oneArg(msg.payload))) ? 'T\0' : 'F\0'),
    },
  ],
  [
    XsType.RESET_WATCHES,
    {
      run: ({ conn }) => {
        conn.watches.length = 0;
        conn.transactions.clear();
        return OK;
      },
    },
  ],
]);
