#!/usr/bin/env node
// A JSON-RPC service in one domain (vscode-jsonrpc over a vchan): a
// notification it records, and requests it answers, one with an error.
//
//   node server.mjs --peer <client's domid> [--port 1003]
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { createMessageConnection, ResponseError, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node.js';
import { listen } from 'xen-vchan';
import { add, divide, DIVISION_BY_ZERO, note, notes } from './protocol.mjs';

const { values } = parseArgs({ options: { peer: { type: 'string' }, port: { type: 'string', default: '1003' } } });
if (values.peer === undefined) {
  console.error('usage: node server.mjs --peer <client domid> [--port N]');
  process.exit(2);
}
const peer = Number(values.peer);
const port = Number(values.port);

try {
  // libvchan has no half-close: when the client goes, close our side too
  // (which is also when the RPC connection reports its close).
  const channel = listen({ peer, port, allowHalfOpen: false });
  channel.once('listening', () => console.log(`listening for domain ${peer} on vchan port ${port}`));
  await once(channel, 'connect');
  console.log(`domain ${peer} connected`);

  // The reader and writer frame JSON messages with Content-Length headers,
  // as the Language Server Protocol does, over any byte stream.
  const rpc = createMessageConnection(new StreamMessageReader(channel), new StreamMessageWriter(channel));
  const received = [];
  rpc.onNotification(note, ({ text }) => {
    received.push(text);
    console.log(`note: ${JSON.stringify(text)}`);
  });
  rpc.onRequest(add, ({ a, b }) => a + b);
  rpc.onRequest(divide, ({ a, b }) => {
    // A thrown ResponseError becomes an error response; other methods keep working.
    if (b === 0) throw new ResponseError(DIVISION_BY_ZERO, `cannot divide ${a} by zero`, { a });
    return a / b;
  });
  rpc.onRequest(notes, () => received);
  rpc.onClose(() => console.log(`connection closed after ${received.length} note(s)`));
  rpc.listen();
} catch (error) {
  console.error(`server: ${error.code ?? 'error'}: ${error.message}`);
  process.exit(1);
}
