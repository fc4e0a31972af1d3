import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { defineConfig } from 'tsup';

/**
 * One copy of each module, however the package is loaded.
 *
 * The library is CommonJS, one output file per source file (dist/cjs/, with
 * a package.json saying "type": "commonjs"): `xen-vchan` and
 * `xen-vchan/memory` both require dist/cjs/errors.js, so there is one
 * VchanError class, whichever entry point made the error. The ES entry
 * points (dist/index.js, dist/memory/index.js) are one line each,
 * `export * from './cjs/...'`: `import` and `require` reach the same module
 * instances, so no class exists twice (the dual-package hazard). Node finds
 * the named exports of the CommonJS files through the export list esbuild
 * annotates them with. Per-file output also needs no source maps: each
 * file reads like its source.
 *
 * Types: tsc writes one .d.ts per module beside the CommonJS files (CommonJS
 * declarations, as the package.json there says); the ES entry points'
 * .d.ts re-export them. `moduleResolution: node`, which ignores `exports`,
 * finds `xen-vchan/memory` through `typesVersions` in package.json.
 *
 * The xensim command is a program of its own (an ES bundle): it shares no
 * object with the library or its users.
 */
const ESM_ENTRIES = ['index', 'memory/index'];

function writeEsmEntries(): void {
  writeFileSync('dist/cjs/package.json', '{ "type": "commonjs" }\n');
  for (const entry of ESM_ENTRIES) {
    const target = `${'../'.repeat(entry.split('/').length - 1) || './'}cjs/${entry}.js`;
    mkdirSync(dirname(join('dist', entry)), { recursive: true });
    for (const ext of ['.js', '.d.ts']) writeFileSync(join('dist', entry + ext), `export * from '${target}';\n`);
  }
}

export default defineConfig([
  {
    entry: ['src/**/*.ts'],
    outDir: 'dist/cjs',
    format: ['cjs'],
    bundle: false,
    outExtension: () => ({ js: '.js' }),
    // src/package-root.ts: an ES module asks import.meta.url, CommonJS has __dirname.
    define: { 'import.meta.url': 'undefined' },
    target: 'node20',
    silent: true,
    onSuccess: async () => writeEsmEntries(),
  },
  {
    // the emulator's command line (bin `xensim`)
    entry: { 'sim/cli': 'sim/cli.ts' },
    outDir: 'dist',
    format: ['esm'],
    target: 'node20',
    silent: true,
  },
]);
