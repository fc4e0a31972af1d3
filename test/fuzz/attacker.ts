/**
 * The attacker of the fuzzer, in a worker thread with its own process of
 * the in-memory hypervisor: it sets up honestly enough (our own Vchan, or
 * made-up entries), keeps hold of the shared pages and its event channel,
 * then runs its plan's steps on them while the victim, in another thread,
 * uses the same memory — and dies as the plan says, possibly mid-setup.
 *
 * `counters` (shared with the test): [0] mutations made, [1] 1 once set up,
 * [2] 1 once the honest exchange checked out, [3] 1 once a client attacker
 * mapped the control page (so its death reaches the server as an unmap
 * notification).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Backend, EventChannel } from '../../src/backend.js';
import { Vchan } from '../../src/channel.js';
import { Live, Offsets } from '../../src/layout.js';
import { connectMemoryBackend, type MemoryLink } from '../../src/memory/index.js';
import { fillPattern, PatternChecker } from '../support/pattern.js';
import type { Plan, Step } from './plan.js';
import { Rng } from './rng.js';

interface Data {
  link: MemoryLink;
  plan: Plan;
  peer: number;
  path: string;
  counters: SharedArrayBuffer;
}

const { link, plan, peer, path, counters } = workerData as Data;
const shared = new Int32Array(counters);
const port = parentPort!;
const backend = connectMemoryBackend(link);
let control: Uint8Array | undefined;
const rings: Uint8Array[] = [];
let own: EventChannel | undefined;
let vchan: Vchan | undefined;
let dead = false;
/** The setup (ours or the fake server's), so a 'close' in its middle can stop it first. */
let setup: Promise<unknown> = Promise.resolve();
const setupAbort = new AbortController();

