/**
 * Delivers a backend's fired ports to their handlers, in the backend's own
 * thread: waits on the backend's doorbell with Atomics.waitAsync (which works
 * across threads and never blocks the event loop), then unmasks each fired
 * port and calls its handler, as the evtchn device's reader does. A port
 * whose handler keeps finding nothing new stays masked a while before it is
 * taken again (flood-throttle.ts), as on the Xen backend.
 */
import type { EventHandler } from '../backend.js';
import { FloodThrottle } from '../flood-throttle.js';
import type { EventTable } from './shared.js';

interface PortState {
  readonly handler: EventHandler;
  readonly throttle: FloodThrottle;
  /** While throttled: when the port is taken again. Its pending flag (the mask) stays set meanwhile. */
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Atomics.waitAsync (Node 16+); typed here because the project's lib is ES2022. */
type WaitAsyncResult = { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
const waitAsync = (Atomics as unknown as { waitAsync(array: Int32Array, index: number, value: number): WaitAsyncResult }).waitAsync.bind(Atomics);

export class EventPump {
  private readonly ports = new Map<number, PortState>();
  private readonly words: Int32Array;
  private readonly index: number;
  private running = false;
  private stopped = false;

  constructor(
    private readonly table: EventTable,
    private readonly bell: number,
  ) {
    const doorbell = table.doorbell(bell);
    this.words = doorbell.words;
    this.index = doorbell.index;
  }

  add(slot: number, handler: EventHandler): void {
    if (this.stopped) return;
    this.ports.set(slot, { handler, throttle: new FloodThrottle(), timer: undefined });
    if (!this.running) {
      this.running = true;
      this.loop();
    }
  }

  remove(slot: number): void {
    clearTimeout(this.ports.get(slot)?.timer);
    this.ports.delete(slot);
  }

  /** No handler runs after this; the pending wait ends at once. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const state of this.ports.values()) clearTimeout(state.timer);
    this.ports.clear();
    if (this.running) this.table.ring(this.bell);
  }

  private readonly loop = (): void => {
    if (this.stopped) return;
    const seen = Atomics.load(this.words, this.index);
    this.drain();
    if (this.stopped) return;
    const wait = waitAsync(this.words, this.index, seen);
    if (wait.async) {
      void wait.value.then(this.loop);
    } else {
      // More events came in while draining; yield first so a port that keeps
      // firing (a handler notifying its own loopback peer) cannot starve I/O.
      setImmediate(this.loop);
    }
  };

  private drain(): void {
    let failure: { error: unknown } | undefined;
    for (const [slot, state] of this.ports) {
      if (state.timer !== undefined || !this.table.take(slot)) continue;
      const failed = this.deliver(slot, state);
      failure ??= failed;
      if (this.stopped) break;
    }
    if (failure !== undefined) report(failure.error);
  }

  /** Runs a taken port's handler, then applies the flood rule to it. */
  private deliver(slot: number, state: PortState): { error: unknown } | undefined {
    let changed = true;
    let failure: { error: unknown } | undefined;
    try {
      changed = state.handler() !== false;
    } catch (error) {
      failure = { error };
    }
    // The handler may have closed the port (and a new one may reuse the slot).
    if (this.stopped || this.ports.get(slot) !== state) return failure;
    const delay = state.throttle.delayAfter(changed);
    if (delay > 0) {
      state.timer = setTimeout(() => {
        state.timer = undefined;
        if (this.stopped || this.ports.get(slot) !== state || !this.table.take(slot)) return;
        const late = this.deliver(slot, state);
        if (late !== undefined) report(late.error);
      }, delay);
      // Whether the process stays alive is the KeepAlive's call (keep-alive.ts), not this timer's.
      state.timer.unref();
    }
    return failure;
  }
}

/**
 * A throwing handler must not stop delivery to the others; surface it as an
 * uncaught exception, as an EventEmitter listener's would be.
 */
function report(error: unknown): void {
  process.nextTick(() => {
    throw error;
  });
}
