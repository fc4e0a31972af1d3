/**
 * `npm pack` as a publish would run it, on a copy of the work tree holding
 * only what git would check out (tracked files and new ones not ignored):
 * its `prepack` must build everything the tarball needs. The copy gets the
 * repository's prebuilds/ when they exist and are up to date (timestamps
 * kept), so the native parts are not compiled a second time per run.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { cpSync, existsSync, mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { REPO_ROOT } from '../support/c-peer.js';

export interface Packed {
  tarball: string;
  /** The clean copy it was packed from. */
  copy: string;
  /** Paths inside the package, as npm lists them. */
  files: string[];
  size: number;
  unpackedSize: number;
}

/** The environment without what npm set for the script running us. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^npm_/i.test(k) && k !== 'INIT_CWD') env[k] = v;
  return { ...env, ...extra };
}

const execFileP = promisify(execFile);

/** Async throughout: a test worker blocked for long misses vitest's heartbeats. */
export async function packCleanCopy(into: string): Promise<Packed> {
  const copy = mkdtempSync(join(tmpdir(), 'xen-vchan-clean-'));
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO_ROOT, encoding: 'utf8' });
  for (const file of listed.split('\0')) {
    if (!file || !existsSync(join(REPO_ROOT, file))) continue;
    mkdirSync(dirname(join(copy, file)), { recursive: true });
    cpSync(join(REPO_ROOT, file), join(copy, file), { preserveTimestamps: true });
  }
  if (existsSync(join(REPO_ROOT, 'prebuilds'))) cpSync(join(REPO_ROOT, 'prebuilds'), join(copy, 'prebuilds'), { recursive: true, preserveTimestamps: true });
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(copy, 'node_modules'));
  const { stdout: out } = await execFileP('npm', ['pack', '--json', '--pack-destination', into], {
    cwd: copy,
    env: cleanEnv(),
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const [info] = JSON.parse(out) as Array<{ filename: string; files: Array<{ path: string }>; size: number; unpackedSize: number }>;
  if (!info) throw new Error(`npm pack printed no package: ${out}`);
  return { tarball: join(into, info.filename), copy, files: info.files.map((f) => f.path), size: info.size, unpackedSize: info.unpackedSize };
}
