#!/usr/bin/env node
// Receives one file over a vchan and writes it to disk. This side listens:
// it offers the channel to the sender's domain and waits for it.
//
//   node receive.mjs --peer <sender's domid> [--port 1001] <output file>
//
// Prints the sha256 of the file as written, to compare with the sender's.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { listen } from 'xen-vchan';

const { values, positionals } = parseArgs({
  options: { peer: { type: 'string' }, port: { type: 'string', default: '1001' } },
  allowPositionals: true,
});
const [output] = positionals;
if (values.peer === undefined || !output) {
  console.error('usage: node receive.mjs --peer <sender domid> [--port N] <output file>');
  process.exit(2);
}
const peer = Number(values.peer);
const port = Number(values.port);

try {
  const channel = listen({
    peer,
    port,
    // Bigger rings than the 64 KiB default: fewer wake-ups on a bulk transfer.
    readMin: 256 * 1024,
    // libvchan has no half-close: once the sender is gone, close our side too
    // (Node's default, allowHalfOpen: true, would keep the channel open).
    allowHalfOpen: false,
  });
  channel.once('listening', () => console.log(`listening for domain ${peer} on vchan port ${port}`));
  channel.once('connect', () => console.log(`domain ${peer} connected`));

  // The readable side ends when the sender has closed and we have read all it wrote.
  await pipeline(channel, createWriteStream(output));

  // Hash what actually landed on disk, not what we think we wrote.
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(output)) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  console.log(`received ${bytes} bytes into ${output}, sha256 ${hash.digest('hex')}`);
} catch (error) {
  console.error(`receive: ${error.code ?? 'error'}: ${error.message}`);
  process.exit(1);
}
