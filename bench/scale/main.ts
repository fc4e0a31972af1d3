/**
 * npm run bench -- --scale [--quick] [--ns 1,10,100] [--seconds S] [--ping-seconds S]
 *
 * One createServer() process against N client domains, and N Debian
 * vchan-socket-proxy servers (one per domain) as the anchor, in one run on
 * a private xensim broker: connections per second, connect latency, server
 * memory per open channel, server CPU per round trip with N-1 idle
 * channels, watches held. See bench/README.md.
 */
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { ControlClient } from '../../sim/broker/control.js';
import type { BrokerStatus } from '../../sim/broker/broker.js';
import { XenStore } from '../../src/index.js';
import { eachFlag } from '../lib/args.js';
import { buildPrograms, compile, debianRoot, startPlatform } from '../lib/setup.js';
import { measure, type Result, type World } from './measure.js';
import type { Proc } from './procs.js';
import { table } from './table.js';

interface Options {
  quick: boolean;
  ns: number[];
  seconds: number;
  pingSeconds: number;
  repo: string;
  cacheDir: string;
}

function parse(argv: string[]): Options {
  const o: Options = { quick: false, ns: [], seconds: 0, pingSeconds: 0, repo: '', cacheDir: '' };
  let ns: number[] | undefined;
  let seconds: number | undefined;
  let ping: number | undefined;
  eachFlag(argv, (a, value) => {
    if (a === '--scale') return;
    else if (a === '--quick') o.quick = true;
    else if (a === '--ns') ns = value().split(',').map(Number);
    else if (a === '--seconds') seconds = Number(value());
    else if (a === '--ping-seconds') ping = Number(value());
    else if (a === '--repo') o.repo = value();
    else if (a === '--cache') o.cacheDir = value();
    else throw new Error(`unknown option ${a} (with --scale: --quick, --ns, --seconds, --ping-seconds)`);
  });
  o.ns = ns ?? (o.quick ? [1, 10] : [1, 10, 100]);
  o.seconds = seconds ?? (o.quick ? 2 : 10);
  o.pingSeconds = ping ?? (o.quick ? 0.5 : 1);
  if (!o.ns.every((n) => Number.isInteger(n) && n >= 1 && n <= 200)) throw new Error('--ns takes domain counts 1..200');
  if (!(o.seconds > 0) || !(o.pingSeconds > 0)) throw new Error('--seconds and --ping-seconds must be > 0');
  return o;
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const progs = await buildPrograms(o.repo, o.cacheDir);
  const root = await debianRoot(o.repo);
  const libDir = join(root, 'usr/lib/x86_64-linux-gnu');
  const vchanPeer = await compile(join(o.repo, 'test/c/vchan-peer.c'), join(o.cacheDir, 'vchan-peer'), [
    `-I${join(root, 'usr/include')}`, `-L${libDir}`, `-Wl,-rpath-link,${libDir}`, '-lxenvchan', '-lxentoollog',
  ]);
  // vchan-socket-proxy also needs Xen's private libraries
  const env = { ...progs.env, LD_LIBRARY_PATH: `${join(root, 'usr/lib/xen-4.17/lib/x86_64-linux-gnu')}:${progs.env.LD_LIBRARY_PATH}` };
  const platform = await startPlatform(o.repo, env, true);
  const live = new Set<Proc>();
  const stop = async () => {
    for (const p of live) p.kill();
    await platform.stop();
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void stop().finally(() => process.exit(130)));
  const ctl = await ControlClient.open(join(platform.scratch, 'ctl.sock'));
  const envs = new Map<number, NodeJS.ProcessEnv>();
  const preload = join(o.repo, 'build/sim/libxensim.so');
  for (let d = 0; d <= Math.max(...o.ns); d++) {
    const r = await ctl.request<{ socket: string; xenstore: string }>({ op: 'create', domid: d });
    envs.set(d, { ...platform.env, LD_PRELOAD: preload, XENSIM_SOCKET: r.socket, XENSTORED_PATH: r.xenstore });
  }
  const store = new XenStore({ path: envs.get(0)!.XENSTORED_PATH! });
  const w: World = {
    envOf: (d) => envs.get(d)!,
    brokerCpu: () => platform.brokerCpu(),
    watches: async (d) => (await ctl.request<BrokerStatus>({ op: 'status' })).domains.find((x) => x.domid === d)?.watches ?? 0,
    store,
    scratch: platform.scratch,
    node: process.execPath,
    echo: join(o.cacheDir, 'scale-echo.mjs'),
    vchanPeer,
    benchPeer: progs.cPeer,
    proxy: join(root, 'usr/lib/xen-4.17/bin/vchan-socket-proxy'),
    seconds: o.seconds,
    pingSeconds: o.pingSeconds,
    live,
  };
  const loadBefore = loadavg();
  const t0 = Date.now();
  const results: Result[] = [];
  try {
    for (const n of o.ns) {
      for (const kind of ['ts', 'c'] as const) {
        process.stderr.write(`\r\x1b[Kbench --scale: N=${n} ${kind === 'ts' ? 'createServer' : 'vchan-socket-proxy'}`);
        results.push(await measure(w, kind, n));
      }
    }
  } finally {
    store.close();
    ctl.close();
    await stop();
  }
  const secs = ((Date.now() - t0) / 1000).toFixed(0);
  process.stderr.write(`\r\x1b[Kbench --scale: done in ${secs} s\n`);
  const load = (l: number[]) => l.map((v) => v.toFixed(2)).join(' / ');
  const failed = results.filter((r) => r.failures > 0);
  process.stdout.write(
    [
      `## xen-vchan scale benchmark (${o.quick ? 'quick' : 'full'}) on xensim: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`,
      '',
      `each N: ${o.seconds} s of C clients (Debian's libxenvchan) connecting, echoing 1 MiB both ways (checked) and exiting, one after another in each of N domains; 4 KiB rings; pings: median of 3 × ${o.pingSeconds} s; run took ${secs} s`,
      `load average (1/5/15 min): ${load(loadBefore)} before, ${load(loadavg())} after`,
      '',
      table(results),
      '',
      ...failed.map((r) => `failures, N=${r.n} ${r.kind}: ${r.failures}; first: ${r.firstFailure}`),
      '',
    ].join('\n'),
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`\nbench --scale: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
