/**
 * The setup sequences of PROTOCOL §6, for each role, over a Backend. Each
 * step registers how to undo it, so a failed or aborted setup releases
 * every page, port and xenstore entry it took.
 */
import type { Backend, EventChannel, EventHandler, GrantMapping, GrantShare, KeepAliveHandle, StoreWatch } from './backend.js';
import { abortedError, protocolError, restated } from './errors.js';
import { ControlPage, layoutFor, Live, Notify, Offsets, PAGE_SIZE, ringPlacement } from './layout.js';
import { domainExists, watchPeerDomain, type PeerWatch } from './peer-watch.js';
import { Releases } from './releases.js';
import { RingReader, RingWriter } from './ring.js';

/** Which end of a channel: the server offers it (shares the pages), the client connects (maps them). */
export type Role = 'server' | 'client';

/** Everything an open channel holds. */
export interface ChannelParts {
  readonly role: Role;
  readonly page: ControlPage;
  readonly reader: RingReader;
  readonly writer: RingWriter;
  readonly port: EventChannel;
  readonly releases: Releases;
  /** What keeps the process alive while the channel is open (the port, the peer watch). */
  readonly handles: readonly KeepAliveHandle[];
  /** Server: the client is seen connected, so its domain existed (a home gone now means destroyed). */
  readonly peerExisted?: () => void;
  /** Server: removes the offer's entries (once; later calls return the same promise). */
  readonly withdraw?: () => Promise<void>;
}

/** u32 word indices of each ring's counters in the control page. */
const LEFT = { cons: Offsets.LEFT_CONS / 4, prod: Offsets.LEFT_PROD / 4 };
const RIGHT = { cons: Offsets.RIGHT_CONS / 4, prod: Offsets.RIGHT_PROD / 4 };

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortedError(signal);
}

/** Runs `body`; on any failure releases what it took, then rethrows. */
async function undoOnFailure<T>(releases: Releases, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (error) {
    await releases.releaseAll().catch(() => undefined);
    throw error;
  }
}

export interface ServerSetup {
  backend: Backend;
  peer: number;
  path: string;
  leftOrder: number;
  rightOrder: number;
  onEvent: EventHandler;
  /** Called once if the peer's domain is destroyed. */
  onPeerGone: () => void;
  /** Stops a setup still retrying its xenstore transaction. */
  signal?: AbortSignal;
}

export function setupServer(s: ServerSetup): Promise<ChannelParts> {
  const releases = new Releases();
  return undoOnFailure(releases, async () => {
    const { backend, peer } = s;
    const layout = layoutFor(s.leftOrder, s.rightOrder);

    const port = await backend.bindUnboundPort(peer, s.onEvent);
    releases.push(() => port.close());
    // If this process dies, the kernel clears srv_live and kicks the client.
    const control = await backend.sharePages(peer, 1, { offset: Offsets.SRV_LIVE, port: port.port });
    releases.push(() => control.release());
    const page = new ControlPage(control.memory);
    page.bytes.fill(0);

    const left = await serverRing(backend, peer, s.leftOrder, control, releases);
    const right = await serverRing(backend, peer, s.rightOrder, control, releases);
    if (left.refs) page.writeGrants(layout.leftStart, left.refs);
    if (right.refs) page.writeGrants(layout.rightStart, right.refs);
    page.storeOrder(Offsets.LEFT_ORDER, s.leftOrder);
    page.storeOrder(Offsets.RIGHT_ORDER, s.rightOrder);
    page.storeByte(Offsets.CLI_LIVE, Live.WAITING);
    page.storeByte(Offsets.SRV_LIVE, Live.CONNECTED);
    // We want to hear when the client connects or writes.
    page.storeByte(Offsets.CLI_NOTIFY, Notify.WRITE);

    const self = await backend.domainId();
    const entries: Array<[string, string]> = [
      [`${s.path}/ring-ref`, String(control.refs[0])],
      [`${s.path}/event-channel`, String(port.port)],
    ];
    const permissions = [
      { domid: self, access: 'none' as const },
      { domid: peer, access: 'read' as const },
    ];
    await backend.store.writeAll(entries, permissions, { signal: s.signal });
    // A xenstore that came back may have lost the offer: publish it again while the client has not come.
    const unlisten = backend.store.onReconnect?.(() => {
      if (withdrawn || page.loadByte(Offsets.CLI_LIVE) !== Live.WAITING) return;
      void backend.store.writeAll(entries, permissions).catch(() => undefined); // lost again: the next reconnect retries
    });
    // Removed once only: after the client is seen, a fresh offer may already stand at the same path.
    let withdrawn: Promise<void> | undefined;
    const withdraw = (): Promise<void> => {
      unlisten?.();
      return (withdrawn ??= backend.store.remove(s.path));
    };
    releases.push(withdraw);
    const watch = await watchPeer(backend, self, peer, false, s.onPeerGone, releases);

    return {
      role: 'server',
      page,
      reader: new RingReader(left.data, { words: page.words, ...LEFT }),
      writer: new RingWriter(right.data, { words: page.words, ...RIGHT }),
      port,
      releases,
      handles: watch ? [port, watch] : [port],
      peerExisted: () => watch?.existed(),
      withdraw,
    };
  });
}

