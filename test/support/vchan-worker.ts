/**
 * A worker thread that runs one end of a vchan over the in-memory backend
 * and moves patterned bytes both ways at once, hashing what it sends and
 * what it receives. Driven by transfer.ts; each `run` message is one
 * channel (setup, transfer, close), so one worker can serve many runs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { Vchan } from '../../src/channel.js';
import { connectMemoryBackend, type MemoryLink } from '../../src/memory/index.js';
import { VchanStream } from '../../src/stream.js';

export interface RunSpec {
  role: 'server' | 'client';
  peer: number;
  path: string;
  readMin?: number;
  writeMin?: number;
  /** Bytes to send; the peer's count is what we expect to receive. */
  send: number;
  receive: number;
  /** Largest write/read per call; each call picks a random size up to it when `randomChunks`. */
  chunk: number;
  randomChunks: boolean;
  api: 'vchan' | 'stream';
}

export interface RunResult {
  sentHash: string;
  receivedHash: string;
  sent: number;
  received: number;
  seconds: number;
  readSize: number;
  writeSize: number;
}

const port = parentPort!;
const backend = connectMemoryBackend((workerData as { link: MemoryLink }).link);
// The data: a random block walked at a prime stride, so chunks never line up with the ring.
const BLOCK = randomBytes((1 << 20) + 4093);

function pick(max: number, random: boolean): number {
  return random ? 1 + Math.floor(Math.random() * max) : max;
}

async function open(spec: RunSpec): Promise<Vchan> {
  if (spec.role === 'server') {
    const v = await Vchan.server({ peer: spec.peer, path: spec.path, readMin: spec.readMin, writeMin: spec.writeMin, backend });
    port.postMessage({ listening: true });
    return v;
  }
  return Vchan.client({ peer: spec.peer, path: spec.path, backend });
}

async function runVchan(v: Vchan, spec: RunSpec): Promise<Omit<RunResult, 'seconds' | 'readSize' | 'writeSize'>> {
  const sentHash = createHash('sha256');
  const receivedHash = createHash('sha256');
  const into = Buffer.allocUnsafe(Math.max(spec.chunk, 1));
  let sent = 0;
  let received = 0;
  let offset = 0;
  while (sent < spec.send || received < spec.receive) {
    let progress = false;
    if (sent < spec.send) {
      const length = Math.min(pick(spec.chunk, spec.randomChunks), spec.send - sent, BLOCK.length - offset);
      const n = v.write(BLOCK, offset, length);
      if (n > 0) {
        sentHash.update(BLOCK.subarray(offset, offset + n));
        sent += n;
        offset = (offset + n) % BLOCK.length;
        progress = true;
      }
    }
    if (received < spec.receive) {
      const n = v.read(into, 0, pick(into.length, spec.randomChunks));
      if (n > 0) {
        receivedHash.update(into.subarray(0, n));
        received += n;
        progress = true;
      }
    }
    if (!progress) await v.wait();
  }
  return { sentHash: sentHash.digest('hex'), receivedHash: receivedHash.digest('hex'), sent, received };
}

async function runStream(v: Vchan, spec: RunSpec): Promise<Omit<RunResult, 'seconds' | 'readSize' | 'writeSize'>> {
  const stream = new VchanStream(v);
  const sentHash = createHash('sha256');
  const receivedHash = createHash('sha256');
  let received = 0;
  const reading = new Promise<void>((resolve, reject) => {
    if (spec.receive === 0) resolve();
    stream.on('data', (chunk: Buffer) => {
      receivedHash.update(chunk);
      received += chunk.length;
      if (received >= spec.receive) resolve();
    });
    stream.on('end', () => reject(new Error(`the stream ended after ${received} of ${spec.receive} bytes`)));
    stream.on('error', reject);
  });
  let sent = 0;
  let offset = 0;
  let lastWrite: Promise<void> = Promise.resolve();
  while (sent < spec.send) {
    const length = Math.min(pick(spec.chunk, spec.randomChunks), spec.send - sent, BLOCK.length - offset);
    const chunk = BLOCK.subarray(offset, offset + length);
    sentHash.update(chunk);
    sent += length;
    offset = (offset + length) % BLOCK.length;
    const more = stream.write(chunk);
    if (sent === spec.send) lastWrite = new Promise((resolve, reject) => stream.write(Buffer.alloc(0), (e) => (e ? reject(e) : resolve())));
    else if (!more) await new Promise((r) => stream.once('drain', r));
  }
  // Our bytes are all in the ring once the last write's callback ran; only then may we close.
  await Promise.all([reading, lastWrite]);
  return { sentHash: sentHash.digest('hex'), receivedHash: receivedHash.digest('hex'), sent, received };
}

port.on('message', (spec: RunSpec) => {
  void (async () => {
    try {
      const v = await open(spec);
      const started = performance.now();
      const result = spec.api === 'stream' ? await runStream(v, spec) : await runVchan(v, spec);
      const seconds = (performance.now() - started) / 1000;
      const sizes = { readSize: v.readSize, writeSize: v.writeSize };
      // Both directions are complete on our side; the peer may still be draining what we sent.
      await v.close();
      port.postMessage({ result: { ...result, ...sizes, seconds } satisfies RunResult });
    } catch (error) {
      port.postMessage({ error: { message: (error as Error).message, code: (error as { code?: string }).code } });
    }
  })();
});
port.postMessage({ ready: true });
