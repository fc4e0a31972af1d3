/**
 * Runs vchan transfers between two worker threads (a server in domain 0 and
 * a client in domain 5) over one in-memory hypervisor.
 */
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { MemoryHypervisor } from '../../src/memory/index.js';
import { bundleWorker } from './bundle-worker.js';
import type { RunResult, RunSpec } from './vchan-worker.js';

export type { RunResult } from './vchan-worker.js';

class End {
  readonly worker: Worker;
  private constructor(hv: MemoryHypervisor, domid: number) {
    const link = hv.link(domid);
    const file = bundleWorker(fileURLToPath(new URL('./vchan-worker.ts', import.meta.url)));
    this.worker = new Worker(file, { workerData: { link }, transferList: link.transferList });
  }

  static async start(hv: MemoryHypervisor, domid: number): Promise<End> {
    const end = new End(hv, domid);
    await once(end.worker, 'message');
    return end;
  }

  /** Posts a run; resolves with its result, after `onListening` for a server. */
  run(spec: RunSpec, onListening?: () => void): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: { listening?: boolean; result?: RunResult; error?: { message: string; code?: string } }) => {
        if (m.listening) return onListening?.();
        this.worker.off('message', onMessage);
        this.worker.off('exit', onExit);
        if (m.error) reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
        else resolve(m.result!);
      };
      const onExit = (code: number) => reject(new Error(`worker exited with code ${code}`));
      this.worker.on('message', onMessage);
      this.worker.once('exit', onExit);
      this.worker.postMessage(spec);
    });
  }
}

export interface TransferOptions {
  readMin?: number;
  writeMin?: number;
  /** Bytes from server to client and from client to server. */
  serverSends: number;
  clientSends: number;
  chunk?: number;
  randomChunks?: boolean;
  api?: 'vchan' | 'stream';
}

export class TransferBed {
  readonly hv = new MemoryHypervisor();
  private constructor(
    private readonly server: End,
    private readonly client: End,
  ) {}

  static async start(): Promise<TransferBed> {
    const hv = new MemoryHypervisor();
    const bed = new TransferBed(await End.start(hv, 0), await End.start(hv, 5));
    (bed as { hv: MemoryHypervisor }).hv = hv;
    return bed;
  }

  private runs = 0;

  /** One channel: the server listens, then the client connects; both move bytes both ways at once. */
  async transfer(o: TransferOptions): Promise<{ server: RunResult; client: RunResult }> {
    const path = `data/vchan/5/${1000 + this.runs++}`;
    const common = { chunk: o.chunk ?? 65536, randomChunks: o.randomChunks ?? false, api: o.api ?? 'vchan' };
    let listening!: () => void;
    const ready = new Promise<void>((r) => (listening = r));
    const server = this.server.run(
      { role: 'server', peer: 5, path, readMin: o.readMin, writeMin: o.writeMin, send: o.serverSends, receive: o.clientSends, ...common },
      listening,
    );
    await Promise.race([ready, server]);
    const client = this.client.run({
      role: 'client', peer: 0, path: `/local/domain/0/${path}`, send: o.clientSends, receive: o.serverSends, ...common,
    });
    const [s, c] = await Promise.all([server, client]);
    return { server: s, client: c };
  }

  async stop(): Promise<void> {
    await Promise.all([this.server.worker.terminate(), this.client.worker.terminate()]);
  }
}