/** Watches the peer's domain unless it is our own (loopback); `existed`: see watchPeerDomain. */
async function watchPeer(
  backend: Backend,
  self: number,
  peer: number,
  existed: boolean,
  onGone: () => void,
  releases: Releases,
): Promise<PeerWatch | undefined> {
  if (peer === self) return undefined;
  const watch = await watchPeerDomain(backend.store, peer, existed, onGone);
  releases.push(() => watch.close());
  return watch;
}

async function serverRing(
  backend: Backend,
  peer: number,
  order: number,
  control: GrantShare,
  releases: Releases,
): Promise<{ data: Uint8Array; refs?: readonly number[] }> {
  const placement = ringPlacement(order);
  if (placement.inPage) return { data: control.memory.subarray(placement.offset, placement.offset + placement.size) };
  const share = await backend.sharePages(peer, placement.pages);
  releases.push(() => share.release());
  return { data: share.memory.subarray(0, placement.size), refs: share.refs };
}

export interface ClientSetup {
  backend: Backend;
  peer: number;
  path: string;
  signal: AbortSignal | undefined;
  onEvent: EventHandler;
  /** Called once if the peer's domain is destroyed. */
  onPeerGone: () => void;
  /** Wait (until `signal`) for a stale or taken offer to be replaced rather than fail at once. */
  retryStale?: boolean;
}

/**
 * Connects; with `retryStale`, an offer found stale or taken (EINVAL on
 * binding its port or mapping its control page while the server's domain
 * lives: a client before us took it, or it is an old offer being
 * replaced) is tried again once its
 * entries change, until `signal`. Entries that never change end in the
 * EINVAL, its message saying so.
 */
export async function setupClient(s: ClientSetup): Promise<ChannelParts> {
  let stale: StaleOffer | undefined;
  for (;;) {
    const found: Found = {};
    try {
      return await connectOnce(s, found, stale);
    } catch (error) {
      if (!s.retryStale || !found.entries || found.pastEntries || (error as { code?: unknown }).code !== 'EINVAL' || s.signal?.aborted) {
        throw staleError(error, stale);
      }
      if (!(await domainExists(s.backend.store, s.peer))) throw error;
      // Entries new to us get one more try at once (a failure may be passing); the same ones again must change first.
      const again = stale !== undefined && sameEntries(stale.entries, found.entries);
      stale = { entries: found.entries, error, retryAtOnce: !again };
    }
  }
}

/** What one attempt got to: the entries it used, and whether they proved live (port bound, control page mapped). */
interface Found {
  entries?: ServerEntries;
  /** A failure from here on is not a stale offer (a bad grant list is the server's own doing). */
  pastEntries?: boolean;
}

interface StaleOffer {
  entries: ServerEntries;
  error: unknown;
  retryAtOnce: boolean;
}

function sameEntries(a: ServerEntries, b: ServerEntries): boolean {
  return a.ringRef === b.ringRef && a.eventChannel === b.eventChannel;
}

