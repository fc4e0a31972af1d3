/** Runs both ends' scripts on a pair of streams; an end that never connected lets the other one go. */
import type { Duplex } from 'node:stream';
import type { Scenario } from './scenario.js';
import { runSide } from './side.js';
import type { SideTrace, Trace } from './trace.js';

export function neverConnected(trace: Promise<SideTrace>): Promise<unknown> {
  return trace.then((t) => (t.events.includes('connect') ? new Promise(() => {}) : undefined));
}

export async function runPair(server: Duplex, client: Duplex, scenario: Scenario): Promise<Trace> {
  let serverTrace!: Promise<SideTrace>;
  const clientTrace = runSide(client, 'client', scenario.client, { abandon: Promise.resolve().then(() => neverConnected(serverTrace)) });
  serverTrace = runSide(server, 'server', scenario.server, { abandon: neverConnected(clientTrace) });
  return { server: await serverTrace, client: await clientTrace };
}
