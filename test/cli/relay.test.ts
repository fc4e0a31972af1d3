// `vchan listen` and `vchan connect` under the emulator: a big transfer both
// ways at once between two of our own processes, interop with a C
// libxenvchan server, and a peer killed mid-transfer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPeer, vchanPeerArgs } from '../support/c-peer.js';
import { held, NOTHING_HELD, Sim } from '../sim/helpers.js';
import { hashStream, patternSha256, sendPattern, startCli, waitFor, type RunningCli } from './helpers.js';

const MiB = 1 << 20;

let sim: Sim;
const started: RunningCli[] = [];

beforeAll(async () => {
  sim = await Sim.start();
});

afterAll(async () => {
  for (const p of started) p.child.kill('SIGKILL');
  await sim?.stop();
});

async function cli(domid: number, args: string[]): Promise<RunningCli> {
  const p = await startCli(sim, domid, args);
  started.push(p);
  return p;
}

describe('vchan listen <-> vchan connect', () => {
  it('moves 256 MiB byte-exact both ways at once; both exit 0', async () => {
    const size = 256 * MiB;
    const server = await cli(1, ['listen', '--peer', '2', '--port', '10', '--ring', '1M']);
    const client = await cli(2, ['connect', '--peer', '1', '--port', '10', '--timeout', '20000']);
    const [toServer, toClient, atServer, atClient, serverExit, clientExit] = await Promise.all([
      sendPattern(server.child.stdin!, 11, size),
      sendPattern(client.child.stdin!, 22, size),
      hashStream(server.child.stdout!),
      hashStream(client.child.stdout!),
      server.exited,
      client.exited,
    ]);
    expect(serverExit, serverExit.stderr).toMatchObject({ code: 0, stderr: '' });
    expect(clientExit, clientExit.stderr).toMatchObject({ code: 0, stderr: '' });
    expect(toServer.written).toBe(size);
    expect(toClient.written).toBe(size);
    // what each side printed is what the other was given
    expect(atClient).toEqual({ sha256: toServer.sha256, length: size });
    expect(atServer).toEqual({ sha256: toClient.sha256, length: size });
  });

  it('kill -9 of the peer mid-transfer: non-zero exit with a one-line reason', async () => {
    const size = 1024 * MiB; // far more than moves before the kill
    const server = await cli(1, ['listen', '--peer', '2', '--port', '11']);
    const client = await cli(2, ['connect', '--peer', '1', '--port', '11', '--timeout', '20000']);
    const sending = [sendPattern(server.child.stdin!, 1, size), sendPattern(client.child.stdin!, 2, size)];
    let received = 0;
    server.child.stdout!.on('data', (d: Buffer) => (received += d.length));
    client.child.stdout!.resume();
    await waitFor(() => received >= 8 * MiB, `8 MiB through (got ${received}; stderr: ${server.stderr()} / ${client.stderr()})`, 20_000);
    client.child.kill('SIGKILL');
    const exit = await server.exited;
    await Promise.all(sending);
    expect(exit.code).toBe(1);
    const lines = exit.stderr.trimEnd().split('\n');
    expect(lines, exit.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^vchan: peer closed the channel before/);
    expect(await sim.idle()).toMatchObject({ grants: 0, ports: 0 });
  });

  it('one way, receiver on /dev/null: the sender closes once all was read; --progress ends with a summary on stderr', async () => {
    const size = 16 * MiB;
    const server = await cli(1, ['listen', '--peer', '2', '--path', 'data/one-way', '--linger', '0']);
    const client = await cli(2, ['connect', '--peer', '1', '--path', '/local/domain/1/data/one-way', '--progress']);
    client.child.stdin!.end(); // a pure receiver: it waits for the sender to close
    server.child.stdout!.resume();
    const [sent, got, serverExit, clientExit] = await Promise.all([
      sendPattern(server.child.stdin!, 5, size),
      hashStream(client.child.stdout!),
      server.exited,
      client.exited,
    ]);
    expect(serverExit, serverExit.stderr).toMatchObject({ code: 0, stderr: '' });
    expect(clientExit.code, clientExit.stderr).toBe(0);
    expect(got).toEqual({ sha256: sent.sha256, length: size });
    expect(clientExit.stderr.trimEnd().split('\n').pop()).toMatch(
      new RegExp(`^vchan: sent 0 bytes \\(0\\.0 MB/s\\), received ${size} bytes \\([0-9.]+ MB/s\\) in [0-9.]+ s$`),
    );
  });

  it('connect times out with ERR_VCHAN_TIMEOUT when no server appears', async () => {
    const client = await cli(2, ['connect', '--peer', '1', '--port', '12', '--timeout', '300']);
    client.child.stdin!.end();
    const exit = await client.exited;
    expect(exit.code).toBe(1);
    expect(exit.stderr).toMatch(/^vchan: ERR_VCHAN_TIMEOUT: no server offered port 12 of domain 1 within 300 ms\n$/);
  });
});

