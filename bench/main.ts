/**
 * npm run bench [-- --full] [--json FILE] [--reps N] [--seconds S] [--extra N] [--swing F] [--no-pin] [--only REGEXP] [--sim] [--cpu-prof DIR]
 *
 * Measures C libxenvchan, this library (Vchan and VchanStream, against
 * itself and against C), a plain shared-memory ring and Node over a unix
 * socket, in one run on this machine; prints markdown tables with ratios
 * to C↔C and the targets' verdicts. The two ends of each measurement run
 * on different cores; cells whose repetitions swing get more, longer ones;
 * the machine's load is printed before and after. See bench/README.md.
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { eachFlag } from './lib/args.js';
import { plan, type Case } from './lib/plan.js';
import { placement } from './lib/placement.js';
import { halfRange, tables, toRecord, values, type Collected } from './lib/report.js';
import { runOnce } from './lib/runner.js';
import { targets } from './lib/targets.js';
import { buildPrograms, startPlatform } from './lib/setup.js';

interface Options {
  full: boolean;
  json?: string;
  reps: number;
  seconds: number;
  only?: string;
  sim: boolean;
  pin: boolean;
  /** Repetitions added to each cell whose figures swing more than `swing`. */
  extra?: number;
  swing: number;
  cpuProf?: string;
  repo: string;
  cacheDir: string;
}

function parse(argv: string[]): Options {
  const o: Options = { full: false, reps: 3, seconds: 0.4, sim: false, pin: true, swing: 0.15, repo: '', cacheDir: '' };
  let reps: number | undefined;
  let seconds: number | undefined;
  eachFlag(argv, (a, value) => {
    if (a === '--full') o.full = true;
    else if (a === '--json') o.json = resolve(value());
    else if (a === '--reps') reps = Number(value());
    else if (a === '--seconds') seconds = Number(value());
    else if (a === '--only') o.only = value();
    else if (a === '--sim') o.sim = true;
    else if (a === '--no-pin') o.pin = false;
    else if (a === '--extra') o.extra = Number(value());
    else if (a === '--swing') o.swing = Number(value());
    else if (a === '--cpu-prof') o.cpuProf = resolve(value());
    else if (a === '--repo') o.repo = value();
    else if (a === '--cache') o.cacheDir = value();
    else throw new Error(`unknown option ${a}`);
  });
  o.reps = reps ?? 5;
  o.seconds = seconds ?? (o.full ? 0.5 : 0.4);
  if (!(o.reps >= 1) || !(o.seconds > 0)) throw new Error('--reps must be ≥ 1 and --seconds > 0');
  if (o.extra !== undefined && !(Number.isInteger(o.extra) && o.extra >= 0)) throw new Error('--extra must be an integer ≥ 0');
  if (!(o.swing > 0)) throw new Error('--swing must be > 0 (0.15 = cells whose half-range passes ±15%)');
  return o;
}

/** The figures whose swing earns a cell more repetitions. */
const FIGURES = ['mbps', 'latencyUsP50', 'opsPerSec'] as const;

const label = (c: Case) => `${c.scenario} ${c.impl} ${c.api} w=${c.writeSize} ring=${c.ringSize}`;

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const only = o.only === undefined ? undefined : new RegExp(o.only); // a bad pattern fails before anything starts
  const progs = await buildPrograms(o.repo, o.cacheDir);
  const platform = await startPlatform(o.repo, progs.env, o.sim);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => void platform.stop().finally(() => process.exit(130)));
  }
  const cases = plan({ full: o.full }).filter((c) => !only || only.test(label(c)));
  const collected: Collected[] = cases.map((c) => ({ c, runs: [], errors: [] }));
  const t0 = Date.now();
  const nodeArgs = o.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProf}`] : [];
  const where = placement(o.pin);
  const loadBefore = loadavg();
  process.stderr.write(`bench: ${cases.length} cases × ${o.reps} repetitions of ${o.seconds} s on ${platform.name}; ${where.text}\n`);
  let swinging: Collected[] = [];
  const extra = o.extra ?? o.reps;
  try {
    // Repetitions round-robin over the cases, so a burst of machine noise hits several cases a little.
    const round = async (xs: Collected[], reps: number, seconds: number, what: string) => {
      for (let rep = 0; rep < reps; rep++) {
        for (const x of xs) {
          const r = await runOnce(x.c, platform, progs, { seconds, nodeArgs, placement: where });
          if (r.ok) x.runs.push(r.figures);
          else x.errors.push(r.error);
          process.stderr.write(`\r\x1b[Kbench: ${what} ${rep + 1}/${reps} ${label(x.c)}${r.ok ? '' : ' FAILED'}`);
        }
      }
    };
    await round(collected, o.reps, o.seconds, 'rep');
    // Cells whose repetitions disagree get more of them, twice as long, still interleaved.
    swinging = collected.filter((x) => FIGURES.some((k) => halfRange(values(x, k)) > o.swing));
    if (extra > 0 && swinging.length) await round(swinging, extra, o.seconds * 2, 'extra rep');
  } finally {
    await platform.stop();
  }
  process.stderr.write(`\r\x1b[Kbench: done in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const load = (l: number[]) => l.map((v) => v.toFixed(2)).join(' / ');
  const head = [
    `## xen-vchan benchmark (${o.full ? 'full' : 'quick'}) on ${platform.name}: ${cpus().length} × ${cpu}, Node ${process.version}`,
    '',
    `median ±half-range of ${o.reps} repetitions of ${o.seconds} s each; ${swinging.length} cells that swung more than ±${Math.round(o.swing * 100)}% got ${extra} more of ${o.seconds * 2} s`,
    `${where.text}`,
    `load average (1/5/15 min): ${load(loadBefore)} before, ${load(loadavg())} after`,
    '',
  ].join('\n');
  const t = targets(collected);
  process.stdout.write(`${head}\n${tables(collected)}\n${t.text}`);
  if (o.json) {
    writeFileSync(o.json, `${JSON.stringify(collected.map(toRecord), null, 1)}\n`);
    process.stderr.write(`bench: records in ${o.json}\n`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`\nbench: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
