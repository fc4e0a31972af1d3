import type { Socket } from 'node:net';
import type { Device, IoctlResult } from './device.js';
import { need } from './device.js';
import type { EventChannels, EventSink } from './events.js';
import { fail } from './errno.js';
import { Ioctl, Kind } from './wire.js';

/** Xen's first reserved domid (DOMID_FIRST_RESERVED). */
const DOMID_FIRST_RESERVED = 0x7ff0;

/**
 * An open /dev/xen/evtchn. Its socket is the fd the program holds: fired
 * ports are written to it as u32s, and ports written back unmask them.
 */
export class EvtchnDevice implements Device, EventSink {
  readonly kind = Kind.EVTCHN;
  private readonly ports = new Set<number>();
  private restrict: number | null = null;
  private partial = Buffer.alloc(0);

  constructor(
    readonly id: number,
    readonly domid: number,
    private readonly events: EventChannels,
    private readonly socket: Socket,
  ) {}

  deliver(port: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(port);
    if (!this.socket.destroyed) this.socket.write(b);
  }

  /** Bytes the program wrote to its fd: ports to unmask. */
  written(data: Buffer): void {
    const all = this.partial.length ? Buffer.concat([this.partial, data]) : data;
    const whole = all.length & ~3;
    for (let i = 0; i < whole; i += 4) this.events.unmask(this, all.readUInt32LE(i));
    this.partial = Buffer.from(all.subarray(whole));
  }

  ioctl(cmd: number, arg: Buffer): IoctlResult {
    switch (cmd) {
      case Ioctl.EVTCHN_BIND_UNBOUND_PORT: {
        need(arg, 4);
        if (this.restrict !== null) fail('EACCES', 'evtchn fd is restricted');
        return this.bound(this.events.allocUnbound(this, arg.readUInt32LE(0)));
      }
      case Ioctl.EVTCHN_BIND_INTERDOMAIN: {
        need(arg, 8);
        const remote = arg.readUInt32LE(0);
        if (this.restrict !== null && this.restrict !== remote) fail('EACCES', `evtchn fd is restricted to domain ${this.restrict}`);
        return this.bound(this.events.bindInterdomain(this, remote, arg.readUInt32LE(4)));
      }
      case Ioctl.EVTCHN_UNBIND: {
        need(arg, 4);
        const port = arg.readUInt32LE(0);
        this.events.unbind(this, port);
        this.ports.delete(port);
        return { result: 0 };
      }
      case Ioctl.EVTCHN_NOTIFY:
        need(arg, 4);
        this.events.notify(this, arg.readUInt32LE(0));
        return { result: 0 };
      case Ioctl.EVTCHN_RESET:
        return { result: 0 }; // resets the kernel's event ring; the socket has none to reset
      case Ioctl.EVTCHN_RESTRICT_DOMID: {
        need(arg, 2);
        if (this.restrict !== null) fail('EACCES', 'evtchn fd is already restricted');
        const domid = arg.readUInt16LE(0);
        if (domid === 0 || domid >= DOMID_FIRST_RESERVED) fail('EINVAL', `cannot restrict to domain ${domid}`);
        this.restrict = domid;
        return { result: 0 };
      }
      default:
        fail('ENOSYS');
    }
  }

  close(): void {
    for (const port of this.ports) if (this.events.owned(this, port)) this.events.unbind(this, port);
    this.ports.clear();
  }

  describe(): Record<string, number> {
    return { ports: this.ports.size };
  }

  private bound(port: number): IoctlResult {
    this.ports.add(port);
    return { result: port };
  }
}
