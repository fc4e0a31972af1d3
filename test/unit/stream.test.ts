import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { Vchan } from '../../src/channel.js';
import { VchanError } from '../../src/errors.js';
import { MemoryHypervisor } from '../../src/memory/index.js';
import { VchanStream } from '../../src/stream.js';

const PATH = 'data/vchan/5/1000';
const ABS = '/local/domain/0/data/vchan/5/1000';
const MiB = 1 << 20;

async function streams(readMin = 4096, writeMin = 4096, options: { allowHalfOpen?: boolean } = {}) {
  const hv = new MemoryHypervisor();
  const dom0 = hv.backend(0);
  const dom5 = hv.backend(5);
  const serverVchan = Vchan.server({ peer: 5, path: PATH, readMin, writeMin, backend: dom0 });
  const server = new VchanStream(serverVchan, options);
  await once(server, 'ready');
  const client = new VchanStream(Vchan.client({ peer: 0, path: ABS, backend: dom5 }), options);
  await Promise.all([once(server, 'connect'), once(client, 'connect')]);
  return { hv, dom0, dom5, server, client };
}

/** A source of `total` bytes in chunks of `chunk`, hashing what it produced. */
function source(total: number, chunk: number) {
  const block = randomBytes(MiB + 7);
  const hash = createHash('sha256');
  let produced = 0;
  const readable = new Readable({
    read() {
      if (produced >= total) return void this.push(null);
      const start = produced % (block.length - chunk);
      const piece = block.subarray(start, start + Math.min(chunk, total - produced));
      produced += piece.length;
      hash.update(piece);
      this.push(piece);
    },
  });
  return { readable, digest: () => hash.digest('hex') };
}

function sink() {
  const hash = createHash('sha256');
  let bytes = 0;
  const writable = new Writable({
    write(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      cb();
    },
  });
  return { writable, digest: () => hash.digest('hex'), bytes: () => bytes };
}

describe('VchanStream', () => {
  it('pipeline() moves 256 MiB through a 4 KiB ring byte-exact', async () => {
    const { server, client } = await streams(4096, 4096);
    const src = source(256 * MiB, 65536);
    const dst = sink();
    const started = performance.now();
    await Promise.all([pipeline(src.readable, client), pipeline(server, dst.writable)]);
    const seconds = (performance.now() - started) / 1000;
    console.log(`stream, one thread, 4 KiB ring: ${((256 * MiB) / 1e6 / seconds).toFixed(0)} MB/s`);
    expect(dst.bytes()).toBe(256 * MiB);
    expect(dst.digest()).toBe(src.digest());
  }, 120_000);

  it('a reader that stops reading keeps the writer bounded by its highWaterMark + ring size + the reader\'s highWaterMark', async () => {
    const { server, client } = await streams(4096, 4096);
    server.pause();
    const chunk = Buffer.alloc(1024, 1);
    let accepted = 0;
    // Write until backpressure holds even after the reader side has had time to take what it will.
    for (let round = 0; round < 200; round++) {
      while (client.write(chunk)) accepted += chunk.length;
      accepted += chunk.length;
      await new Promise((r) => setTimeout(r, 20));
      if (client.writableNeedDrain) break;
    }
    expect(client.writableNeedDrain).toBe(true);
    // As a socket does, the reader buffered up to its high-water mark, no more; the ring is full.
    expect(server.readableLength).toBeLessThanOrEqual(server.readableHighWaterMark);
    expect(client.vchan!.bufferSpace()).toBe(0);
    expect(accepted).toBeLessThan(client.writableHighWaterMark + 4096 + server.readableHighWaterMark + 4 * chunk.length);
    // Reading again drains everything and releases the writer.
    const drained = once(client, 'drain');
    server.resume();
    await drained;
  });

  it('peer close mid-stream: the data already sent arrives, then end', async () => {
    const { server, client } = await streams(65536, 65536);
    const payload = randomBytes(40_000);
    await new Promise<void>((resolve, reject) => client.write(payload, (e) => (e ? reject(e) : resolve())));
    await client.vchan!.close(); // close under the stream, as a crash would
    const received: Buffer[] = [];
    server.on('data', (c: Buffer) => received.push(c));
    await once(server, 'end');
    expect(Buffer.concat(received).equals(payload)).toBe(true);
  });

  it('with allowHalfOpen: true, a crashed peer ends the readable side and fails later writes with ERR_VCHAN_PEER_CLOSED', async () => {
    const { server, dom5 } = await streams(65536, 65536, { allowHalfOpen: true });
    server.on('data', () => {});
    dom5.destroy();
    await once(server, 'end');
    const closed = new Promise((resolve) => server.once('close', resolve));
    const error = await new Promise<VchanError>((resolve) => {
      server.on('error', (e) => resolve(e as VchanError));
      server.write(Buffer.from('anyone?'));
    });
    expect(error.code).toBe('ERR_VCHAN_PEER_CLOSED');
    await closed;
  });

  it('a write waiting for space fails with ERR_VCHAN_PEER_CLOSED when the peer goes', async () => {
    const { server, client } = await streams(4096, 4096);
    const failed = new Promise<VchanError>((resolve) => server.on('error', (e) => resolve(e as VchanError)));
    server.write(Buffer.alloc(1024 * 1024)); // far more than the ring and the reader's buffer: it waits
    await new Promise((r) => setTimeout(r, 10));
    client.destroy();
    expect((await failed).code).toBe('ERR_VCHAN_PEER_CLOSED');
  });

  it('end() flushes into the ring, then closes: the peer reads everything', async () => {
    const { server, client } = await streams(4096, 4096);
    const payload = randomBytes(100_000); // far more than the ring: end() must wait for space
    const dst = sink();
    const piping = pipeline(server, dst.writable);
    client.end(payload);
    await once(client, 'finish');
    await piping;
    expect(dst.bytes()).toBe(payload.length);
    expect(dst.digest()).toBe(createHash('sha256').update(payload).digest('hex'));
    expect(client.vchan!.closed).toBe(true);
  });

  it('a client that connects, writes and closes before the server looks still gives connect, its data, then end', async () => {
    const hv = new MemoryHypervisor();
    const server = new VchanStream(Vchan.server({ peer: 5, path: PATH, backend: hv.backend(0) }));
    await once(server, 'listening');
    const connected = once(server, 'connect');
    const client = await Vchan.client({ peer: 0, path: ABS, backend: hv.backend(5) });
    client.write(Buffer.from('brief'));
    await client.close();
    await connected;
    const chunks: Buffer[] = [];
    server.on('data', (c: Buffer) => chunks.push(c));
    await once(server, 'end');
    expect(Buffer.concat(chunks).toString()).toBe('brief');
  });

  it('destroy() releases everything, twice is harmless', async () => {
    const { hv, server, client, dom0, dom5 } = await streams();
    client.destroy();
    client.destroy();
    server.destroy();
    await Promise.all([once(client, 'close'), once(server, 'close')]);
    server.destroy();
    await dom0.close();
    await dom5.close();
    expect(hv.held()).toMatchObject({ grants: 0, mappedPages: 0, ports: 0, watches: 0 });
  });

  it('a failed setup errors the stream', async () => {
    const hv = new MemoryHypervisor();
    const stream = new VchanStream(Vchan.client({ peer: 0, path: ABS, backend: hv.backend(5), signal: AbortSignal.timeout(20) }));
    const [error] = (await once(stream, 'error')) as [VchanError];
    expect(error.code).toBe('ERR_VCHAN_TIMEOUT');
  });
});