const capturing: Backend = {
  store: {
    ...backend.store,
    async watch(p, onChange) {
      const watch = await backend.store.watch(p, onChange);
      if (p === plan.deathAtWatch) {
        die();
        // A 'close' closes the backend a few microtasks on: let it, so the setup goes on only after its process ended.
        for (let i = 0; i < 10 && !backend.isClosed; i++) await undefined;
      }
      return watch;
    },
  },
  domainId: () => backend.domainId(),
  async sharePages(p, count, notify) {
    const share = await backend.sharePages(p, count, notify);
    if (notify !== undefined) control = share.memory;
    else rings.push(share.memory);
    return share;
  },
  async mapGrants(p, refs, writable, notify) {
    const mapping = await backend.mapGrants(p, refs, writable, notify);
    if (notify !== undefined) {
      control = mapping.memory;
      Atomics.store(shared, 3, 1);
    }
    else rings.push(mapping.memory);
    return mapping;
  },
  bindUnboundPort: async (p, onEvent) => (own = await backend.bindUnboundPort(p, onEvent)),
  bindInterdomain: async (p, remote, onEvent) => (own = await backend.bindInterdomain(p, remote, onEvent)),
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function die(): void {
  if (dead) return;
  dead = true;
  switch (plan.death) {
    case 'exit':
      process.exit(0);
      break;
    case 'destroy':
      // kill -9: the unmap notifications fire and nothing of ours runs after them. (A thread that
      // lived on could still write the shared memory, which no killed process can.)
      backend.destroy();
      process.exit(0);
      break;
    case 'terminate':
      port.postMessage({ terminateMe: true });
      break;
    case 'crash':
      setTimeout(() => {
        throw new Error('the attacker crashed on purpose');
      }, 0);
      break;
    case 'close':
      // An honest close mid-setup aborts the setup and lets it release what it took before the
      // process goes. Closing the backend under it instead let this thread run the setup on after
      // its process ended (no real process can): it wrote cli_live = connected over the unmap
      // notification's cleared byte, and a server that looked late saw a live client (seed 129025199).
      setupAbort.abort();
      void setup
        .then((made) => (made instanceof Vchan ? made.close() : undefined), () => undefined)
        .finally(async () => {
          port.postMessage({ dead: true });
          await backend.close().catch(() => undefined);
          process.exit(0);
        });
      break;
  }
}

function mutated(n: number): void {
  Atomics.add(shared, 0, n);
}

function u32(page: Uint8Array, off: number): number {
  return new DataView(page.buffer, page.byteOffset).getUint32(off, true);
}
function setU32(page: Uint8Array, off: number, value: number): void {
  new DataView(page.buffer, page.byteOffset).setUint32(off, value >>> 0, true);
}

function burst(region: 'header' | 'page' | 'rings', n: number, seed: number): void {
  const rng = new Rng(seed);
  const page = control!;
  for (let i = 0; i < n; i++) {
    if (region === 'header') page[rng.below(24)] = rng.below(256);
    else if (region === 'page') page[rng.below(4096)] = rng.below(256);
    else {
      const target = rings.length > 0 && rng.chance(0.7) ? rng.pick(rings) : page.subarray(1024);
      target[rng.below(target.length)] = rng.below(256);
    }
  }
  mutated(n);
}

let sent = 0;
const outgoing = new Uint8Array(8192);
/** Writes what fits of `bytes` more pattern bytes; reads whatever came. */
function honestly(bytes: number): void {
  const v = vchan;
  if (v === undefined) return;
  try {
    for (let left = bytes; left > 0; ) {
      const piece = fillPattern(plan.seed ^ 2, sent, outgoing.subarray(0, Math.min(left, outgoing.length)));
      const n = v.write(piece);
      if (n === 0) break;
      sent += n;
      left -= n;
    }
    while (v.read(outgoing) > 0);
  } catch {
    // The victim may have closed on us: that is its right.
  }
}

async function step(s: Step): Promise<void> {
  const page = control;
  if (page === undefined) return;
  switch (s.k) {
    case 'poke':
      page[s.off] = s.value;
      return mutated(1);
    case 'counter':
      setU32(page, s.field * 4, s.add ? u32(page, s.field * 4) + s.value : s.value);
      return mutated(1);
    case 'order':
      new DataView(page.buffer, page.byteOffset).setUint16(16 + 2 * s.which, s.value, true);
      return mutated(1);
    case 'grant':
      setU32(page, 24 + 4 * s.index, s.value);
      return mutated(1);
    case 'live':
      page[20 + s.which] = s.value;
      return mutated(1);
    case 'notify':
      page[22 + s.which] = s.value;
      return mutated(1);
    case 'burst':
      burst(s.region, s.n, s.seed);
      await sleep(0);
      return;
    case 'flood': {
      const end = performance.now() + s.ms;
      while (performance.now() < end) for (let i = 0; i < 256; i++) own?.notify();
      await sleep(0);
      return;
    }
    case 'silent':
      await sleep(s.ms);
      return;
    case 'honest':
      honestly(s.bytes);
      await sleep(0);
      return;
    case 'mark':
      port.postMessage({ mark: s.name });
      return;
    case 'peerConnected': {
      // The victim's liveness byte (ours is the other one); polled: this is the attacker, not our code.
      const at = plan.role === 'client' ? Offsets.CLI_LIVE : Offsets.SRV_LIVE;
      while (Atomics.load(page, at) !== Live.CONNECTED) await sleep(1);
      return;
    }
    case 'entries':
      await backend.store.writeAll([
        [`${path}/ring-ref`, s.ringRef],
        [`${path}/event-channel`, s.eventChannel],
      ]);
      return mutated(1);
  }
}

/** Publishes made-up entries over a page of our own instead of a real server. */
async function fakeServer(fake: NonNullable<Plan['fakeEntries']>): Promise<void> {
  own = await backend.bindUnboundPort(peer, () => undefined);
  // Armed as every server arms it (PROTOCOL §6): unarmed, this process's death would send nothing, and
  // a domU victim cannot see our domain go either (README, peer crash detection) — a silent peer, not a
  // dead one, and the oracle could not ask the victim to end.
  const share = await backend.sharePages(peer, 1, { offset: Offsets.SRV_LIVE, port: own.port });
  control = share.memory;
  const rng = new Rng(plan.seed);
  if (fake.page === 'random') for (let i = 0; i < 4096; i++) control[i] = rng.below(256);
  else {
    control.set([10, 0, 11, 0, 2, 1, 1, 0], 16); // orders 10 and 11, client waiting, server live
  }
  const value = (v: string) => (v === '$ref' ? String(share.refs[0]) : v === '$port' ? String(own!.port) : v);
  const self = await backend.domainId();
  await backend.store.writeAll(
    [
      [`${path}/ring-ref`, value(fake.ringRef)],
      [`${path}/event-channel`, value(fake.eventChannel)],
    ],
    [
      { domid: self, access: 'none' },
      { domid: peer, access: 'read' },
    ],
  );
}

/** The honest session: all our bytes out, all the victim's in and checked, then close. */
async function exchange(v: Vchan): Promise<void> {
  const checker = new PatternChecker(plan.seed ^ 1);
  let received = 0;
  const into = new Uint8Array(65536);
  while (sent < plan.attackerBytes || received < plan.victimBytes) {
    let moved = false;
    if (sent < plan.attackerBytes) {
      const piece = fillPattern(plan.seed ^ 2, sent, outgoing.subarray(0, Math.min(plan.attackerBytes - sent, outgoing.length)));
      const n = v.write(piece);
      sent += n;
      moved ||= n > 0;
    }
    const n = v.read(into);
    if (n > 0) {
      checker.push(into.subarray(0, n));
      received += n;
      moved = true;
    }
    if (!moved) await v.wait();
  }
  if (received === plan.victimBytes) Atomics.store(shared, 2, 1);
}

if (plan.deathMs !== undefined) setTimeout(die, plan.deathMs);
try {
  const signal = setupAbort.signal;
  if (plan.role === 'client' && plan.fakeEntries !== undefined) await (setup = fakeServer(plan.fakeEntries));
  else if (plan.role === 'client') vchan = await (setup = Vchan.server({ peer, path, readMin: plan.writeMin, writeMin: plan.readMin, backend: capturing, signal }));
  else vchan = await (setup = Vchan.client({ peer, path, backend: capturing, signal }));
  Atomics.store(shared, 1, 1);
  port.postMessage({ setUp: true });
  if (plan.honest && vchan !== undefined) await exchange(vchan);
  for (const s of plan.steps) {
    if (dead) break;
    await step(s);
  }
} catch (error) {
  // The victim may refuse us (a closed channel, a refused map): note it, then die as planned.
  port.postMessage({ attackerError: String(error) });
}
if (plan.deathMs === undefined) die();
