#!/usr/bin/env node
// An HTTP server whose one connection is a vchan. A vchan joins exactly two
// domains, so it is one connection: we hand it to an ordinary http.Server
// with emit('connection'), as if net.Server had accepted it.
//
//   node server.mjs --peer <client's domid> [--port 1002]
//
// Routes:  GET /hello         a greeting
//          POST /sha256       the sha256 and length of the request body
//          GET /stats         how many requests this channel has carried
import { createHash } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { listen } from 'xen-vchan';

const { values } = parseArgs({ options: { peer: { type: 'string' }, port: { type: 'string', default: '1002' } } });
if (values.peer === undefined) {
  console.error('usage: node server.mjs --peer <client domid> [--port N]');
  process.exit(2);
}
const peer = Number(values.peer);
const port = Number(values.port);

let requests = 0;

const server = http.createServer(async (req, res) => {
  requests++;
  // Which request this is on the channel: the client checks that they count up on one channel.
  res.setHeader('x-request-number', requests);
  console.log(`${req.method} ${req.url} (request ${requests} on this vchan)`);
  if (req.method === 'GET' && req.url === '/hello') {
    res.end('hello over a vchan\n');
  } else if (req.method === 'POST' && req.url === '/sha256') {
    const hash = createHash('sha256');
    let length = 0;
    for await (const chunk of req) {
      hash.update(chunk);
      length += chunk.length;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ length, sha256: hash.digest('hex') }));
  } else if (req.method === 'GET' && req.url === '/stats') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ requests }));
  } else {
    res.statusCode = 404;
    res.end('not found\n');
  }
});

// libvchan has no half-close: when the client goes, close our side too.
const channel = listen({ peer, port, allowHalfOpen: false });
channel.once('listening', () => console.log(`listening for domain ${peer} on vchan port ${port}`));
channel.once('connect', () => {
  console.log(`domain ${peer} connected`);
  server.emit('connection', channel);
});
channel.once('close', () => console.log(`channel closed after ${requests} requests`));
channel.on('error', (error) => {
  console.error(`server: ${error.code ?? 'error'}: ${error.message}`);
  process.exitCode = 1;
});
