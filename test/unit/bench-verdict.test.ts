// A target's verdict from a ratio and its spread: noise that reaches across
// the bound is "noisy", never "met" or "short".
import { expect, it } from 'vitest';
import { verdict } from '../../bench/lib/targets.js';

it('bench targets: met, short, or noisy when the spread reaches across the bound', () => {
  const t = (value: number, spread: number, atMost = false) => verdict({ name: 'x', ratio: { value, spread }, bound: 1, atMost });
  expect(t(1.3, 0.1)).toBe('met');
  expect(t(0.7, 0.1)).toBe('short');
  expect(t(1.05, 0.1)).toBe('noisy');
  expect(t(0.95, 0.1)).toBe('noisy');
  expect(t(0.8, 0.1, true)).toBe('met');
  expect(t(1.2, 0.1, true)).toBe('short');
  expect(t(1.0, 0)).toBe('met'); // on the bound, with no spread: met
  expect(verdict({ name: 'x', ratio: undefined, bound: 1 })).toBe('not measured');
});
