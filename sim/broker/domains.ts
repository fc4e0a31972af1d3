import { createServer, type Server } from 'node:net';
import { rmSync } from 'node:fs';
import { join } from 'node:path';

/** An emulated domain: its two sockets and who keeps it alive. */
export class Domain {
  holds = 0;
  readonly devicePath: string;
  readonly xenstorePath: string;
  private readonly servers: Server[] = [];
  /** Settles once both sockets listen (a second `hold` may arrive meanwhile). */
  ready: Promise<void> = Promise.resolve();

  constructor(
    readonly domid: number,
    readonly name: string,
    /** Created by `create` (or dom0): lives until destroyed explicitly. */
    public explicit: boolean,
    dir: string,
  ) {
    this.devicePath = join(dir, `dom${domid}.sock`);
    this.xenstorePath = join(dir, `dom${domid}.xenstore.sock`);
  }

  get alive(): boolean {
    return this.explicit || this.holds > 0;
  }

  async listen(onDevice: Parameters<typeof createServer>[1], onXenstore: Parameters<typeof createServer>[1]): Promise<void> {
    for (const [path, handler] of [
      [this.devicePath, onDevice],
      [this.xenstorePath, onXenstore],
    ] as const) {
      rmSync(path, { force: true }); // a stale socket from a broker that died
      const server = createServer(handler);
      this.servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => {
          server.off('error', reject);
          resolve();
        });
      });
    }
  }

  close(): void {
    for (const s of this.servers) s.close();
    this.servers.length = 0;
    rmSync(this.devicePath, { force: true });
    rmSync(this.xenstorePath, { force: true });
  }
}
