/**
 * A long-lived worker holding one process of the memory hypervisor: runs
 * one end of many scenarios, one message each (see worker-target.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { connectMemoryBackend, type MemoryLink } from '../../src/memory/index.js';
import { connect, listen } from '../../src/net.js';
import type { Role, SideScript } from './scenario.js';
import { runSide } from './side.js';

export type ToWorker = { run: number; role: Role; port: number; script: SideScript } | { abandon: number };

const port = parentPort!;
const backend = connectMemoryBackend((workerData as { link: MemoryLink }).link);
const abandons = new Map<number, () => void>();

port.on('message', (message: ToWorker) => {
  if ('abandon' in message) return abandons.get(message.abandon)?.();
  const { run, role, script } = message;
  const stream = role === 'server'
    ? listen({ peer: 5, port: message.port, backend })
    : connect({ peer: 0, port: message.port, backend });
  const abandon = new Promise<void>((resolve) => abandons.set(run, resolve));
  void runSide(stream, role, script, { abandon }).then((trace) => {
    abandons.delete(run);
    port.postMessage({ run, trace });
  });
});
port.postMessage({ ready: true });
