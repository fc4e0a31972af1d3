/**
 * Where the two ends of a measurement run: pinned to different cores with
 * taskset, so that the scheduler cannot stack both on one core for a
 * repetition and spread them for the next (one source of the swings the
 * same cell showed within an hour). The emulator's broker is left to the
 * scheduler: it is the same for every implementation measured.
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

export interface Placement {
  /** argv prefixes for the server's and the client's process. */
  server: string[];
  client: string[];
  /** One line for the report. */
  text: string;
}

export function placement(wanted: boolean): Placement {
  const none = (why: string): Placement => ({ server: [], client: [], text: `placement: not pinned (${why})` });
  if (!wanted) return none('--no-pin');
  if (availableParallelism() < 2) return none('one CPU');
  if (spawnSync('taskset', ['-c', '0', 'true']).status !== 0) return none('taskset is missing or refused');
  return {
    server: ['taskset', '-c', '0'],
    client: ['taskset', '-c', '1'],
    text: 'placement: server pinned to CPU 0, client to CPU 1 (taskset); the emulator broker unpinned',
  };
}
