// `npm run bench` lands here: bundle the TypeScript bench (orchestrator and
// peer, the peer with the library's sources) into .cache/bench with esbuild,
// build the package first if the emulator or the addon is missing, then run.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const cache = join(process.env.XEN_VCHAN_CACHE ?? join(repo, '.cache'), 'bench');
const needed = ['dist/sim/cli.js', 'build/sim/libxensim.so'];
// the addon: a local node-gyp build or the prebuild (npm run build makes the latter)
const addon = ['build/Release/xen_vchan.node', `prebuilds/${process.platform}-${process.arch}/xen-vchan.glibc.node`];
if (needed.some((f) => !existsSync(join(repo, f))) || !addon.some((f) => existsSync(join(repo, f)))) {
  const r = spawnSync('npm', ['run', 'build'], { cwd: repo, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
mkdirSync(cache, { recursive: true });
// Inside the repo, so the bundled library finds binding.gyp (and the addon) above it.
buildSync({
  entryPoints: {
    main: join(repo, 'bench/main.ts'),
    peer: join(repo, 'bench/peer/main.ts'),
    micro: join(repo, 'bench/micro.ts'),
    scale: join(repo, 'bench/scale/main.ts'),
    'scale-echo': join(repo, 'bench/scale/echo.ts'),
  },
  outdir: cache,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  logLevel: 'error',
});
const args = process.argv.slice(2);
const entry = args.includes('--scale') ? 'scale.mjs' : 'main.mjs';
const r = args[0] === '--micro'
  ? spawnSync(process.execPath, [join(cache, 'micro.mjs')], { stdio: 'inherit' })
  : spawnSync(process.execPath, [join(cache, entry), '--repo', repo, '--cache', cache, ...args], { stdio: 'inherit' });
process.exit(r.status ?? 1);
