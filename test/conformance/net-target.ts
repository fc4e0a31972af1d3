/**
 * The reference: two net.Sockets over a unix socket, net's defaults. One
 * listening server serves every scenario (they run one at a time).
 */
import { once } from 'node:events';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Scenario } from './scenario.js';
import { runSide } from './side.js';
import type { Trace } from './trace.js';

export interface Target {
  run(scenario: Scenario): Promise<Trace>;
  close(): Promise<void>;
}

export async function netTarget(): Promise<Target> {
  const path = join(tmpdir(), `vchan-conformance-${process.pid}-${Math.random().toString(36).slice(2)}.sock`);
  const server = net.createServer();
  server.listen(path);
  await once(server, 'listening');
  return {
    async run(scenario) {
      const accepted = once(server, 'connection') as Promise<[net.Socket]>;
      const client = net.connect(path);
      const clientTrace = runSide(client, 'client', scenario.client);
      const [socket] = await accepted;
      const serverTrace = runSide(socket, 'server', scenario.server, { connected: true });
      return { server: await serverTrace, client: await clientTrace };
    },
    async close() {
      server.close();
      await once(server, 'close');
    },
  };
}
