#!/usr/bin/env node
// A Node vchan server for a C libxenvchan client, written with the C-shaped
// API (Vchan) so that each call lines up with the libxenvchan function the
// C side uses. Both directions move at once, as in test/c/vchan-peer.c:
//   Node -> C: we send `bytes` of pattern seed 1; the C client checks each byte;
//   C -> Node: the C client sends `bytes` of pattern seed 2; we check each byte.
//
//   node server.mjs --peer <C client's domid> [--port 1004] [--bytes 1048576]
//
// The C client, in the peer domain (domain 0 serving, port 1004):
//   vchan-peer client 0 /local/domain/0/data/vchan/<its domid>/1004 --bytes 1048576
import { parseArgs } from 'node:util';
import { Vchan, XenBackend } from 'xen-vchan';
import { fillPattern } from './pattern.mjs';

const { values } = parseArgs({
  options: {
    peer: { type: 'string' },
    port: { type: 'string', default: '1004' },
    bytes: { type: 'string', default: String(1 << 20) },
  },
});
if (values.peer === undefined) {
  console.error('usage: node server.mjs --peer <client domid> [--port N] [--bytes N]');
  process.exit(2);
}
const peer = Number(values.peer);
const bytes = Number(values.bytes);
// The Qubes naming the C client is given: /local/domain/<server>/data/vchan/<client>/<port>.
const path = `data/vchan/${peer}/${values.port}`;

const SEND_SEED = 1; // vchan-peer's client expects seed 1 by default...
const RECEIVE_SEED = 2; // ...and sends seed 2

// The devices (/dev/xen/gntalloc, evtchn, xenstore) that libxenvchan opens for itself.
const backend = new XenBackend();
let vchan;
try {
  // C: ctrl = libxenvchan_server_init(logger, peer, path, left_min, right_min);
  // It shares the pages, publishes ring-ref and event-channel under `path`, and returns.
  vchan = await Vchan.server({ peer, path, readMin: 65536, writeMin: 65536, backend });
  console.log(`listening for domain ${peer} at ${path} (rings: ${vchan.readSize} B in, ${vchan.writeSize} B out)`);

  // C: while (libxenvchan_is_open(ctrl) == 2) libxenvchan_wait(ctrl);
  while (vchan.isOpen() === 2) await vchan.wait();
  console.log(`domain ${peer} connected`);

  const out = Buffer.alloc(65536); // what we send next: out[outStart, outEnd)
  let outStart = 0;
  let outEnd = 0;
  const inBuf = Buffer.alloc(65536);
  const expected = Buffer.alloc(65536);
  let sent = 0;
  let received = 0;
  while (sent < bytes || received < bytes) {
    let moved = false;
    if (sent < bytes) {
      if (outStart === outEnd) {
        outEnd = Math.min(out.length, bytes - sent);
        outStart = 0;
        fillPattern(SEND_SEED, sent, out.subarray(0, outEnd));
      }
      // C: n = libxenvchan_write(ctrl, buf, len);  copies what fits, 0 when the ring is full
      const n = vchan.write(out, outStart, outEnd - outStart);
      outStart += n;
      sent += n;
      moved ||= n > 0;
    }
    if (received < bytes) {
      // C: n = libxenvchan_read(ctrl, buf, len);  copies what is ready, 0 when none is.
      // Where C returns -1 for a peer that closed, this throws ERR_VCHAN_PEER_CLOSED.
      const n = vchan.read(inBuf, 0, Math.min(inBuf.length, bytes - received));
      const want = fillPattern(RECEIVE_SEED, received, expected.subarray(0, n));
      if (!want.equals(inBuf.subarray(0, n))) throw new Error(`byte ${received + firstDifference(want, inBuf)} from the C client is wrong`);
      received += n;
      moved ||= n > 0;
    }
    if (moved) continue;
    if (vchan.isOpen() === 0) throw new Error(`the C client left after ${sent} bytes sent, ${received} received`);
    // C: libxenvchan_wait(ctrl);  sleeps until the peer reads or writes. read() and
    // write() asked for that wake-up when they came up short, as libxenvchan does.
    await vchan.wait();
  }
  console.log(`Node -> C: sent ${sent} bytes of pattern ${SEND_SEED}`);
  console.log(`C -> Node: received ${received} bytes, every one as the C client's pattern ${RECEIVE_SEED} says`);
} catch (error) {
  console.error(`server: ${error.code ?? 'error'}: ${error.message}`);
  process.exitCode = 1;
} finally {
  // C: libxenvchan_close(ctrl);  the client can still read what we wrote.
  await vchan?.close();
  backend.close();
}

function firstDifference(a, b) {
  let i = 0;
  while (a[i] === b[i]) i++;
  return i;
}
