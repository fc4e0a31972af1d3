/**
 * A private xensim broker for these tests, driven through the `xensim` CLI
 * only (start, status, run, stop). Fails, never skips, when the emulator is
 * not built.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
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