describe('VchanStream as a socket', () => {
  it("serves HTTP with a stock keep-alive http.Agent: several requests reuse one channel", async () => {
    const http = await import('node:http');
    const { listen, connect } = await import('../../src/net.js');
    const hv = new MemoryHypervisor();
    const server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d));
      req.on('end', () => res.end(`${req.method} ${req.url} ${body.length}`));
    });
    const serverSide = listen({ peer: 5, port: 80, backend: hv.backend(0) });
    server.emit('connection', serverSide);
    const clientSide = connect({ peer: 0, port: 80, backend: hv.backend(5) });
    await once(clientSide, 'connect');

    // The stock Agent calls setKeepAlive/ref/unref on its sockets between requests.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    let connections = 0;
    (agent as unknown as { createConnection: () => VchanStream }).createConnection = () => {
      connections++;
      return clientSide;
    };
    const ask = (method: string, path: string, body = ''): Promise<string> =>
      new Promise((resolve, reject) => {
        const req = http.request({ agent, method, path, headers: { 'content-length': body.length } }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (d: string) => (text += d));
          res.on('end', () => resolve(`${res.statusCode} ${text}`));
        });
        req.on('error', reject);
        req.end(body);
      });
    expect(await ask('GET', '/a')).toBe('200 GET /a 0');
    expect(await ask('POST', '/b', 'x'.repeat(100_000))).toBe('200 POST /b 100000');
    expect(await ask('GET', '/c')).toBe('200 GET /c 0');
    expect(connections).toBe(1);
    agent.destroy();
    serverSide.destroy();
  });

  it("setTimeout(ms) emits 'timeout' after ms without traffic, keeps the stream open, and 0 turns it off", async () => {
    const { listen, connect } = await import('../../src/net.js');
    const hv = new MemoryHypervisor();
    const a = listen({ peer: 5, port: 81, backend: hv.backend(0) });
    const b = connect({ peer: 0, port: 81, backend: hv.backend(5) });
    await Promise.all([once(a, 'connect'), once(b, 'connect')]);
    expect(() => a.setTimeout('5' as never)).toThrow(TypeError);
    expect(() => a.setTimeout(-1)).toThrow(RangeError);
    let fired = 0;
    a.setTimeout(400, () => fired++);
    expect(a.timeout).toBe(400);
    // traffic every 30 ms keeps it from firing
    for (let i = 0; i < 5; i++) {
      b.write('x');
      await once(a, 'data');
      await new Promise((r) => setTimeout(r, 30));
    }
    expect(fired).toBe(0);
    await once(a, 'timeout');
    expect(fired).toBe(1);
    expect(a.destroyed).toBe(false);
    a.setTimeout(0);
    expect(a.timeout).toBeUndefined();
    b.write('still open');
    const [chunk] = (await once(a, 'data')) as [Buffer];
    expect(chunk.toString()).toBe('still open');
    a.destroy();
  });
});
