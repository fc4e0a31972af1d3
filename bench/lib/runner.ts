/**
 * Runs one repetition of one case: the server process, then (once it is
 * listening) the client process, each in its own domain, and turns their
 * result lines into figures. Failures come back as data, never thrown: one
 * broken pairing must not cost the rest of the run.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Placement } from './placement.js';
import type { Case } from './plan.js';
import type { Platform, Programs } from './setup.js';

/** The figures of one repetition (what a JSON record's `runs` holds). */
export interface Figures {
  mbps?: number;
  latencyUsP50?: number;
  latencyUsP99?: number;
  opsPerSec?: number;
  cpuSecPerGiB?: number;
  /** Ping-pong: CPU of both ends per round trip, µs. */
  cpuUsPerRoundTrip?: number;
  /** CPU of the emulator's broker per GiB (not in the record; shown in the table). */
  brokerSecPerGiB?: number;
}

export type Outcome = { ok: true; figures: Figures } | { ok: false; error: string };

interface Line {
  ok?: boolean;
  event?: string;
  error?: string;
  tx?: number;
  rx?: number;
  seconds?: number;
  cpu?: number;
  count?: number;
  p50?: number;
  p99?: number;
  cycles?: number;
}

interface Proc {
  lines: Line[];
  listening: Promise<void>;
  done: Promise<{ code: number | null; stderr: string; result: Line | undefined }>;
  kill(): void;
}

