import { connect, type Socket } from 'node:net';
import { constants } from 'node:os';
import type { Broker } from './broker.js';

/**
 * The broker's control socket: one JSON object per line each way.
 *   {"op":"status"}                      -> status
 *   {"op":"hold","domid":N,"name":"x"}   -> {socket, xenstore}; the domain
 *                                          lives while this connection does
 *   {"op":"create"|"destroy","domid":N}  -> {}
 *   {"op":"fail","domid":N,"call":"GNTALLOC_ALLOC_GREF","errno":"ENOSPC","skip":0,"count":1}
 *                                        -> {}: that call from domain N fails (faults.ts)
 *   {"op":"unfail","domid":N?}           -> {"left":[rules not used up]}
 *   {"op":"restart-xenstore","fresh":B,"downMs":N} -> {}: xenstored drops every connection (Xenstored.restart)
 *   {"op":"stop"}                        -> {} then the broker exits
 * Errors come back as {"error": "..."}.
 */
export type ControlRequest =
  | { op: 'status' }
  | { op: 'hold'; domid: number; name?: string }
  | { op: 'create'; domid: number; name?: string }
  | { op: 'destroy'; domid: number }
  | { op: 'fail'; domid: number; call: string; errno: string; skip?: number; count?: number }
  | { op: 'unfail'; domid?: number }
  | { op: 'restart-xenstore'; fresh?: boolean; downMs?: number }
  | { op: 'stop' };

export function serveControl(broker: Broker, socket: Socket): void {
  const releases: (() => void)[] = [];
  let buf = '';
  socket.setEncoding('utf8');
  socket.on('error', () => socket.destroy());
  socket.on('close', () => releases.forEach((r) => r()));
  socket.on('data', (chunk: string) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      void answer(line).then((out) => socket.write(JSON.stringify(out) + '\n'));
    }
  });

  async function answer(line: string): Promise<unknown> {
    try {
      const req = JSON.parse(line) as ControlRequest;
      switch (req.op) {
        case 'status':
          return broker.status();
        case 'hold': {
          const { domain, release } = await broker.hold(req.domid, req.name);
          releases.push(release);
          return { domid: domain.domid, socket: domain.devicePath, xenstore: domain.xenstorePath };
        }
        case 'create': {
          const d = await broker.createDomain(req.domid, req.name, true);
          return { domid: d.domid, socket: d.devicePath, xenstore: d.xenstorePath };
        }
        case 'destroy':
          broker.destroyDomain(req.domid);
          return {};
        case 'fail':
          if (!(req.errno in constants.errno)) return { error: `not an errno name: ${req.errno}` };
          broker.faults.add({ domid: req.domid, call: req.call, errno: req.errno, skip: req.skip ?? 0, count: req.count ?? 1 });
          return {};
        case 'unfail':
          return { left: broker.faults.clear(req.domid) };
        case 'restart-xenstore':
          broker.xenstored.restart({ fresh: req.fresh === true, downMs: req.downMs ?? 0 });
          return {};
        case 'stop':
          setImmediate(() => broker.stop());
          return {};
        default:
          return { error: `unknown op ${(req as { op: unknown }).op}` };
      }
    } catch (e) {
      return { error: (e as Error).message };
    }
  }
}

/** A control connection from the CLI or a test. */
export class ControlClient {
  private buf = '';
  private readonly waiting: { resolve: (v: unknown) => void; reject: (e: Error) => void }[] = [];
  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buf += chunk;
      let nl;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        this.waiting.shift()?.resolve(JSON.parse(line));
      }
    });
    socket.on('close', () => {
      for (const w of this.waiting.splice(0)) w.reject(new Error('xensim broker closed the control connection'));
    });
  }

  static open(path: string): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.once('connect', () => {
        s.off('error', reject);
        s.on('error', () => undefined);
        resolve(new ControlClient(s));
      });
      s.once('error', reject);
    });
  }

  async request<T = Record<string, unknown>>(req: ControlRequest): Promise<T> {
    const reply = new Promise<unknown>((resolve, reject) => this.waiting.push({ resolve, reject }));
    this.socket.write(JSON.stringify(req) + '\n');
    const out = (await reply) as { error?: string };
    if (out.error) throw new Error(`xensim: ${out.error}`);
    return out as T;
  }

  /** Resolves when the broker side goes away. */
  closed(): Promise<void> {
    return new Promise((resolve) => (this.socket.closed ? resolve() : this.socket.once('close', () => resolve())));
  }

  close(): void {
    this.socket.end();
  }
}
