/**
 * A write caught in flight by the peer's close (found by the soak: a peer
 * that wrote, then end()ed while we were writing into a full ring): the
 * write fails with ERR_VCHAN_PEER_CLOSED only after every byte the peer
 * wrote was delivered and 'end' came. The peer's bytes are not lost to our
 * own write's failure.
 */
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { MemoryHypervisor } from '../../src/memory/index.js';
import { connect, listen } from '../../src/net.js';
import { fillPattern, PatternChecker } from '../support/pattern.js';

describe('a write in flight when the peer ends', () => {
  it.each([
    ['client writes, server ends', 'client'],
    ['server writes, client ends', 'server'],
  ] as const)('%s: what the peer wrote is delivered, then end, then the write fails', async (_name, writer) => {
    const hv = new MemoryHypervisor();
    const server = listen({ peer: 2, path: 'data/vchan/2/9', backend: hv.backend(1), readMin: 4096, writeMin: 4096 });
    const client = connect({ peer: 1, path: '/local/domain/1/data/vchan/2/9', backend: hv.backend(2) });
    const [ours, theirs] = writer === 'client' ? [client, server] : [server, client];
    await Promise.all([once(server, 'connect'), once(client, 'connect')]);
    // Ours fills the ring and the peer's readable buffer, then waits for space in a write that never completes.
    theirs.pause();
    theirs.on('error', () => undefined); // its own end() may meet our close: not what this test is about
    const events: string[] = [];
    const check = new PatternChecker(7);
    let received = 0;
    ours.on('data', (chunk: Buffer) => {
      check.push(chunk);
      received += chunk.length;
    });
    ours.on('end', () => events.push(`end after ${received}`));
    ours.on('error', (e: Error & { code?: string }) => events.push(`error ${e.code}`));
    ours.write(Buffer.alloc(1 << 20), (e) => e && events.push(`write failed after ${received}`));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const bytes = 3000; // fits in the 4 KiB ring the peer writes into
    theirs.end(fillPattern(7, 0, new Uint8Array(bytes)));
    await new Promise((resolve) => ours.once('close', resolve));
    expect(received).toBe(bytes);
    expect(events[0]).toBe(`end after ${bytes}`);
    expect(events).toContain('error ERR_VCHAN_PEER_CLOSED');
  });
});
