/**
 * A private xensim broker for these tests, driven through the `xensim` CLI
 * (start, status, run, stop) and, to create a domain that outlives its
 * processes, the broker's control socket. Fails, never skips, when the
 * emulator is not built.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ControlClient } from '../../sim/broker/control.js';
import { ensureCPeers, REPO_ROOT } from '../support/c-peer.js';

const execFileP = promisify(execFile);
const CLI = join(REPO_ROOT, 'dist/sim/cli.js');
const PRELOAD = join(REPO_ROOT, 'build/sim/libxensim.so');

/** What a broker still holds; all zero when everything was released. */
export interface Held {
  grants: number;
  pages: number;
  mappedPages: number;
  ports: number;
  watches: number;
}

export const NOTHING_HELD: Held = { grants: 0, pages: 0, mappedPages: 0, ports: 0, watches: 0 };

export class TestSim {
  private constructor(
    readonly dir: string,
    readonly env: NodeJS.ProcessEnv,
  ) {}

  static async start(extraEnv: NodeJS.ProcessEnv = {}): Promise<TestSim> {
    const preload = process.env.XENSIM_PRELOAD || PRELOAD;
    for (const f of [CLI, preload]) {
      if (!existsSync(f)) throw new Error(`${f} is missing: run \`npm run build\` before the emulator tests`);
    }
    const peers = await ensureCPeers();
    // Short: unix socket paths must fit in 108 bytes.
    const dir = mkdtempSync('/tmp/xvb-');
    const env = { ...peers.env, ...extraEnv, XENSIM_DIR: dir };
    await execFileP(process.execPath, [CLI, 'start'], { env });
    return new TestSim(dir, env);
  }

  /** argv prefix that runs a command as a process of domain `domid`. */
  runArgs(domid: number): string[] {
    return [process.execPath, CLI, 'run', '--domid', String(domid), '--'];
  }

  /**
   * Environment for a process of domain `domid`, spawned directly (so a
   * kill hits the process itself). The domain is created explicitly and
   * outlives its processes: a peer's death shows only through the vchan.
   */
  async domainEnv(domid: number): Promise<NodeJS.ProcessEnv> {
    const d = await this.control<{ socket: string; xenstore: string }>({ op: 'create', domid });
    const preload = process.env.XENSIM_PRELOAD || PRELOAD;
    return { ...this.env, LD_PRELOAD: preload, XENSIM_SOCKET: d.socket, XENSTORED_PATH: d.xenstore, XENSIM_DOMID: String(domid) };
  }

  /** One request on the broker's control socket (create, destroy, status, fail, restart-xenstore, ...). */
  async control<T>(request: Parameters<ControlClient['request']>[0]): Promise<T> {
    const c = await ControlClient.open(join(this.dir, 'ctl.sock'));
    try {
      return await c.request<T>(request);
    } finally {
      c.close();
    }
  }

  async held(): Promise<Held> {
    const { stdout } = await execFileP(process.execPath, [CLI, 'status'], { env: this.env });
    const s = JSON.parse(stdout) as Held;
    return { grants: s.grants, pages: s.pages, mappedPages: s.mappedPages, ports: s.ports, watches: s.watches };
  }

  /** Waits until nothing is held (the broker frees on socket close, asynchronously). */
  async idle(ms = 3000): Promise<Held> {
    const end = Date.now() + ms;
    let h = await this.held();
    while (Object.values(h).some((n) => n !== 0) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 20));
      h = await this.held();
    }
    return h;
  }

  async stop(): Promise<void> {
    await execFileP(process.execPath, [CLI, 'stop'], { env: this.env }).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
