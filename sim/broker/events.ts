import { fail } from './errno.js';
import type { EventSlots, Slot } from './slots.js';

/** Where a port's events go: an open /dev/xen/evtchn (its FIFO). */
export interface EventSink {
  readonly domid: number;
  readonly id: number;
  /** Where notifiers write this sink's ports. */
  readonly fifoPath: string;
  /** Wakes the owner's preload for a port the broker raised. */
  deliver(port: number): void;
}

/** What a notifier needs to fire the remote end itself. */
export interface Target {
  port: number;
  slot: Slot;
  sink: EventSink;
}

/** One event channel end, numbered within its domain. */
export class Port {
  state: 'unbound' | 'interdomain' = 'unbound';
  /** For an unbound port: the only domain that may bind to it. */
  remoteDomid = 0;
  peer: Port | null = null;
  /** The evtchn device this port is bound to, null once unbound. */
  owner: EventSink | null = null;
  /** The owner's binding plus unmap notifications that will send on it. */
  refs = 0;
  /** The shared state word (mask and pending bits) while the port has an owner. */
  slot: Slot | null = null;
  constructor(
    readonly domid: number,
    readonly port: number,
  ) {}
}

/** Port 0 is reserved, as in Xen. */
const FIRST_PORT = 1;

/**
 * Event channels of every domain with Xen's and Linux's rules: an unbound
 * port is offered to one remote domain; binding closes the pair; a closed
 * end leaves the other end unbound, where sends are dropped silently.
 *
 * The broker owns the bindings; the mask rule (a fired port is delivered
 * once and stays masked until its owner writes it back, with one pending bit
 * meanwhile) runs in the processes, on the shared slot words: notifiers fire
 * the remote port themselves, and what the broker fires goes through the
 * owner's preload.
 */
export class EventChannels {
  private readonly domains = new Map<number, Map<number, Port>>();

  constructor(
    private readonly domainExists: (domid: number) => boolean,
    private readonly slots: EventSlots,
    private readonly maxPorts = 4096,
  ) {}

  count(domid?: number): number {
    if (domid !== undefined) return this.domains.get(domid)?.size ?? 0;
    let n = 0;
    for (const ports of this.domains.values()) n += ports.size;
    return n;
  }

  allocUnbound(sink: EventSink, remoteDomid: number): number {
    const p = this.allocate(sink.domid);
    p.remoteDomid = remoteDomid;
    this.attach(p, sink);
    return p.port;
  }

  bindInterdomain(sink: EventSink, remoteDomid: number, remotePort: number): number {
    if (!this.domainExists(remoteDomid)) fail('ESRCH', `domain ${remoteDomid} does not exist`);
    const r = this.domains.get(remoteDomid)?.get(remotePort);
    if (!r || r.state !== 'unbound' || r.remoteDomid !== sink.domid)
      fail('EINVAL', `port ${remotePort} of domain ${remoteDomid} is not offered to domain ${sink.domid}`);
    const p = this.allocate(sink.domid);
    this.attach(p, sink);
    p.state = r.state = 'interdomain';
    p.peer = r;
    r.peer = p;
    return p.port;
  }

  /** A port bound to this sink (the kernel's per-file lookup). */
  owned(sink: EventSink, port: number): Port | null {
    const p = this.domains.get(sink.domid)?.get(port);
    return p && p.owner === sink ? p : null;
  }

  unbind(sink: EventSink, port: number): void {
    const p = this.owned(sink, port);
    if (!p) fail('ENOTCONN', `port ${port} is not bound here`);
    this.detach(p);
    this.put(p);
  }

  /** For a notifier: the remote end to fire, or null when this end is unbound. */
  target(sink: EventSink, port: number): Target | null {
    const p = this.owned(sink, port);
    if (!p) fail('ENOTCONN', `port ${port} is not bound here`);
    const r = p.state === 'interdomain' ? p.peer : null;
    return r?.owner && r.slot ? { port: r.port, slot: r.slot, sink: r.owner } : null;
  }

  /** The slot of a port bound to this sink (told to its preload at bind). */
  slotOf(sink: EventSink, port: number): Slot {
    const p = this.owned(sink, port);
    if (!p?.slot) fail('ENOTCONN', `port ${port} is not bound here`);
    return p.slot;
  }

  notify(sink: EventSink, port: number): void {
    const p = this.owned(sink, port);
    if (!p) fail('ENOTCONN', `port ${port} is not bound here`);
    this.send(p);
  }

  /** EVTCHNOP_send: an unbound end drops the event. */
  send(p: Port): void {
    if (p.state === 'interdomain' && p.peer) this.fire(p.peer);
  }

  /** Takes a reference for an unmap notification (the kernel's evtchn_get). */
  get(domid: number, port: number): Port {
    const p = this.domains.get(domid)?.get(port);
    if (!p || !p.owner) fail('EINVAL', `port ${port} is not bound in domain ${domid}`);
    p.refs++;
    return p;
  }

  put(p: Port): void {
    if (--p.refs > 0) return;
    const peer = p.peer;
    if (peer) {
      peer.state = 'unbound';
      peer.remoteDomid = p.domid;
      peer.peer = null;
    }
    this.domains.get(p.domid)?.delete(p.port);
  }

  /** Drops every port of a destroyed domain, whoever holds it. */
  destroyDomain(domid: number): void {
    const ports = this.domains.get(domid);
    if (!ports) return;
    for (const p of [...ports.values()]) {
      this.detach(p);
      p.refs = 1;
      this.put(p);
    }
    this.domains.delete(domid);
  }

  private fire(p: Port): void {
    if (p.owner && p.slot && this.slots.raise(p.slot)) p.owner.deliver(p.port);
  }

  private attach(p: Port, sink: EventSink): void {
    try {
      p.slot = this.slots.alloc();
    } catch (e) {
      this.domains.get(p.domid)?.delete(p.port);
      throw e;
    }
    p.owner = sink;
    p.refs++;
  }

  private detach(p: Port): void {
    if (p.slot) this.slots.release(p.slot);
    p.slot = null;
    p.owner = null;
  }

  private allocate(domid: number): Port {
    let ports = this.domains.get(domid);
    if (!ports) this.domains.set(domid, (ports = new Map()));
    for (let n = FIRST_PORT; n < this.maxPorts; n++) {
      if (!ports.has(n)) {
        const p = new Port(domid, n);
        ports.set(n, p);
        return p;
      }
    }
    fail('ENOSPC', `domain ${domid} has no free event channel (limit ${this.maxPorts})`);
  }
}
