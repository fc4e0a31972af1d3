/**
 * One xenstore WATCH per distinct path, however many callers watch it.
 * xenstored counts watches against a per-domain quota (`xenstored -W`,
 * default 128): a process with hundreds of channels that each registered
 * their own would run out, and every later watch would fail with E2BIG.
 * Callers of the same path share one registration; it is removed (UNWATCH)
 * when the last of them closes. After the store connected again (xenstored
 * restarted), registerAgain() puts every registration on the new connection.
 */
import type { StoreWatch } from '../backend.js';
import type { WatchHandler, XsConnection } from './xenstore-connection.js';
import { joinStrings, XsType } from './xenstore-wire.js';

interface Subscriber {
  readonly onChange: (changed: string) => void;
  referenced: boolean;
}

interface Registration {
  readonly path: string;
  readonly token: string;
  /** Hands an event to every subscriber. */
  readonly handler: WatchHandler;
  readonly subscribers: Set<Subscriber>;
  /** Settles when xenstored has answered the WATCH. */
  readonly registered: Promise<void>;
}

export class WatchMux {
  private readonly registrations = new Map<string, Registration>();
  private nextToken = 1;

  /** `conn`: the store's connection now (a new one after a reconnect). */
  constructor(private readonly conn: () => XsConnection) {}

  /** Registered paths, for tests and diagnostics. */
  get size(): number {
    return this.registrations.size;
  }

  /**
   * Calls `onChange` for changes at or below `path`, and once soon after
   * registering (xenstored's first event for the first caller, a
   * synthesized one for later callers: every event only says "look again").
   */
  async watch(path: string, onChange: (changed: string) => void): Promise<StoreWatch> {
    const subscriber: Subscriber = { onChange, referenced: true };
    let registration = this.registrations.get(path);
    const joined = registration !== undefined;
    registration ??= this.register(path);
    registration.subscribers.add(subscriber);
    this.updateReferenced(registration);
    try {
      await registration.registered;
    } catch (error) {
      registration.subscribers.delete(subscriber);
      throw error;
    }
    if (joined) setImmediate(() => registration.subscribers.has(subscriber) && subscriber.onChange(path));
    let closing: Promise<void> | undefined;
    return {
      close: () => (closing ??= this.leave(path, registration, subscriber)),
      ref: () => {
        subscriber.referenced = true;
        this.updateReferenced(registration);
      },
      unref: () => {
        subscriber.referenced = false;
        this.updateReferenced(registration);
      },
    };
  }

  private register(path: string): Registration {
    const token = `xen-vchan:${this.nextToken++}`;
    const subscribers = new Set<Subscriber>();
    const handler: WatchHandler = (changed) => {
      for (const s of [...subscribers]) if (subscribers.has(s)) s.onChange(changed);
    };
    // The handler is in place before asking, so the first event cannot be missed.
    const conn = this.conn();
    conn.addWatchHandler(token, handler);
    const registered = conn.request(XsType.WATCH, 0, joinStrings([path, token]), path).then(
      () => undefined,
      (error: unknown) => {
        conn.removeWatchHandler(token);
        if (this.registrations.get(path) === registration) this.registrations.delete(path);
        throw error;
      },
    );
    const registration: Registration = { path, token, handler, subscribers, registered };
    this.registrations.set(path, registration);
    return registration;
  }

  private async leave(path: string, registration: Registration, subscriber: Subscriber): Promise<void> {
    registration.subscribers.delete(subscriber);
    this.updateReferenced(registration);
    if (registration.subscribers.size > 0) return;
    // The last one: a later watch() of this path registers afresh (a new token).
    if (this.registrations.get(path) === registration) this.registrations.delete(path);
    this.conn().removeWatchHandler(registration.token);
    if (!(await registration.registered.then(() => true, () => false))) return;
    const conn = this.conn();
    if (conn.isClosed) return;
    await conn.request(XsType.UNWATCH, 0, joinStrings([path, registration.token]), path).catch((error: unknown) => {
      // The connection went away meanwhile: the watch went with it.
      if (!conn.isClosed) throw error;
    });
  }

  /** Registers every watch again on a new connection; each then fires once, as on registration. */
  registerAgain(conn: XsConnection): void {
    for (const r of this.registrations.values()) {
      conn.addWatchHandler(r.token, r.handler);
      conn.setWatchReferenced(r.token, [...r.subscribers].some((s) => s.referenced));
      // Lost again meanwhile: the next connection registers it.
      conn.request(XsType.WATCH, 0, joinStrings([r.path, r.token]), r.path).catch(() => undefined);
    }
  }

  /** Whether any watch keeps the process alive. */
  anyReferenced(): boolean {
    return [...this.registrations.values()].some((r) => [...r.subscribers].some((s) => s.referenced));
  }

  /** The registration keeps the process alive while any of its callers wants it to. */
  private updateReferenced(registration: Registration): void {
    const on = [...registration.subscribers].some((s) => s.referenced);
    this.conn().setWatchReferenced(registration.token, on);
  }
}
