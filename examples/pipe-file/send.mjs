#!/usr/bin/env node
// Sends one file over a vchan. This side connects: it finds the receiver's
// channel in xenstore (waiting up to 10 s for it to appear).
//
//   node send.mjs --peer <receiver's domid> [--port 1001] <file>
//
// Prints the sha256 of the bytes it sent.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { connect } from 'xen-vchan';

const { values, positionals } = parseArgs({
  options: { peer: { type: 'string' }, port: { type: 'string', default: '1001' } },
  allowPositionals: true,
});
const [input] = positionals;
if (values.peer === undefined || !input) {
  console.error('usage: node send.mjs --peer <receiver domid> [--port N] <file>');
  process.exit(2);
}
const peer = Number(values.peer);
const port = Number(values.port);

try {
  const channel = connect({ peer, port, timeout: 10_000 });
  channel.once('connect', () => console.log(`connected to domain ${peer} on vchan port ${port}`));

  const hash = createHash('sha256');
  let bytes = 0;
  // pipeline() ends the channel when the file is done: end() puts our last
  // bytes in the ring, then closes; the receiver still reads all of them.
  await pipeline(
    createReadStream(input),
    async function* hashOnTheWay(chunks) {
      for await (const chunk of chunks) {
        hash.update(chunk);
        bytes += chunk.length;
        yield chunk;
      }
    },
    channel,
  );
  console.log(`sent ${bytes} bytes from ${input}, sha256 ${hash.digest('hex')}`);
  // We never read from the channel, so its readable side never ends and
  // 'close' would not come by itself: destroy() releases the Xen devices now.
  channel.destroy();
} catch (error) {
  console.error(`send: ${error.code ?? 'error'}: ${error.message}`);
  process.exit(1);
}
