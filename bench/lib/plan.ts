/** Which measurements a run makes: the quick set (< 3 minutes) or the full grid of the issue. */
export type Scenario = 'bulk' | 'bidir' | 'pingpong' | 'connect';
export type Impl = 'c-c' | 'ts-ts' | 'ts-c' | 'c-ts' | 'shm-limit' | 'unix-socket';
export type Api = 'vchan' | 'stream' | 'c';

/** One measurement; `impl` names the server first (bulk: the sender; pingpong: the echoer). */
export interface Case {
  scenario: Scenario;
  impl: Impl;
  api: Api;
  writeSize: number;
  /** Bytes of the data ring (0 for the unix socket, which has none). */
  ringSize: number;
}

export interface PlanOptions {
  full: boolean;
}

const KiB = 1024;
const MiB = 1024 * KiB;
export const WRITE_SIZES = [64, 512, 4 * KiB, 64 * KiB, MiB];
export const RING_SIZES = [KiB, 4 * KiB, 64 * KiB, MiB];

/** Every way to move bytes through a ring, C↔C first (the reference of each group). */
const VCHAN_IMPLS: [Impl, Api][] = [
  ['c-c', 'c'],
  ['ts-ts', 'vchan'],
  ['ts-ts', 'stream'],
  ['ts-c', 'vchan'],
  ['ts-c', 'stream'],
  ['c-ts', 'vchan'],
  ['c-ts', 'stream'],
];

function bulkGroup(writeSize: number, ringSize: number, impls: [Impl, Api][], withBaselines: boolean): Case[] {
  const cases: Case[] = impls.map(([impl, api]) => ({ scenario: 'bulk', impl, api, writeSize, ringSize }));
  if (withBaselines) {
    cases.push({ scenario: 'bulk', impl: 'shm-limit', api: 'c', writeSize, ringSize });
  }
  return cases;
}

export function plan({ full }: PlanOptions): Case[] {
  const cases: Case[] = [];
  const core: [Impl, Api][] = VCHAN_IMPLS.slice(0, 3);
  if (full) {
    for (const w of WRITE_SIZES) {
      for (const r of RING_SIZES) cases.push(...bulkGroup(w, r, VCHAN_IMPLS, true));
      cases.push({ scenario: 'bulk', impl: 'unix-socket', api: 'stream', writeSize: w, ringSize: 0 });
    }
    for (const w of [512, 64 * KiB]) {
      for (const r of [4 * KiB, 64 * KiB, MiB]) {
        cases.push(...VCHAN_IMPLS.filter(([, api]) => api !== 'stream' || w > 512).map(([impl, api]) => ({ scenario: 'bidir' as const, impl, api, writeSize: w, ringSize: r })));
      }
      cases.push({ scenario: 'bidir', impl: 'unix-socket', api: 'stream', writeSize: w, ringSize: 0 });
    }
  } else {
    cases.push(...bulkGroup(64 * KiB, MiB, VCHAN_IMPLS, true));
    cases.push({ scenario: 'bulk', impl: 'unix-socket', api: 'stream', writeSize: 64 * KiB, ringSize: 0 });
    for (const w of [512, 64]) {
      cases.push(...bulkGroup(w, MiB, core, true));
      cases.push({ scenario: 'bulk', impl: 'unix-socket', api: 'stream', writeSize: w, ringSize: 0 });
    }
    cases.push(...core.map(([impl, api]) => ({ scenario: 'bidir' as const, impl, api, writeSize: 64 * KiB, ringSize: MiB })));
    cases.push({ scenario: 'bidir', impl: 'unix-socket', api: 'stream', writeSize: 64 * KiB, ringSize: 0 });
  }
  // Latency and setup: every pairing with the Vchan API, plus the stream and the socket.
  for (const [impl, api] of VCHAN_IMPLS.filter(([, api]) => api !== 'stream' || full)) {
    cases.push({ scenario: 'pingpong', impl, api, writeSize: 64, ringSize: 64 * KiB });
  }
  if (!full) cases.push({ scenario: 'pingpong', impl: 'ts-ts', api: 'stream', writeSize: 64, ringSize: 64 * KiB });
  cases.push({ scenario: 'pingpong', impl: 'unix-socket', api: 'stream', writeSize: 64, ringSize: 0 });
  for (const [impl, api] of VCHAN_IMPLS.filter(([, api]) => api !== 'stream')) {
    cases.push({ scenario: 'connect', impl, api, writeSize: 1, ringSize: 64 * KiB });
  }
  cases.push({ scenario: 'connect', impl: 'unix-socket', api: 'stream', writeSize: 1, ringSize: 0 });
  return cases;
}

/** Groups are compared against the C↔C case with the same scenario and sizes. */
export function groupKey(c: Pick<Case, 'scenario' | 'writeSize' | 'ringSize'>): string {
  return `${c.scenario}/${c.writeSize}/${c.ringSize}`;
}
