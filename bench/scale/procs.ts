/**
 * The processes of the scale benchmark: spawned directly (no wrapper, so
 * the pid is the program's own and /proc tells its memory and CPU), their
 * JSON lines followed, and the time from spawn to their "open" line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

export interface Line {
  event?: string;
  ok?: boolean;
  sent?: number;
  received?: number;
  txHash?: string;
  rxHash?: string;
  count?: number;
  error?: string;
  [key: string]: unknown;
}

export interface Proc {
  child: ChildProcess;
  pid: number;
  lines: Line[];
  /** ms from spawn to the first {"event":"open"} line (undefined until then). */
  openMs?: number;
  /** Resolves with the first line that has `event` (rejects if the process ends first). */
  event(name: string): Promise<Line>;
  done: Promise<{ code: number | null; last: Line | undefined; stderr: string }>;
  /** stdin, when asked for. */
  send(text: string): void;
  kill(signal?: NodeJS.Signals): void;
}

export function start(argv: string[], env: NodeJS.ProcessEnv, stdin = false): Proc {
  const t0 = performance.now();
  const child = spawn(argv[0]!, argv.slice(1), { env, stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  const lines: Line[] = [];
  const waiters: { name: string; resolve: (l: Line) => void; reject: (e: Error) => void }[] = [];
  let partial = '';
  let stderr = '';
  const proc: Proc = {
    child,
    pid: child.pid ?? 0,
    lines,
    event(name) {
      const seen = lines.find((l) => l.event === name);
      if (seen) return Promise.resolve(seen);
      if (child.exitCode !== null || child.signalCode !== null) return Promise.reject(new Error(`${argv[0]} exited before "${name}": ${stderr.slice(-300)}`));
      return new Promise((resolve, reject) => waiters.push({ name, resolve, reject }));
    },
    done: new Promise((resolve) => {
      child.on('error', (e) => (stderr += e.message));
      child.on('close', (code) => {
        for (const w of waiters.splice(0)) w.reject(new Error(`${argv[0]} exited (${code}) before "${w.name}": ${stderr.slice(-300)}`));
        resolve({ code, last: lines[lines.length - 1], stderr });
      });
    }),
    send(text) {
      child.stdin?.write(text);
    },
    kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    partial += d;
    for (let nl = partial.indexOf('\n'); nl >= 0; nl = partial.indexOf('\n')) {
      const text = partial.slice(0, nl).trim();
      partial = partial.slice(nl + 1);
      if (!text.startsWith('{')) continue;
      let line: Line;
      try {
        line = JSON.parse(text) as Line;
      } catch {
        continue;
      }
      if (line.event === 'open' && proc.openMs === undefined) proc.openMs = performance.now() - t0;
      lines.push(line);
      for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i]!.name === line.event) waiters.splice(i, 1)[0]!.resolve(line);
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return proc;
}

/** Resident set size of a process, bytes (0 once it is gone). */
export function rss(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Ends the processes and waits for them. */
export async function stopAll(procs: Proc[], signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  for (const p of procs) p.kill(signal);
  await Promise.all(procs.map((p) => p.done));
}

export function percentile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]! : NaN;
}
