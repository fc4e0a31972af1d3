/**
 * Worker threads cannot load the TypeScript sources directly, so tests that
 * spawn workers bundle the worker's entry with esbuild first (milliseconds).
 */
import { buildSync } from 'esbuild';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

const built = new Map<string, string>();

/** Bundles `entry` (a path to a .ts file) once per test process; returns the .mjs path. */
export function bundleWorker(entry: string): string {
  const done = built.get(entry);
  if (done !== undefined) return done;
  const dir = join(tmpdir(), 'xen-vchan-test-workers');
  mkdirSync(dir, { recursive: true });
  const outfile = join(dir, `${basename(entry, '.ts')}-${process.pid}.mjs`);
  buildSync({ entryPoints: [entry], outfile, bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'error' });
  built.set(entry, outfile);
  return outfile;
}
