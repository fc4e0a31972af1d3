#!/usr/bin/env node
// xensim: run Xen vchan programs (C or Node) on a machine without Xen.
//   xensim start | stop | status
//   xensim run --domid N [--name NAME] -- command args...
//   xensim create --domid N [--name NAME] | destroy --domid N
//   xensim broker            (the broker in the foreground; what `start` spawns)
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from './broker/broker.js';
import { ControlClient } from './broker/control.js';
import { packageRoot, packageVersion } from '../src/package-root.js';

const USAGE = `usage:
  xensim start                      start a background broker (state in $XENSIM_DIR)
  xensim stop                       stop it
  xensim status                     JSON: domains, grants, pages, ports, watches, processes
  xensim run --domid N [--name NAME] -- cmd args...
                                    run cmd as a process of domain N (0 = privileged);
                                    uses the running broker, or a private one for cmd's lifetime
  xensim create --domid N [--name NAME] | destroy --domid N
  xensim fail --domid N --call CALL --errno E [--skip K] [--count M]
                                    the next M calls CALL from domain N (after K pass) fail with errno E:
                                    an ioctl name (GNTALLOC_ALLOC_GREF, GNTDEV_MAP_GRANT_REF,
                                    EVTCHN_BIND_INTERDOMAIN, ...), MMAP, or xs:<TYPE> (xs:WRITE, ...;
                                    ECONNRESET drops the xenstore connection)
  xensim unfail [--domid N]         forget those faults (JSON: the ones not used up)
  xensim restart-xenstore [--fresh] [--down-ms N]
                                    xenstored drops every connection and refuses new ones for N ms;
                                    --fresh: it comes back with nothing but the domains' homes
  xensim broker                     run the broker in the foreground
  xensim --version                  the package's version
environment: XENSIM_DIR (default /tmp/xensim-$UID), XENSIM_GNTALLOC_LIMIT (pages per domain, 1024),
             XENSIM_PRELOAD (path of libxensim.so)`;

class UsageError extends Error {}

function stateDir(): string {
  return process.env.XENSIM_DIR || join('/tmp', `xensim-${process.getuid?.() ?? 'user'}`);
}

/** The C library the machine runs on, named as node-gyp-build names it. */
function libc(): string {
  return process.env.LIBC || (existsSync('/etc/alpine-release') ? 'musl' : 'glibc');
}

/** libxensim.so, first found of: $XENSIM_PRELOAD; a local build (`npm run
 * build:sim`); the one the package ships for this platform; one built
 * earlier into the state directory; else built now with the system cc
 * (into the package, or the state directory when the package is read-only). */
function preloadPath(): string {
  if (process.env.XENSIM_PRELOAD) return process.env.XENSIM_PRELOAD;
  const root = packageRoot();
  const local = join(root, 'build', 'sim', 'libxensim.so');
  const prebuilt = join(root, 'prebuilds', `${process.platform}-${process.arch}`, `libxensim.${libc()}.so`);
  const cached = join(stateDir(), 'libxensim.so');
  for (const lib of [local, prebuilt, cached]) if (existsSync(lib)) return lib;
  for (const lib of [local, cached]) {
    const r = spawnSync('sh', [join(root, 'sim', 'build.sh'), lib], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status === 0 && existsSync(lib)) return lib;
  }
  throw new Error(
    `no libxensim.so for ${process.platform}-${process.arch} (${libc()}) in the package, and sim/build.sh could not build one (it needs a C compiler)`,
  );
}

function brokerOptions(dir: string) {
  const limit = process.env.XENSIM_GNTALLOC_LIMIT;
  return { dir, ...(limit ? { gntallocLimit: Number(limit) } : {}) };
}

async function tryControl(dir: string): Promise<ControlClient | null> {
  try {
    return await ControlClient.open(join(dir, 'ctl.sock'));
  } catch {
    return null;
  }
}