/** An abort while waiting for stale entries to change: the stale offer's error, which says what happened. */
function staleError(error: unknown, stale: StaleOffer | undefined): unknown {
  const code = (error as { code?: unknown }).code;
  if (!stale || (code !== 'ERR_VCHAN_TIMEOUT' && code !== 'ERR_VCHAN_ABORTED')) return error;
  const { ringRef, eventChannel } = stale.entries;
  const why = `the offer (ring-ref ${ringRef}, event-channel ${eventChannel}) did not change before ${code === 'ERR_VCHAN_TIMEOUT' ? 'the timeout' : 'the abort'}`;
  return restated(stale.error, `${(stale.error as Error).message}; ${why}`, error);
}


/**
 * Entries other than the stale ones, or the same ones seen gone or written
 * again since: a fresh offer may reuse the ref and the port (C servers
 * leave their entries behind, and Xen hands the same numbers out again).
 */
function changedFrom(stale: StaleOffer | undefined): (entries: ServerEntries | undefined, rewritten: boolean) => boolean {
  if (!stale || stale.retryAtOnce) return (entries) => entries !== undefined;
  let seenGone = false;
  return (entries, rewritten) => {
    if (!entries) return !(seenGone = true);
    return seenGone || rewritten || !sameEntries(entries, stale.entries);
  };
}

function connectOnce(s: ClientSetup, found: Found, stale: StaleOffer | undefined): Promise<ChannelParts> {
  const releases = new Releases();
  return undoOnFailure(releases, async () => {
    const { backend, peer, signal } = s;
    const entries = await waitForServer(backend, s.path, signal, changedFrom(stale));
    found.entries = entries;

    throwIfAborted(signal);
    const port = await backend.bindInterdomain(peer, entries.eventChannel, s.onEvent);
    releases.push(() => port.close());
    throwIfAborted(signal);
    // Bound first: newer kernels need the port before the notify can name it.
    const control = await backend.mapGrants(peer, [entries.ringRef], true, { offset: Offsets.CLI_LIVE, port: port.port });
    releases.push(() => control.release());
    found.pastEntries = true;
    if (control.memory.byteLength < PAGE_SIZE) throw protocolError('control page mapping is shorter than a page');
    const page = new ControlPage(control.memory);

    // Read the orders and the grant list exactly once; the server may change the page at any time.
    const leftOrder = page.loadOrder(Offsets.LEFT_ORDER);
    const rightOrder = page.loadOrder(Offsets.RIGHT_ORDER);
    const layout = layoutFor(leftOrder, rightOrder);
    const grants = page.readGrants(0, layout.leftCount + layout.rightCount);

    throwIfAborted(signal);
    const leftData = await clientRing(backend, peer, leftOrder, grants.slice(0, layout.leftCount), true, control, releases);
    throwIfAborted(signal);
    const rightData = await clientRing(backend, peer, rightOrder, grants.slice(layout.leftCount), false, control, releases);
    throwIfAborted(signal);

    // Our own counters start where the page has them (0 from a fresh server); read once.
    const writer = new RingWriter(leftData, { words: page.words, ...LEFT }, Atomics.load(page.words, LEFT.prod));
    const reader = new RingReader(rightData, { words: page.words, ...RIGHT }, Atomics.load(page.words, RIGHT.cons));

    // The server's domain existed: it published the entries and granted what we mapped.
    const watch = await watchPeer(backend, await backend.domainId(), peer, true, s.onPeerGone, releases);
    throwIfAborted(signal);

    page.storeByte(Offsets.CLI_LIVE, Live.CONNECTED);
    page.storeByte(Offsets.SRV_NOTIFY, Notify.WRITE);
    // Tell the server we are here.
    port.notify();
    return { role: 'client', page, reader, writer, port, releases, handles: watch ? [port, watch] : [port] };
  });
}

async function clientRing(
  backend: Backend,
  peer: number,
  order: number,
  refs: readonly number[],
  writable: boolean,
  control: GrantMapping,
  releases: Releases,
): Promise<Uint8Array> {
  const placement = ringPlacement(order);
  if (placement.inPage) return control.memory.subarray(placement.offset, placement.offset + placement.size);
  const mapping = await backend.mapGrants(peer, refs, writable);
  releases.push(() => mapping.release());
  if (mapping.memory.byteLength < placement.size) throw protocolError(`ring mapping of order ${order} is too short`);
  return mapping.memory.subarray(0, placement.size);
}

interface ServerEntries {
  ringRef: number;
  eventChannel: number;
}

