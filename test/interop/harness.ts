/**
 * Pairs our peers under xensim: the C vchan-peer (Debian's libxenvchan) and
 * the Node node-peer (this library), each in an emulated domain, and checks
 * that both directions arrived byte-exact.
 */
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildSync } from 'esbuild';
import { expect } from 'vitest';
import { ensureCPeers, REPO_ROOT, startPeer, type PeerLine, type PeerRun, type RunPeerOptions, type StartedPeer } from '../support/c-peer.js';

const execFileP = promisify(execFile);

/** Bundles a TypeScript fixture inside the repo, so it finds the addon (binding.gyp) above it. */
export function bundle(entry: string, name: string): string {
  const outfile = join(REPO_ROOT, '.cache/interop', `${name}.mjs`);
  mkdirSync(join(REPO_ROOT, '.cache/interop'), { recursive: true });
  buildSync({ entryPoints: [entry], outfile, bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'error' });
  return outfile;
}

let nodePeerBundle: string | undefined;
/** argv of the Node peer (test/xen-backend/node-peer.ts). */
export function nodePeerCommand(): string[] {
  nodePeerBundle ??= bundle(join(REPO_ROOT, 'test/xen-backend/node-peer.ts'), 'node-peer');
  return [process.execPath, nodePeerBundle];
}

/** FNV-1a 64 of the first `bytes` pattern bytes of `seed`, computed by the C peer (fast). */
const hashes = new Map<string, Promise<string>>();
export function cPatternHash(seed: number, bytes: number): Promise<string> {
  const key = `${seed}/${bytes}`;
  let h = hashes.get(key);
  if (!h) {
    h = ensureCPeers().then(async (p) => {
      const { stdout } = await execFileP(p.vchanPeer, ['--dump-pattern', String(bytes), String(seed), '--hash-only'], { env: p.env });
      return stdout.trim();
    });
    hashes.set(key, h);
  }
  return h;
}

export type Impl = 'ts' | 'c';

export interface Side {
  impl: Impl;
  domid: number;
  /** C: --api rw|sendrecv; TS: --api stream|vchan. */
  api?: string;
}

export interface CellOptions {
  server: Side;
  client: Side;
  bytes: number;
  /** Minimum ring sizes given to the server (it chooses); undefined = its default. */
  leftMin?: number;
  rightMin?: number;
  port: number;
  timeoutMs: number;
}

export interface CellResult {
  server: PeerLine & Record<string, unknown>;
  client: PeerLine & Record<string, unknown>;
  /** Orders as the C side saw them, or as the TS side's ring sizes say. */
  orders: [number, number];
  /** MB/s of the slower side, each timed from its own "open". */
  mbps: number;
  /** Node's CPU time per wall second (0..1 per process), when a Node side ran. */
  nodeCpu: number[];
}

function peerArgs(side: Side, role: 'server' | 'client', o: CellOptions, path: string): string[] {
  const args = [role, String(role === 'server' ? o.client.domid : o.server.domid), path, '--bytes', String(o.bytes)];
  if (role === 'server' && o.leftMin !== undefined) args.push('--left-min', String(o.leftMin));
  if (role === 'server' && o.rightMin !== undefined) args.push('--right-min', String(o.rightMin));
  if (side.api) args.push('--api', side.api);
  // A C peer in its own domain may wait a while for a loaded machine to start the other.
  args.push(side.impl === 'c' ? '--timeout-ms' : '--stall-ms', '30000');
  if (side.impl === 'c') args.push('--stall-ms', '30000');
  return args;
}

function start(side: Side, args: string[], wrapper: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<StartedPeer> {
  const opts: RunPeerOptions = { wrapper, env, timeoutMs };
  if (side.impl === 'ts') opts.command = nodePeerCommand();
  return startPeer(args, opts);
}

function explain(r: PeerRun): string {
  return `code ${r.code}${r.timedOut ? ' (timed out)' : ''}, last line ${JSON.stringify(r.result)}, stderr ${r.stderr.slice(-800)}`;
}

const log2 = (n: number): number => Math.round(Math.log2(n));

/**
 * Runs one cell: server first (until it has published), then the client;
 * both send `bytes` and receive `bytes` at the same time. Asserts success,
 * agreement on the ring sizes and (C sides) the hash of what arrived.
 */
export async function runCell(o: CellOptions, runArgs: (domid: number) => string[], env: NodeJS.ProcessEnv): Promise<CellResult> {
  const path = `data/vchan/${o.client.domid}/${o.port}`;
  const server = await start(o.server, peerArgs(o.server, 'server', o, path), runArgs(o.server.domid), env, o.timeoutMs);
  await server.waitFor((l) => 'event' in l && l.event === 'listening');
  const client = await start(o.client, peerArgs(o.client, 'client', o, `/local/domain/${o.server.domid}/${path}`), runArgs(o.client.domid), env, o.timeoutMs);
  const [s, c] = await Promise.all([server.done, client.done]);
  expect(s.code, `server: ${explain(s)}`).toBe(0);
  expect(c.code, `client: ${explain(c)}`).toBe(0);
  const sr = s.result as PeerLine & Record<string, number | string>;
  const cr = c.result as PeerLine & Record<string, number | string>;
  for (const r of [sr, cr]) expect(r).toMatchObject({ ok: true, sent: o.bytes, received: o.bytes });

  // Ring sizes: both sides must agree (the client takes what the server chose).
  const ordersOf = (r: Record<string, number | string>, role: 'server' | 'client'): [number, number] =>
    typeof r.leftOrder === 'number'
      ? [r.leftOrder, r.rightOrder as number]
      : role === 'server'
        ? [log2(r.readSize as number), log2(r.writeSize as number)]
        : [log2(r.writeSize as number), log2(r.readSize as number)];
  const orders = ordersOf(sr, 'server');
  expect(ordersOf(cr, 'client')).toEqual(orders);

  // The C side hashed what it received: it must be the other side's pattern.
  // (The Node side compared every byte with the pattern as it arrived.)
  if (o.server.impl === 'c') expect(sr.rxHash).toBe(await cPatternHash(2, o.bytes));
  if (o.client.impl === 'c') expect(cr.rxHash).toBe(await cPatternHash(1, o.bytes));
  if (o.server.impl === 'c' && o.client.impl === 'c') expect(cr.rxHash).toBe(sr.txHash);

  const nodeCpu = [sr, cr].filter((r) => typeof r.cpuMs === 'number').map((r) => (r.cpuMs as number) / 1000 / (r.seconds as number));
  return { server: sr, client: cr, orders, mbps: Math.min(sr.mbps as number, cr.mbps as number), nodeCpu };
}
