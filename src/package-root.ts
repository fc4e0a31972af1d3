/**
 * Where the installed package lives, found from this module's own file, and
 * its version: the native loader looks for the addon there, the commands
 * print the version from there.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * This module's directory. An ES module knows it from import.meta.url (a
 * global __dirname, as `node -e` defines, would be wrong there); the
 * CommonJS build defines import.meta.url as undefined (tsup.config.ts) and
 * has its own __dirname.
 */
function moduleDir(): string {
  const url: string | undefined = import.meta.url;
  return url ? dirname(fileURLToPath(url)) : __dirname;
}

let root: string | undefined;

/** The package root: the nearest directory above this module holding binding.gyp. */
export function packageRoot(): string {
  if (root !== undefined) return root;
  let dir = moduleDir();
  for (;;) {
    if (existsSync(join(dir, 'binding.gyp'))) return (root = dir);
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the xen-vchan package root (binding.gyp) above ' + moduleDir());
    dir = up;
  }
}

/** `version` from the package's package.json. */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: unknown };
  return String(pkg.version);
}