/**
 * What Xen can hand out: a grant ref is any u32 (grant_ref_t); an event
 * channel port is below 2^17 (the FIFO ABI's EVTCHN_FIFO_NR_CHANNELS; the
 * 2-level ABI stops at 4096). 0 is never valid (C treats it as missing).
 */
const MAX_GRANT_REF = 0xffffffff;
const MAX_EVENT_PORT = (1 << 17) - 1;

/**
 * Parses a decimal xenstore value the way a C peer writes it. Anything else,
 * or a value Xen could never have given the server, is the server breaking
 * the protocol: no backend ever sees it.
 */
function parseEntry(path: string, value: string, max: number): number {
  if (!/^[0-9]{1,10}$/.test(value)) throw protocolError(`${path} holds ${JSON.stringify(value.slice(0, 20))}, not a number`);
  const n = Number(value);
  if (n === 0 || n > max) throw protocolError(`${path} holds ${n}, outside 1..${max}`);
  return n;
}

/** A read xenstore refuses: nothing there we may see yet (xenstored answers EACCES, not ENOENT, under an unreadable parent). */
async function readIfVisible(backend: Backend, path: string): Promise<string | undefined> {
  try {
    return await backend.store.read(path);
  } catch (error) {
    if ((error as { code?: unknown }).code === 'EACCES') return undefined;
    throw error;
  }
}

async function readServerEntries(backend: Backend, path: string): Promise<ServerEntries | undefined> {
  // Until the server publishes (readable by us), a domU's read of its path fails with EACCES: wait.
  const ringRef = await readIfVisible(backend, `${path}/ring-ref`);
  const eventChannel = await readIfVisible(backend, `${path}/event-channel`);
  if (ringRef === undefined || eventChannel === undefined) return undefined;
  return {
    ringRef: parseEntry(`${path}/ring-ref`, ringRef, MAX_GRANT_REF),
    eventChannel: parseEntry(`${path}/event-channel`, eventChannel, MAX_EVENT_PORT),
  };
}

/**
 * The node to watch for `path`'s entries: its parent, which every channel
 * offered to us under the same directory (data/vchan/<us>/<port>) shares,
 * so that a process waiting for hundreds of them registers one xenstore
 * watch, not hundreds (xenstored's watch quota is per domain).
 */
function watchedFor(path: string): { node: string; concerns: (changed: string) => boolean } {
  const slash = path.lastIndexOf('/');
  if (slash <= 0) return { node: path, concerns: () => true };
  const parent = path.slice(0, slash);
  return { node: parent, concerns: (changed) => changed === parent || changed === path || changed.startsWith(`${path}/`) };
}

/** Waits (with a xenstore watch, never polling) until the server has published its entries. */
async function waitForServer(
  backend: Backend,
  path: string,
  signal: AbortSignal | undefined,
  /** `rewritten`: a watch event beyond the first (which every new watch gets) concerned the entries. */
  wanted: (entries: ServerEntries | undefined, rewritten: boolean) => boolean,
): Promise<ServerEntries> {
  throwIfAborted(signal);
  const now = await readServerEntries(backend, path);
  if (wanted(now, false)) return now!;
  return new Promise<ServerEntries>((resolve, reject) => {
    let settled = false;
    let checking = false;
    let again = false;
    let watchClose: (() => Promise<void>) | undefined;
    const finish = (error: unknown, entries?: ServerEntries): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      void watchClose?.().catch(() => undefined);
      if (entries) resolve(entries);
      else reject(error);
    };
    const onAbort = (): void => finish(abortedError(signal!));
    // Re-read on every watch event; coalesce events that arrive while a read is in flight.
    const check = async (): Promise<void> => {
      if (checking) {
        again = true;
        return;
      }
      checking = true;
      try {
        do {
          again = false;
          const rewritten = events > 1;
          const entries = await readServerEntries(backend, path);
          if (wanted(entries, rewritten)) return finish(undefined, entries);
        } while (again && !settled);
      } catch (error) {
        finish(error);
      } finally {
        checking = false;
      }
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const watched = watchedFor(path);
    let events = 0;
    backend.store.watch(watched.node, (changed) => watched.concerns(changed) && (events++, void check())).then(
      (watch) => {
        if (settled) void watch.close().catch(() => undefined);
        else watchClose = () => watch.close();
      },
      (error: unknown) => finish(error),
    );
  });
}
