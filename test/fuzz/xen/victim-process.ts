/**
 * A fuzz victim in a process of its own under xensim (bundled; run in the
 * victim's domain): test/fuzz/victim.ts's stream or Vchan victim over a
 * XenBackend, facing a C attacker on Debian's libxenvchan. Prints
 * {"event":"ready"} once set up (a server: published), then one
 * {"event":"done",...} line: every error that reached it (name, code,
 * whether it is a VchanError), what it received, its CPU time from ready to
 * done, and the wall clock at the end. A line "kill" on stdin gives up on a
 * victim still waiting (the test decides whether that wait was documented).
 *
 *   victim-process <plan-json> <peer-domid> <path>
 */
import { createInterface } from 'node:readline';
import { VchanError } from '../../../src/errors.js';
import { XenBackend } from '../../../src/xen/backend.js';
import type { Plan } from '../plan.js';
import { streamVictim, vchanVictim } from '../victim.js';

const [planJson, peer, path] = process.argv.slice(2);
const plan = JSON.parse(planJson!) as Plan;
const print = (line: object): void => void process.stdout.write(`${JSON.stringify({ ...line, wallMs: Date.now() })}\n`);
const strays: string[] = [];
process.on('unhandledRejection', (e) => strays.push(`unhandled rejection: ${String((e as Error)?.stack ?? e)}`));
process.on('uncaughtException', (e) => strays.push(`uncaught exception: ${String(e?.stack ?? e)}`));

const backend = new XenBackend();
const victim = (plan.api === 'stream' ? streamVictim : vchanVictim)(plan, { peer: Number(peer), path: path!, backend });
let cpuAtReady = process.cpuUsage();
let readyAt = performance.now();
let killed = false;
void victim.ready.then(() => {
  cpuAtReady = process.cpuUsage();
  readyAt = performance.now();
  print({ event: 'ready' });
});
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'kill') {
    killed = true;
    print({ event: 'state', state: victim.state() });
    void victim.kill();
  }
});
const report = await victim.done;
const cpu = process.cpuUsage(cpuAtReady);
const wallMs = performance.now() - readyAt;
// A turn for anything that would reject late.
await new Promise((resolve) => setTimeout(resolve, 20));
backend.close();
print({
  event: 'done',
  killed,
  // One error reaches a stream's 'error' and its pending writes' callbacks alike: count it once.
  errors: [...new Set(report.errors)].map((e) => {
    const x = e as { name?: string; code?: unknown; message?: string };
    return { name: x?.name, code: x?.code, message: x?.message, isVchanError: e instanceof VchanError };
  }),
  received: report.received,
  intact: report.intact,
  cpuMs: (cpu.user + cpu.system) / 1000,
  activeMs: wallMs,
  strays,
});
process.exit(0);
