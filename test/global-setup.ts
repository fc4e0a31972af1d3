/**
 * Runs once before any test file: fetches Debian's Xen packages (the real C
 * peers and tools) so that parallel test files never race to extract them.
 * A failure stops the run with the fetcher's message: nothing is skipped.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const script = fileURLToPath(new URL('../scripts/debian-packages.sh', import.meta.url));
  try {
    execFileSync('bash', [script], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const stderr = String((error as { stderr?: Buffer }).stderr ?? '');
    throw new Error(`cannot fetch Debian's Xen packages, which the interop tests need:\n${stderr}`);
  }
}
