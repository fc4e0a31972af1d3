/**
 * Event channels over one /dev/xen/evtchn fd: binds ports and dispatches
 * each wake-up (ports already unmasked by the shim) to the port's handler.
 * The fd is watched by one uv_poll watcher that keeps the process alive
 * only while some port is bound.
 */
import type { EventChannel, EventHandler } from '../backend.js';
import type { Devices } from './devices.js';
import { kernelError, sys } from './errors.js';
import type { NativeError, NativeWatcher, XenNative } from './native.js';

export class EventPorts {
  private readonly handlers = new Map<number, EventHandler>();
  private watcher: NativeWatcher | undefined;
  private broken: unknown;

  constructor(
    private readonly native: XenNative,
    private readonly devices: Devices,
  ) {}

  bindUnbound(peer: number, onEvent: EventHandler): EventChannel {
    const fd = this.start();
    const port = sys(`allocating an event channel port for domain ${peer}`, () => this.native.evtchnBindUnboundPort(fd, peer));
    return this.add(fd, port, onEvent);
  }

  bindInterdomain(peer: number, remotePort: number, onEvent: EventHandler): EventChannel {
    const fd = this.start();
    const port = sys(`binding to port ${remotePort} of domain ${peer}`, () => this.native.evtchnBindInterdomain(fd, peer, remotePort));
    return this.add(fd, port, onEvent);
  }

  /** Stops watching; the devices are closed by their owner. */
  close(): void {
    this.handlers.clear();
    this.watcher?.close();
    this.watcher = undefined;
  }

  private start(): number {
    if (this.broken !== undefined) throw this.broken;
    const fd = this.devices.fd('evtchn');
    if (!this.watcher) {
      this.watcher = sys('watching the event channel device', () => new this.native.Watcher(fd, true, (e, ports) => this.onWake(e, ports)));
      this.watcher.unref();
    }
    return fd;
  }

  private add(fd: number, port: number, onEvent: EventHandler): EventChannel {
    this.handlers.set(port, onEvent);
    this.updateRef();
    let closed = false;
    return {
      port,
      // The hot path: no closure or string built per notify, only on failure.
      notify: () => {
        if (closed) return;
        try {
          this.native.evtchnNotify(fd, port);
        } catch (error) {
          throw kernelError(error, `notifying event channel port ${port}`);
        }
      },
      close: () => {
        if (closed) return;
        closed = true;
        // Forget the handler first: no callback after close, even for an event already read.
        this.handlers.delete(port);
        this.updateRef();
        if (this.broken === undefined && this.devices.isOpen('evtchn')) {
          sys(`unbinding event channel port ${port}`, () => this.native.evtchnUnbind(fd, port));
        }
      },
    };
  }

  private onWake(error: NativeError | null, ports: number[] | undefined): void {
    if (error) {
      // The device failed (or the emulator went away): wake everyone so they re-check, refuse new binds.
      this.broken = kernelError(error, 'reading the event channel device');
      this.watcher = undefined;
      for (const handler of [...this.handlers.values()]) this.call(handler);
      return;
    }
    for (const port of ports ?? []) {
      const handler = this.handlers.get(port);
      if (handler) this.call(handler);
    }
  }

  private call(handler: EventHandler): void {
    try {
      handler();
    } catch (error) {
      // One channel's bug must not starve the others: report it like an uncaught exception.
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  private updateRef(): void {
    if (this.handlers.size > 0) this.watcher?.ref();
    else this.watcher?.unref();
  }
}
