import type { Device, Mapping } from './device.js';
import { errnoOf, fail, SimErrno } from './errno.js';
import { EvtchnDevice } from './evtchn.js';
import type { Faults } from './faults.js';
import { Ioctl, Layout, Op, PAGE_SIZE, reply, type Request } from './wire.js';

const IOCTL_NAMES = new Map<number, string>(Object.entries(Ioctl).map(([name, cmd]) => [cmd, name]));

interface Vma {
  mapping: Mapping;
  alive: boolean[];
  live: number;
}

/**
 * One process under the emulator: its ioctls and its grant mappings. When
 * the process dies its socket closes and every mapping it held is dropped,
 * which runs the unmap notifications a kernel would run at exit.
 */
export class Session {
  private readonly vmas = new Map<number, Vma>();
  private nextVma = 1;

  constructor(
    readonly id: number,
    readonly domid: number,
    readonly pid: number,
    private readonly devices: (id: number) => Device | undefined,
    private readonly faults?: Faults,
  ) {}

  /** An injected fault for this call, if any (faults.ts). */
  private inject(call: string): void {
    const errno = this.faults?.take(this.domid, call);
    if (errno !== undefined) fail(errno as Parameters<typeof fail>[0], `injected: ${call} fails with ${errno}`);
  }

  get mappedPages(): number {
    let n = 0;
    for (const v of this.vmas.values()) n += v.live;
    return n;
  }

  get mappings(): number {
    return this.vmas.size;
  }

  handle(req: Request): Buffer {
    try {
      switch (req.op) {
        case Op.IOCTL: {
          const device = this.device(req.dev);
          this.inject(IOCTL_NAMES.get(req.arg >>> 0) ?? `ioctl ${req.arg >>> 0}`);
          const r = device.ioctl(req.arg >>> 0, req.payload);
          return reply(r.result, r.out);
        }
        case Op.MMAP:
          this.inject('MMAP');
          return this.mmap(req);
        case Op.UNMAP:
          this.unmap(req.arg, req.payload.readUInt32LE(0), req.payload.readUInt32LE(4));
          return reply(0);
        case Op.TARGET: {
          // 0 and where to fire, or 1: this end is unbound, sends are dropped
          const dev = this.device(req.dev);
          if (!(dev instanceof EvtchnDevice)) fail('ENOTTY');
          const t = dev.target(req.arg >>> 0);
          return t ? reply(0, t) : reply(1);
        }
        default:
          fail('EINVAL', `unknown request ${req.op}`);
      }
    } catch (e) {
      if (!(e instanceof SimErrno) && process.env.XENSIM_DEBUG) console.error('xensim broker:', e);
      return reply(errnoOf(e));
    }
  }

  /** The process is gone: as at exit, its mappings go before anything else. */
  destroy(): void {
    for (const [id, v] of this.vmas) this.unmap(id, 0, v.alive.length);
  }

  private mmap(req: Request): Buffer {
    const offset = Number(req.payload.readBigUInt64LE(Layout.mmap.offset));
    const count = req.payload.readUInt32LE(Layout.mmap.count);
    const prot = req.payload.readUInt32LE(Layout.mmap.prot);
    const dev = this.device(req.dev);
    if (!dev.mmap || offset % PAGE_SIZE) fail('EINVAL');
    const mapping = dev.mmap(offset, count, prot);
    const id = this.nextVma++;
    this.vmas.set(id, { mapping, alive: new Array<boolean>(count).fill(true), live: count });
    const out = Buffer.alloc(4 * count);
    mapping.pages.forEach((p, i) => out.writeUInt32LE(p, 4 * i));
    return reply(id, out);
  }

  private unmap(id: number, first: number, count: number): void {
    const v = this.vmas.get(id);
    if (!v) fail('EINVAL', `no mapping ${id}`);
    const end = Math.min(first + count, v.alive.length);
    for (let i = first; i < end; i++) {
      if (!v.alive[i]) continue;
      v.alive[i] = false;
      v.live--;
      v.mapping.release(i);
    }
    if (v.live === 0) this.vmas.delete(id);
  }

  private device(id: number): Device {
    const d = this.devices(id);
    // A device inherited across fork is usable by any process of its domain.
    if (!d || d.domid !== this.domid) fail('EBADF', `no device ${id} in domain ${this.domid}`);
    return d;
  }
}
