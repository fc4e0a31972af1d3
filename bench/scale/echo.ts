/**
 * The echo service of the scale benchmark, in a process of its own so its
 * memory and CPU are its own: `vchan FIRST LAST PORT` is one createServer()
 * offering to domains FIRST..LAST with 4 KiB rings; `unix PATH` is a Node
 * unix-socket echo server (what Debian's vchan-socket-proxy forwards to).
 * Prints {"event":"listening"}; on stdin, "gc" collects garbage and prints
 * {"event":"gc"} (so RSS figures are taken after a collection).
 */
import { createServer as netServer, type Socket } from 'node:net';
import { createServer } from '../../src/index.js';

const print = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);
const [kind, ...args] = process.argv.slice(2);
const echo = (s: Socket | import('../../src/index.js').VchanStream) => {
  s.on('error', () => s.destroy()); // a client gone mid-echo is not the service's failure
  s.pipe(s);
};

if (kind === 'vchan') {
  const [first, last, port] = args.map(Number) as [number, number, number];
  const peers = Array.from({ length: last - first + 1 }, (_, i) => first + i);
  const server = createServer(echo);
  server.on('error', (e: Error) => print({ event: 'error', message: e.message }));
  server.listen({ peers, port, readMin: 4096, writeMin: 4096 }, () => print({ event: 'listening' }));
} else if (kind === 'unix') {
  netServer(echo).listen(args[0], () => print({ event: 'listening' }));
} else {
  process.stderr.write('usage: echo vchan FIRST LAST PORT | unix PATH\n');
  process.exit(2);
}

process.stdin.setEncoding('utf8').on('data', (d: string) => {
  if (!d.includes('gc')) return;
  (globalThis as { gc?: () => void }).gc?.();
  print({ event: 'gc' });
});
