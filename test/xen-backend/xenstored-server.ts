/**
 * Serves the emulator's xenstored on a unix socket per domain, for testing
 * the xenstore client over a real socket.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Xenstored } from '../../sim/xenstored/index.js';

export interface XenstoredServer {
  readonly xenstored: Xenstored;
  /** The socket path a client of domain `domid` connects to (the domain is added). */
  socketFor(domid: number): Promise<string>;
  close(): Promise<void>;
}

export async function startXenstored(): Promise<XenstoredServer> {
  const dir = mkdtempSync(join(tmpdir(), 'xen-vchan-xs-'));
  const xenstored = new Xenstored();
  const servers = new Map<number, { server: Server; path: string }>();
  return {
    xenstored,
    async socketFor(domid) {
      const known = servers.get(domid);
      if (known) return known.path;
      if (domid !== 0) xenstored.addDomain(domid);
      const path = join(dir, `dom${domid}.sock`);
      const server = createServer((socket) => xenstored.connect(socket, domid));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, resolve);
      });
      servers.set(domid, { server, path });
      return path;
    },
    async close() {
      xenstored.close();
      await Promise.all([...servers.values()].map(({ server }) => new Promise((resolve) => server.close(resolve))));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
