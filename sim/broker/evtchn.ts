import { closeSync, constants, openSync, rmSync, writeSync } from 'node:fs';
import type { Device, IoctlResult } from './device.js';
import { need } from './device.js';
import type { EventChannels, EventSink } from './events.js';
import { fail } from './errno.js';
import type { Slot } from './slots.js';
import { FROM_BROKER, Ioctl, Kind, Layout } from './wire.js';

/** Xen's first reserved domid (DOMID_FIRST_RESERVED). */
const DOMID_FIRST_RESERVED = 0x7ff0;

/**
 * An open /dev/xen/evtchn. The fd the program holds is a FIFO its preload
 * made at `fifoPath`: notifiers in other processes write fired ports into it
 * directly; the broker writes a FROM_BROKER wake-up for a port it raised.
 * The device socket only says how long the open lives.
 */
export class EvtchnDevice implements Device, EventSink {
  readonly kind = Kind.EVTCHN;
  private readonly ports = new Set<number>();
  private restrict: number | null = null;
  private fifo: number | null = null;
  private closed = false;
  private readonly record = Buffer.alloc(4);

  constructor(
    readonly id: number,
    readonly domid: number,
    private readonly events: EventChannels,
    readonly fifoPath: string,
  ) {}

  deliver(port: number): void {
    if (this.closed) return;
    try {
      // Opened read-write, as the notifiers do: no SIGPIPE, never blocks.
      this.fifo ??= openSync(this.fifoPath, constants.O_RDWR | constants.O_NONBLOCK);
      this.record.writeUInt32LE((port | FROM_BROKER) >>> 0);
      writeSync(this.fifo, this.record);
    } catch {
      /* no FIFO (the process is going) or it is full: the event is lost, as on a ring overflow */
    }
  }

  /** OPEN_DEV's reply payload: where the preload makes the FIFO. */
  openPayload(): Buffer {
    return Buffer.from(this.fifoPath);
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
        return { result: 0 }; // resets the kernel's event ring; the FIFO has none to reset
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

  /** TARGET: the remote end of `port`, for the preload to fire itself. */
  target(port: number): Buffer | null {
    const t = this.events.target(this, port);
    if (!t) return null;
    const path = Buffer.from(t.sink.fifoPath);
    const { target, slot } = Layout;
    const out = Buffer.alloc(target.bytes + path.length);
    out.writeUInt32LE(t.port, target.port);
    out.writeUInt32LE(t.slot.index, target.slot + slot.index);
    out.writeUInt32LE(t.slot.gen, target.slot + slot.gen);
    out.writeUInt32LE(t.sink.id, target.dev);
    path.copy(out, target.bytes);
    return out;
  }

  close(): void {
    for (const port of this.ports) if (this.events.owned(this, port)) this.events.unbind(this, port);
    this.ports.clear();
    this.closed = true;
    if (this.fifo !== null) closeSync(this.fifo);
    this.fifo = null;
    rmSync(this.fifoPath, { force: true });
  }

  describe(): Record<string, number> {
    return { ports: this.ports.size };
  }

  /** A bind's reply: the port, and its slot for the owner's unmask. */
  private bound(port: number): IoctlResult {
    this.ports.add(port);
    return { result: port, out: slotBytes(this.events.slotOf(this, port)) };
  }
}

function slotBytes(s: Slot): Buffer {
  const b = Buffer.alloc(Layout.slot.bytes);
  b.writeUInt32LE(s.index, Layout.slot.index);
  b.writeUInt32LE(s.gen, Layout.slot.gen);
  return b;
}
