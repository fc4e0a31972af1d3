/**
 * The native shim on a machine without Xen: it builds and loads, checks
 * every argument, reports errno errors the way Node does, maps memory as
 * external ArrayBuffers with no use-after-unmap, and its uv_poll watcher
 * drains, unmasks and delivers ports (driven over a socketpair).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadNative, type NativeError } from '../../src/xen/native.js';

const native = loadNative();
const ROOT = join(import.meta.dirname, '../..');
const zero = openSync('/dev/zero', 'r+');
const nul = openSync('/dev/null', 'r+');
afterAll(() => {
  closeSync(zero);
  closeSync(nul);
});

function thrown(call: () => unknown): NativeError {
  try {
    call();
  } catch (error) {
    return error as NativeError;
  }
  throw new Error('expected a throw');
}

describe('native shim: loading and arguments', () => {
  // `node -e` defines a global __dirname of '.': the ESM build must not take it for its own.
  it.each(['index.js', 'cjs/index.js'])('dist/%s finds the shim from `node -e` in another directory', async (file) => {
    const script = `
      const load = ${file.startsWith('cjs/') ? `Promise.resolve(require(${JSON.stringify(join(ROOT, 'dist', file))}))` : `import(${JSON.stringify(join(ROOT, 'dist', file))})`};
      load.then((m) => {
        try {
          new m.XenBackend({ deviceDir: '/nonexistent' }).close();
          console.log(JSON.stringify({ loaded: true }));
        } catch (e) {
          console.log(JSON.stringify({ code: e.code, message: e.message }));
        }
      });`;
    const out = JSON.parse(await runNode(['-e', script])) as { loaded?: boolean; message?: string };
    expect(out, out.message).toEqual({ loaded: true });
  });

  it('exports one function per kernel operation', () => {
    expect(Object.keys(native).sort()).toEqual(
      [
        'Watcher',
        'closeDevice',
        'evtchnBindInterdomain',
        'evtchnBindUnboundPort',
        'evtchnNotify',
        'evtchnUnbind',
        'evtchnUnmask',
        'gntallocAllocGref',
        'gntallocDeallocGref',
        'gntallocSetUnmapNotify',
        'gntdevMapGrantRef',
        'gntdevSetMaxGrants',
        'gntdevSetUnmapNotify',
        'gntdevUnmapGrantRef',
        'mmap',
        'munmap',
        'openDevice',
      ].sort(),
    );
  });

  const n = native as unknown as Record<string, (...args: unknown[]) => unknown>;
  const cases: Array<[string, unknown[], typeof TypeError | typeof RangeError, RegExp]> = [
    ['openDevice', [1], TypeError, /path/],
    ['openDevice', [''], RangeError, /path/],
    ['openDevice', ['/dev/a\0b'], RangeError, /path/],
    ['closeDevice', ['3'], TypeError, /fd/],
    ['closeDevice', [-1], RangeError, /fd/],
    ['closeDevice', [1.5], TypeError, /fd/],
    ['gntallocAllocGref', [nul, 70000, 1, true], RangeError, /domid/],
    ['gntallocAllocGref', [nul, 1, 0, true], RangeError, /count/],
    ['gntallocAllocGref', [nul, 1, 1 << 20, true], RangeError, /count/],
    ['gntallocAllocGref', [nul, 1, 1, 'yes'], TypeError, /writable/],
    ['gntallocDeallocGref', [nul, -4096, 1], RangeError, /index/],
    ['gntallocDeallocGref', [nul, 2 ** 60, 1], RangeError, /index/],
    ['gntallocDeallocGref', [nul, 0, undefined], TypeError, /count/],
    ['gntallocSetUnmapNotify', [nul, 0, 4, 1], RangeError, /action/],
    ['gntallocSetUnmapNotify', [nul, 0, 3, -1], RangeError, /port/],
    ['gntdevMapGrantRef', [nul, 1, 'refs'], TypeError, /refs/],
    ['gntdevMapGrantRef', [nul, 1, []], RangeError, /refs/],
    ['gntdevMapGrantRef', [nul, 1, [1, -2]], TypeError, /refs\[1\]/],
    ['gntdevMapGrantRef', [nul, 1, [2 ** 32]], TypeError, /refs\[0\]/],
    ['gntdevUnmapGrantRef', [nul, 0, 0], RangeError, /count/],
    ['gntdevSetUnmapNotify', [nul, 'x', 1, 1], TypeError, /index/],
    ['gntdevSetMaxGrants', [nul, 0], RangeError, /count/],
    ['evtchnBindUnboundPort', [nul, -1], RangeError, /remoteDomain/],
    ['evtchnBindInterdomain', [nul, 1, 2 ** 32], RangeError, /remotePort/],
    ['evtchnUnbind', [nul, null], TypeError, /port/],
    ['evtchnNotify', [{}, 1], TypeError, /fd/],
    ['evtchnUnmask', [20, -1], RangeError, /port/],
    ['mmap', [zero, 100, 4096, true], RangeError, /offset/],
    ['mmap', [zero, 0, 100, true], RangeError, /length/],
    ['mmap', [zero, 0, 0, true], RangeError, /length/],
    ['mmap', [zero, 0, 4096, 1], TypeError, /writable/],
    ['munmap', [new Uint8Array(8)], TypeError, /buffer/],
    ['munmap', [new ArrayBuffer(4096)], TypeError, /buffer/],
  ];
  it.each(cases)('%s(%j) throws %o naming the argument', (name, args, kind, pattern) => {
    const fn = n[name];
    expect(fn).toBeTypeOf('function');
    const error = thrown(() => fn!(...args));
    expect(error).toBeInstanceOf(kind);
    expect(error.message).toMatch(pattern);
  });

  it('checks the Watcher arguments', () => {
    expect(thrown(() => new native.Watcher(-1, true, () => undefined))).toBeInstanceOf(RangeError);
    expect(thrown(() => new native.Watcher(zero, 'x' as never, () => undefined)).message).toMatch(/evtchn/);
    expect(thrown(() => new native.Watcher(zero, true, 5 as never)).message).toMatch(/callback/);
  });
});

describe('native shim: errno errors', () => {
  it('opening a missing device is ENOENT with code, errno, syscall and path', () => {
    const error = thrown(() => native.openDevice('/nonexistent/xen/gntalloc'));
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe('ENOENT');
    expect(error.errno).toBe(-2);
    expect(error.syscall).toBe('open');
    expect(error.path).toBe('/nonexistent/xen/gntalloc');
  });

  const ioctls: Array<[string, () => unknown, string]> = [
    ['gntallocAllocGref', () => native.gntallocAllocGref(nul, 1, 2, true), 'GNTALLOC_ALLOC_GREF'],
    ['gntallocDeallocGref', () => native.gntallocDeallocGref(nul, 0, 1), 'GNTALLOC_DEALLOC_GREF'],
    ['gntallocSetUnmapNotify', () => native.gntallocSetUnmapNotify(nul, 21, 3, 5), 'GNTALLOC_SET_UNMAP_NOTIFY'],
    ['gntdevMapGrantRef', () => native.gntdevMapGrantRef(nul, 1, [8, 9]), 'GNTDEV_MAP_GRANT_REF'],
    ['gntdevUnmapGrantRef', () => native.gntdevUnmapGrantRef(nul, 0, 2), 'GNTDEV_UNMAP_GRANT_REF'],
    ['gntdevSetUnmapNotify', () => native.gntdevSetUnmapNotify(nul, 20, 3, 5), 'GNTDEV_SET_UNMAP_NOTIFY'],
    ['gntdevSetMaxGrants', () => native.gntdevSetMaxGrants(nul, 1024), 'GNTDEV_SET_MAX_GRANTS'],
    ['evtchnBindUnboundPort', () => native.evtchnBindUnboundPort(nul, 1), 'IOCTL_EVTCHN_BIND_UNBOUND_PORT'],
    ['evtchnBindInterdomain', () => native.evtchnBindInterdomain(nul, 1, 7), 'IOCTL_EVTCHN_BIND_INTERDOMAIN'],
    ['evtchnUnbind', () => native.evtchnUnbind(nul, 7), 'IOCTL_EVTCHN_UNBIND'],
    ['evtchnNotify', () => native.evtchnNotify(nul, 7), 'IOCTL_EVTCHN_NOTIFY'],
  ];
  it('evtchnUnmask on a read-only fd is EBADF from write(evtchn)', () => {
    const fd = openSync('/dev/null', 'r');
    try {
      const error = thrown(() => native.evtchnUnmask(fd, 7));
      expect(error.code).toBe('EBADF');
      expect(error.syscall).toBe('write(evtchn)');
    } finally {
      closeSync(fd);
    }
  });
  it.each(ioctls)('%s on a non-Xen fd is ENOTTY from ioctl(%s)', (_name, call, ioctl) => {
    const error = thrown(call);
    expect(error.code).toBe('ENOTTY');
    expect(error.errno).toBe(-25);
    expect(error.syscall).toBe(`ioctl(${ioctl})`);
  });
});

describe('native shim: mappings', () => {
  it('maps a device range as an external ArrayBuffer and releases it by detaching first', () => {
    const buffer = native.mmap(zero, 0, 8192, true);
    const view = new Uint8Array(buffer);
    const words = new Int32Array(buffer);
    expect(buffer.byteLength).toBe(8192);
    expect(view[8191]).toBe(0);
    view[0] = 7;
    Atomics.store(words, 1, 42);
    expect(view[0]).toBe(7);
    expect(Atomics.load(words, 1)).toBe(42);

    expect(native.munmap(buffer)).toBe(true);
    // Detached: every view is empty, so nothing can touch the unmapped pages.
    expect(buffer.byteLength).toBe(0);
    expect(view.length).toBe(0);
    expect(view[0]).toBeUndefined();
    view[0] = 1; // a no-op on a detached buffer, not a write to freed memory
    expect(() => Atomics.load(words, 1)).toThrow(TypeError);
    expect(native.munmap(buffer)).toBe(false);
  });

  it('maps read-only when not writable', () => {
    const buffer = native.mmap(zero, 0, 4096, false);
    expect(new Uint8Array(buffer)[100]).toBe(0);
    expect(native.munmap(buffer)).toBe(true);
  });

  it('reports mmap failures as errno errors', () => {
    const error = thrown(() => native.mmap(nul, 0, 4096, true));
    expect(error.code).toBe('ENODEV');
    expect(error.syscall).toBe('mmap');
  });

  it('the GC finalizer unmaps what was never released, and only that', async () => {
    const script = `
      const native = require('node-gyp-build')(${JSON.stringify(ROOT)});
      const fs = require('fs');
      const fd = fs.openSync('/dev/zero', 'r+');
      const count = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.includes('/dev/zero')).length;
      const before = count();
      // Released then collected: the finalizer must not unmap again (the address may be reused).
      let released = native.mmap(fd, 0, 1 << 20, true);
      native.munmap(released);
      released = null;
      const kept = new Uint8Array(native.mmap(fd, 0, 1 << 20, true));
      for (let i = 0; i < 64; i++) native.mmap(fd, 0, 1 << 20, true);
      const mapped = count();
      (async () => {
        for (let i = 0; i < 5; i++) { global.gc(); await new Promise((r) => setImmediate(r)); }
        kept[12345] = 9;
        console.log(JSON.stringify({ before, mapped, after: count(), kept: kept[12345] }));
      })();`;
    const out = await runNode(['--expose-gc', '-e', script]);
    const r = JSON.parse(out) as { before: number; mapped: number; after: number; kept: number };
    expect(r.mapped - r.before).toBeGreaterThanOrEqual(65);
    expect(r.after - r.before).toBe(1);
    expect(r.kept).toBe(9);
  });
});

describe('native shim: the evtchn watcher', () => {
  it('drains fired ports into one call and leaves them masked until evtchnUnmask writes each back', async () => {
    // The child watches its fd 3, one end of a socketpair; we hold the other end.
    const script = `
      const native = require('node-gyp-build')(${JSON.stringify(ROOT)});
      const w = new native.Watcher(3, true, (error, ports) => {
        if (error) { console.log(JSON.stringify({ code: error.code, syscall: error.syscall })); return; }
        console.log(JSON.stringify({ ports }));
        // Unmask only two of them: the shim itself writes nothing back.
        native.evtchnUnmask(3, 300);
        native.evtchnUnmask(3, 5);
      });`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit', 'pipe'] });
    const channel = child.stdio[3] as import('node:net').Socket;
    const lines = lineReader(child.stdout!);
    const unmasked: number[] = [];
    channel.on('data', (chunk: Buffer) => {
      for (let i = 0; i + 4 <= chunk.length; i += 4) unmasked.push(chunk.readUInt32LE(i));
    });

    const ports = Buffer.alloc(12);
    [5, 7, 300].forEach((p, i) => ports.writeUInt32LE(p, i * 4));
    channel.write(ports);
    expect(JSON.parse(await lines.next())).toEqual({ ports: [5, 7, 300] });
    await waitFor(() => unmasked.length === 2);
    await new Promise((r) => setTimeout(r, 50));
    expect(unmasked).toEqual([300, 5]);

    // The other end going away stops the watcher with one error, not a spin.
    channel.end();
    expect(JSON.parse(await lines.next())).toEqual({ code: 'EOF', syscall: 'read(evtchn)' });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(0); // closed and unref'd itself: the child could exit
  });

  it('in plain mode says "readable" and lets JS read; close() inside the callback is safe', async () => {
    const script = `
      const native = require('node-gyp-build')(${JSON.stringify(ROOT)});
      const fs = require('fs');
      const w = new native.Watcher(3, false, (error) => {
        const buf = Buffer.alloc(64);
        const n = fs.readSync(3, buf);
        console.log(JSON.stringify({ error, text: buf.subarray(0, n).toString() }));
        w.close(); w.close();
      });`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit', 'pipe'] });
    const lines = lineReader(child.stdout!);
    (child.stdio[3] as import('node:net').Socket).write('hello');
    expect(JSON.parse(await lines.next())).toEqual({ error: null, text: 'hello' });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
  });

  it('unref() lets the process exit while the watcher is active', async () => {
    const script = `
      const native = require('node-gyp-build')(${JSON.stringify(ROOT)});
      const w = new native.Watcher(3, true, () => {});
      w.unref();
      setTimeout(() => console.log('exiting'), 10);`;
    const out = await runNode(['-e', script], ['ignore', 'pipe', 'inherit', 'pipe']);
    expect(out.trim()).toBe('exiting');
  });
});

function runNode(args: string[], stdio: Array<'ignore' | 'pipe' | 'inherit'> = ['ignore', 'pipe', 'inherit']): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node ${args[0]} did not exit within 20 s; output so far: ${out}`));
    }, 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`node exited with ${code}: ${out}`));
    });
  });
}

function lineReader(stream: NodeJS.ReadableStream): { next(): Promise<string> } {
  const lines: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  let partial = '';
  stream.on('data', (d: Buffer) => {
    partial += d.toString();
    let i;
    while ((i = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, i);
      partial = partial.slice(i + 1);
      const w = waiting.shift();
      if (w) w(line);
      else lines.push(line);
    }
  });
  return {
    next: () => {
      const line = lines.shift();
      if (line !== undefined) return Promise.resolve(line);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no output from the child within 5 s')), 5000);
        waiting.push((l) => {
          clearTimeout(t);
          resolve(l);
        });
      });
    },
  };
}

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(condition()).toBe(true);
}
