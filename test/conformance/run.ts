/**
 * Runs scenarios on a target against the net reference with fast-check; a
 * mismatch is shrunk and thrown with its seed, scenario and traces.
 */
import fc from 'fast-check';
import { compare } from './compare.js';
import type { Target } from './net-target.js';
import { runParameters, scenarioArb, type Scenario } from './scenario.js';
import type { Trace } from './trace.js';

/** net is re-run up to this many times before a difference counts (its outcomes vary run to run). */
const REFERENCE_RUNS = 6;

export async function conforms(reference: Target, target: Target, scenario: Scenario): Promise<{ ok: boolean; report: string }> {
  const [first, ours] = await Promise.all([reference.run(scenario), target.run(scenario)]);
  const refs: Trace[] = [first];
  let verdict = compare(scenario, refs, ours);
  while (!verdict.ok && refs.length < REFERENCE_RUNS) {
    refs.push(await reference.run(scenario));
    verdict = compare(scenario, refs, ours);
  }
  const report = verdict.ok
    ? ''
    : `scenario ${JSON.stringify(scenario)}\nours ${JSON.stringify(verdict.ours)}\n` +
      verdict.refs.map((r) => `net  ${JSON.stringify(r)}`).join('\n') +
      `\nraw ours ${JSON.stringify(ours)}\nraw net  ${JSON.stringify(first)}`;
  return { ok: verdict.ok, report };
}

/** Asserts `runs` scenarios conform; returns how many ran. */
export async function assertConforms(reference: Target, target: Target, runs: number): Promise<number> {
  let count = 0;
  let last = '';
  await fc.assert(
    fc.asyncProperty(scenarioArb, async (scenario) => {
      count++;
      const { ok, report } = await conforms(reference, target, scenario);
      if (!ok) last = report;
      if (!ok) throw new Error(`not as net.Socket:\n${report}`);
    }),
    { ...runParameters(runs), endOnFailure: false, reporter: (details) => {
      if (details.failed) throw new Error(`${fc.defaultReportMessage(details)}\n\nsmallest failing scenario:\n${last}\nreplay: CONFORMANCE_SEED=${details.seed} CONFORMANCE_PATH=${details.counterexamplePath} CONFORMANCE_RUNS=1`);
    } },
  );
  return count;
}