function start(argv: string[], env: NodeJS.ProcessEnv): Proc {
  const [cmd, ...args] = argv;
  // A group of its own: a timeout kills the `xensim run` wrapper and the peer under it.
  const child = spawn(cmd!, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const lines: Line[] = [];
  let stderr = '';
  let partial = '';
  let onListening: () => void = () => {};
  const listening = new Promise<void>((r) => (onListening = r));
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    partial += d;
    for (let nl = partial.indexOf('\n'); nl >= 0; nl = partial.indexOf('\n')) {
      const text = partial.slice(0, nl).trim();
      partial = partial.slice(nl + 1);
      if (!text.startsWith('{')) continue;
      try {
        const line = JSON.parse(text) as Line;
        lines.push(line);
        if (line.event === 'listening') onListening();
      } catch {
        // not ours
      }
    }
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<{ code: number | null; stderr: string; result: Line | undefined }>((resolve) => {
    child.on('error', (e) => resolve({ code: -1, stderr: stderr + e.message, result: undefined }));
    child.on('close', (code) => {
      onListening(); // a peer that died before listening must not hang the pairing
      resolve({ code, stderr, result: lines.filter((l) => l.ok !== undefined).pop() });
    });
  });
  const kill = (): void => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  return { lines, listening, done, kill };
}

const MODES = { bulk: ['send', 'recv'], bidir: ['bidir', 'bidir'], pingpong: ['echo', 'ping'], connect: ['cserver', 'cclient'] } as const;

let serial = 0;

export interface RunOptions {
  seconds: number;
  /** Node flags for the TS peers (e.g. --cpu-prof). */
  nodeArgs: string[];
  /** The cores each end runs on. */
  placement: Placement;
}

/** Argv of one end. `side` is 'c', 'ts' or 'unix'. */
function endArgv(c: Case, side: string, server: boolean, path: string, p: Platform, prog: Programs, o: RunOptions): string[] {
  const mode = MODES[c.scenario][server ? 0 : 1];
  const dom = server ? p.serverDom : p.clientDom;
  const peer = String(server ? p.clientDom : p.serverDom);
  const tail = [String(c.ringSize), String(c.writeSize), String(o.seconds)];
  const pin = server ? o.placement.server : o.placement.client;
  if (side === 'c') return [...p.wrap(dom), ...pin, prog.cPeer, mode, peer, path, ...tail];
  const transport = side === 'unix' ? 'unix' : 'vchan';
  const argv = [...pin, process.execPath, ...o.nodeArgs, prog.tsPeer, mode, c.api === 'c' ? 'vchan' : c.api, transport, peer, path, ...tail];
  return side === 'unix' ? argv : [...p.wrap(dom), ...argv];
}

const GiB = 2 ** 30;

function figures(c: Case, s: Line, cl: Line, brokerCpu: number): Figures {
  switch (c.scenario) {
    case 'bulk': {
      const bytes = cl.rx!;
      return { mbps: bytes / cl.seconds! / 1e6, cpuSecPerGiB: (s.cpu! + cl.cpu!) / (bytes / GiB), brokerSecPerGiB: brokerCpu / (bytes / GiB) };
    }
    case 'bidir': {
      const bytes = s.rx! + cl.rx!;
      return {
        mbps: (s.rx! / s.seconds! + cl.rx! / cl.seconds!) / 1e6,
        cpuSecPerGiB: (s.cpu! + cl.cpu!) / (bytes / GiB),
        brokerSecPerGiB: brokerCpu / (bytes / GiB),
      };
    }
    case 'pingpong': {
      const cpu = s.cpu !== undefined && cl.cpu !== undefined ? ((s.cpu + cl.cpu) / cl.count!) * 1e6 : undefined;
      return { latencyUsP50: cl.p50!, latencyUsP99: cl.p99!, opsPerSec: cl.count! / cl.seconds!, cpuUsPerRoundTrip: cpu };
    }
    case 'connect':
      return { opsPerSec: s.cycles! / s.seconds! };
  }
}

export async function runOnce(c: Case, p: Platform, prog: Programs, o: RunOptions): Promise<Outcome> {
  if (c.impl === 'shm-limit') return runShm(c, prog, o.seconds);
  const n = ++serial;
  const [serverSide, clientSide] = c.impl === 'unix-socket' ? ['unix', 'unix'] : c.impl.split('-');
  let serverPath: string;
  let clientPath: string;
  if (c.impl === 'unix-socket') {
    clientPath = join(p.scratch, `u${n}.sock`);
    serverPath = `listen:${clientPath}`;
  } else {
    serverPath = `data/vchan/${p.clientDom}/b${n}`;
    clientPath = `/local/domain/${p.serverDom}/${serverPath}`;
  }
  const env = { ...prog.env, ...p.env };
  const broker0 = p.brokerCpu();
  const server = start(endArgv(c, serverSide!, true, serverPath, p, prog, o), env);
  const timer = setTimeout(() => server.kill(), (o.seconds + 30) * 1000);
  await server.listening;
  const client = start(endArgv(c, clientSide!, false, clientPath, p, prog, o), env);
  const ctimer = setTimeout(() => client.kill(), (o.seconds + 30) * 1000);
  const [s, cl] = await Promise.all([server.done, client.done]);
  clearTimeout(timer);
  clearTimeout(ctimer);
  const brokerCpu = p.brokerCpu() - broker0;
  // BENCH_VERBOSE=1: the peers' own result lines, for digging into one case.
  if (process.env.BENCH_VERBOSE) process.stderr.write(`\n${JSON.stringify({ server: s.result, client: cl.result, brokerCpu })}\n`);
  if (s.code !== 0 || cl.code !== 0 || !s.result?.ok || !cl.result?.ok) {
    const why = (name: string, r: typeof s) => `${name} exit ${r.code} ${JSON.stringify(r.result ?? null)} ${r.stderr.trim().slice(-300)}`;
    return { ok: false, error: `${why('server', s)}; ${why('client', cl)}` };
  }
  return { ok: true, figures: figures(c, s.result, cl.result, brokerCpu) };
}

async function runShm(c: Case, prog: Programs, seconds: number): Promise<Outcome> {
  const proc = start([prog.shmRing, String(c.ringSize), String(c.writeSize), String(seconds)], prog.env);
  const r = await proc.done;
  if (r.code !== 0 || !r.result?.ok) return { ok: false, error: `shm-ring exit ${r.code} ${r.stderr.trim()}` };
  const bytes = r.result.rx!;
  return { ok: true, figures: { mbps: bytes / r.result.seconds! / 1e6, cpuSecPerGiB: r.result.cpu! / (bytes / GiB) } };
}
