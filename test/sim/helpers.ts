/**
 * Helpers for the emulator's tests: a broker per test file (started with
 * the real `xensim` CLI in a private state directory), processes in emulated
 * domains, and our small C tools built against Debian's Xen libraries.
 * Nothing here skips: a missing piece is an error that says what is missing.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ControlClient } from '../../sim/broker/control.js';
import type { BrokerStatus } from '../../sim/broker/broker.js';
import { ensureCPeers, REPO_ROOT, type CPeers } from '../support/c-peer.js';

const execFileP = promisify(execFile);

export const CLI = join(REPO_ROOT, 'dist/sim/cli.js');
export const PRELOAD = join(REPO_ROOT, 'build/sim/libxensim.so');

export function requireBuilt(): void {
  for (const f of [CLI, PRELOAD])
    if (!existsSync(f)) throw new Error(`${f} is missing: run \`npm run build\` before the emulator tests`);
}

export interface Tools extends CPeers {
  probe: string;
  cycles: string;
  /** Debian's vchan-socket-proxy (xen-utils-4.17). */
  proxy: string;
  /** Directory of Debian's xenstore-* commands. */
  xenstoreBin: string;
}

let tools: Promise<Tools> | undefined;

/** Our C tools under test/sim/c, built against Debian's headers and libs. */
export function ensureTools(): Promise<Tools> {
  tools ??= (async () => {
    const peers = await ensureCPeers();
    const out = join(REPO_ROOT, '.cache', 'sim-test');
    mkdirSync(out, { recursive: true });
    const build = async (name: string, libs: string[]) => {
      const src = join(REPO_ROOT, 'test/sim/c', `${name}.c`);
      const bin = join(out, name);
      if (existsSync(bin) && statSync(bin).mtimeMs >= statSync(src).mtimeMs) return bin;
      const tmp = `${bin}.${process.pid}.tmp`;
      try {
        await execFileP(process.env.CC ?? 'cc', [
          '-O2', '-g', '-Wall', '-std=gnu11', `-I${join(peers.root, 'usr/include')}`, src, '-o', tmp,
          `-L${peers.libDir}`, `-Wl,-rpath-link,${peers.libDir}`, ...libs,
        ]);
      } catch (e) {
        throw new Error(`compiling ${src} failed: ${(e as { stderr?: string }).stderr ?? e}`);
      }
      renameSync(tmp, bin);
      return bin;
    };
    const [probe, cycles] = await Promise.all([
      build('xsprobe', ['-lxengnttab', '-lxenevtchn']),
      build('vchan-cycles', ['-lxenvchan', '-lxentoollog']),
    ]);
    const proxy = join(peers.root, 'usr/lib/xen-4.17/bin/vchan-socket-proxy');
    const xenstoreBin = join(peers.root, 'usr/bin');
    for (const f of [proxy, join(xenstoreBin, 'xenstore-read')])
      if (!existsSync(f)) throw new Error(`${f} missing from the Debian packages (xen-utils-4.17 / xenstore-utils)`);
    const libDirs = [peers.libDir, join(peers.root, 'usr/lib/xen-4.17/lib/x86_64-linux-gnu')].join(':');
    const env = { ...peers.env, LD_LIBRARY_PATH: [libDirs, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') };
    return { ...peers, env, probe, cycles, proxy, xenstoreBin };
  })();
  tools.catch(() => (tools = undefined));
  return tools;
}

/** A broker started by `xensim start` in its own directory. */
export class Sim {
  private constructor(
    readonly dir: string,
    readonly env: NodeJS.ProcessEnv,
  ) {}

  static async start(extraEnv: NodeJS.ProcessEnv = {}): Promise<Sim> {
    requireBuilt();
    const t = await ensureTools();
    // Short: unix socket paths must fit in 108 bytes.
    const dir = mkdtempSync('/tmp/xst-');
    const env = { ...t.env, ...extraEnv, XENSIM_DIR: dir };
    await execFileP(process.execPath, [CLI, 'start'], { env });
    return new Sim(dir, env);
  }

  async stop(): Promise<void> {
    await execFileP(process.execPath, [CLI, 'stop'], { env: this.env }).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }

  async status(): Promise<BrokerStatus> {
    const c = await ControlClient.open(join(this.dir, 'ctl.sock'));
    try {
      return await c.request<BrokerStatus>({ op: 'status' });
    } finally {
      c.close();
    }
  }

  /** Environment for a process of domain `domid`, created explicitly (it outlives the process). */
  async domainEnv(domid: number): Promise<NodeJS.ProcessEnv> {
    const c = await ControlClient.open(join(this.dir, 'ctl.sock'));
    const d = await c.request<{ socket: string; xenstore: string }>({ op: 'create', domid });
    c.close();
    return { ...this.env, LD_PRELOAD: PRELOAD, XENSIM_SOCKET: d.socket, XENSTORED_PATH: d.xenstore };
  }

  /** `xensim destroy`: the domain goes as when Xen destroys it, its processes with it. */
  async destroyDomain(domid: number): Promise<void> {
    await execFileP(process.execPath, [CLI, 'destroy', '--domid', String(domid)], { env: this.env });
  }

  /** argv prefix that runs a command in domain `domid` through the CLI. */
  runArgs(domid: number): string[] {
    return [process.execPath, CLI, 'run', '--domid', String(domid), '--'];
  }

  /** Polls status until pred holds (the broker frees on socket close, asynchronously). */
  async until(pred: (s: BrokerStatus) => boolean, ms = 3000): Promise<BrokerStatus> {
    const end = Date.now() + ms;
    let s = await this.status();
    while (!pred(s) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 20));
      s = await this.status();
    }
    return s;
  }

  /** Waits for nothing to be held: grants, pages, mappings, ports, watches. */
  async idle(ms = 3000): Promise<BrokerStatus> {
    return this.until((s) => s.grants + s.pages + s.mappedPages + s.ports + s.watches === 0 && s.processes.length === 0, ms);
  }
}

