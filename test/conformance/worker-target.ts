/** The two ends in two long-lived worker threads (domains 0 and 5 of one memory hypervisor). */
import { once } from 'node:events';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { MemoryHypervisor } from '../../src/memory/index.js';
import { bundle } from '../interop/harness.js';
import { REPO_ROOT } from '../support/c-peer.js';
import type { Target } from './net-target.js';
import type { Role } from './scenario.js';
import type { SideTrace } from './trace.js';
import type { ToWorker } from './side-worker.js';

async function start(hv: MemoryHypervisor, domid: number, file: string): Promise<Worker> {
  const link = hv.link(domid);
  const worker = new Worker(file, { workerData: { link }, transferList: link.transferList });
  await once(worker, 'message');
  return worker;
}

export async function workerTarget(): Promise<Target> {
  const hv = new MemoryHypervisor();
  const file = bundle(join(REPO_ROOT, 'test/conformance/side-worker.ts'), 'conformance-side-worker');
  const workers: Record<Role, Worker> = { server: await start(hv, 0, file), client: await start(hv, 5, file) };
  let run = 0;
  const side = (role: Role, message: ToWorker & { run: number }): Promise<SideTrace> =>
    new Promise((resolve) => {
      const onMessage = (m: { run: number; trace: SideTrace }) => {
        if (m.run !== message.run) return;
        workers[role].off('message', onMessage);
        resolve(m.trace);
      };
      workers[role].on('message', onMessage);
      workers[role].postMessage(message);
    });
  return {
    async run(scenario) {
      run++;
      const server = side('server', { run, role: 'server', port: run, script: scenario.server });
      const client = side('client', { run, role: 'client', port: run, script: scenario.client });
      // An end that never connected lets the other go (its vchan would wait for ever).
      const id = run;
      void server.then((t) => t.events.includes('connect') || workers.client.postMessage({ abandon: id }));
      void client.then((t) => t.events.includes('connect') || workers.server.postMessage({ abandon: id }));
      return { server: await server, client: await client };
    },
    async close() {
      await Promise.all([workers.server.terminate(), workers.client.terminate()]);
    },
  };
}
