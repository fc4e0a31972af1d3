/**
 * An event flood on the memory backend: the peer, in a worker thread,
 * notifies without pause while it also sends honest data. The victim's
 * thread (this one) must pay about what the same data costs without the
 * flood: the backend throttles a port whose wake-ups keep finding nothing
 * new, as the Xen backend does. CPU is this thread's own run time
 * (/proc/thread-self/schedstat), so the attacker's spinning core does not
 * count; the bound is a twentieth of a core over the baseline measured here.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { Vchan } from '../../src/channel.js';
import { MemoryHypervisor } from '../../src/memory/index.js';
import { bundleWorker } from '../support/bundle-worker.js';
import type { FloodRun } from '../support/flood-worker.js';
import { PatternChecker } from '../support/pattern.js';

const WINDOW_MS = 1500;
/** Honest traffic: 8 KiB every 75 ms through a 4 KiB ring, over most of the window. */
const BYTES = 128 * 1024;
const BURST = 8 * 1024;
const PACE_MS = 75;
const SEED = 7;

/** This thread's CPU time in ms (Linux: run time in ns, first field of schedstat). */
function threadCpuMs(): number {
  let text: string;
  try {
    text = readFileSync('/proc/thread-self/schedstat', 'utf8');
  } catch (error) {
    throw new Error(`this test measures one thread's CPU time through Linux's /proc/thread-self/schedstat: ${String(error)}`);
  }
  return Number(text.split(' ')[0]) / 1e6;
}

interface Window {
  cpuMs: number;
  wakeups: number;
  received: number;
  sent: number;
  notifies: number;
}

let cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  const steps = cleanup;
  cleanup = [];
  for (const step of steps.reverse()) await step();
});

async function floodPair() {
  const hv = new MemoryHypervisor();
  const dom0 = hv.backend(0);
  const path = 'data/vchan/5/1';
  const server = await Vchan.server({ peer: 5, path, readMin: 4096, writeMin: 4096, backend: dom0 });
  const link = hv.link(5);
  const worker = new Worker(bundleWorker(fileURLToPath(new URL('../support/flood-worker.ts', import.meta.url))), {
    workerData: { link, path: `/local/domain/0/${path}`, seed: SEED },
    transferList: link.transferList,
  });
  cleanup.push(async () => {
    await worker.terminate();
    await server.close();
    await dom0.close();
    await hv.released(link);
  });
  const message = <T>(): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
  await message<{ connected: true }>();
  const checker = new PatternChecker(SEED);

  /** The victim reads for WINDOW_MS while the peer runs `run`; returns what it cost this thread. */
  const window = async (run: FloodRun): Promise<Window> => {
    let wakeups = 0;
    const stop = server.onEvent(() => wakeups++);
    const done = message<{ sent: number; notifies: number }>();
    const into = Buffer.alloc(65536);
    const started = performance.now();
    const cpuBefore = threadCpuMs();
    worker.postMessage(run);
    let received = 0;
    for (;;) {
      const left = WINDOW_MS - (performance.now() - started);
      if (left <= 0) break;
      const n = server.read(into);
      if (n > 0) {
        checker.push(into.subarray(0, n));
        received += n;
        continue;
      }
      await server.wait(AbortSignal.timeout(Math.ceil(left))).catch(() => undefined);
    }
    const cpuMs = threadCpuMs() - cpuBefore;
    stop();
    const peer = await done;
    return { cpuMs, wakeups, received, ...peer };
  };
  return { window };
}

describe('memory backend under an event flood from another thread', () => {
  it('costs the victim about what the same honest traffic costs without it; the data arrives intact', async () => {
    const { window } = await floodPair();
    const quiet = await window({ flood: false, ms: WINDOW_MS, bytes: BYTES, burst: BURST, paceMs: PACE_MS });
    const flooded = await window({ flood: true, ms: WINDOW_MS, bytes: BYTES, burst: BURST, paceMs: PACE_MS });
    const report = (name: string, w: Window) =>
      `${name}: victim CPU ${w.cpuMs.toFixed(1)} ms in ${WINDOW_MS} ms, ${w.wakeups} wake-ups, ${w.received} bytes, ${w.notifies} notifies`;
    process.stdout.write(`${report('quiet  ', quiet)}\n${report('flooded', flooded)}\n`);
    // Honest traffic: every byte, in order (the checker threw otherwise).
    expect(quiet).toMatchObject({ sent: BYTES, received: BYTES });
    expect(flooded).toMatchObject({ sent: BYTES, received: BYTES });
    expect(flooded.notifies).toBeGreaterThan(100_000);
    expect(flooded.cpuMs - quiet.cpuMs, report('flooded', flooded)).toBeLessThan(0.05 * WINDOW_MS);
  });
});
