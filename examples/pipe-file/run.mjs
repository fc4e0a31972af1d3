#!/usr/bin/env node
// pipe-file under the xensim emulator, in one command: the receiver in
// domain 0, the sender in domain 5, then the two sha256 sums compared.
//
//   node examples/pipe-file/run.mjs [file]    (default: 4 MiB + 1 byte of random data)
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checker, withEmulator } from '../lib/emulator.mjs';

const here = (name) => fileURLToPath(new URL(name, import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'pipe-file-'));
const input = process.argv[2] ?? join(work, 'input.bin');
const output = join(work, 'output.bin');
// An odd size, so the last chunk does not line up with anything.
if (!process.argv[2]) writeFileSync(input, randomBytes(4 * 1024 * 1024 + 1));

const { check, finish } = checker();
try {
  await withEmulator(async ({ run }) => {
    const receiver = run(0, 'dom0 receive', [process.execPath, here('receive.mjs'), '--peer', '5', output]);
    await receiver.waitFor(/^listening/);
    const sender = run(5, 'dom5 send   ', [process.execPath, here('send.mjs'), '--peer', '0', input]);
    const [sent, received] = await Promise.all([
      sender.waitFor(/^sent (\d+) bytes .*sha256 ([0-9a-f]{64})$/),
      receiver.waitFor(/^received (\d+) bytes .*sha256 ([0-9a-f]{64})$/),
    ]);
    const codes = [await sender.exit, await receiver.exit];
    check(codes[0] === 0 && codes[1] === 0, `both programs exited with status 0 (send: ${codes[0]}, receive: ${codes[1]})`);
    check(sent[1] === received[1], `sizes match: ${sent[1]} bytes sent, ${received[1]} received`);
    check(sent[2] === received[2], `sha256 sent     ${sent[2]}`);
    check(sent[2] === received[2], `sha256 received ${received[2]}`);
  });
} catch (error) {
  check(false, error.message);
} finally {
  rmSync(work, { recursive: true, force: true });
}
finish('the file arrived intact: sha256 match');
