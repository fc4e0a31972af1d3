/** The scale benchmark's markdown table: one row per N and server. */
import type { Result } from './measure.js';

const NAMES = { ts: 'createServer (1 Node process)', c: 'vchan-socket-proxy × N (C)' } as const;

const num = (v: number | undefined, digits: number) => (v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits));
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

export const HEADER = [
  '| N | server | conn/s | connect p50 ms | connect p99 ms | connections (failed) | server CPU ms/conn | broker CPU ms/conn | server RSS, no client MiB | server RSS, N open MiB | RSS per open channel KiB | watches (no client / N open) | server CPU µs/round trip, N-1 idle | round trip p50 µs |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
];

export function row(r: Result): string {
  const perChannel = (r.rssOpen - r.rssIdle) / r.n / 1024;
  return `| ${[
    r.n,
    NAMES[r.kind],
    num(r.connPerSec, 1),
    num(r.connectP50Ms, 1),
    num(r.connectP99Ms, 1),
    `${r.connections} (${r.failures})`,
    num(r.serverCpuMsPerConn, 1),
    num(r.brokerCpuMsPerConn, 1),
    mib(r.rssIdle),
    mib(r.rssOpen),
    num(perChannel, 0),
    `${r.watchesIdle} / ${r.watchesOpen}`,
    num(r.cpuUsPerRoundTrip, 1),
    num(r.roundTripUsP50, 0),
  ].join(' | ')} |`;
}

export function table(results: Result[]): string {
  return [...HEADER, ...results.map(row)].join('\n');
}
