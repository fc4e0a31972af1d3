/** The bench modes over the C-shaped Vchan API: the loops a user would write. */
import { ErrorCodes, Vchan, type XenBackend } from '../../src/index.js';
import { batchFor, cpuSince, latencyResult, now, print, ringMins, type PeerArgs } from './common.js';

const isPeerClosed = (e: unknown): boolean => (e as { code?: string }).code === ErrorCodes.PEER_CLOSED;

async function serve(a: PeerArgs, backend: XenBackend, path = a.path): Promise<Vchan> {
  return Vchan.server({ peer: a.peer, path, backend, ...ringMins(a.ring) });
}

async function connected(v: Vchan): Promise<void> {
  while (v.isOpen() === 2) await v.wait();
}

/** Writes all of buf[0..length), waiting for space when the ring is full. */
async function writeAll(v: Vchan, buf: Uint8Array, length: number): Promise<void> {
  for (let off = 0; off < length; ) {
    const n = v.write(buf, off, length - off);
    if (n === 0) await v.wait();
    else off += n;
  }
}

async function send(a: PeerArgs, backend: XenBackend): Promise<object> {
  const v = await serve(a, backend);
  print({ event: 'listening' });
  await connected(v);
  const buf = Buffer.alloc(a.size, 0x5a);
  const k = batchFor(a.size);
  const c0 = process.cpuUsage();
  const t0 = now();
  let tx = 0;
  let waits = 0;
  let t: number;
  do {
    // Inline rather than writeAll(): an async call per write would cost more than the write.
    for (let i = 0; i < k; i++) {
      for (let off = 0; off < a.size; ) {
        const n = v.write(buf, off, a.size - off);
        if (n === 0) {
          waits++;
          await v.wait();
        } else off += n;
      }
    }
    tx += k * a.size;
  } while ((t = now()) - t0 < a.seconds);
  const cpu = cpuSince(c0);
  await v.close();
  return { tx, seconds: t - t0, cpu, waits };
}

async function recv(a: PeerArgs, backend: XenBackend): Promise<object> {
  const v = await Vchan.client({ peer: a.peer, path: a.path, backend });
  let buf = Buffer.allocUnsafe(a.size);
  // BENCH_FRESH_BUFFERS=1: a new Buffer per read, as a stream must hand out (the cost of fresh memory).
  const fresh = process.env.BENCH_FRESH_BUFFERS === '1';
  const c0 = process.cpuUsage();
  let rx = 0;
  let first = 0;
  let waits = 0;
  for (;;) {
    let n: number;
    try {
      n = v.read(buf);
    } catch (e) {
      if (isPeerClosed(e)) break;
      throw e;
    }
    if (n === 0) {
      waits++;
      await v.wait();
    } else {
      if (rx === 0) first = now();
      rx += n;
      if (fresh) buf = Buffer.allocUnsafe(a.size);
    }
  }
  const last = now(); // the peer closed and the ring is drained
  const cpu = cpuSince(c0);
  await v.close();
  return { rx, seconds: last - first, cpu, waits };
}

async function bidir(a: PeerArgs, backend: XenBackend): Promise<object> {
  const server = !a.path.startsWith('/');
  const v = server ? await serve(a, backend) : await Vchan.client({ peer: a.peer, path: a.path, backend });
  if (server) {
    print({ event: 'listening' });
    await connected(v);
  }
  const out = Buffer.alloc(a.size, 0x5a);
  const into = Buffer.allocUnsafe(a.size);
  const c0 = process.cpuUsage();
  const t0 = now();
  let t = t0;
  let tx = 0;
  let rx = 0;
  let off = 0;
  try {
    for (let iter = 1; v.isOpen() !== 0; iter++) {
      const w = v.write(out, off, a.size - off);
      off = (off + w) % a.size;
      tx += w;
      const r = v.read(into);
      rx += r;
      if (w === 0 && r === 0) await v.wait();
      if ((iter & 63) === 0 || (w === 0 && r === 0)) if ((t = now()) - t0 >= a.seconds) break;
    }
  } catch (e) {
    if (!isPeerClosed(e)) throw e;
  }
  t = now();
  const cpu = cpuSince(c0);
  await v.close();
  return { tx, rx, seconds: t - t0, cpu };
}

async function echo(a: PeerArgs, backend: XenBackend): Promise<object> {
  const v = await serve(a, backend);
  print({ event: 'listening' });
  const buf = Buffer.allocUnsafe(a.size);
  const c0 = process.cpuUsage();
  try {
    for (;;) {
      const n = v.read(buf);
      if (n === 0) await v.wait();
      else await writeAll(v, buf, n);
    }
  } catch (e) {
    if (!isPeerClosed(e)) throw e;
  }
  const cpu = cpuSince(c0);
  await v.close();
  return { cpu };
}

async function ping(a: PeerArgs, backend: XenBackend): Promise<object> {
  const v = await Vchan.client({ peer: a.peer, path: a.path, backend });
  const out = Buffer.alloc(a.size, 0x5a);
  const into = Buffer.allocUnsafe(a.size);
  const rtts: number[] = [];
  const c0 = process.cpuUsage();
  const t0 = now();
  let t = t0;
  while (t - t0 < a.seconds) {
    const s = now();
    await writeAll(v, out, a.size);
    for (let got = 0; got < a.size; ) {
      const n = v.read(into, got, a.size - got);
      if (n === 0) await v.wait();
      else got += n;
    }
    t = now();
    rtts.push(t - s);
  }
  const cpu = cpuSince(c0);
  await v.close();
  return { ...latencyResult(rtts), seconds: t - t0, cpu };
}

async function cserver(a: PeerArgs, backend: XenBackend): Promise<object> {
  print({ event: 'listening' });
  const t0 = now();
  let t = t0;
  let i = 0;
  for (let last = false; !last; i++) {
    last = now() - t0 >= a.seconds;
    const v = await serve(a, backend, `${a.path}/${i}`);
    v.write(Buffer.from(last ? 'E' : 'C'));
    while (v.isOpen() !== 0) await v.wait();
    await v.close();
    t = now();
  }
  return { cycles: i, seconds: t - t0 };
}

async function cclient(a: PeerArgs, backend: XenBackend): Promise<object> {
  const mark = Buffer.alloc(1);
  let i = 0;
  for (; mark[0] !== 0x45; i++) {
    const v = await Vchan.client({ peer: a.peer, path: `${a.path}/${i}`, backend });
    while (v.read(mark) === 0) await v.wait();
    await v.close();
  }
  return { cycles: i };
}

export const vchanModes = { send, recv, bidir, echo, ping, cserver, cclient };
