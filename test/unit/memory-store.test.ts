import { setImmediate as tick } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { MemoryHypervisor } from '../../src/memory/index.js';

async function settle(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await tick();
}

describe('in-memory xenstore', () => {
  it('gives each domain its skeleton and resolves relative paths under it', async () => {
    const hv = new MemoryHypervisor();
    const dom5 = hv.backend(5);
    expect(await dom5.store.read('domid')).toBe('5');
    expect(await dom5.store.read('/local/domain/5/domid')).toBe('5');
    await dom5.store.writeAll([['data/vchan/0/1000/ring-ref', '8']]);
    expect(await dom5.store.read('/local/domain/5/data/vchan/0/1000/ring-ref')).toBe('8');
    expect(await dom5.store.read('data/missing')).toBeUndefined();
    // The domain's own directory is the toolstack's: readable, not writable.
    await expect(dom5.store.writeAll([['domid', '6']])).rejects.toMatchObject({ code: 'EACCES' });
    await expect(dom5.store.writeAll([['other', 'x']])).rejects.toMatchObject({ code: 'EACCES' });
    await expect(dom5.store.remove('data')).resolves.toBeUndefined();
    await expect(dom5.store.read('bad//path')).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(dom5.store.read(5 as unknown as string)).rejects.toThrow(TypeError);
    await dom5.close();
  });

  it('enforces permissions: owner, per-domain entries, default, dom0 privileged', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const dom5 = hv.backend(5);
    const dom6 = hv.backend(6);
    const dom7 = hv.backend(7);
    await dom5.store.writeAll(
      [
        ['data/vchan/6/1/ring-ref', '8'],
        ['data/vchan/6/1/event-channel', '1'],
      ],
      [
        { domid: 5, access: 'none' },
        { domid: 6, access: 'read' },
      ],
    );
    const path = '/local/domain/5/data/vchan/6/1/ring-ref';
    expect(await dom6.store.read(path)).toBe('8');
    expect(await dom0.store.read(path)).toBe('8');
    await expect(dom7.store.read(path)).rejects.toMatchObject({ code: 'EACCES', errno: -13 });
    await expect(dom6.store.writeAll([[path, '9']])).rejects.toMatchObject({ code: 'EACCES' });
    await expect(dom6.store.remove(path)).rejects.toMatchObject({ code: 'EACCES' });
    // Another domain's home is off limits to unprivileged writers, not to dom0.
    await expect(dom6.store.writeAll([['/local/domain/5/data/x', '1']])).rejects.toMatchObject({ code: 'EACCES' });
    await dom0.store.writeAll([['/local/domain/5/data/x', '1']]);
    // Only the owner sets permissions, and may not give the node away.
    await expect(
      dom5.store.writeAll([[path, '8']], [{ domid: 6, access: 'both' }]),
    ).rejects.toMatchObject({ code: 'EPERM' });
    await dom5.store.writeAll([[path, '8']], [{ domid: 5, access: 'read' }]);
    expect(await dom7.store.read(path)).toBe('8');
    await dom5.store.remove('data/vchan/6/1');
    expect(await dom5.store.read(path)).toBeUndefined();
    await Promise.all([dom0.close(), dom5.close(), dom6.close(), dom7.close()]);
  });

  it('hides whether a node exists from a domain that may not read its nearest ancestor (EACCES, as xenstored)', async () => {
    const hv = new MemoryHypervisor();
    const dom5 = hv.backend(5);
    const dom7 = hv.backend(7);
    // Domain 7's home is not domain 5's to read: alive or destroyed, its domid reads EACCES.
    await expect(dom5.store.read('/local/domain/7/domid')).rejects.toMatchObject({ code: 'EACCES' });
    await expect(dom5.store.read('/local/domain/7/data/nothing')).rejects.toMatchObject({ code: 'EACCES' });
    await dom7.close();
    await expect(dom5.store.read('/local/domain/7/domid')).rejects.toMatchObject({ code: 'EACCES' });
    // Where it may read the ancestor, a missing node is just missing; dom0 sees everything.
    expect(await dom5.store.read('data/nothing')).toBeUndefined();
    expect(await hv.backend(0).store.read('/local/domain/7/domid')).toBeUndefined();
    await dom5.close();
  });

  it('writes all entries or none', async () => {
    const hv = new MemoryHypervisor();
    const dom5 = hv.backend(5);
    await expect(
      dom5.store.writeAll([
        ['data/a', '1'],
        ['/local/domain/0/data/b', '2'],
      ]),
    ).rejects.toMatchObject({ code: 'EACCES' });
    expect(await dom5.store.read('data/a')).toBeUndefined();
    expect(hv.held().storeEntries).toBe(0);
    await expect(dom5.store.writeAll([['data/a', 1 as unknown as string]])).rejects.toThrow(/entries\[0\]/);
    await expect(dom5.store.writeAll([['data/a', '1']], [])).rejects.toThrow(/permissions/);
    await expect(dom5.store.writeAll([['data/a', '1']], [{ domid: 5, access: 'rw' as 'read' }])).rejects.toThrow(/access/);
    await dom5.close();
  });

  it('fires a watch once when set and then for changes at or below its path', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const dom5 = hv.backend(5);
    const seen: string[] = [];
    const watch = await dom5.store.watch('/local/domain/0/data/vchan/5', (p) => seen.push(p));
    await settle();
    expect(seen).toEqual(['/local/domain/0/data/vchan/5']);
    await dom0.store.writeAll(
      [
        ['data/vchan/5/1000/ring-ref', '8'],
        ['data/vchan/5/1000/event-channel', '2'],
      ],
      [
        { domid: 0, access: 'none' },
        { domid: 5, access: 'read' },
      ],
    );
    await dom0.store.writeAll([['data/vchan/6/1000/ring-ref', '9']]);
    await settle();
    expect(seen.slice(1)).toEqual(['/local/domain/0/data/vchan/5/1000/ring-ref', '/local/domain/0/data/vchan/5/1000/event-channel']);
    await dom0.store.remove('data/vchan/5/1000/ring-ref');
    await settle();
    expect(seen.at(-1)).toBe('/local/domain/0/data/vchan/5/1000/ring-ref');
    // Nodes the watcher may not read are not reported: a new one, and the
    // directory made on the way (it inherited dom0's private permissions).
    const before = seen.length;
    await dom0.store.writeAll([['data/vchan/5/secret', 'x']]);
    await dom0.store.remove('data/vchan/5/1000');
    await settle();
    expect(seen).toHaveLength(before);
    await watch.close();
    await watch.close();
    await dom0.store.writeAll([['data/vchan/5/2/ring-ref', '1']], [{ domid: 0, access: 'read' }]);
    await settle();
    expect(seen).toHaveLength(before);
    expect(hv.held().watches).toBe(0);
    await Promise.all([dom0.close(), dom5.close()]);
  });

  it('reports relative watches relative, and fires watches below a removed node', async () => {
    const hv = new MemoryHypervisor();
    const dom5 = hv.backend(5);
    const seen: string[] = [];
    await dom5.store.watch('data/a/b', (p) => seen.push(p));
    await dom5.store.watch('data/a/b/c/d', (p) => seen.push(p));
    await dom5.store.writeAll([['data/a/b/c', '1']]);
    await dom5.store.remove('data/a');
    await settle();
    // The removal reaches the watch on data/a/b exactly; none on a node that never existed.
    expect(seen).toEqual(['data/a/b', 'data/a/b/c/d', 'data/a/b/c', 'data/a/b']);
    await dom5.close();
    expect(hv.held().watches).toBe(0);
  });

  it('fires @introduceDomain and @releaseDomain, and removes a dead domain', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const seen: string[] = [];
    await dom0.store.watch('@releaseDomain', (p) => seen.push(p));
    await dom0.store.watch('@introduceDomain', (p) => seen.push(p));
    await settle();
    seen.length = 0;
    const a = hv.backend(5);
    const b = hv.backend(5);
    await a.store.writeAll([['data/x', '1']]);
    expect(hv.held().storeEntries).toBe(1);
    await settle();
    expect(seen).toEqual(['@introduceDomain']);
    a.destroy();
    await settle();
    expect(seen).toEqual(['@introduceDomain']);
    expect(await dom0.store.read('/local/domain/5/data/x')).toBe('1');
    await b.close();
    await settle();
    expect(seen).toEqual(['@introduceDomain', '@releaseDomain']);
    expect(await dom0.store.read('/local/domain/5/domid')).toBeUndefined();
    expect(hv.held().storeEntries).toBe(0);
    await expect(dom0.store.watch('@other', () => {})).rejects.toMatchObject({ code: 'EINVAL' });
    await dom0.close();
    expect(hv.held()).toEqual({ grants: 0, mappedPages: 0, ports: 0, watches: 0, storeEntries: 0, backends: 0 });
  });
});
