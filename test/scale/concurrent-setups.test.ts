/**
 * Setups at the same moment must not trip over each other or over
 * xenstored's per-domain quotas (xensim keeps C xenstored's defaults: 1000
 * nodes, 128 watches per domain, 10 transactions per connection). One
 * process in domain 1 offers 200 channels at once, one in domain 2 connects
 * to all 200 at once, every channel carries a line each way, and with all
 * 200 open each process holds one xenstore connection and a handful of
 * watches.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundle } from '../interop/harness.js';
import { REPO_ROOT } from '../support/c-peer.js';
import { held, NOTHING_HELD, Sim } from '../sim/helpers.js';

let sim: Sim;
beforeAll(async () => {
  sim = await Sim.start();
});
afterAll(async () => {
  await sim?.stop();
});

interface Line {
  event: string;
  up?: number;
  failures?: Record<string, number>;
  messages?: string[];
}

function manyChannels(domid: number, role: 'server' | 'client', peer: number, count: number) {
  const script = bundle(join(REPO_ROOT, 'test/scale/fixtures/many-channels.ts'), 'scale-many-channels');
  const [cmd, ...args] = [...sim.runArgs(domid), process.execPath, script, role, String(peer), String(count)];
  const child = spawn(cmd!, args, { env: sim.env, stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: Line[] = [];
  let partial = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    partial += d;
    for (let nl = partial.indexOf('\n'); nl >= 0; nl = partial.indexOf('\n')) {
      lines.push(JSON.parse(partial.slice(0, nl)) as Line);
      partial = partial.slice(nl + 1);
    }
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const event = async (name: string, ms = 90_000): Promise<Line> => {
    const end = Date.now() + ms;
    for (;;) {
      const line = lines.find((l) => l.event === name);
      if (line) return line;
      if (Date.now() > end || child.exitCode !== null) throw new Error(`${role} never printed ${name}; stderr: ${err.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { child, event };
}

describe('concurrent setups within xenstored quotas (xensim, default XenBackend)', () => {
  it('200 listen() at once in one domain and 200 connect() at once in its peer: all come up, one xenstore connection each', async () => {
    const N = 200;
    const server = manyChannels(1, 'server', 2, N);
    const client = manyChannels(2, 'client', 1, N);
    const [s, c] = await Promise.all([server.event('up'), client.event('up')]);
    expect({ server: s, client: c }).toEqual({
      server: { event: 'up', up: N, failures: {}, messages: [] },
      client: { event: 'up', up: N, failures: {}, messages: [] },
    });
    const status = await sim.status();
    const domain = (id: number) => status.domains.find((d) => d.domid === id)!;
    const shape = (id: number) => ({ xenstoreConnections: domain(id).xenstoreConnections, fewWatches: domain(id).watches <= 8 });
    expect({ server: shape(1), client: shape(2) }).toEqual({
      server: { xenstoreConnections: 1, fewWatches: true },
      client: { xenstoreConnections: 1, fewWatches: true },
    });
    server.child.stdin.write('close\n');
    client.child.stdin.write('close\n');
    await Promise.all([server.event('closed'), client.event('closed')]);
    server.child.stdin.end();
    client.child.stdin.end();
    await Promise.all([server.child, client.child].map((p) => new Promise((r) => (p.exitCode === null ? p.once('exit', r) : r(0)))));
    expect(held(await sim.idle())).toEqual(NOTHING_HELD);
  });
});
