/**
 * The soak's traffic on one VchanStream: pattern bytes out in chunks of
 * random size at random small intervals (with backpressure), everything in
 * checked against the peer's pattern, and one line about the session once
 * the stream closed. Both soak processes use it, for both roles.
 */
import type { VchanStream } from '../../src/stream.js';
import { Rng } from '../fuzz/rng.js';
import { fillPattern, PatternChecker } from '../support/pattern.js';

export interface SessionReport {
  role: 'server' | 'client';
  connected: boolean;
  sent: number;
  received: number;
  intact: boolean;
  /** The stream's error code, if it failed. */
  code?: string;
  message?: string;
}

export const MAX_CHUNK = 65536;

/** Seeds of the two directions: a server sends `server`, a client `client`. */
export const SEEDS = { server: 11, client: 12 } as const;

export function traffic(stream: VchanStream, role: 'server' | 'client', rng: Rng): { done: Promise<SessionReport>; stop(): void } {
  const report: SessionReport = { role, connected: false, sent: 0, received: 0, intact: true };
  const check = new PatternChecker(role === 'server' ? SEEDS.client : SEEDS.server);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  stream.on('data', (chunk: Buffer) => {
    report.received += chunk.length;
    if (!report.intact) return;
    try {
      check.push(chunk);
    } catch {
      report.intact = false;
    }
  });
  stream.on('error', (error: Error & { code?: string }) => {
    report.code ??= error.code ?? error.name;
    report.message ??= error.message;
  });
  const tick = (): void => {
    timer = undefined;
    if (stopped || stream.destroyed || stream.writableEnded) return;
    const n = 1 + rng.below(MAX_CHUNK);
    const chunk = fillPattern(role === 'server' ? SEEDS.server : SEEDS.client, report.sent, new Uint8Array(n));
    report.sent += n;
    const more = stream.write(chunk);
    if (more) timer = setTimeout(tick, rng.below(8));
    else stream.once('drain', tick);
  };
  stream.once('connect', () => {
    report.connected = true;
    tick();
  });
  const done = new Promise<SessionReport>((resolve) =>
    stream.once('close', () => {
      if (timer) clearTimeout(timer);
      resolve(report);
    }),
  );
  return {
    done,
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
