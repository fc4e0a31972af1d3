import type { Socket } from 'node:net';
import type { Device } from './device.js';
import { errnoOf } from './errno.js';
import { Session } from './session.js';
import { Kind, Op, RequestReader, reply } from './wire.js';

/** What a domain socket connection turned out to be after its first request. */
export type Peer =
  | { type: 'session'; session: Session; socket: Socket }
  | { type: 'device'; device: Device; pid: number; socket: Socket };

export interface ConnectionHost {
  newSession(domid: number, pid: number): Session;
  newDevice(domid: number, kind: number): Device;
  /** The connection ended; release what it held (idempotent). */
  dropped(peer: Peer): void;
  registered(peer: Peer): void;
  helloPayload(session: Session): Buffer;
}

/**
 * Serves one connection on a domain's device socket: the first request says
 * whether it is a process's session (HELLO) or a device open (OPEN_DEV).
 */
export function serveConnection(host: ConnectionHost, domid: number, socket: Socket): void {
  const reader = new RequestReader();
  let peer: Peer | null = null;
  socket.on('error', () => socket.destroy());
  socket.on('close', () => {
    if (peer) host.dropped(peer);
  });
  socket.on('data', (chunk: Buffer) => {
    if (peer?.type === 'device') return; // a device socket only lives; it carries nothing more
    let reqs;
    try {
      reqs = reader.push(chunk);
    } catch {
      socket.destroy();
      return;
    }
    for (const req of reqs) {
      if (peer?.type === 'session') {
        socket.write(peer.session.handle(req));
      } else if (req.op === Op.HELLO) {
        const session = host.newSession(domid, req.arg);
        peer = { type: 'session', session, socket };
        host.registered(peer);
        socket.write(reply(domid, host.helloPayload(session)));
      } else if (req.op === Op.OPEN_DEV && Object.values(Kind).includes(req.arg as never)) {
        let device: Device;
        try {
          device = host.newDevice(domid, req.arg);
        } catch (e) {
          socket.end(reply(errnoOf(e)));
          return;
        }
        peer = { type: 'device', device, pid: req.dev, socket };
        host.registered(peer);
        socket.write(reply(device.id, device.openPayload?.()));
        return;
      } else {
        socket.destroy();
        return;
      }
    }
  });
}
