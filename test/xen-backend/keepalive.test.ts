/**
 * The process-lifetime rules: an idle xenstore client does not keep Node
 * running, a watch does until closed; a native watcher left open in a
 * worker thread is cleaned up when the worker exits.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startXenstored, type XenstoredServer } from './xenstored-server.js';

const ROOT = join(import.meta.dirname, '../..');
let server: XenstoredServer;
let socket: string;
let idleScript: string;

beforeAll(async () => {
  server = await startXenstored();
  socket = await server.socketFor(3);
  mkdirSync(join(ROOT, '.cache/xen-backend'), { recursive: true });
  idleScript = join(ROOT, '.cache/xen-backend/xenstore-idle.mjs');
  buildSync({ entryPoints: [join(import.meta.dirname, 'fixtures/xenstore-idle.ts')], outfile: idleScript, bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'error' });
});

afterAll(async () => {
  await server?.close();
});

function runNode(args: string[], stdio: Array<'ignore' | 'pipe'> = ['ignore', 'pipe', 'pipe'], timeoutMs = 10_000): Promise<{ code: number | null; out: string; err: string; ms: number }> {
  return new Promise((resolve) => {
    const start = Date.now();
    const child = spawn(process.execPath, args, { stdio });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err, ms: Date.now() - start });
    });
  });
}

describe('keeping the process alive', () => {
  it('an idle xenstore client lets the process exit', async () => {
    const r = await runNode([idleScript, socket]);
    expect(r).toMatchObject({ code: 0, out: 'domid 3\n', err: '' });
  });

  it('a watch keeps the process alive until it is closed', async () => {
    const r = await runNode([idleScript, socket, '300']);
    expect(r).toMatchObject({ code: 0, out: 'domid 3\nunwatching\n', err: '' });
    expect(r.ms).toBeGreaterThanOrEqual(300);
  });

  it('a native watcher left open in a worker thread is cleaned up when the worker exits', async () => {
    const script = `
      const { Worker } = require('worker_threads');
      const w = new Worker(\`
        const native = require('node-gyp-build')(${JSON.stringify(ROOT)});
        new native.Watcher(3, true, () => {});
        require('worker_threads').parentPort.postMessage('watching');
        process.exit(0);
      \`, { eval: true });
      w.on('message', (m) => console.log(m));
      w.on('exit', (code) => console.log('worker exit ' + code));`;
    const r = await runNode(['-e', script], ['ignore', 'pipe', 'pipe', 'pipe']);
    expect(r).toMatchObject({ code: 0, out: 'watching\nworker exit 0\n', err: '' });
  });
});
