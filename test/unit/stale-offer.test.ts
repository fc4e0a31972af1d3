/**
 * connect() meeting a stale or taken offer (EINVAL on bind or map while
 * the server's domain lives) waits for the entries to change, within its
 * timeout; entries that never change end in the EINVAL, saying so.
 */
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { MemoryHypervisor } from '../../src/memory/index.js';
import { connect, listen } from '../../src/net.js';

const PATH = '/local/domain/0/data/vchan/5/40';
const READABLE_BY_5 = [
  { domid: 0, access: 'none' as const },
  { domid: 5, access: 'read' as const },
];

/** Entries naming a grant and a port nobody offered: what a client meets between two offers. */
async function staleEntries(hv: MemoryHypervisor): Promise<ReturnType<MemoryHypervisor['backend']>> {
  const dom0 = hv.backend(0);
  await dom0.store.writeAll([[`${PATH}/ring-ref`, '4000'], [`${PATH}/event-channel`, '3000']], READABLE_BY_5);
  return dom0;
}

describe('connect() and a stale offer', () => {
  it('waits for the entries to change and connects to the fresh offer', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = await staleEntries(hv);
    const client = connect({ peer: 0, port: 40, backend: hv.backend(5), timeout: 5000 });
    const failed = once(client, 'error');
    await new Promise((r) => setTimeout(r, 100));
    const server = listen({ peer: 5, port: 40, backend: dom0 });
    const outcome = await Promise.race([once(client, 'connect').then(() => 'connect'), failed.then(([e]) => (e as Error).message)]);
    expect(outcome).toBe('connect');
    client.write('fresh');
    const [chunk] = (await once(server, 'data')) as [Buffer];
    expect(chunk.toString()).toBe('fresh');
    client.destroy();
    server.destroy();
  });

  it('entries that never change end in EINVAL, naming the offer, at the timeout', async () => {
    const hv = new MemoryHypervisor();
    await staleEntries(hv);
    const started = Date.now();
    const client = connect({ peer: 0, port: 40, backend: hv.backend(5), timeout: 300 });
    const [error] = (await once(client, 'error').catch((e: unknown) => [e])) as [Error & { code: string }];
    expect(error.code).toBe('EINVAL');
    expect(error.message).toMatch(/ring-ref 4000, event-channel 3000\) did not change before the timeout/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it('without a timeout or signal fails at once, as before', async () => {
    const hv = new MemoryHypervisor();
    await staleEntries(hv);
    const client = connect({ peer: 0, port: 40, backend: hv.backend(5) });
    const [error] = (await once(client, 'error').catch((e: unknown) => [e])) as [Error & { code: string }];
    expect(error.code).toBe('EINVAL');
    expect(error.message).not.toMatch(/did not change/);
  });
});
