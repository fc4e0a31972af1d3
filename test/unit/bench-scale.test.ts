// `npm run bench -- --scale --quick` runs end to end under xensim and
// prints a row for every N and both servers. No figure is checked: timings
// on a shared machine are not a test.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { REPO_ROOT } from '../support/c-peer.js';

const execFileP = promisify(execFile);

it('npm run bench -- --scale --quick prints a row for N = 1 and 10, for createServer and vchan-socket-proxy', async () => {
  const { stdout } = await execFileP(process.execPath, [join(REPO_ROOT, 'bench/launch.mjs'), '--scale', '--quick'], {
    cwd: REPO_ROOT,
    maxBuffer: 1 << 20,
  });
  const rows = stdout.split('\n').filter((l) => /^\| \d+ \|/.test(l));
  const keys = rows.map((l) => l.split('|').slice(1, 3).map((c) => c.trim()).join(' '));
  expect(keys).toEqual([
    '1 createServer (1 Node process)',
    '1 vchan-socket-proxy × N (C)',
    '10 createServer (1 Node process)',
    '10 vchan-socket-proxy × N (C)',
  ]);
  // every cell filled: the columns line up with the header
  const columns = stdout.split('\n').find((l) => l.startsWith('| N |'))!.split('|').length;
  for (const r of rows) expect(r.split('|').length).toBe(columns);
}, 120_000);