describe('every vchan mode exits on a signal at any point (128 + signal), holding nothing', () => {
  const cases: Array<[string, string[], NodeJS.Signals, number]> = [
    ['connect waiting for its server', ['connect', '--peer', '1', '--port', '30'], 'SIGTERM', 143],
    ['listen waiting for its client', ['listen', '--peer', '3', '--port', '31'], 'SIGINT', 130],
    ['proxy -m client on stdio waiting for its server (ssh ProxyCommand)', ['proxy', '-m', 'client', '1', 'data/vchan/2/32', '-'], 'SIGHUP', 129],
  ];
  for (const [what, args, signal, code] of cases) {
    it(`${what}: ${signal}`, async () => {
      const p = await cli(2, args);
      // Once it waits, it holds a xenstore watch (connect) or its offer (listen).
      const waiting = await sim.until((st) => st.domains.some((d) => d.domid === 2 && d.watches + d.grants > 0), 15_000);
      expect(waiting.domains.some((d) => d.domid === 2 && d.watches + d.grants > 0), `never started waiting: ${p.stderr()}`).toBe(true);
      p.child.kill(signal);
      const exit = await Promise.race([p.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 5000))]);
      expect(exit, `still running 5 s after ${signal}`).toBeDefined();
      expect(exit!.code, JSON.stringify(exit)).toBe(code);
      await sim.until((s) => s.processes.length === 0);
      expect(held(await sim.status())).toEqual(NOTHING_HELD);
    });
  }
});

describe('vchan connect <-> C libxenvchan server', () => {
  it('moves 32 MiB byte-exact both ways with a vchan-peer server (Debian libxenvchan.so.4.17)', async () => {
    const size = 32 * MiB;
    const envs = await sim.domainEnv(1);
    // C server: sends the pattern of seed 1, expects seed 2, checks every byte and reports FNV-1a hashes
    const peer = await startPeer(vchanPeerArgs({ role: 'server', peer: 2, path: 'data/vchan/2/20', bytes: size, leftMin: 65536, rightMin: 65536 }), {
      env: envs,
      timeoutMs: 60_000,
    });
    await peer.waitFor((l) => 'event' in l && l.event === 'listening');
    const client = await cli(2, ['connect', '--peer', '1', '--port', '20', '--timeout', '20000']);
    // the C side checks every byte it receives against the pattern; here we hash what the CLI printed
    const [sent, got, exit, run] = await Promise.all([
      sendPattern(client.child.stdin!, 2, size),
      hashStream(client.child.stdout!),
      client.exited,
      peer.done,
    ]);
    expect(run.result, run.stderr).toMatchObject({ ok: true, sent: size, received: size });
    expect(exit, exit.stderr).toMatchObject({ code: 0, stderr: '' });
    expect(sent.written).toBe(size);
    expect(got).toEqual({ sha256: patternSha256(1, size), length: size });
  });
});
