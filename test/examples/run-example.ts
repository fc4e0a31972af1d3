/**
 * Runs an example's run.mjs as a user would (`node examples/<name>/run.mjs`),
 * with its xensim broker in a private state directory, and checks afterwards
 * that run.mjs stopped that broker. Nothing is mocked: the examples import
 * the built package (dist/), so `npm run build` must have run.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../support/c-peer.js';

const execFileP = promisify(execFile);
const CLI = join(REPO_ROOT, 'dist/sim/cli.js');

export interface ExampleRun {
  code: number;
  stdout: string;
  stderr: string;
  /** Whether a broker still answered in the state directory after run.mjs exited. */
  brokerLeftRunning: boolean;
  ms: number;
}

export async function runExample(name: string, args: string[] = [], timeoutMs = 45_000): Promise<ExampleRun> {
  if (!existsSync(join(REPO_ROOT, 'dist/index.js')) || !existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` first');
  // Short: the broker's unix socket paths must fit in 108 bytes.
  const dir = mkdtempSync('/tmp/xvx-');
  const env = { ...process.env, XENSIM_DIR: dir };
  const started = performance.now();
  try {
    const result = await execFileP(process.execPath, [join(REPO_ROOT, 'examples', name, 'run.mjs'), ...args], {
      cwd: REPO_ROOT,
      env,
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      maxBuffer: 4 << 20,
    }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code?: number | string; stdout?: string; stderr?: string; killed?: boolean }) => ({
        code: typeof error.code === 'number' ? error.code : -1,
        stdout: error.stdout ?? '',
        stderr: `${error.stderr ?? ''}${error.killed ? `\n(killed after ${timeoutMs} ms)` : ''}`,
      }),
    );
    const ms = performance.now() - started;
    const status = await execFileP(process.execPath, [CLI, 'status'], { env }).then(
      () => true,
      () => false,
    );
    return { ...result, brokerLeftRunning: status, ms };
  } finally {
    // Whatever happened, leave no broker or state behind.
    await execFileP(process.execPath, [CLI, 'stop'], { env }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Output worth reading when an expectation fails. */
export function transcript(run: ExampleRun): string {
  return `exit ${run.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
}
