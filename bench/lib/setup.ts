/**
 * What a run needs before the first measurement: the C programs built
 * against Debian's libxenvchan, and a platform to run peers on — the
 * emulator (a private xensim broker, server in domain 1, client in
 * domain 2) or real Xen (both ends in our own domain).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface Programs {
  cPeer: string;
  shmRing: string;
  tsPeer: string;
  /** process.env plus LD_LIBRARY_PATH for Debian's libraries. */
  env: NodeJS.ProcessEnv;
}

export interface Platform {
  name: 'xensim' | 'xen';
  serverDom: number;
  clientDom: number;
  /** argv prefix that runs a command in a domain (empty on real Xen). */
  wrap(domid: number): string[];
  env: NodeJS.ProcessEnv;
  /** A directory for sockets and scratch files. */
  scratch: string;
  /** CPU seconds the emulator's broker has used so far (0 on real Xen). */
  brokerCpu(): number;
  stop(): Promise<void>;
}

export async function debianRoot(repo: string): Promise<string> {
  const { stdout } = await execFileP('bash', [join(repo, 'scripts/debian-packages.sh')], { maxBuffer: 1 << 20 });
  const root = stdout.trim().split('\n').pop() ?? '';
  if (!existsSync(root)) throw new Error(`scripts/debian-packages.sh printed no usable root: ${stdout}`);
  return root;
}

export async function compile(src: string, out: string, args: string[]): Promise<string> {
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) return out;
  const tmp = `${out}.${process.pid}.tmp`;
  await execFileP(process.env.CC ?? 'cc', ['-O2', '-g', '-Wall', '-Wextra', '-std=gnu11', src, '-o', tmp, ...args]);
  renameSync(tmp, out);
  return out;
}

/** `cacheDir` holds the bundled TS peer (made by the launcher) and receives the C binaries. */
export async function buildPrograms(repo: string, cacheDir: string): Promise<Programs> {
  const root = await debianRoot(repo);
  const libDir = join(root, 'usr/lib/x86_64-linux-gnu');
  mkdirSync(cacheDir, { recursive: true });
  const c = (name: string) => join(repo, 'bench/c', `${name}.c`);
  const [cPeer, shmRing] = await Promise.all([
    compile(c('bench-peer'), join(cacheDir, 'bench-peer'), [`-I${join(root, 'usr/include')}`, `-L${libDir}`, `-Wl,-rpath-link,${libDir}`, '-lxenvchan', '-lxentoollog']),
    compile(c('shm-ring'), join(cacheDir, 'shm-ring'), []),
  ]);
  const tsPeer = join(cacheDir, 'peer.mjs');
  if (!existsSync(tsPeer)) throw new Error(`${tsPeer} is missing: run the bench through bench/launch.mjs (npm run bench)`);
  const ld = process.env.LD_LIBRARY_PATH;
  return { cPeer, shmRing, tsPeer, env: { ...process.env, LD_LIBRARY_PATH: ld ? `${libDir}:${ld}` : libDir } };
}

/** utime + stime of a process, from /proc (clock ticks of 1/100 s on Linux). */
export function procCpu(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

async function emulator(repo: string, env: NodeJS.ProcessEnv): Promise<Platform> {
  const cli = join(repo, 'dist/sim/cli.js');
  const dir = mkdtempSync('/tmp/xsbench-'); // short: unix socket paths must fit in 108 bytes
  const simEnv = { ...env, XENSIM_DIR: dir };
  const { stdout, stderr } = await execFileP(process.execPath, [cli, 'start'], { env: simEnv });
  const pid = Number(/broker (\d+)/.exec(stdout + stderr)?.[1] ?? 0);
  // Domains exist while held: create both for the whole run, so each pair skips domain setup.
  for (const d of [1, 2]) await execFileP(process.execPath, [cli, 'create', '--domid', String(d)], { env: simEnv });
  return {
    name: 'xensim',
    serverDom: 1,
    clientDom: 2,
    wrap: (domid) => [process.execPath, cli, 'run', '--domid', String(domid), '--'],
    env: simEnv,
    scratch: dir,
    brokerCpu: () => (pid ? procCpu(pid) : 0),
    async stop() {
      await execFileP(process.execPath, [cli, 'stop'], { env: simEnv }).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function realXen(repo: string, env: NodeJS.ProcessEnv): Promise<Platform> {
  const { XenStore } = await import('../../src/index.js');
  const store = new XenStore();
  const domid = Number(await store.read('domid'));
  store.close();
  if (!Number.isInteger(domid)) throw new Error('cannot read our domain id from xenstore');
  const scratch = mkdtempSync('/tmp/xsbench-');
  void repo;
  return {
    name: 'xen',
    serverDom: domid,
    clientDom: domid,
    wrap: () => [],
    env,
    scratch,
    brokerCpu: () => 0,
    async stop() {
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}

/** Real Xen when /dev/xen exists (unless forced onto the emulator), else the emulator. */
export function startPlatform(repo: string, env: NodeJS.ProcessEnv, forceSim: boolean): Promise<Platform> {
  return !forceSim && existsSync('/dev/xen/evtchn') ? realXen(repo, env) : emulator(repo, env);
}
