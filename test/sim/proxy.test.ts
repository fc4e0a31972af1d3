// Debian's vchan-socket-proxy (xen-utils-4.17) forwarding a unix socket
// through a vchan between two emulated domains, in server and client mode.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTools, held, NOTHING_HELD, Sim } from './helpers.js';

let sim: Sim;
const children: ChildProcess[] = [];
beforeAll(async () => {
  sim = await Sim.start();
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await sim?.stop();
});

async function proxy(domid: number, args: string[]): Promise<{ child: ChildProcess; log: () => string }> {
  const t = await ensureTools();
  const child = spawn(sim.runArgs(domid)[0]!, [...sim.runArgs(domid).slice(1), t.proxy, ...args], {
    env: sim.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let log = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (log += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
  return { child, log: () => log };
}

async function waitFor(pred: () => boolean, what: string, ms = 5000) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Sends `data` into the socket and collects the same number of bytes back. */
function roundTrip(path: string, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    const got: Buffer[] = [];
    let n = 0;
    s.on('error', reject);
    s.on('data', (d: Buffer) => {
      got.push(d);
      n += d.length;
      if (n >= data.length) {
        s.destroy();
        resolve(Buffer.concat(got));
      }
    });
    s.on('close', () => n < data.length && reject(new Error(`socket closed after ${n} of ${data.length} bytes`)));
    s.write(data);
  });
}

describe('vchan-socket-proxy', () => {
  it('forwards byte-exact: client mode in dom2 -> vchan -> server mode in dom1 -> unix socket', async () => {
    // The far end echoes: any loss, reordering or corruption on the way
    // there or back changes the bytes.
    const target = join(sim.dir, 'target.sock');
    const front = join(sim.dir, 'front.sock');
    const echo: Server = createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(target, r));
    try {
      const server = await proxy(1, ['-m', 'server', '2', 'data/vchan/2/7', target]);
      const client = await proxy(2, ['-m', 'client', '1', '/local/domain/1/data/vchan/2/7', front]);
      await waitFor(() => existsSync(front), `the client-mode proxy's socket (logs: ${server.log()} ${client.log()})`);
      for (const size of [1, 65536, 8 << 20]) {
        const data = randomBytes(size);
        const back = await roundTrip(front, data);
        expect(back.equals(data), `round trip of ${size} bytes`).toBe(true);
      }
      // the proxy pair serves subsequent connections on fresh vchans
      const again = randomBytes(100_000);
      expect((await roundTrip(front, again)).equals(again)).toBe(true);
      for (const c of [server.child, client.child]) c.kill('SIGTERM');
      await Promise.all([server.child, client.child].map((c) => new Promise((r) => (c.exitCode !== null ? r(0) : c.on('exit', r)))));
      expect(held(await sim.idle())).toEqual(NOTHING_HELD);
    } finally {
      echo.close();
    }
  }, 60_000);
});
