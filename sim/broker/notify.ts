import type { EventChannels, Port } from './events.js';
import type { PagePool } from './pages.js';
import { fail } from './errno.js';
import { UNMAP_NOTIFY_CLEAR_BYTE, UNMAP_NOTIFY_SEND_EVENT } from './wire.js';

/** An armed unmap notification: clear a byte, then send an event. */
export interface UnmapNotify {
  /** Byte offset within the mapping (gntdev) or page (gntalloc), or null. */
  clear: number | null;
  port: Port | null;
}

const ZERO_BYTE = Buffer.alloc(1);

/** Validates SET_UNMAP_NOTIFY's action and takes the port reference. */
export function armNotify(
  events: EventChannels,
  domid: number,
  action: number,
  byteOffset: number,
  port: number,
): UnmapNotify {
  if (action & ~(UNMAP_NOTIFY_CLEAR_BYTE | UNMAP_NOTIFY_SEND_EVENT)) fail('EINVAL', `unmap notify action ${action}`);
  return {
    clear: action & UNMAP_NOTIFY_CLEAR_BYTE ? byteOffset : null,
    port: action & UNMAP_NOTIFY_SEND_EVENT ? events.get(domid, port) : null,
  };
}

export function disarmNotify(events: EventChannels, n: UnmapNotify | null): void {
  if (n?.port) events.put(n.port);
}

/** Runs a notification; `page` is where the byte lives (null: not mapped). */
export function runNotify(pool: PagePool, events: EventChannels, n: UnmapNotify | null, page: number | null, offset: number): void {
  if (!n) return;
  if (n.clear !== null && page !== null) pool.write(page, offset, ZERO_BYTE);
  if (n.port) {
    events.send(n.port);
    events.put(n.port);
  }
}
