/**
 * The /dev/xen/xenbus transport (a domU's way to xenstore): a character
 * device read when libuv says it is readable, never blocking the loop.
 * Without Xen, a raw pseudo-terminal relayed to the emulator's xenstored
 * stands in for the device.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XenStore } from '../../src/xen/xenstore.js';
import { startXenstored, type XenstoredServer } from './xenstored-server.js';

let server: XenstoredServer;
let relay: ChildProcess;
let device: string;

beforeAll(async () => {
  server = await startXenstored();
  const socket = await server.socketFor(7);
  relay = spawn('python3', [join(import.meta.dirname, 'fixtures/pty-relay.py'), socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  device = await new Promise<string>((resolve, reject) => {
    relay.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()));
    relay.once('exit', (code) => reject(new Error(`pty relay exited (${code}) before printing its device`)));
  });
});

afterAll(async () => {
  relay?.kill();
  await server?.close();
});

describe('XenStore over a character device', () => {
  it('speaks the same protocol: reads, writes, transactions and watches', async () => {
    const store = await XenStore.connect({ path: device });
    try {
      expect(await store.read('domid')).toBe('7');
      await store.writeAll([['data/a', '1'], ['data/b', '2']]);
      expect(await store.directory('data')).toEqual(expect.arrayContaining(['a', 'b']));
      const events: string[] = [];
      let seen!: () => void;
      let arrived = new Promise<void>((r) => (seen = r));
      const watch = await store.watch('data', (p) => {
        events.push(p);
        seen();
      });
      await arrived;
      arrived = new Promise<void>((r) => (seen = r));
      await store.write('data/c', '3');
      await arrived;
      expect(events).toEqual(['data', 'data/c']);
      await watch.close();
      // Many requests in flight through the device at once.
      const values = await Promise.all(Array.from({ length: 100 }, () => store.read('data/b')));
      expect(new Set(values)).toEqual(new Set(['2']));
    } finally {
      store.close();
    }
  });
});
