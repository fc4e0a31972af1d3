/**
 * npm run bench [-- --full] [--json FILE] [--reps N] [--seconds S] [--only REGEXP] [--sim] [--cpu-prof DIR]
 *
 * Measures C libxenvchan, this library (Vchan and VchanStream, against
 * itself and against C), a plain shared-memory ring and Node over a unix
 * socket, in one run on this machine; prints markdown tables with ratios
 * to C↔C and the targets. See bench/README.md.
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { plan, type Case } from './lib/plan.js';
import { tables, targets, toRecord, type Collected } from './lib/report.js';
import { runOnce } from './lib/runner.js';
import { buildPrograms, startPlatform } from './lib/setup.js';

interface Options {
  full: boolean;
  json?: string;
  reps: number;
  seconds: number;
  only?: string;
  sim: boolean;
  cpuProf?: string;
  repo: string;
  cacheDir: string;
}

function parse(argv: string[]): Options {
  const o: Options = { full: false, reps: 3, seconds: 0.4, sim: false, repo: '', cacheDir: '' };
  let reps: number | undefined;
  let seconds: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--full') o.full = true;
    else if (a === '--json') o.json = resolve(value());
    else if (a === '--reps') reps = Number(value());
    else if (a === '--seconds') seconds = Number(value());
    else if (a === '--only') o.only = value();
    else if (a === '--sim') o.sim = true;
    else if (a === '--cpu-prof') o.cpuProf = resolve(value());
    else if (a === '--repo') o.repo = value();
    else if (a === '--cache') o.cacheDir = value();
    else throw new Error(`unknown option ${a}`);
  }
  o.reps = reps ?? 5;
  o.seconds = seconds ?? (o.full ? 0.5 : 0.4);
  if (!(o.reps >= 1) || !(o.seconds > 0)) throw new Error('--reps must be ≥ 1 and --seconds > 0');
  return o;
}

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
  process.stderr.write(`bench: ${cases.length} cases × ${o.reps} repetitions of ${o.seconds} s on ${platform.name}\n`);
  try {
    // Repetitions round-robin over the cases, so a burst of machine noise hits several cases a little.
    for (let rep = 0; rep < o.reps; rep++) {
      for (const x of collected) {
        const r = await runOnce(x.c, platform, progs, { seconds: o.seconds, nodeArgs });
        if (r.ok) x.runs.push(r.figures);
        else x.errors.push(r.error);
        process.stderr.write(`\r\x1b[Kbench: rep ${rep + 1}/${o.reps} ${label(x.c)}${r.ok ? '' : ' FAILED'}`);
      }
    }
  } finally {
    await platform.stop();
  }
  process.stderr.write(`\r\x1b[Kbench: done in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const head = `## xen-vchan benchmark (${o.full ? 'full' : 'quick'}) on ${platform.name}: ${cpus().length} × ${cpu}, Node ${process.version}\n\nmedian ±half-range of ${o.reps} repetitions of ${o.seconds} s each\n`;
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
