/**
 * The peer of the flood test, in a worker thread: an honest vchan client
 * that also holds its own event channel port (captured as the backend binds
 * it) and can notify it without pause. Each `run` message sends `bytes`
 * pattern bytes (the stream continues from run to run) for `ms`
 * milliseconds, `burst` bytes every `paceMs` (so some arrive while the
 * victim is throttled). With `flood`: 256 notifies between writes, never
 * yielding; without: only the writes, sleeping in between.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Backend, EventChannel } from '../../src/backend.js';
import { Vchan } from '../../src/channel.js';
import { connectMemoryBackend, type MemoryLink } from '../../src/memory/index.js';
import { fillPattern } from './pattern.js';

export interface FloodRun {
  flood: boolean;
  ms: number;
  bytes: number;
  burst: number;
  paceMs: number;
}

const { link, path, seed } = workerData as { link: MemoryLink; path: string; seed: number };
const port = parentPort!;
const backend = connectMemoryBackend(link);
let own: EventChannel | undefined;
const capturing: Backend = {
  store: backend.store,
  domainId: () => backend.domainId(),
  sharePages: (peer, count, notify) => backend.sharePages(peer, count, notify),
  mapGrants: (peer, refs, writable, notify) => backend.mapGrants(peer, refs, writable, notify),
  bindUnboundPort: (peer, onEvent) => backend.bindUnboundPort(peer, onEvent),
  bindInterdomain: async (peer, remotePort, onEvent) => (own = await backend.bindInterdomain(peer, remotePort, onEvent)),
};

const vchan = await Vchan.client({ peer: 0, path, backend: capturing });
port.postMessage({ connected: true });

let position = 0;
const chunk = new Uint8Array(4096);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

port.on('message', async (run: FloodRun) => {
  const start = performance.now();
  const end = start + run.ms;
  let sent = 0;
  let notifies = 0;
  for (let now = start; now < end; now = performance.now()) {
    const due = Math.min(run.bytes, run.burst * (Math.floor((now - start) / run.paceMs) + 1));
    if (sent < due) {
      const piece = fillPattern(seed, position, chunk.subarray(0, Math.min(chunk.length, due - sent)));
      const n = vchan.write(piece);
      position += n;
      sent += n;
      if (n === 0 && !run.flood) await sleep(1); // the ring is full: let the victim read
    } else if (!run.flood) {
      await sleep(sent === run.bytes ? end - now : run.paceMs - ((now - start) % run.paceMs));
    }
    if (run.flood) {
      for (let i = 0; i < 256; i++) own!.notify();
      notifies += 256;
    }
  }
  port.postMessage({ sent, notifies });
});
