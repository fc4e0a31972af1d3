// The benchmark harness runs end to end on a tiny configuration and writes
// records of the shape issue 7 specifies. No figure is checked: timings on
// a shared machine are not a test.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { REPO_ROOT } from '../support/c-peer.js';

const execFileP = promisify(execFile);

it('npm run bench writes one record per measurement with the fields of the issue', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
  try {
    const json = join(dir, 'out.json');
    const only = '^(bulk (c-c c|ts-ts vchan|shm-limit c) w=65536 ring=1048576|pingpong ts-ts vchan)';
    const { stdout } = await execFileP(
      process.execPath,
      [join(REPO_ROOT, 'bench/launch.mjs'), '--sim', '--reps', '1', '--seconds', '0.1', '--only', only, '--json', json],
      { cwd: REPO_ROOT, maxBuffer: 1 << 20 },
    );
    expect(stdout).toContain('| 64 KiB | 1 MiB | C↔C | c |');
    expect(stdout).toMatch(/\| bulk 64 KiB writes, 1 MiB ring, Vchan TS↔TS ≥ 1\.0× C↔C \| [\d.]+× ±\d+% \| \*\*(met|short|noisy)\*\* \|/);
    expect(stdout).toMatch(/^placement: (server pinned to CPU 0, client to CPU 1|not pinned \(.+\))/m);
    expect(stdout).toMatch(/^load average \(1\/5\/15 min\): [\d.]+ \/ [\d.]+ \/ [\d.]+ before, [\d.]+ \/ [\d.]+ \/ [\d.]+ after$/m);
    const records = JSON.parse(readFileSync(json, 'utf8')) as Record<string, unknown>[];
    expect(records.map((r) => `${r.scenario} ${r.impl} ${r.api}`)).toEqual(['bulk c-c c', 'bulk ts-ts vchan', 'bulk shm-limit c', 'pingpong ts-ts vchan']);
    for (const r of records) {
      expect(Object.keys(r).every((k) => ['scenario', 'impl', 'api', 'writeSize', 'ringSize', 'mbps', 'latencyUsP50', 'latencyUsP99', 'opsPerSec', 'cpuSecPerGiB', 'cpuUsPerRoundTrip', 'runs'].includes(k))).toBe(true);
      expect(r.runs).toHaveLength(1);
    }
    const [cc, ts, shm, pp] = records;
    for (const r of [cc, ts, shm]) {
      expect(r).toMatchObject({ writeSize: 65536, ringSize: 1 << 20 });
      expect(r!.mbps).toBeGreaterThan(0);
      expect(r!.cpuSecPerGiB).toBeGreaterThan(0);
    }
    expect(pp).toMatchObject({ writeSize: 64 });
    expect(pp!.latencyUsP50).toBeGreaterThan(0);
    expect(pp!.latencyUsP99).toBeGreaterThanOrEqual(pp!.latencyUsP50 as number);
    expect(pp!.cpuUsPerRoundTrip).toBeGreaterThan(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
