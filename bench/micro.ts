/**
 * In-process microbenchmarks behind the profile findings (bench/README.md):
 * per-call cost of Vchan.write/read with no events in play (one thread,
 * in-memory backend, the ring never full), and the copy primitives the
 * ring could use. `npm run bench -- --micro`. ns per call, median of 5.
 */
import { Vchan } from '../src/index.js';
import { MemoryHypervisor } from '../src/memory/index.js';

function time(label: string, calls: number, body: (n: number) => void): void {
  const samples: number[] = [];
  body(calls); // warm up (JIT)
  for (let i = 0; i < 5; i++) {
    const t = process.hrtime.bigint();
    body(calls);
    samples.push(Number(process.hrtime.bigint() - t) / calls);
  }
  samples.sort((a, b) => a - b);
  console.log(`${label.padEnd(58)} ${samples[2]!.toFixed(1).padStart(7)} ns  (${samples[0]!.toFixed(1)}–${samples[4]!.toFixed(1)})`);
}

function copies(size: number): void {
  const src = new Uint8Array(1 << 16).fill(7);
  const dst = new Uint8Array(1 << 20);
  const bsrc = Buffer.from(src.buffer);
  const mask = dst.length - 1;
  let at = 0;
  const N = 2_000_000;
  time(`copy ${size} B: dst.set(src.subarray())`, N, (n) => {
    for (let i = 0; i < n; i++, at = (at + size) & mask) dst.set(src.subarray(0, size), at);
  });
  time(`copy ${size} B: Buffer.copy`, N, (n) => {
    for (let i = 0; i < n; i++, at = (at + size) & mask) bsrc.copy(dst, at, 0, size);
  });
  time(`copy ${size} B: byte loop`, N, (n) => {
    for (let i = 0; i < n; i++, at = (at + size) & mask) for (let k = 0; k < size; k++) dst[at + k] = src[k]!;
  });
  if (size % 4 === 0) {
    const s32 = new Uint32Array(src.buffer);
    const d32 = new Uint32Array(dst.buffer);
    time(`copy ${size} B: u32 loop (aligned)`, N, (n) => {
      for (let i = 0; i < n; i++, at = (at + size) & mask) {
        const d = at >> 2;
        for (let k = 0; k < size >> 2; k++) d32[d + k] = s32[k]!;
      }
    });
  }
}

function atomics(): void {
  const u8 = new Uint8Array(4096);
  const u32 = new Uint32Array(u8.buffer);
  const N = 10_000_000;
  let x = 0;
  const shared = new Uint32Array(new SharedArrayBuffer(4096));
  time('Atomics.load(u32) on a SharedArrayBuffer', N, (n) => {
    for (let i = 0; i < n; i++) x += Atomics.load(shared, i & 7);
  });
  time('Atomics.store(u32) on a SharedArrayBuffer', N, (n) => {
    for (let i = 0; i < n; i++) Atomics.store(shared, i & 7, i);
  });
  time('plain u32 load', N, (n) => {
    for (let i = 0; i < n; i++) x += u32[i & 7]!;
  });
  time('Atomics.load(u32)', N, (n) => {
    for (let i = 0; i < n; i++) x += Atomics.load(u32, i & 7);
  });
  time('Atomics.store(u32)', N, (n) => {
    for (let i = 0; i < n; i++) Atomics.store(u32, i & 7, i);
  });
  time('plain u32 store', N, (n) => {
    for (let i = 0; i < n; i++) u32[i & 7] = i;
  });
  time('Atomics.and(u8) (notify bit clear)', N, (n) => {
    for (let i = 0; i < n; i++) x += Atomics.and(u8, 40 + (i & 1), 0xfe);
  });
  time('Atomics.load(u8) then and only if set', N, (n) => {
    for (let i = 0; i < n; i++) if (Atomics.load(u8, 40 + (i & 1)) & 1) x += Atomics.and(u8, 40 + (i & 1), 0xfe);
  });
  if (x === 42) console.log('');
}

async function channel(size: number): Promise<void> {
  const hv = new MemoryHypervisor();
  const server = await Vchan.server({ peer: 5, path: 'data/vchan/5/micro', readMin: 1 << 20, writeMin: 1 << 20, backend: hv.backend(0) });
  const client = await Vchan.client({ peer: 0, path: '/local/domain/0/data/vchan/5/micro', backend: hv.backend(5) });
  const out = Buffer.alloc(size, 1);
  const into = Buffer.alloc(size);
  // Write then read the same piece: the ring never fills or empties, no event is due.
  time(`Vchan write+read ${size} B (no events)`, 1_000_000, (n) => {
    for (let i = 0; i < n; i++) {
      server.write(out);
      client.read(into);
    }
  });
  const writer = (server as unknown as { parts: { writer: { write(b: Uint8Array): number } } }).parts.writer;
  const reader = (client as unknown as { parts: { reader: { read(b: Uint8Array): number } } }).parts.reader;
  time(`RingWriter.write+RingReader.read ${size} B (no Vchan layer)`, 1_000_000, (n) => {
    for (let i = 0; i < n; i++) {
      writer.write(out);
      reader.read(into);
    }
  });
  await client.close();
  await server.close();
}

async function main(): Promise<void> {
  for (const s of [64, 512, 4096, 65536]) await channel(s);
  for (const s of [16, 32, 64, 512, 4096]) copies(s);
  atomics();
  process.exit(0);
}

void main();
