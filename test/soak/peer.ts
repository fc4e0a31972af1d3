/**
 * The soak's peer, restarted every second or so (run in its own xensim
 * domain): it connects to the survivor's offer and offers one of its own,
 * streams both ways, and prints {"event":"connected"} once both channels are
 * up. A line "exit" on stdin is a clean exit: both streams end (their bytes
 * flushed into the rings), and once both closed it prints what it sent and
 * received and exits 0. The other way it goes is kill -9.
 *
 *   peer <self-domid> <survivor-domid> <seed>
 */
import { createInterface } from 'node:readline';
import { connect, listen } from '../../src/net.js';
import { XenBackend } from '../../src/xen/backend.js';
import { Rng } from '../fuzz/rng.js';
import { traffic } from './traffic.js';
import { CLIENT_PORT, SERVER_PORT } from './ports.js';

const [self, survivor, seed] = process.argv.slice(2, 5).map(Number) as [number, number, number];
const print = (line: object): void => void process.stdout.write(`${JSON.stringify({ ...line, ms: Date.now() % 1e6 })}\n`);

const backend = new XenBackend();
const rng = new Rng(seed);
const server = listen({ peer: survivor, path: `data/vchan/${survivor}/${CLIENT_PORT}`, backend, readMin: 1 << (10 + rng.below(7)), writeMin: 1 << (10 + rng.below(7)) });
const client = connect({ peer: survivor, path: `/local/domain/${survivor}/data/vchan/${self}/${SERVER_PORT}`, backend });
const sessions = [traffic(server, 'server', rng), traffic(client, 'client', rng)];
let up = 0;
for (const s of [server, client]) {
  s.once('connect', () => {
    print({ event: 'connect', role: s === server ? 'server' : 'client' });
    if (++up === 2) print({ event: 'connected', pid: process.pid });
  });
}

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line !== 'exit') return;
  for (const s of sessions) s.stop();
  server.end();
  client.end();
  void Promise.all(sessions.map((s) => s.done)).then((reports) => {
    print({ event: 'exited', server: reports[0], client: reports[1] });
    backend.close();
    process.exit(0);
  });
});
