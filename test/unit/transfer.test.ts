import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransferBed } from '../support/transfer.js';

const MiB = 1 << 20;
let bed: TransferBed;
beforeAll(async () => {
  bed = await TransferBed.start();
});
afterAll(async () => {
  await bed?.stop();
});

describe('two worker threads, both directions at once', () => {
  // [left (server read) order, right (server write) order] → minimum sizes that make the server pick them.
  const pairs: Array<[number, number]> = [[10, 11], [11, 10], [12, 12], [12, 20], [20, 20]];
  for (const [left, right] of pairs) {
    it(`moves 256 MiB each way byte-exact with orders (${left},${right})`, async () => {
      const { server, client } = await bed.transfer({
        readMin: 1 << left,
        writeMin: 1 << right,
        serverSends: 256 * MiB,
        clientSends: 256 * MiB,
      });
      expect([server.readSize, server.writeSize]).toEqual([1 << left, 1 << right]);
      expect(server.sent).toBe(256 * MiB);
      expect(client.received).toBe(256 * MiB);
      expect(client.receivedHash).toBe(server.sentHash);
      expect(server.receivedHash).toBe(client.sentHash);
      const mbps = (512 * MiB) / 1e6 / Math.max(server.seconds, client.seconds);
      console.log(`orders (${left},${right}): ${mbps.toFixed(0)} MB/s both ways combined`);
    }, 300_000);
  }

  it('never deadlocks: 100 randomized runs with random orders and chunk sizes', async () => {
    for (let i = 0; i < 100; i++) {
      const readMin = 1 << (10 + Math.floor(Math.random() * 11));
      const writeMin = 1 << (10 + Math.floor(Math.random() * 11));
      const serverSends = Math.floor(Math.random() * 300_000);
      const clientSends = Math.floor(Math.random() * 300_000);
      const chunk = 1 + Math.floor(Math.random() * 3 * Math.max(readMin, writeMin));
      const { server, client } = await bed.transfer({ readMin, writeMin, serverSends, clientSends, chunk, randomChunks: true });
      expect(client.receivedHash, `run ${i}: ${JSON.stringify({ readMin, writeMin, serverSends, clientSends, chunk })}`).toBe(server.sentHash);
      expect(server.receivedHash).toBe(client.sentHash);
    }
  }, 300_000);

  it('streams both ways through VchanStream in two threads', async () => {
    const { server, client } = await bed.transfer({ readMin: 4096, writeMin: 65536, serverSends: 32 * MiB, clientSends: 32 * MiB, api: 'stream' });
    expect(client.receivedHash).toBe(server.sentHash);
    expect(server.receivedHash).toBe(client.sentHash);
  }, 120_000);
});
