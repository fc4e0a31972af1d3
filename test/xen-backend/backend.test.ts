/**
 * XenBackend on a machine without Xen: argument checks, the errors a
 * missing or wrong device gives, the messages behind kernel limits, and its
 * xenstore side against the emulator's xenstored.
 */
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VchanError } from '../../src/errors.js';
import { XenBackend, XenStore } from '../../src/index.js';
import { kernelError } from '../../src/xen/errors.js';
import { startXenstored, type XenstoredServer } from './xenstored-server.js';

let server: XenstoredServer;
let socket5: string;
let fakeDir: string;

beforeAll(async () => {
  server = await startXenstored();
  socket5 = await server.socketFor(5);
  // Device nodes that exist but are not Xen's: every ioctl is ENOTTY.
  fakeDir = mkdtempSync(join(tmpdir(), 'xen-vchan-dev-'));
  for (const name of ['gntalloc', 'gntdev', 'evtchn']) symlinkSync('/dev/null', join(fakeDir, name));
});

afterAll(async () => {
  await server?.close();
  if (fakeDir) rmSync(fakeDir, { recursive: true, force: true });
});

async function rejection(p: Promise<unknown>): Promise<VchanError> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(VchanError);
  return error as VchanError;
}

const noop = (): void => undefined;

describe('XenBackend without Xen', () => {
  it('a missing device is ENOENT naming the device and the module to load', async () => {
    const backend = new XenBackend({ deviceDir: '/nonexistent/xen', xenstorePath: socket5 });
    try {
      const share = await rejection(backend.sharePages(0, 1));
      expect(share.code).toBe('ENOENT');
      expect(share.syscall).toBe('open');
      expect(share.errno).toBe(-2);
      expect(share.message).toMatch(/\/nonexistent\/xen\/gntalloc does not exist/);
      expect(share.message).toMatch(/modprobe xen-gntalloc/);
      expect(share.message).toMatch(/xensim run/);
      expect((await rejection(backend.mapGrants(0, [8], true))).message).toMatch(/xen-gntdev/);
      expect((await rejection(backend.bindUnboundPort(0, noop))).message).toMatch(/xen-evtchn/);
      expect((await rejection(backend.bindInterdomain(0, 3, noop))).message).toMatch(/xen-evtchn/);
    } finally {
      backend.close();
    }
  });

  it('the default device directory is /dev/xen', async () => {
    const backend = new XenBackend({ xenstorePath: socket5 });
    try {
      const error = await rejection(backend.sharePages(0, 1));
      // This machine has no Xen; on a Xen host the call reaches the kernel instead.
      expect(error.message).toMatch(/\/dev\/xen\/gntalloc/);
    } finally {
      backend.close();
    }
  });

  it('kernel failures keep code, errno and syscall and say what we were doing', async () => {
    const backend = new XenBackend({ deviceDir: fakeDir, xenstorePath: socket5 });
    try {
      const share = await rejection(backend.sharePages(5, 2));
      expect(share).toMatchObject({ code: 'ENOTTY', errno: -25, syscall: 'ioctl(GNTALLOC_ALLOC_GREF)' });
      expect(share.message).toMatch(/^sharing 2 pages with domain 5: ENOTTY/);
      // gntdev's SET_MAX_GRANTS is ENOTTY too, which means "no per-file limit": the map itself fails.
      const map = await rejection(backend.mapGrants(5, [8, 9], false));
      expect(map).toMatchObject({ code: 'ENOTTY', syscall: 'ioctl(GNTDEV_MAP_GRANT_REF)' });
      expect(map.message).toMatch(/^mapping 2 pages granted by domain 5/);
      const bind = await rejection(backend.bindUnboundPort(5, noop));
      expect(bind.syscall).toBeTypeOf('string');
    } finally {
      backend.close();
    }
  });

  it('names the limit behind ENOSPC, E2BIG and ENOMEM', () => {
    const gntalloc = kernelError(Object.assign(new Error('x'), { code: 'ENOSPC', errno: -28, syscall: 'ioctl(GNTALLOC_ALLOC_GREF)' }), 'sharing 512 pages with domain 5') as VchanError;
    expect(gntalloc).toBeInstanceOf(VchanError);
    expect(gntalloc).toMatchObject({ code: 'ENOSPC', errno: -28, syscall: 'ioctl(GNTALLOC_ALLOC_GREF)' });
    expect(gntalloc.message).toMatch(/gntalloc limit reached: raise \/sys\/module\/xen_gntalloc\/parameters\/limit/);
    const gntdev = kernelError({ code: 'E2BIG', errno: -7, syscall: 'ioctl(GNTDEV_MAP_GRANT_REF)' }, 'mapping') as VchanError;
    expect(gntdev.message).toMatch(/\/sys\/module\/xen_gntdev\/parameters\/limit/);
    const perm = kernelError({ code: 'EACCES', errno: -13, syscall: 'open', path: '/dev/xen/gntdev' }, 'opening') as VchanError;
    expect(perm.message).toMatch(/permission denied opening \/dev\/xen\/gntdev/);
    const plain = new TypeError('not a system error');
    expect(kernelError(plain, 'x')).toBe(plain);
  });

  it('reads its own domain id from xenstore, once', async () => {
    const backend = new XenBackend({ deviceDir: fakeDir, xenstorePath: socket5 });
    try {
      expect(await backend.domainId()).toBe(5);
      expect(await backend.domainId()).toBe(5);
      expect(backend.store).toBeInstanceOf(XenStore);
    } finally {
      backend.close();
    }
  });

  it('close() closes its own xenstore client but not one it was given, and refuses further work', async () => {
    const own = new XenBackend({ deviceDir: fakeDir, xenstorePath: socket5 });
    await own.store.read('domid');
    own.close();
    own.close();
    expect((await rejection(own.store.read('domid'))).code).toBe('ERR_VCHAN_CLOSED');
    expect((await rejection(own.sharePages(0, 1))).code).toBe('ERR_VCHAN_CLOSED');

    const store = await XenStore.connect({ path: socket5 });
    const borrowed = new XenBackend({ deviceDir: fakeDir, store });
    borrowed.close();
    expect(await store.read('domid')).toBe('5');
    store.close();
  });

  it('rejects bad arguments with TypeError/RangeError naming the argument', async () => {
    const b = new XenBackend({ deviceDir: fakeDir, xenstorePath: socket5 });
    try {
      const bad: Array<[Promise<unknown>, ErrorConstructor, RegExp]> = [
        [b.sharePages(-1, 1), RangeError, /peer/],
        [b.sharePages('0' as never, 1), TypeError, /peer/],
        [b.sharePages(0, 0), RangeError, /count/],
        [b.sharePages(0, 1.5), TypeError, /count/],
        [b.sharePages(0, 1, { offset: 4096, port: 1 }), RangeError, /notify.offset/],
        [b.sharePages(0, 1, { offset: 0, port: -1 }), RangeError, /notify.port/],
        [b.sharePages(0, 1, 'n' as never), TypeError, /notify/],
        [b.mapGrants(0, 'refs' as never, true), TypeError, /refs/],
        [b.mapGrants(0, [], true), RangeError, /refs.length/],
        [b.mapGrants(0, [1, 2 ** 32], true), RangeError, /refs\[1\]/],
        [b.mapGrants(0, [1], 'yes' as never), TypeError, /writable/],
        [b.bindUnboundPort(0x8000, noop), RangeError, /peer/],
        [b.bindUnboundPort(0, 'cb' as never), TypeError, /onEvent/],
        [b.bindInterdomain(0, -1, noop), RangeError, /remotePort/],
      ];
      for (const [promise, kind, pattern] of bad) {
        const error = await promise.then(
          () => new Error('resolved'),
          (e: unknown) => e as Error,
        );
        expect(error).toBeInstanceOf(kind);
        expect(error.message).toMatch(pattern);
      }
      expect(() => new XenBackend({ deviceDir: '' })).toThrow(/deviceDir/);
      expect(() => new XenBackend({ store: {} as never })).toThrow(/store/);
      expect(() => new XenBackend(5 as never)).toThrow(/options/);
    } finally {
      b.close();
    }
  });
});
