/** What every bench peer shares: its arguments, its clock and its one result line. */
export type Mode = 'send' | 'recv' | 'bidir' | 'echo' | 'ping' | 'cserver' | 'cclient';

export interface PeerArgs {
  mode: Mode;
  api: 'vchan' | 'stream';
  /** 'unix': the stream modes over a unix socket at `path` instead of a vchan. */
  transport: 'vchan' | 'unix';
  peer: number;
  /** Relative (we serve) or absolute (we connect) xenstore path, or the socket path. */
  path: string;
  ring: number;
  size: number;
  seconds: number;
}

const MODES: readonly Mode[] = ['send', 'recv', 'bidir', 'echo', 'ping', 'cserver', 'cclient'];

/** argv: MODE API TRANSPORT PEER PATH RING SIZE SECONDS (the C peer's order, plus api and transport). */
export function parseArgs(argv: string[]): PeerArgs {
  const [mode, api, transport, peer, path, ring, size, seconds] = argv;
  const nums = [peer, ring, size, seconds].map(Number);
  if (!MODES.includes(mode as Mode) || (api !== 'vchan' && api !== 'stream') || (transport !== 'vchan' && transport !== 'unix') || !path || nums.some((n) => !Number.isFinite(n))) {
    throw new Error(`usage: peer MODE vchan|stream vchan|unix PEER PATH RING SIZE SECONDS (got ${argv.join(' ')})`);
  }
  return { mode: mode as Mode, api, transport, path, peer: nums[0]!, ring: nums[1]!, size: nums[2]!, seconds: nums[3]! };
}

export function print(line: object): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

export const now = (): number => performance.now() / 1000;

/** CPU seconds (user + system, all threads) since `from` (a process.cpuUsage() sample). */
export function cpuSince(from: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1e6;
}

/** Time checks cost ~50 ns: with small pieces, look at the clock every few calls (as the C peer). */
export function batchFor(size: number): number {
  return size >= 4096 ? 1 : Math.floor(4096 / size);
}

/** Ring minimums that give the data ring (server → client) exactly `ring` bytes; 1 KiB stays in the page. */
export function ringMins(ring: number): { readMin: number; writeMin: number } {
  return { readMin: ring === 1024 ? 2048 : ring, writeMin: ring };
}

/** Median and 99th percentile, in µs, of round trips in seconds. */
export function latencyResult(rtts: number[]): { count: number; p50: number; p99: number } {
  const sorted = Float64Array.from(rtts).sort();
  const at = (q: number) => (sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? NaN) * 1e6;
  return { count: sorted.length, p50: at(0.5), p99: at(0.99) };
}
