/**
 * A conformance scenario: what each end of a connected pair does, drawn by
 * fast-check. Kept small on average (most writes are under 1 KiB) so that
 * thousands run per `npm test`; a few go up to 256 KiB to fill rings.
 */
import fc from 'fast-check';

/** When an end finishes (end()/destroy()). */
export type Trigger = 'now' | 'connect' | 'data' | 'drain' | 'end' | 'writecb';
/** Triggers that fire whatever the peer does: at least one end has one, so every scenario ends. */
export const UNCONDITIONAL: readonly Trigger[] = ['now', 'connect', 'drain', 'writecb'];

export interface WriteStep {
  size: number;
  kind: 'buffer' | 'string';
}

export interface SideScript {
  /** Written at once or in 'connect', each with a callback. */
  writes: WriteStep[];
  writeAt: 'now' | 'connect';
  /** cork() before the writes, uncork() on the next tick. */
  cork: boolean;
  finish: 'end' | 'endData' | 'destroy' | 'destroyErr' | 'none';
  finishAt: Trigger;
  endDataSize: number;
  /** How the end reads: 'data' listener, pause() at the first chunk and resume() a turn later, for await, for await with break. */
  read: 'flow' | 'pauseResume' | 'iterate' | 'iterateBreak';
}

export interface Scenario {
  server: SideScript;
  client: SideScript;
}

export type Role = keyof Scenario;

const size = fc.oneof(
  { weight: 14, arbitrary: fc.integer({ min: 0, max: 1024 }) },
  { weight: 5, arbitrary: fc.integer({ min: 1025, max: 64 * 1024 }) },
  { weight: 1, arbitrary: fc.integer({ min: 64 * 1024 + 1, max: 256 * 1024 }) },
);

const writeStep: fc.Arbitrary<WriteStep> = fc.record({ size, kind: fc.constantFrom('buffer', 'string') });

const sideScript: fc.Arbitrary<SideScript> = fc.record({
  writes: fc.array(writeStep, { maxLength: 4 }),
  writeAt: fc.constantFrom('now', 'connect'),
  cork: fc.boolean(),
  finish: fc.constantFrom('end', 'endData', 'destroy', 'destroyErr', 'none'),
  finishAt: fc.constantFrom<Trigger>('now', 'connect', 'data', 'drain', 'end', 'writecb'),
  endDataSize: fc.integer({ min: 1, max: 2048 }),
  read: fc.constantFrom('flow', 'pauseResume', 'iterate', 'iterateBreak'),
});

/** Ends for sure: one side finishes unconditionally (the other then sees 'end' and, allowHalfOpen false, ends too). */
function terminates(s: Scenario): boolean {
  const sure = (side: SideScript) =>
    side.finish !== 'none' && UNCONDITIONAL.includes(side.finishAt) && (side.finishAt !== 'writecb' || side.writes.length > 0);
  // A reader that breaks out of for await after its first chunk ends too, if a chunk surely comes.
  const breaks = (reader: SideScript, writer: SideScript) =>
    reader.read === 'iterateBreak' && writer.writes.some((w) => w.size > 0) && !writer.finish.startsWith('destroy');
  return sure(s.server) || sure(s.client) || breaks(s.server, s.client) || breaks(s.client, s.server);
}

export const scenarioArb: fc.Arbitrary<Scenario> = fc
  .record({ server: sideScript, client: sideScript })
  .filter(terminates);

/** How many scenarios a target runs, and from which seed (CONFORMANCE_RUNS, CONFORMANCE_SEED replay a report). */
export function runParameters(defaultRuns: number): { numRuns: number; seed?: number; path?: string } {
  const runs = Number(process.env.CONFORMANCE_RUNS ?? defaultRuns);
  const seed = process.env.CONFORMANCE_SEED;
  const path = process.env.CONFORMANCE_PATH;
  return {
    numRuns: runs,
    ...(seed !== undefined ? { seed: Number(seed) } : {}),
    ...(path !== undefined ? { path } : {}),
  };
}
