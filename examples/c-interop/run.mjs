#!/usr/bin/env node
// c-interop under the xensim emulator, in one command: the Node server in
// domain 0 and test/c/vchan-peer.c, built on Debian's libxenvchan.so.4.17,
// as the client in domain 5. Each side checks what the other sent.
//
//   node examples/c-interop/run.mjs [bytes]     (default 1 MiB each way)
//
// Needs a C compiler and apt-get: scripts/debian-packages.sh fetches
// Debian's Xen libraries into .cache/ (nothing is installed).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checker, ROOT, withEmulator } from '../lib/emulator.mjs';

const here = (name) => fileURLToPath(new URL(name, import.meta.url));
const bytes = Number(process.argv[2] ?? 1 << 20);
const PORT = 1004;

/** Compiles vchan-peer against Debian's libxenvchan (once; again when the source changes). */
function buildCClient() {
  let root;
  try {
    const printed = execFileSync('bash', [join(ROOT, 'scripts/debian-packages.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    root = printed.trim().split('\n').pop();
  } catch (error) {
    throw new Error(`Debian's Xen libraries could not be fetched by scripts/debian-packages.sh:\n${error.stderr || error.message}`);
  }
  const libDir = join(root, 'usr/lib/x86_64-linux-gnu');
  const source = join(ROOT, 'test/c/vchan-peer.c');
  const binary = join(ROOT, '.cache/c/vchan-peer-example');
  const sources = [source, join(ROOT, 'test/c/pattern.h')];
  if (!existsSync(binary) || sources.some((s) => statSync(s).mtimeMs > statSync(binary).mtimeMs)) {
    mkdirSync(join(ROOT, '.cache/c'), { recursive: true });
    const tmp = `${binary}.${process.pid}.tmp`; // renamed into place: a parallel run never sees half a file
    const cc = process.env.CC ?? 'cc';
    try {
      execFileSync(cc, ['-O2', `-I${join(root, 'usr/include')}`, source, `-L${libDir}`, `-Wl,-rpath-link,${libDir}`, '-lxenvchan', '-lxentoollog', '-o', tmp], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    } catch (error) {
      throw new Error(`compiling test/c/vchan-peer.c with ${cc} failed:\n${error.stderr || error.message}`);
    }
    renameSync(tmp, binary);
  }
  return { binary, libDir };
}

const { check, finish } = checker();
try {
  await withEmulator(async ({ run }) => {
    const c = buildCClient();
    const server = run(0, 'dom0 node', [process.execPath, here('server.mjs'), '--peer', '5', '--port', String(PORT), '--bytes', String(bytes)]);
    await server.waitFor(/^listening/);
    const path = `/local/domain/0/data/vchan/5/${PORT}`;
    const client = run(5, 'dom5 C   ', [c.binary, 'client', '0', path, '--bytes', String(bytes)], {
      LD_LIBRARY_PATH: [c.libDir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
    });
    const [serverCode, clientCode] = [await server.exit, await client.exit];
    // vchan-peer's last line is its verdict, as JSON.
    const verdict = JSON.parse(client.lines.findLast((l) => l.startsWith('{"ok"')) ?? '{}');
    check(serverCode === 0 && clientCode === 0, `both exited with status 0 (node: ${serverCode}, C: ${clientCode})`);
    check(verdict.ok === true && verdict.received === bytes, `Node -> C: ${bytes} bytes, every one checked by the C client (it reports ${verdict.received ?? 0} received${verdict.error ? `, ${verdict.error}` : ''})`);
    check(
      verdict.sent === bytes && server.lines.includes(`C -> Node: received ${bytes} bytes, every one as the C client's pattern 2 says`),
      `C -> Node: ${bytes} bytes, every one checked by the Node server (the C client reports ${verdict.sent ?? 0} sent)`,
    );
  });
} catch (error) {
  check(false, error.message);
}
finish(`Node and C libxenvchan: ${bytes} bytes each way, every byte checked on arrival`);
