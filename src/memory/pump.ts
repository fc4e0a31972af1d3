/**
 * Delivers a backend's fired ports to their handlers, in the backend's own
 * thread: waits on the backend's doorbell with Atomics.waitAsync (which works
 * across threads and never blocks the event loop), then unmasks each fired
 * port and calls its handler, as the evtchn device's reader does.
 */
import type { EventHandler } from '../backend.js';
import type { EventTable } from './shared.js';

/** Atomics.waitAsync (Node 16+); typed here because the project's lib is ES2022. */
type WaitAsyncResult = { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
const waitAsync = (Atomics as unknown as { waitAsync(array: Int32Array, index: number, value: number): WaitAsyncResult }).waitAsync.bind(Atomics);

export class EventPump {
  private readonly handlers = new Map<number, EventHandler>();
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
    this.handlers.set(slot, handler);
    if (!this.running) {
      this.running = true;
      this.loop();
    }
  }

  remove(slot: number): void {
    this.handlers.delete(slot);
  }

  /** No handler runs after this; the pending wait ends at once. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.handlers.clear();
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
    for (const [slot, handler] of this.handlers) {
      if (!this.table.take(slot)) continue;
      try {
        handler();
      } catch (error) {
        failure ??= { error };
      }
      if (this.stopped) break;
    }
    // A throwing handler must not stop delivery to the others; surface it as
    // an uncaught exception, as an EventEmitter listener's would be.
    if (failure !== undefined) {
      const { error } = failure;
      process.nextTick(() => {
        throw error;
      });
    }
  }
}
