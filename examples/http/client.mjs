#!/usr/bin/env node
// An HTTP client in another domain: several requests, kept alive on ONE
// vchan. http.Agent normally opens TCP connections; ours hands out the one
// channel and keeps it for the next request.
//
//   node client.mjs --peer <server's domid> [--port 1002]
//
// Checks every response and exits non-zero if one is wrong.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { connect } from 'xen-vchan';

const { values } = parseArgs({ options: { peer: { type: 'string' }, port: { type: 'string', default: '1002' } } });
if (values.peer === undefined) {
  console.error('usage: node client.mjs --peer <server domid> [--port N]');
  process.exit(2);
}
const peer = Number(values.peer);
const port = Number(values.port);

/** An agent whose only "connection" is one vchan. */
class VchanAgent extends http.Agent {
  constructor(channel) {
    // maxSockets 1: requests queue for the one channel instead of asking for more.
    super({ keepAlive: true, maxSockets: 1 });
    this.channel = channel;
    this.connections = 0;
  }

  createConnection() {
    // A second call would mean the agent gave up on the channel.
    if (++this.connections > 1) throw new Error('the agent asked for a second connection');
    return this.channel;
  }
  // Nothing else: between requests the base class calls setKeepAlive(),
  // unref() and ref() on its socket, which a VchanStream accepts as a
  // net.Socket would.
}

/** One request; resolves with status, headers and the whole body. */
function request(agent, method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ agent, method, path, host: `domain-${peer}` }, async (res) => {
      const chunks = [];
      for await (const chunk of res) chunks.push(chunk);
      resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), socket: req.socket });
    });
    req.on('error', reject);
    req.end(body);
  });
}

let channel;
try {
  channel = connect({ peer, port, timeout: 10_000 });
  await once(channel, 'connect');
  console.log(`connected to domain ${peer} on vchan port ${port}`);
  const agent = new VchanAgent(channel);

  const hello = await request(agent, 'GET', '/hello');
  console.log(`GET /hello -> ${hello.status} ${JSON.stringify(hello.body.toString())} (request ${hello.headers['x-request-number']})`);
  assert.equal(hello.status, 200);
  assert.equal(hello.body.toString(), 'hello over a vchan\n');

  // A body larger than the 64 KiB rings: it streams through them in pieces.
  const upload = randomBytes(300_000);
  const posted = await request(agent, 'POST', '/sha256', upload);
  const reply = JSON.parse(posted.body.toString());
  console.log(`POST /sha256 (${upload.length} bytes) -> ${posted.status} ${posted.body} (request ${posted.headers['x-request-number']})`);
  assert.equal(posted.status, 200);
  assert.deepEqual(reply, { length: upload.length, sha256: createHash('sha256').update(upload).digest('hex') });

  const missing = await request(agent, 'GET', '/nowhere');
  console.log(`GET /nowhere -> ${missing.status} (request ${missing.headers['x-request-number']})`);
  assert.equal(missing.status, 404);

  const stats = await request(agent, 'GET', '/stats');
  console.log(`GET /stats -> ${stats.status} ${stats.body} (request ${stats.headers['x-request-number']})`);
  assert.deepEqual(JSON.parse(stats.body.toString()), { requests: 4 });

  // Keep-alive: every request went over the same channel, opened once.
  const all = [hello, posted, missing, stats];
  assert.deepEqual(all.map((r) => Number(r.headers['x-request-number'])), [1, 2, 3, 4]);
  assert.ok(all.every((r) => r.socket === channel));
  assert.equal(agent.connections, 1);
  console.log('4 requests over 1 vchan, every response checked');

  agent.destroy(); // closes the channel; the server sees it go
} catch (error) {
  console.error(`client: ${error.code ?? 'error'}: ${error.message}`);
  channel?.destroy();
  process.exitCode = 1;
}
