/**
 * Every channel of a process to the same domain shares one watch of that
 * domain's home and one @releaseDomain watch, and a domain's death costs
 * one look at it, not one per channel (src/peer-watch.ts).
 */
import { describe, expect, it } from 'vitest';
import { Vchan } from '../../src/channel.js';
import { MemoryHypervisor } from '../../src/memory/index.js';
import { interpose } from '../support/interposed-backend.js';

describe('the domain monitor shared by all channels', () => {
  it('50 channels to one domain: 2 watches in all, and its death costs a few looks, not 50', async () => {
    const hv = new MemoryHypervisor();
    const serverProcess = hv.backend(1);
    const server = interpose(serverProcess, () => undefined);
    const client = hv.backend(2);
    const N = 50;
    const servers = await Promise.all(
      Array.from({ length: N }, (_, i) => Vchan.server({ peer: 2, path: `data/vchan/2/${i}`, readMin: 1024, writeMin: 1024, backend: server })),
    );
    await Promise.all(servers.map((_, i) => Vchan.client({ peer: 1, path: `/local/domain/1/data/vchan/2/${i}`, backend: client })));
    const watched = server.calls.filter((c) => c.name === 'store.watch').map((c) => c.args[0]);
    expect(watched.sort()).toEqual(['/local/domain/2', '@releaseDomain']);

    const looksBefore = server.calls.filter((c) => c.name === 'store.read' && c.args[0] === '/local/domain/2/domid').length;
    expect(looksBefore).toBeLessThanOrEqual(N + 2); // the first look of each follower
    const allClosed = Promise.all(servers.map(async (s) => {
      while (s.isOpen() !== 0) await s.wait();
    }));
    client.destroy(); // the domain's last process: the domain goes with it
    await allClosed;
    await new Promise((r) => setTimeout(r, 50)); // any look still to come
    const looks = server.calls.filter((c) => c.name === 'store.read' && c.args[0] === '/local/domain/2/domid').length - looksBefore;
    expect(looks).toBeLessThanOrEqual(3);
    // Each channel let go of its share of the watches: the last one closed them.
    expect(server.calls.filter((c) => c.name === 'watch.close').length).toBe(2);
    await Promise.all(servers.map((s) => s.close()));
    await serverProcess.close();
  });
});