function parseDomid(args: string[]): { domid: number; name?: string; rest: string[] } {
  let domid: number | undefined;
  let name: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      rest.push(...args.slice(i + 1));
      break;
    } else if (a === '--domid' || a === '-d') domid = Number(args[++i]);
    else if (a.startsWith('--domid=')) domid = Number(a.slice(8));
    else if (a === '--name') name = args[++i];
    else if (a.startsWith('--name=')) name = a.slice(7);
    else {
      rest.push(...args.slice(i));
      break;
    }
  }
  if (domid === undefined || !Number.isInteger(domid) || domid < 0 || domid > 0x7fef)
    throw new UsageError('--domid N is required (0..32751)');
  return { domid, ...(name !== undefined ? { name } : {}), rest };
}

async function cmdBroker(): Promise<number> {
  const broker = new Broker(brokerOptions(stateDir()));
  await broker.start();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => broker.stop());
  process.stdout.write(`xensim broker ${process.pid} serving ${broker.options.dir}\n`);
  await broker.stopped;
  setTimeout(() => process.exit(0), 100).unref(); // clients that linger must not keep us up
  return 0;
}

async function cmdStart(): Promise<number> {
  const dir = stateDir();
  const existing = await tryControl(dir);
  if (existing) {
    existing.close();
    process.stdout.write(`xensim: broker already running in ${dir}\n`);
    return 0;
  }
  preloadPath(); // fail now, not in the first `run`
  const { mkdirSync } = await import('node:fs');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const log = join(dir, 'broker.log');
  const out = openSync(log, 'a');
  // --expose-gc: status collects garbage first, so its memory figures are comparable
  const child = spawn(process.execPath, ['--expose-gc', process.argv[1]!, 'broker'], {
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, XENSIM_DIR: dir },
  });
  let exited = false;
  child.once('exit', () => (exited = true));
  child.unref();
  for (let i = 0; i < 200 && !exited; i++) {
    const c = await tryControl(dir);
    if (c) {
      c.close();
      process.stdout.write(`xensim: broker ${child.pid} started in ${dir}\n`);
      return 0;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the broker did not start; see ${log}:\n${readFileSync(log, 'utf8').slice(-2000)}`);
}

async function cmdStop(): Promise<number> {
  const dir = stateDir();
  const c = await tryControl(dir);
  if (!c) {
    process.stdout.write(`xensim: no broker running in ${dir}\n`);
    return 0;
  }
  await c.request({ op: 'stop' });
  await c.closed();
  process.stdout.write('xensim: broker stopped\n');
  return 0;
}

async function cmdStatus(): Promise<number> {
  const dir = stateDir();
  const c = await tryControl(dir);
  if (!c) {
    process.stderr.write(`xensim: no broker running in ${dir}\n`);
    return 1;
  }
  const s = await c.request({ op: 'status' });
  c.close();
  process.stdout.write(JSON.stringify(s, null, 2) + '\n');
  return 0;
}

async function cmdDomain(op: 'create' | 'destroy', args: string[]): Promise<number> {
  const { domid, name } = parseDomid(args);
  const c = await tryControl(stateDir());
  if (!c) throw new Error(`no broker running in ${stateDir()} (xensim start)`);
  await c.request(op === 'create' ? { op, domid, ...(name ? { name } : {}) } : { op, domid });
  c.close();
  return 0;
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function cmdFail(args: string[]): Promise<number> {
  const { domid, rest } = parseDomid(args);
  const call = option(rest, '--call');
  const errno = option(rest, '--errno');
  if (!call || !errno) throw new UsageError('fail needs --call CALL and --errno E');
  const count = (name: string, fallback: number) => {
    const v = option(rest, name);
    const n = v === undefined ? fallback : Number(v);
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`${name} must be a count, not ${v}`);
    return n;
  };
  const c = await tryControl(stateDir());
  if (!c) throw new Error(`no broker running in ${stateDir()} (xensim start)`);
  try {
    await c.request({ op: 'fail', domid, call, errno, skip: count('--skip', 0), count: count('--count', 1) });
  } finally {
    c.close();
  }
  return 0;
}

async function cmdUnfail(args: string[]): Promise<number> {
  const i = args.indexOf('--domid');
  const domid = i >= 0 ? Number(args[i + 1]) : undefined;
  const c = await tryControl(stateDir());
  if (!c) throw new Error(`no broker running in ${stateDir()} (xensim start)`);
  let out: unknown;
  try {
    out = await c.request({ op: 'unfail', ...(domid !== undefined ? { domid } : {}) });
  } finally {
    c.close();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
  return 0;
}

async function cmdRestartXenstore(args: string[]): Promise<number> {
  const down = option(args, '--down-ms');
  const downMs = down === undefined ? 0 : Number(down);
  if (!Number.isInteger(downMs) || downMs < 0) throw new UsageError(`--down-ms must be a number of milliseconds, not ${down}`);
  const c = await tryControl(stateDir());
  if (!c) throw new Error(`no broker running in ${stateDir()} (xensim start)`);
  try {
    await c.request({ op: 'restart-xenstore', fresh: args.includes('--fresh'), downMs });
  } finally {
    c.close();
  }
  return 0;
}

async function cmdRun(args: string[]): Promise<number> {
  const { domid, name, rest } = parseDomid(args);
  if (rest.length === 0) throw new UsageError('run needs a command after --');
  const lib = preloadPath();
  let dir = stateDir();
  let release: () => void;
  let paths: { socket: string; xenstore: string };
  let privateBroker: Broker | null = null;
  const ctl = await tryControl(dir);
  if (ctl) {
    paths = await ctl.request<{ socket: string; xenstore: string }>({ op: 'hold', domid, ...(name ? { name } : {}) });
    release = () => ctl.close();
  } else {
    // No broker: a private one, in this process, for this command only.
    dir = mkdtempSync(join(tmpdir(), 'xensim-run-'));
    privateBroker = new Broker(brokerOptions(dir));
    await privateBroker.start();
    const held = await privateBroker.hold(domid, name);
    paths = { socket: held.domain.devicePath, xenstore: held.domain.xenstorePath };
    release = held.release;
  }
  const preload = [lib, process.env.LD_PRELOAD].filter(Boolean).join(':');
  const child = spawn(rest[0]!, rest.slice(1), {
    stdio: 'inherit',
    env: {
      ...process.env,
      LD_PRELOAD: preload,
      XENSIM_SOCKET: paths.socket,
      XENSTORED_PATH: paths.xenstore,
      XENSIM_DOMID: String(domid),
      XENSIM_DIR: dir,
    },
  });
  const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const handlers = signals.map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) => {
    child.once('error', (e) => {
      process.stderr.write(`xensim: cannot run ${rest[0]}: ${e.message}\n`);
      res([127, null]);
    });
    child.once('exit', (c, s) => res([c, s]));
  });
  for (const [s, h] of handlers) process.off(s, h);
  release();
  if (privateBroker) {
    privateBroker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  if (signal) {
    // Die the same way, so our parent sees the command's own status.
    process.kill(process.pid, signal);
    await new Promise((r) => setTimeout(r, 1000));
    return 128;
  }
  return code ?? 1;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...args] = argv;
  switch (cmd) {
    case 'start':
      return cmdStart();
    case 'stop':
      return cmdStop();
    case 'status':
      return cmdStatus();
    case 'run':
      return cmdRun(args);
    case 'create':
    case 'destroy':
      return cmdDomain(cmd, args);
    case 'fail':
      return cmdFail(args);
    case 'unfail':
      return cmdUnfail(args);
    case 'restart-xenstore':
      return cmdRestartXenstore(args);
    case 'broker':
      return cmdBroker();
    case undefined:
    case '-V':
    case '--version':
      process.stdout.write(`${packageVersion()}\n`);
      return 0;
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE + '\n');
      return cmd ? 0 : 2;
    default:
      throw new UsageError(`unknown command ${cmd}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`xensim: ${(e as Error).message}\n`);
    if (e instanceof UsageError) process.stderr.write(USAGE + '\n');
    process.exitCode = e instanceof UsageError ? 2 : 1;
  },
);
