#!/usr/bin/env node
// A JSON-RPC client in another domain: sends a notification, makes
// requests, and checks every answer, the error response included.
//
//   node client.mjs --peer <server's domid> [--port 1003]
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { createMessageConnection, ResponseError, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node.js';
import { connect } from 'xen-vchan';
import { add, divide, DIVISION_BY_ZERO, note, notes } from './protocol.mjs';

const { values } = parseArgs({ options: { peer: { type: 'string' }, port: { type: 'string', default: '1003' } } });
if (values.peer === undefined) {
  console.error('usage: node client.mjs --peer <server domid> [--port N]');
  process.exit(2);
}
const peer = Number(values.peer);
const port = Number(values.port);

let channel;
try {
  channel = connect({ peer, port, timeout: 10_000 });
  await once(channel, 'connect');
  console.log(`connected to domain ${peer} on vchan port ${port}`);
  const rpc = createMessageConnection(new StreamMessageReader(channel), new StreamMessageWriter(channel));
  rpc.listen();

  // A notification has no reply; messages keep their order, so the
  // server has it before it answers the requests below.
  await rpc.sendNotification(note, { text: 'hello from the client' });
  console.log('sent note "hello from the client"');

  const sum = await rpc.sendRequest(add, { a: 2, b: 40 });
  console.log(`add(2, 40) = ${sum}`);
  assert.equal(sum, 42);

  const quotient = await rpc.sendRequest(divide, { a: 1, b: 8 });
  console.log(`divide(1, 8) = ${quotient}`);
  assert.equal(quotient, 0.125);

  // The error response arrives as a rejected promise carrying the server's code, message and data.
  const failure = await rpc.sendRequest(divide, { a: 1, b: 0 }).then(
    () => assert.fail('divide by zero succeeded'),
    (error) => error,
  );
  console.log(`divide(1, 0) -> error ${failure.code}: ${failure.message}`);
  assert.ok(failure instanceof ResponseError);
  assert.equal(failure.code, DIVISION_BY_ZERO);
  assert.deepEqual(failure.data, { a: 1 });

  const seen = await rpc.sendRequest(notes);
  console.log(`notes() = ${JSON.stringify(seen)}`);
  assert.deepEqual(seen, ['hello from the client']);

  console.log('notification delivered, 4 requests answered (1 with an error), all checked');
  rpc.dispose();
  channel.end(); // closes the channel; the server sees the connection go
} catch (error) {
  console.error(`client: ${error.code ?? 'error'}: ${error.message}`);
  channel?.destroy();
  process.exitCode = 1;
}
