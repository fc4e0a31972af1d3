/** VchanStreams over the memory backend, both ends in this thread; one hypervisor for all scenarios. */
import { MemoryHypervisor } from '../../src/memory/index.js';
import { connect, listen } from '../../src/net.js';
import type { Target } from './net-target.js';
import { runPair } from './pair.js';

export function memoryTarget(): Target {
  const hv = new MemoryHypervisor();
  const dom0 = hv.backend(0);
  const dom5 = hv.backend(5);
  let port = 0;
  return {
    async run(scenario) {
      port++;
      const server = listen({ peer: 5, port, backend: dom0 });
      const client = connect({ peer: 0, port, backend: dom5 });
      return runPair(server, client, scenario);
    },
    async close() {
      await Promise.all([dom0.close(), dom5.close()]);
    },
  };
}
