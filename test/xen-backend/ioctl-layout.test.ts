/**
 * The shim declares the kernel's ioctl structs itself (so it builds without
 * Xen headers); this compiles those declarations against Debian's
 * libxen-dev headers, whose static_asserts fail on any mismatch.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');

describe('native/xen_ioctl.h', () => {
  it('matches the layouts and numbers of Debian\'s xen/sys/{gntalloc,gntdev,evtchn}.h', () => {
    const debian = execFileSync('bash', [join(ROOT, 'scripts/debian-packages.sh')], { encoding: 'utf8' }).trim();
    const cxx = process.env.CXX ?? 'g++';
    const args = ['-std=c++17', '-fsyntax-only', '-I', join(debian, 'usr/include'), join(import.meta.dirname, 'c/ioctl-layout.cc')];
    const result = spawnSync(cxx, args, { encoding: 'utf8' });
    // The compiler's messages name the field or ioctl that differs.
    expect({ status: result.status, stderr: result.stderr, error: result.error?.message }).toEqual({ status: 0, stderr: '', error: undefined });
  });
});
