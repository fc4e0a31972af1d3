#!/usr/bin/env node
// `npm run prebuild` (and so `npm run build`, `npm pack`): the native parts
// the package ships, built for this machine's platform, arch and libc:
//   prebuilds/<platform>-<arch>/xen-vchan.<libc>.node   the Node-API addon, by
//       prebuildify (node-gyp underneath); Node-API is stable across versions,
//       so one build serves every Node >= 20. node-gyp-build loads it.
//   prebuilds/<platform>-<arch>/libxensim.<libc>.so     the emulator's
//       LD_PRELOAD library (sim/build.sh); xensim looks for it there.
// Node's headers are those of the Node running this script,
// <prefix>/include/node (Node's release tarballs and the distributions'
// development packages install them there), handed to node-gyp as its
// nodedir: the build downloads nothing and does not depend on anyone's npm
// configuration. Rebuilds only what is older than its sources; prints one
// line, or the compiler's output when a build fails.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { arch, platform } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
// the rule node-gyp-build applies when it picks a prebuild
const LIBC = process.env.LIBC || (existsSync('/etc/alpine-release') ? 'musl' : 'glibc');
const OUT = join(ROOT, 'prebuilds', `${platform()}-${arch()}`);
const ADDON = join(OUT, `xen-vchan.${LIBC}.node`);
const PRELOAD = join(OUT, `libxensim.${LIBC}.so`);

function fail(what, output = '') {
  if (output) process.stderr.write(output.split('\n').slice(-60).join('\n') + '\n');
  process.stderr.write(`prebuild: ${what}\n`);
  process.exit(1);
}

function files(dir) {
  return readdirSync(join(ROOT, dir)).map((f) => join(ROOT, dir, f));
}

/** True when `output` exists and is newer than every one of `inputs`. */
function upToDate(output, inputs) {
  if (!existsSync(output)) return false;
  const built = statSync(output).mtimeMs;
  return inputs.every((f) => statSync(f).mtimeMs <= built);
}

function run(command, args, env = process.env) {
  const r = spawnSync(command, args, { cwd: ROOT, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) fail(`cannot run ${command}: ${r.error.message}`);
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

function nodeHeaders() {
  const prefix = join(dirname(process.execPath), '..');
  const include = join(prefix, 'include', 'node');
  if (!existsSync(join(include, 'node_api.h')) || !existsSync(join(include, 'common.gypi'))) {
    fail(`Node's headers are not in ${include} (node_api.h, common.gypi): install the Node that runs this script from a release tarball or with its distribution's headers package`);
  }
  return prefix;
}

function nodeGyp() {
  // npm hands its own node-gyp to the scripts it runs
  const gyp = process.env.npm_config_node_gyp;
  if (!gyp || !existsSync(gyp)) fail('node-gyp not found: run this as `npm run prebuild`');
  return gyp;
}

function buildAddon() {
  const prebuildify = join(ROOT, 'node_modules', 'prebuildify', 'bin.js');
  if (!existsSync(prebuildify)) fail('prebuildify is missing: run `npm install` first');
  const env = {
    ...process.env,
    npm_config_nodedir: nodeHeaders(),
    PREBUILD_NODE_GYP: nodeGyp(),
    PREBUILD_LIBC: LIBC,
    JOBS: process.env.JOBS || 'max', // node-gyp: make -j<cores>
  };
  const r = run(process.execPath, [prebuildify, '--napi', '--strip', '--tag-libc', `--target=${process.versions.node}`], env);
  if (!r.ok || !existsSync(ADDON)) fail(`building the addon failed (prebuildify, node-gyp)`, r.output);
}

function buildPreload() {
  const tmp = `${PRELOAD}.tmp`;
  const r = run('sh', [join(ROOT, 'sim', 'build.sh'), tmp]);
  if (!r.ok) fail('building libxensim.so failed (sim/build.sh)', r.output);
  run('strip', ['--strip-debug', tmp]); // smaller; harmless to skip where strip is missing
  renameSync(tmp, PRELOAD);
}

const self = fileURLToPath(import.meta.url);
const addonInputs = [...files('native'), join(ROOT, 'binding.gyp'), self];
const preloadInputs = [...files('sim/preload'), join(ROOT, 'sim', 'build.sh'), self];
mkdirSync(OUT, { recursive: true });
const built = [];
if (!upToDate(ADDON, addonInputs)) {
  buildAddon();
  built.push(ADDON);
}
if (!upToDate(PRELOAD, preloadInputs)) {
  buildPreload();
  built.push(PRELOAD);
}
// nothing else belongs there (an old name, a leftover .tmp)
for (const f of readdirSync(OUT)) if (![ADDON, PRELOAD].includes(join(OUT, f))) rmSync(join(OUT, f), { force: true });
const size = (f) => `${Math.ceil(statSync(f).size / 1024)} KiB`;
const list = [ADDON, PRELOAD].map((f) => `${relative(ROOT, f)} (${size(f)})`).join(', ');
process.stderr.write(`prebuild: ${built.length ? 'built' : 'up to date:'} ${list}\n`);
