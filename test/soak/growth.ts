/**
 * "Keeps growing", decided robustly over a series of samples taken at the
 * same point of each cycle: after a warm-up, the smallest value of the last
 * third is above the largest of the first third by more than a margin. A
 * value that only fluctuates (a GC that ran late, a setup in flight) cannot
 * pass that test; a leak of anything per cycle does, given enough cycles.
 */

export interface Margin {
  /** Absolute slack, in the metric's unit. */
  abs: number;
  /** Relative slack, as a fraction of the first third's maximum. */
  rel: number;
}

export interface Verdict {
  grows: boolean;
  firstMax: number;
  lastMin: number;
  /** Samples judged (after the warm-up). */
  count: number;
}

/** Fewer samples than this after the warm-up: no verdict can be given (the run is too short). */
export const MIN_SAMPLES = 9;

export function judge(values: readonly number[], margin: Margin): Verdict {
  const third = Math.floor(values.length / 3);
  if (values.length < MIN_SAMPLES) throw new RangeError(`${values.length} samples after the warm-up; at least ${MIN_SAMPLES} are needed to tell growth from noise`);
  const firstMax = Math.max(...values.slice(0, third));
  const lastMin = Math.min(...values.slice(values.length - third));
  return { grows: lastMin > firstMax + Math.max(margin.abs, margin.rel * firstMax), firstMax, lastMin, count: values.length };
}
