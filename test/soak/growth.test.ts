import { describe, expect, it } from 'vitest';
import { judge, MIN_SAMPLES } from './growth.js';

const exact = { abs: 0, rel: 0 };

describe('growth verdict', () => {
  it('a count that grows by one per cycle grows', () => {
    expect(judge(Array.from({ length: 30 }, (_, i) => 4 + i), exact).grows).toBe(true);
  });

  it('a count that fluctuates around a constant does not grow, however it is ordered', () => {
    const noisy = Array.from({ length: 60 }, (_, i) => 4 + ((i * 7) % 5));
    expect(judge(noisy, exact).grows).toBe(false);
  });

  it('a step inside the margin is not growth; past it, it is', () => {
    const step = [...Array(10).fill(100), ...Array(10).fill(103), ...Array(10).fill(104)];
    expect(judge(step, { abs: 5, rel: 0 }).grows).toBe(false);
    expect(judge(step, { abs: 3, rel: 0 }).grows).toBe(true);
    expect(judge(step, { abs: 0, rel: 0.05 }).grows).toBe(false);
  });

  it('one late outlier high in the last third does not count', () => {
    const values = [...Array(20).fill(10), 50, ...Array(9).fill(10)];
    expect(judge(values, exact).grows).toBe(false);
  });

  it('too few samples is an error, not a pass', () => {
    expect(() => judge(Array(MIN_SAMPLES - 1).fill(1), exact)).toThrow(RangeError);
  });
});
