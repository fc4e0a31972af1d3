/**
 * sim/preload/wire.h (compiled into libxensim.so) and sim/broker/wire.ts
 * must agree on every number and layout, and the broker's ioctl numbers
 * must be the ones Debian's Xen headers give programs: a C program built
 * against both headers prints what the compiler sees, compared here with
 * what the broker uses.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import * as wire from '../../sim/broker/wire.js';
import { ensureCPeers, REPO_ROOT } from '../support/c-peer.js';

const execFileP = promisify(execFile);

/** The broker's side, named as the C program names it. */
function brokerNumbers(): Record<string, number> {
  const out: Record<string, number> = {};
  const add = (prefix: string, table: object): void => {
    for (const [key, value] of Object.entries(table)) {
      if (typeof value === 'number') out[`${prefix}${key}`] = value;
      else add(`${prefix}${key}.`, value as object);
    }
  };
  add('Op.', wire.Op);
  add('Kind.', wire.Kind);
  add('Ioctl.', wire.Ioctl);
  add('', wire.Layout);
  Object.assign(out, {
    FROM_BROKER: wire.FROM_BROKER,
    SLOT_MASKED: wire.SLOT_MASKED,
    SLOT_GEN_SHIFT: wire.SLOT_GEN_SHIFT,
    SLOT_BYTES: wire.SLOT_BYTES,
    UNMAP_NOTIFY_CLEAR_BYTE: wire.UNMAP_NOTIFY_CLEAR_BYTE,
    UNMAP_NOTIFY_SEND_EVENT: wire.UNMAP_NOTIFY_SEND_EVENT,
    // the broker answers gntdev's SET_UNMAP_NOTIFY with gntalloc's number: the headers must agree
    'gntdev.SET_UNMAP_NOTIFY': wire.Ioctl.GNT_SET_UNMAP_NOTIFY,
  });
  return out;
}

it("wire.h, wire.ts and Debian's xen/sys headers agree", async () => {
  const { root } = await ensureCPeers();
  const dir = join(REPO_ROOT, '.cache', 'sim-test');
  mkdirSync(dir, { recursive: true });
  const bin = join(dir, `wire-dump.${process.pid}`);
  const src = join(REPO_ROOT, 'test/sim/c/wire-dump.c');
  await execFileP(process.env.CC ?? 'cc', ['-Wall', '-Werror', '-std=gnu11', `-I${join(REPO_ROOT, 'sim/preload')}`, `-I${join(root, 'usr/include')}`, src, '-o', bin]);
  const seen = JSON.parse((await execFileP(bin).finally(() => rmSync(bin, { force: true }))).stdout) as Record<string, number>;
  expect(seen).toEqual(brokerNumbers());
}, 60_000);
