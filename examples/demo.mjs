#!/usr/bin/env node
// The xen-vchan demo: a vchan server and client in two worker threads over
// the in-memory hypervisor (no Xen needed). The server pipes a file into the
// channel, the client hashes what arrives; we check the hash and print MB/s.
//
//   node examples/demo.mjs [file]      (default: 64 MiB of random bytes)
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, statSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Vchan, VchanStream } from 'xen-vchan';
import { MemoryHypervisor, connectMemoryBackend } from 'xen-vchan/memory';

const PATH = 'data/vchan/5/1000';

async function serve({ link, file }) {
  const backend = connectMemoryBackend(link);
  const channel = new VchanStream(Vchan.server({ peer: 5, path: PATH, readMin: 65536, writeMin: 1 << 20, backend }));
  await once(channel, 'ready');
  parentPort.postMessage({ listening: true });
  await once(channel, 'connect');
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), channel); // end(): flush, then close
}

async function receive({ link }) {
  const backend = connectMemoryBackend(link);
  const channel = new VchanStream(Vchan.client({ peer: 0, path: `/local/domain/0/${PATH}`, backend }));
  await once(channel, 'connect');
  const started = performance.now();
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of channel) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  parentPort.postMessage({ bytes, sha256: hash.digest('hex'), seconds: (performance.now() - started) / 1000 });
}

function sha256File(file) {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file).on('data', (c) => hash.update(c)).on('end', () => resolve(hash.digest('hex'))).on('error', reject);
  });
}

async function main() {
  let file = process.argv[2];
  let temporary = false;
  if (!file) {
    file = join(tmpdir(), `xen-vchan-demo-${process.pid}.bin`);
    writeFileSync(file, randomBytes(64 << 20));
    temporary = true;
  }
  try {
    const size = statSync(file).size;
    const hv = new MemoryHypervisor();
    const start = (role, link) =>
      new Worker(new URL(import.meta.url), { workerData: { role, link, file }, transferList: link.transferList });
    console.log(`xen-vchan demo: domain 0 serves ${file} (${(size / 2 ** 20).toFixed(1)} MiB) to domain 5 over a vchan`);
    const server = start('server', hv.link(0));
    const serverExited = once(server, 'exit'); // it may exit before the client reports
    await once(server, 'message'); // listening
    const client = start('client', hv.link(5));
    const [result] = await once(client, 'message');
    await serverExited;
    const expected = await sha256File(file);
    const ok = result.bytes === size && result.sha256 === expected;
    console.log(`received ${result.bytes} bytes in ${result.seconds.toFixed(3)} s: ${(result.bytes / 1e6 / result.seconds).toFixed(0)} MB/s`);
    console.log(`sha256 ${result.sha256} ${ok ? 'matches' : 'DOES NOT MATCH'} the file`);
    if (!ok) process.exitCode = 1;
  } finally {
    if (temporary) rmSync(file, { force: true });
  }
}

if (isMainThread) await main();
else if (workerData.role === 'server') await serve(workerData);
else await receive(workerData);
