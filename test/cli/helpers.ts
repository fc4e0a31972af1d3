/**
 * Runs the built `vchan` command (dist/cjs/cli/main.js) as a process of an
 * emulated domain, feeding it patterned data and hashing what it prints,
 * without keeping either in memory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { REPO_ROOT } from '../support/c-peer.js';
import { fillPattern } from '../support/pattern.js';
import type { Sim } from '../sim/helpers.js';

export const VCHAN = join(REPO_ROOT, 'dist/cjs/cli/main.js');

export function requireCli(): void {
  if (!existsSync(VCHAN)) throw new Error(`${VCHAN} is missing: run \`npm run build\` (or \`npx tsup\`) before the CLI tests`);
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

export interface RunningCli {
  child: ChildProcess;
  exited: Promise<Exit>;
  stderr: () => string;
}

/** Starts `vchan <args>` in domain `domid` (the domain's environment set directly, so the pid is node's own). */
export async function startCli(sim: Sim, domid: number, args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<RunningCli> {
  requireCli();
  const env = { ...(await sim.domainEnv(domid)), ...extraEnv };
  const child = spawn(process.execPath, [VCHAN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<Exit>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stderr }));
  });
  return { child, exited, stderr: () => stderr };
}

/** Runs the CLI outside any domain (argument checks, --help). */
export function runCliPlain(args: string[]): Promise<Exit & { stdout: string }> {
  requireCli();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [VCHAN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

const CHUNK = 1 << 20;

/**
 * Writes `total` pattern bytes (seed `seed`) into `into`, honouring
 * backpressure, then ends it; resolves with their sha256. Stops quietly
 * when the reader goes away (a test that kills it checks the exit instead).
 */
export function sendPattern(into: Writable, seed: number, total: number): Promise<{ sha256: string; written: number }> {
  const hash = createHash('sha256');
  const buffer = Buffer.alloc(CHUNK);
  let written = 0;
  return new Promise((resolve) => {
    let gone = false;
    into.on('error', () => {
      gone = true;
      resolve({ sha256: hash.digest('hex'), written });
    });
    const pumpMore = (): void => {
      while (!gone && written < total) {
        const n = Math.min(CHUNK, total - written);
        // A fresh copy per write: the stream may still hold the previous one.
        const chunk = Buffer.from(fillPattern(seed, written, buffer.subarray(0, n)));
        hash.update(chunk);
        written += n;
        if (!into.write(chunk)) {
          into.once('drain', pumpMore);
          return;
        }
      }
      if (!gone) into.end(() => resolve({ sha256: hash.digest('hex'), written }));
    };
    pumpMore();
  });
}

/** The sha256 and length of everything `from` yields. */
export function hashStream(from: Readable): Promise<{ sha256: string; length: number }> {
  const hash = createHash('sha256');
  let length = 0;
  return new Promise((resolve, reject) => {
    from.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      length += chunk.length;
    });
    from.once('end', () => resolve({ sha256: hash.digest('hex'), length }));
    from.once('error', reject);
  });
}

/** sha256 of the first `total` pattern bytes of `seed` (what a correct receiver must have seen). */
export function patternSha256(seed: number, total: number): string {
  const hash = createHash('sha256');
  const buffer = Buffer.alloc(CHUNK);
  for (let done = 0; done < total; done += CHUNK) {
    const n = Math.min(CHUNK, total - done);
    hash.update(fillPattern(seed, done, buffer.subarray(0, n)));
  }
  return hash.digest('hex');
}

/** Waits for `pred`, polling; fails with `what` after `ms`. */
export async function waitFor(pred: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
