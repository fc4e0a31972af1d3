/**
 * The soak's long-lived process (run in its own xensim domain): one
 * XenBackend, a server offer for the peer and a client connection to the
 * peer's offer, each set up again as soon as the previous one closed, while
 * the peer is restarted around it. Every closed session prints a line; a
 * line "sample" on stdin prints this process's memory after a full GC.
 *
 *   survivor <self-domid> <peer-domid> <seed> [--leak-grant]
 *
 * --leak-grant shares one extra page with the peer per server session and
 * never releases it: the soak's own check that a leak is caught.
 */
import { createInterface } from 'node:readline';
import { connect, listen } from '../../src/net.js';
import type { VchanStream } from '../../src/stream.js';
import { XenBackend } from '../../src/xen/backend.js';
import { Rng } from '../fuzz/rng.js';
import { traffic, type SessionReport } from './traffic.js';
import { CLIENT_PORT, SERVER_PORT } from './ports.js';

const [self, peer, seed] = process.argv.slice(2, 5).map(Number) as [number, number, number];
const leakGrant = process.argv.includes('--leak-grant');
const print = (line: object): void => void process.stdout.write(`${JSON.stringify({ ...line, ms: Date.now() % 1e6 })}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const backend = new XenBackend();
const rng = new Rng(seed);
const leaked: unknown[] = [];
const current: Partial<Record<'server' | 'client', VchanStream>> = {};
/** A session connected and not yet reported. */
const live = { server: false, client: false };

/** For a hang finding: what the stream looks like now. */
function describe(stream: VchanStream | undefined): string {
  if (!stream) return 'none';
  const v = stream.vchan;
  return `readyState ${stream.readyState}, connecting ${stream.connecting}, destroyed ${stream.destroyed}, writableLength ${stream.writableLength}, readableLength ${stream.readableLength}, readableFlowing ${stream.readableFlowing}, vchan ${v ? v.closed ? "closed" : `isOpen ${v.isOpen()} available ${v.available()}` : 'none'}`;
}

async function serve(): Promise<never> {
  for (;;) {
    // Fixed sizes: what the offer holds while it waits is then the same at every sample (the peer's vary).
    const stream = listen({ peer, path: `data/vchan/${peer}/${SERVER_PORT}`, backend, readMin: 16384, writeMin: 65536 });
    current.server = stream;
    stream.once('listening', () => print({ event: 'listening' }));
    stream.once('connect', () => {
      live.server = true;
      print({ event: 'connect', role: 'server' });
    });
    if (leakGrant) stream.once('connect', () => void backend.sharePages(peer, 1).then((share) => leaked.push(share)));
    const report: SessionReport = await traffic(stream, 'server', rng).done;
    print({ event: 'session', ...report });
    live.server = false;
  }
}

async function dial(): Promise<never> {
  for (;;) {
    const stream = connect({ peer, path: `/local/domain/${peer}/data/vchan/${self}/${CLIENT_PORT}`, backend });
    current.client = stream;
    stream.once('connect', () => {
      live.client = true;
      print({ event: 'connect', role: 'client' });
    });
    const report = await traffic(stream, 'client', rng).done;
    // A peer killed after publishing leaves its entries behind: what they name is gone, and
    // connect() fails until the next peer overwrites them. Try again a little later.
    if (report.connected) {
      print({ event: 'session', ...report });
      live.client = false;
    } else {
      print({ event: 'attempt', code: report.code, message: report.message });
      await sleep(20);
    }
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'state') {
    return print({ event: 'state', live, server: describe(current.server), client: describe(current.client) });
  }
  if (line !== 'sample') return;
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  print({ event: 'sample', rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, leaked: leaked.length });
});
process.stdin.on('end', () => process.exit(0));
print({ event: 'started', pid: process.pid });
void serve();
void dial();
