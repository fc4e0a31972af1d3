/**
 * The package as a user gets it: `npm pack` of a clean copy (its prepack
 * builds everything), installed into a fresh project on a machine with no
 * C/C++ toolchain. There both module systems load one copy of the library,
 * the addon and libxensim.so come from the prebuilds, TypeScript finds the
 * types of both entry points, and the commands move data under xensim.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashStream, sendPattern } from '../cli/helpers.js';
import { REPO_ROOT } from '../support/c-peer.js';
import { Consumer } from './no-compiler.js';
import { packCleanCopy, type Packed } from './pack.js';

const MiB = 1 << 20;
const FIXTURES = join(import.meta.dirname, 'fixtures');
const TSC = join(REPO_ROOT, 'node_modules/typescript/bin/tsc');
const PREBUILDS = `prebuilds/${process.platform}-${process.arch}`;

let packed: Packed;
let project: Consumer;
const scratch: string[] = [];

beforeAll(async () => {
  scratch.push(mkdtempSync(join(tmpdir(), 'xen-vchan-pack-')));
  const packing = performance.now();
  packed = await packCleanCopy(scratch[0]!);
  console.log(`npm pack of a clean copy (its prepack builds): ${((performance.now() - packing) / 1000).toFixed(1)} s`);
  scratch.push(packed.copy);
  console.log(`tarball: ${packed.size} bytes (${packed.unpackedSize} unpacked), ${packed.files.length} files`);
  project = new Consumer();
  scratch.push(project.dir);
  await project.install(packed.tarball);
  console.log(`npm install of the tarball without a compiler: ${(project.installMs / 1000).toFixed(1)} s`);
}, 400_000);

afterAll(async () => {
  if (project) await project.run(['npx', 'xensim', 'stop']);
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('holds what runs, LICENSE, README, CHANGELOG and docs; no tests, caches, TypeScript sources or source maps', () => {
    const files = packed.files;
    for (const f of ['LICENSE', 'README.md', 'CHANGELOG.md', 'docs/cli.md', 'package.json', 'binding.gyp', 'dist/index.js', 'dist/memory/index.js', 'dist/cjs/index.js', 'dist/cjs/cli/main.js', 'dist/sim/cli.js', 'sim/build.sh']) {
      expect(files, f).toContain(f);
    }
    expect(files.filter((f) => f.startsWith(`${PREBUILDS}/`)).sort()).toEqual([`${PREBUILDS}/libxensim.glibc.so`, `${PREBUILDS}/xen-vchan.glibc.node`]);
    expect(files.filter((f) => /^(test|bench|examples|scripts|build|\.cache|\.ci|node_modules|docs\/api)\//.test(f))).toEqual([]);
    expect(files.filter((f) => (f.endsWith('.ts') && !f.endsWith('.d.ts')) || f.endsWith('.map') || f.endsWith('.tgz'))).toEqual([]);
  });
});

describe('installed without a compiler', () => {
  it('installs from the prebuilds: no toolchain reachable, nothing compiled, no gyp output', async () => {
    expect(project.reachableToolchain()).toEqual([]);
    expect((await project.run(['sh', '-c', 'command -v cc gcc g++ make python3'])).stdout).toBe('');
    expect(existsSync(join(project.packageDir, 'build')), 'node-gyp ran (build/ exists)').toBe(false);
    expect(project.installOutput).not.toMatch(/^gyp /m);
  });

  it('import and require load one copy: named ES imports, one VchanError for both entry points and both module systems, the addon from the prebuild', async () => {
    copyFileSync(join(FIXTURES, 'runtime-check.mjs'), join(project.dir, 'runtime-check.mjs'));
    const r = await project.run(['node', 'runtime-check.mjs']);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(result).toEqual({
      listen: 'function',
      sameClass: true,
      cjsRootError: { code: 'ERR_VCHAN_ABORTED', instanceofEsm: true },
      esmRootError: { code: 'ERR_VCHAN_ABORTED', instanceofCjs: true },
      cjsMemoryError: { code: 'EINVAL', instanceofEsmRoot: true, instanceofCjsRoot: true },
      esmMemoryError: { code: 'EINVAL', instanceofEsmRoot: true, instanceofCjsRoot: true },
      addon: [join(realpathSync(project.packageDir), PREBUILDS, 'xen-vchan.glibc.node')],
    });
  });

  // node16 is checked as an ES module (.mts, the `import` types) and as CommonJS (.cts, the `require` types).
  // --skipLibCheck because checking @types/node takes most of the time; consumer.ts fails if our types were `any`.
  it.each([
    ['node16', ['--module', 'node16', '--moduleResolution', 'node16'], ['consumer.mts', 'consumer.cts']],
    ['bundler', ['--module', 'esnext', '--moduleResolution', 'bundler'], ['consumer.ts']],
    ['node', ['--module', 'commonjs', '--moduleResolution', 'node'], ['consumer.ts']],
  ])('a TypeScript file importing both entry points type-checks with --strict under moduleResolution %s', { timeout: 300_000 }, async (name, options, files) => {
    const dir = join(project.dir, `ts-${name}`);
    mkdirSync(dir, { recursive: true });
    for (const f of files) copyFileSync(join(FIXTURES, 'consumer.ts'), join(dir, f));
    const r = await project.run(['node', TSC, '--noEmit', '--strict', '--skipLibCheck', '--target', 'es2022', '--types', 'node', ...options, ...files.map((f) => join(dir, f))]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it('npx vchan --version and npx xensim --version print the package version', async () => {
    const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const bin of ['vchan', 'xensim']) expect(await project.run(['npx', bin, '--version']), bin).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('npx xensim + npx vchan listen/connect move 16 MiB both ways byte-exact, with the prebuilt libxensim.so', async () => {
    const start = await project.run(['npx', 'xensim', 'start']);
    expect(start.code, start.stderr).toBe(0);
    const preload = await project.run(['npx', 'xensim', 'run', '--domid', '3', '--', 'node', '-p', 'process.env.LD_PRELOAD']);
    expect(preload.stdout.trim()).toBe(join(realpathSync(project.packageDir), PREBUILDS, 'libxensim.glibc.so'));

    const size = 16 * MiB;
    const exit = (child: ReturnType<Consumer['spawn']>) => {
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d));
      return new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
    };
    const server = project.spawn(['npx', 'xensim', 'run', '--domid', '1', '--', 'npx', 'vchan', 'listen', '--peer', '2', '--port', '7']);
    const client = project.spawn(['npx', 'xensim', 'run', '--domid', '2', '--', 'npx', 'vchan', 'connect', '--peer', '1', '--port', '7', '--timeout', '30000']);
    const [toServer, toClient, atServer, atClient, serverExit, clientExit] = await Promise.all([
      sendPattern(server.stdin, 31, size),
      sendPattern(client.stdin, 32, size),
      hashStream(server.stdout),
      hashStream(client.stdout),
      exit(server),
      exit(client),
    ]);
    expect(serverExit).toEqual({ code: 0, stderr: '' });
    expect(clientExit).toEqual({ code: 0, stderr: '' });
    expect(atClient).toEqual({ sha256: toServer.sha256, length: size });
    expect(atServer).toEqual({ sha256: toClient.sha256, length: size });
    // nothing was built on the way: no compiler, so no libxensim.so of its own
    expect(readdirSync(project.env.XENSIM_DIR!).filter((f) => f.endsWith('.so'))).toEqual([]);
  });
});
