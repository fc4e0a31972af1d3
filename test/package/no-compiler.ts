/**
 * A fresh project that installs the packed tarball on a machine with no
 * C/C++ toolchain: PATH holds only node, npm, npx and sh, and CC/CXX are
 * `false`. Whatever needs a compiler fails there, as on a minimal image.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { REPO_ROOT } from '../support/c-peer.js';
import { cleanEnv } from './pack.js';

/** What must not be reachable: compilers, make, and python3 (node-gyp needs it). */
export const TOOLCHAIN = ['cc', 'gcc', 'g++', 'c++', 'clang', 'clang++', 'make', 'python3', 'python'];

function which(name: string): string {
  const path = execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
  return realpathSync(path);
}

export class Consumer {
  readonly dir: string;
  readonly env: Record<string, string>;
  /** Milliseconds `npm install` took, and what it printed. */
  installMs = 0;
  installOutput = '';

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'xen-vchan-consumer-'));
    const bin = join(this.dir, '.bin-no-compiler');
    mkdirSync(bin);
    // npm and npx are scripts that find their npm through their own real path
    for (const tool of ['node', 'npm', 'npx', 'sh']) symlinkSync(which(tool), join(bin, tool));
    this.env = cleanEnv({ PATH: bin, CC: 'false', CXX: 'false', XENSIM_DIR: join(this.dir, '.xensim') });
    writeFileSync(join(this.dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }, null, 2));
  }

  /** The toolchain programs that this project's PATH still reaches (none, or the test is void). */
  reachableToolchain(): string[] {
    return TOOLCHAIN.filter((t) => this.env.PATH!.split(delimiter).some((d) => existsSync(join(d, t))));
  }

  /** npm install of the tarball and, for the TypeScript checks, @types/node, from npm's cache where it has them. */
  async install(tarball: string): Promise<void> {
    const typesNode = (JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules/@types/node/package.json'), 'utf8')) as { version: string }).version;
    const started = performance.now();
    const r = await this.run(['npm', 'install', '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', tarball, `@types/node@${typesNode}`]);
    this.installMs = performance.now() - started;
    this.installOutput = `${r.stdout}${r.stderr}`;
    if (r.code !== 0) throw new Error(`npm install of ${tarball} without a compiler failed (exit ${r.code}):\n${this.installOutput}`);
  }

  get packageDir(): string {
    return join(this.dir, 'node_modules', 'xen-vchan');
  }

  /** Runs a command of this project to its end (asynchronously: a blocked test worker misses vitest's heartbeats). */
  run(argv: string[], timeoutMs = 280_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = this.spawn(argv);
      child.stdin.end();
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('error', reject);
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  spawn(argv: string[]) {
    return spawn(argv[0]!, argv.slice(1), { cwd: this.dir, env: this.env, stdio: ['pipe', 'pipe', 'pipe'] });
  }
}
