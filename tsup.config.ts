import { defineConfig } from 'tsup';

// The library (ESM + CJS + .d.ts) and the worker entry the in-memory backend
// spawns; the worker must exist as its own file next to the bundles.
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'memory/index': 'src/memory/index.ts',
    // the emulator's command line (bin `xensim`)
    'sim/cli': 'sim/cli.ts',
    // the `vchan` command (bin `vchan`); its shebang comes from src/cli/main.ts
    'cli/vchan': 'src/cli/main.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  splitting: false,
});