export const held = (s: BrokerStatus) => ({
  grants: s.grants,
  pages: s.pages,
  mappedPages: s.mappedPages,
  ports: s.ports,
  watches: s.watches,
  processes: s.processes.length,
});

export const NOTHING_HELD = { grants: 0, pages: 0, mappedPages: 0, ports: 0, watches: 0, processes: 0 };

/** An xsprobe process in a domain, driven line by line. */
export class Probe {
  private buf = '';
  private readonly lines: string[] = [];
  private readonly waiters: ((l: string) => void)[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.buf += d;
      let nl;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const w = this.waiters.shift();
        if (w) w(line);
        else this.lines.push(line);
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  }

  /** Starts xsprobe in `domid` (directly, with the domain's environment). */
  static async start(sim: Sim, domid: number): Promise<Probe> {
    const t = await ensureTools();
    const env = await sim.domainEnv(domid);
    const p = new Probe(spawn(t.probe, [], { env, stdio: ['pipe', 'pipe', 'pipe'] }));
    await p.ok('pid');
    return p;
  }

  /** Starts xsprobe with an arbitrary environment (e.g. not under the emulator). */
  static async startWith(env: NodeJS.ProcessEnv, argv?: string[]): Promise<Probe> {
    const t = await ensureTools();
    const [cmd, ...args] = argv ?? [t.probe];
    return new Probe(spawn(cmd!, args, { env, stdio: ['pipe', 'pipe', 'pipe'] }));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Sends one command; resolves with its reply line. */
  send(cmd: string, ms = 5000): Promise<string> {
    this.child.stdin!.write(cmd + '\n');
    const queued = this.lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`probe: no reply to "${cmd}"; stderr: ${this.stderr}`)), ms);
      this.waiters.push((l) => {
        clearTimeout(timer);
        resolve(l);
      });
    });
  }

  /** Sends a command that must succeed; returns the numbers after "ok". */
  async ok(cmd: string): Promise<number[]> {
    const r = await this.send(cmd);
    if (!r.startsWith('ok')) throw new Error(`probe: "${cmd}" answered "${r}"; stderr: ${this.stderr}`);
    return r.split(' ').slice(1).map(Number);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<unknown> {
    this.child.kill(signal);
    return this.exited;
  }

  async exit(): Promise<void> {
    this.child.stdin!.end();
    await this.exited;
  }
}
