/**
 * Event channels as Xen keeps them: a port namespace per domain, unbound
 * ports offered to one remote domain, inter-domain bindings that link two
 * ports. A port whose peer closes falls back to unbound, offered to the same
 * remote domain again (as in Xen). The cross-thread signalling itself runs
 * through the shared EventTable.
 */
import { sysError } from './errno.js';
import { IndexPool, type EventTable } from './shared.js';

export interface Port {
  readonly domid: number;
  readonly port: number;
  readonly slot: number;
  /** Doorbell of the backend that bound it. */
  readonly bell: number;
  /** Unbound: the domain allowed to bind. Connected: the peer's domain. */
  remoteDomid: number;
  peer: Port | undefined;
  /** Still bound by its backend (false once unbound, even while kept for notifications). */
  bound: boolean;
  /** Armed unmap notifications that will send on it; like the kernel's reference, they keep it open. */
  armed: number;
}

export class EventChannels {
  private readonly domains = new Map<number, Map<number, Port>>();
  private readonly slots: IndexPool;
  private live = 0;

  constructor(
    private readonly table: EventTable,
    private readonly portLimit: number,
    /** Whether a domain exists (has a live process): binding to one that does not is ESRCH, as on Xen. */
    private readonly domainExists: (domid: number) => boolean,
  ) {
    this.slots = new IndexPool(table.sizes.slots);
  }

  count(): number {
    return this.live;
  }

  find(domid: number, port: number): Port | undefined {
    return this.domains.get(domid)?.get(port);
  }

  allocUnbound(domid: number, bell: number, remoteDomid: number): Port {
    return this.create(domid, bell, remoteDomid, 'IOCTL_EVTCHN_BIND_UNBOUND_PORT');
  }

  bindInterdomain(domid: number, bell: number, remoteDomid: number, remotePort: number): Port {
    if (!this.domainExists(remoteDomid)) {
      throw sysError('ESRCH', `domain ${remoteDomid} does not exist`, 'IOCTL_EVTCHN_BIND_INTERDOMAIN');
    }
    const remote = this.find(remoteDomid, remotePort);
    if (remote === undefined || !remote.bound) {
      throw sysError('EINVAL', `domain ${remoteDomid} has no port ${remotePort}`, 'IOCTL_EVTCHN_BIND_INTERDOMAIN');
    }
    if (remote.peer !== undefined) {
      throw sysError('EINVAL', `port ${remotePort} of domain ${remoteDomid} is already connected`, 'IOCTL_EVTCHN_BIND_INTERDOMAIN');
    }
    if (remote.remoteDomid !== domid) {
      throw sysError(
        'EINVAL',
        `port ${remotePort} of domain ${remoteDomid} is offered to domain ${remote.remoteDomid}, not ${domid}`,
        'IOCTL_EVTCHN_BIND_INTERDOMAIN',
      );
    }
    const local = this.create(domid, bell, remoteDomid, 'IOCTL_EVTCHN_BIND_INTERDOMAIN');
    local.peer = remote;
    remote.peer = local;
    this.table.link(local.slot, remote.slot);
    return local;
  }

  /** The backend unbinds `port`; it closes now unless armed notifications still need it. */
  unbind(port: Port): void {
    port.bound = false;
    if (port.armed === 0) this.close(port);
  }

  /** An armed notification that referenced `port` fired or was dropped. */
  disarm(port: Port): void {
    port.armed--;
    if (!port.bound && port.armed === 0) this.close(port);
  }

  private create(domid: number, bell: number, remoteDomid: number, syscall: string): Port {
    let ports = this.domains.get(domid);
    if (ports === undefined) this.domains.set(domid, (ports = new Map()));
    // Xen hands out the lowest free port; port 0 is reserved.
    let number = 1;
    while (ports.has(number)) number++;
    if (number > this.portLimit) {
      throw sysError(
        'ENOSPC',
        `domain ${domid} has all ${this.portLimit} event channel ports in use ` +
          `(Xen's max_event_channels; raise it with new MemoryHypervisor({ portLimit }))`,
        syscall,
      );
    }
    const slot = this.slots.take();
    if (slot === undefined) {
      throw sysError('ENOSPC', `the in-memory hypervisor's table of ${this.slots.size} bound ports is full`, syscall);
    }
    this.table.initSlot(slot, bell);
    const port: Port = { domid, port: number, slot, bell, remoteDomid, peer: undefined, bound: true, armed: 0 };
    ports.set(number, port);
    this.live++;
    return port;
  }

  private close(port: Port): void {
    const ports = this.domains.get(port.domid);
    if (ports?.get(port.port) !== port) return;
    const peer = port.peer;
    if (peer !== undefined) {
      this.table.unlink(peer.slot);
      peer.peer = undefined;
      peer.remoteDomid = port.domid;
    }
    this.table.unlink(port.slot);
    port.peer = undefined;
    ports.delete(port.port);
    if (ports.size === 0) this.domains.delete(port.domid);
    this.slots.give(port.slot);
    this.live--;
  }
}
