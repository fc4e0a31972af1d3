import { describe, expect, it } from 'vitest';
import { MemoryHypervisor } from '../../src/memory/index.js';

describe('in-memory grants', () => {
  it('shares fresh zeroed pages and lets only the grantee map them', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const dom5 = hv.backend(5);
    const dom7 = hv.backend(7);
    const share = await dom0.sharePages(5, 2);
    expect(share.refs).toHaveLength(2);
    expect(share.memory.byteLength).toBe(8192);
    expect(share.memory.every((b) => b === 0)).toBe(true);

    await expect(dom7.mapGrants(0, share.refs, true)).rejects.toMatchObject({ code: 'EPERM' });
    await expect(dom5.mapGrants(0, [12345], true)).rejects.toMatchObject({ code: 'EINVAL' });
    // Refs belong to their granter: the same numbers under another domain mean nothing.
    await expect(dom5.mapGrants(7, share.refs, true)).rejects.toMatchObject({ code: 'EINVAL' });

    const mapping = await dom5.mapGrants(0, share.refs, true);
    share.memory[4100] = 42;
    expect(mapping.memory[4100]).toBe(42);
    mapping.memory[1] = 7;
    expect(share.memory[1]).toBe(7);
    expect(hv.held()).toMatchObject({ grants: 2, mappedPages: 2 });

    mapping.release();
    share.release();
    expect(hv.held()).toMatchObject({ grants: 0, mappedPages: 0 });
    await Promise.all([dom0.close(), dom5.close(), dom7.close()]);
  });

  it('never hands out old contents: a new share after release is zeroed', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const first = await dom0.sharePages(5, 1);
    first.memory.fill(0xaa);
    first.release();
    const second = await dom0.sharePages(5, 1);
    expect(second.memory.every((b) => b === 0)).toBe(true);
    await dom0.close();
  });

  it('refuses a share over the grant limit with ENOSPC naming the limit', async () => {
    const hv = new MemoryHypervisor({ grantLimit: 4 });
    const dom0 = hv.backend(0);
    const a = await dom0.sharePages(5, 3);
    const error: unknown = await dom0.sharePages(5, 2).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ENOSPC', errno: -28, syscall: 'GNTALLOC_ALLOC_GREF' });
    expect((error as Error).message).toMatch(/grant limit of 4 pages.*grantLimit/);
    // All-or-nothing: the failed call took nothing, one more page still fits.
    expect(hv.held().grants).toBe(3);
    const b = await dom0.sharePages(5, 1);
    // The limit is per domain.
    const dom6 = hv.backend(6);
    const c = await dom6.sharePages(0, 4);
    a.release();
    b.release();
    c.release();
    await dom0.sharePages(5, 4).then((s) => s.release());
    await Promise.all([dom0.close(), dom6.close()]);
    expect(hv.held().grants).toBe(0);
  });

  it('maps a read-only grant only read-only', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const dom5 = hv.backend(5);
    const share = await dom0.sharePages(5, 1, undefined, { readOnly: true });
    await expect(dom5.mapGrants(0, share.refs, true)).rejects.toMatchObject({ code: 'EPERM', message: /read-only/ });
    const mapping = await dom5.mapGrants(0, share.refs, false);
    share.memory[0] = 9;
    expect(mapping.memory[0]).toBe(9);
    await Promise.all([dom0.close(), dom5.close()]);
    expect(hv.held()).toMatchObject({ grants: 0, mappedPages: 0 });
  });

  it('keeps mapped pages alive after the granter releases them, and revokes the refs', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const dom5 = hv.backend(5);
    const share = await dom0.sharePages(5, 1);
    const mapping = await dom5.mapGrants(0, share.refs, true);
    share.memory.set([1, 2, 3]);
    share.release();
    share.release(); // idempotent
    expect([...mapping.memory.subarray(0, 3)]).toEqual([1, 2, 3]);
    mapping.memory[3] = 4;
    expect(mapping.memory[3]).toBe(4);
    expect(hv.held()).toMatchObject({ grants: 0, mappedPages: 1 });
    await expect(dom5.mapGrants(0, share.refs, true)).rejects.toMatchObject({ code: 'EINVAL', message: /revoked/ });
    mapping.release();
    expect(hv.held().mappedPages).toBe(0);
    await Promise.all([dom0.close(), dom5.close()]);
  });

  it('maps a run of consecutive refs of one share and refuses any other arrangement', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const dom5 = hv.backend(5);
    const share = await dom0.sharePages(5, 4);
    const other = await dom0.sharePages(5, 1);
    const [r0, r1, r2, r3] = share.refs as [number, number, number, number];
    const tail = await dom5.mapGrants(0, [r2, r3], true);
    share.memory[2 * 4096 + 5] = 77;
    expect(tail.memory.byteLength).toBe(8192);
    expect(tail.memory[5]).toBe(77);
    await expect(dom5.mapGrants(0, [r1, r0], true)).rejects.toMatchObject({ code: 'ENOTSUP' });
    await expect(dom5.mapGrants(0, [r0, r2], true)).rejects.toMatchObject({ code: 'ENOTSUP' });
    await expect(dom5.mapGrants(0, [r3, other.refs[0]!], true)).rejects.toMatchObject({ code: 'ENOTSUP' });
    await Promise.all([dom0.close(), dom5.close()]);
    expect(hv.held()).toMatchObject({ grants: 0, mappedPages: 0 });
  });

  it('names the bad argument', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    await expect(dom0.sharePages(-1, 1)).rejects.toThrow(RangeError);
    await expect(dom0.sharePages(5, 0)).rejects.toThrow(/count/);
    await expect(dom0.sharePages(5, 1.5)).rejects.toThrow(RangeError);
    await expect(dom0.sharePages(5, 1, { offset: 4096, port: 1 })).rejects.toThrow(/notify.offset/);
    await expect(dom0.mapGrants(5, [], true)).rejects.toThrow(TypeError);
    await expect(dom0.mapGrants(5, [-1], true)).rejects.toThrow(/refs\[0\]/);
    await expect(dom0.mapGrants('5' as unknown as number, [8], true)).rejects.toThrow(/peer/);
    expect(() => hv.backend(40000)).toThrow(/domid/);
    expect(() => new MemoryHypervisor({ grantLimit: 0 })).toThrow(/grantLimit/);
    await dom0.close();
    await expect(dom0.sharePages(5, 1)).rejects.toMatchObject({ code: 'EBADF' });
  });
});
