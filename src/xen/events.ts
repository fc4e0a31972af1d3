/**
 * Event channels over one /dev/xen/evtchn fd: binds ports, dispatches each
 * wake-up to the port's handler, then unmasks the port. The fd is watched by
 * one uv_poll watcher that keeps the process alive only while some port is
 * bound.
 *
 * A peer can notify as often as it likes: a port whose handler keeps finding
 * nothing new is unmasked later and later (flood-throttle.ts). Events that
 * fire while a port is masked stay pending and arrive at the unmask.
 */
import type { EventChannel, EventHandler } from '../backend.js';
import type { Devices } from './devices.js';
import { kernelError, sys } from './errors.js';
import { FloodThrottle } from '../flood-throttle.js';
import type { NativeError, NativeWatcher, XenNative } from './native.js';

interface PortState {
  readonly handler: EventHandler;
  readonly throttle: FloodThrottle;
  /** A delayed unmask, while throttled. */
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Whether this port keeps the process alive (EventChannel.ref/unref). */
  referenced: boolean;
}

export class EventPorts {
  private readonly ports = new Map<number, PortState>();
  private fd = -1;
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
    for (const state of this.ports.values()) clearTimeout(state.timer);
    this.ports.clear();
    this.watcher?.close();
    this.watcher = undefined;
  }

  private start(): number {
    if (this.broken !== undefined) throw this.broken;
    const fd = this.devices.fd('evtchn');
    this.fd = fd;
    if (!this.watcher) {
      this.watcher = sys('watching the event channel device', () => new this.native.Watcher(fd, true, (e, ports) => this.onWake(e, ports)));
      this.watcher.unref();
    }
    return fd;
  }

  private add(fd: number, port: number, onEvent: EventHandler): EventChannel {
    const state: PortState = { handler: onEvent, throttle: new FloodThrottle(), timer: undefined, referenced: true };
    this.ports.set(port, state);
    this.updateRef();
    let closed = false;
    const setReferenced = (on: boolean): void => {
      if (closed) return;
      state.referenced = on;
      this.updateRef();
    };
    return {
      port,
      ref: () => setReferenced(true),
      unref: () => setReferenced(false),
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
        clearTimeout(this.ports.get(port)?.timer);
        this.ports.delete(port);
        this.updateRef();
        if (this.broken === undefined && this.devices.isOpen('evtchn')) {
          sys(`unbinding event channel port ${port}`, () => this.native.evtchnUnbind(fd, port));
        }
      },
    };
  }

  private onWake(error: NativeError | null, ports: number[] | undefined): void {
    if (error) return this.fail(kernelError(error, 'reading the event channel device'));
    for (const port of ports ?? []) {
      const state = this.ports.get(port);
      if (!state) continue; // unbound meanwhile: nothing to unmask
      const changed = this.call(state.handler);
      // The handler may have closed the port (and a new one may reuse the number).
      if (this.ports.get(port) !== state) continue;
      const delay = state.throttle.delayAfter(changed);
      if (delay === 0) {
        this.unmask(port);
      } else {
        state.timer = setTimeout(() => {
          state.timer = undefined;
          if (this.ports.get(port) === state) this.unmask(port);
        }, delay);
        if (!state.referenced) state.timer.unref();
      }
    }
  }

  private unmask(port: number): void {
    try {
      this.native.evtchnUnmask(this.fd, port);
    } catch (error) {
      // A port we cannot unmask would never fire again: treat it as the device failing.
      this.fail(kernelError(error, `unmasking event channel port ${port}`));
    }
  }

  /** The device failed (or the emulator went away): wake everyone so they re-check, refuse new binds. */
  private fail(error: unknown): void {
    if (this.broken !== undefined) return;
    this.broken = error;
    this.watcher?.close();
    this.watcher = undefined;
    for (const state of [...this.ports.values()]) {
      clearTimeout(state.timer);
      this.call(state.handler);
    }
  }

  /** Runs a handler; true unless it said it found nothing new. */
  private call(handler: EventHandler): boolean {
    try {
      return handler() !== false;
    } catch (error) {
      // One channel's bug must not starve the others: report it like an uncaught exception.
      queueMicrotask(() => {
        throw error;
      });
      return true;
    }
  }

  private updateRef(): void {
    const referenced = [...this.ports.values()].some((p) => p.referenced);
    if (referenced) this.watcher?.ref();
    else this.watcher?.unref();
  }
}
