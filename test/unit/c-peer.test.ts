import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureCPeers, isResult, runPeer, startPeer, vchanPeerArgs, type CPeers, type PeerOk, type RunPeerOptions } from '../support/c-peer.js';
import { TestSim } from '../xen-backend/sim.js';
import { DEFAULT_SEEDS, fnv1a64, Fnv1a64, patternBytes, PatternChecker, patternHash, PatternVerifier, patternWord } from '../support/pattern.js';

const execFileP = promisify(execFile);

let peers: CPeers;

beforeAll(async () => {
  peers = await ensureCPeers();
});

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

async function run(bin: string, args: string[]) {
  try {
    const { stdout, stderr } = await execFileP(bin, args, { env: peers.env, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('C peer build', () => {
  it('links dynamically against Debian libxenvchan.so.4.17', async () => {
    for (const bin of [peers.vchanPeer, peers.hostilePeer]) {
      const { stdout } = await execFileP('ldd', [bin], { env: peers.env });
      const line = stdout.split('\n').find((l) => l.includes('libxenvchan.so.4.17'));
      expect(line, stdout).toBeDefined();
      expect(line).toContain(join(peers.libDir, 'libxenvchan.so.4.17'));
      const { stdout: dyn } = await execFileP('readelf', ['-d', bin]);
      expect(dyn).toMatch(/NEEDED.*\[libxenvchan\.so\.4\.17\]/);
    }
  });

  it('rebuilds nothing when sources are unchanged', async () => {
    const again = await ensureCPeers();
    expect(again.vchanPeer).toBe(peers.vchanPeer);
  });

  it('--help prints the usage and exits 0', async () => {
    const r = await run(peers.vchanPeer, ['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: vchan-peer server\|client <peer-domid> <xs-path>/);
    expect(r.stdout).toContain('--api rw|sendrecv');
    const h = await run(peers.hostilePeer, ['--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/^usage: hostile-peer/);
  });

  it.each([
    [[]],
    [['bogus', '1', 'data/x']],
    [['server', 'x', 'data/x']],
    [['server', '1', 'data/x', '--mode', 'nope']],
    [['client', '1', 'data/x', '--bytes', '12k']],
    [['client', '1', 'data/x', '--api']],
    [['client', '1', 'data/x', '--frobnicate', '1']],
  ])('bad arguments %j exit 2 with a usage line', async (args) => {
    const r = await run(peers.vchanPeer, args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^usage: vchan-peer /m);
    expect(r.stdout).toBe('');
  });

  it('hostile-peer rejects unknown fields with exit 2', async () => {
    const r = await run(peers.hostilePeer, ['1', 'data/x', '--pre', 'nonsense=1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^usage: hostile-peer /m);
  });
});

describe('without Xen devices', () => {
  // The test's premise: no /dev/xen and no emulator preloaded.
  it.skipIf(existsSync('/dev/xen'))('a server fails cleanly with ok:false, not a hang', async () => {
    const t0 = Date.now();
    const r = await runPeer(vchanPeerArgs({ role: 'server', peer: 1, path: 'data/vchan/1/1' }), { timeoutMs: 20_000 });
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(1);
    expect(isResult(r.result) && !r.result.ok).toBe(true);
    expect(r.result).toMatchObject({ ok: false, role: 'server' });
    expect((r.result as { error: string }).error).toMatch(/libxenvchan_server_init.*failed/);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it.skipIf(existsSync('/dev/xen'))('a client gives up after --timeout-ms', async () => {
    const r = await runPeer(vchanPeerArgs({ role: 'client', peer: 1, path: 'data/vchan/1/1', timeoutMs: 300 }), {
      timeoutMs: 20_000,
    });
    expect(r.code).toBe(1);
    expect((r.result as { error: string }).error).toMatch(/libxenvchan_client_init.*failed for 300 ms/);
  });
});

describe('pattern: TypeScript and C agree', () => {
  const cases: [number, number, number][] = [
    [1000, 0, 0],
    [777, 1, 0],
    [513, 2, 3],
    [300, 0xdeadbeef, 12345],
    // crosses into hi32(word) != 0
    [64, 7, 4 * 2 ** 32 - 30],
  ];
  it.each(cases)('%i bytes of seed %i at offset %i', async (n, seed, offset) => {
    const r = await run(peers.vchanPeer, ['--dump-pattern', String(n), String(seed), '--offset', String(offset)]);
    expect(r.code).toBe(0);
    const [cHex, cHash] = r.stdout.trim().split('\n');
    const ts = patternBytes(seed, offset, n);
    expect(cHex).toBe(hex(ts));
    expect(cHash).toBe(fnv1a64(ts));
  });

  it('--hash-only prints just the hash, the same as the TS one', async () => {
    const r = await run(peers.vchanPeer, ['--dump-pattern', '100003', '2', '--offset', '5', '--hash-only']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${patternHash(2, 100003, 5)}\n`);
  });

  it('FNV-1a 64 matches its published test values', () => {
    expect(fnv1a64(new Uint8Array())).toBe('cbf29ce484222325');
    expect(fnv1a64(new TextEncoder().encode('a'))).toBe('af63dc4c8601ec8c');
    expect(fnv1a64(new TextEncoder().encode('foobar'))).toBe('85944171f73967e8');
  });

  it('chunking does not change the stream or the hash', () => {
    const whole = patternBytes(3, 0, 10_000);
    const v = new PatternVerifier(3);
    const h = new Fnv1a64();
    for (let pos = 0, step = 1; pos < whole.length; pos += step, step = (step * 7 + 3) % 997 || 1) {
      const part = patternBytes(3, pos, Math.min(step, whole.length - pos));
      v.push(part);
      h.update(part);
    }
    expect(v.received).toBe(10_000);
    expect(v.digest()).toBe(fnv1a64(whole));
    expect(h.digest()).toBe(patternHash(3, 10_000));
    expect(() => new PatternVerifier(4).push(whole.subarray(0, 8))).toThrow(/pattern mismatch at byte 0/);
  });

  it('PatternChecker accepts any chunking at any alignment and names the first wrong byte', () => {
    const whole = patternBytes(9, 0, 50_000);
    const checker = new PatternChecker(9);
    // odd chunk sizes, and chunks at odd byte offsets of their buffers
    for (let pos = 0, step = 1; pos < whole.length; pos += step, step = (step * 13 + 5) % 4099 || 1) {
      const n = Math.min(step, whole.length - pos);
      const carrier = new Uint8Array(n + 3);
      carrier.set(whole.subarray(pos, pos + n), 3);
      checker.push(carrier.subarray(3));
    }
    expect(checker.received).toBe(50_000);
    const bad = patternBytes(9, 50_000, 1000);
    bad[777] = bad[777]! ^ 1;
    expect(() => checker.push(bad)).toThrow(/pattern mismatch at byte 50777/);
    // the fast fill agrees with the word definition across a 2^32-word boundary
    const edge = 4 * 2 ** 32 - 16;
    const fast = patternBytes(5, edge, 40);
    for (let i = 0; i < 40; i++) expect(fast[i]).toBe((patternWord(5, Math.floor((edge + i) / 4)) >>> (8 * ((edge + i) % 4))) & 0xff);
  });

  it('does not repeat with a short period', () => {
    const a = patternBytes(1, 0, 4096);
    expect(hex(a.subarray(0, 256))).not.toBe(hex(a.subarray(256, 512)));
    expect(hex(a.subarray(0, 64))).not.toBe(hex(patternBytes(1, 65536, 64)));
  });
});

// The real libxenvchan moving real bytes under the emulator (xensim): this
// checks the peers' own loops and reporting; test/sim and test/interop use them.
describe('C peer against C peer through the real library (xensim)', () => {
  let sim: TestSim;
  beforeAll(async () => {
    sim = await TestSim.start();
  });
  afterAll(async () => {
    await sim?.stop();
  });

  const inDomain = (domid: number): RunPeerOptions => ({ wrapper: sim.runArgs(domid), env: sim.env });

  it.each([
    { name: 'rw, (12,12)', bytes: 8 << 20, leftMin: 4096, rightMin: 4096, api: 'rw' as const, chunk: 65536 },
    { name: 'rw, (10,11) default', bytes: 1 << 20, api: 'rw' as const, chunk: 65536 },
    { name: 'sendrecv, (11,10)', bytes: 1 << 20, leftMin: 2048, rightMin: 1024, api: 'sendrecv' as const, chunk: 1000 },
    { name: 'rw, (16,20)', bytes: 32 << 20, leftMin: 1 << 16, rightMin: 1 << 20, api: 'rw' as const, chunk: 65536 },
  ])('$name: both directions, byte-exact', async (c) => {
    const path = `data/vchan/2/${Math.floor(Math.random() * 1e9)}`;
    const server = await startPeer(
      vchanPeerArgs({ role: 'server', peer: 2, path, bytes: c.bytes, leftMin: c.leftMin, rightMin: c.rightMin, api: c.api, chunk: c.chunk }),
      { ...inDomain(1), timeoutMs: 60_000 },
    );
    await server.waitFor((l) => 'event' in l && l.event === 'listening');
    const client = await runPeer(
      vchanPeerArgs({ role: 'client', peer: 1, path: `/local/domain/1/${path}`, bytes: c.bytes, api: c.api, chunk: c.chunk }),
      { ...inDomain(2), timeoutMs: 60_000 },
    );
    const s = await server.done;
    expect(client.code, client.stdout + client.stderr).toBe(0);
    expect(s.code, s.stdout + s.stderr).toBe(0);
    const sr = s.result as PeerOk;
    const cr = client.result as PeerOk;
    expect(sr).toMatchObject({ ok: true, role: 'server', sent: c.bytes, received: c.bytes, api: c.api });
    expect(cr).toMatchObject({ ok: true, role: 'client', sent: c.bytes, received: c.bytes });
    expect(cr.leftOrder).toBe(sr.leftOrder);
    expect(cr.rightOrder).toBe(sr.rightOrder);
    // the TS generator predicts both C hashes
    expect(sr.rxHash).toBe(patternHash(DEFAULT_SEEDS.server.rx, c.bytes));
    expect(cr.rxHash).toBe(patternHash(DEFAULT_SEEDS.client.rx, c.bytes));
    expect(sr.txHash).toBe(cr.rxHash);
  });

  it('reports the chosen orders', async () => {
    const path = `data/vchan/2/${Math.floor(Math.random() * 1e9)}`;
    const server = await startPeer(vchanPeerArgs({ role: 'server', peer: 2, path, leftMin: 8192, rightMin: 1 << 16, mode: 'echo' }), {
      ...inDomain(1),
      timeoutMs: 30_000,
    });
    const listening = await server.waitFor((l) => 'event' in l && l.event === 'listening');
    expect(listening).toMatchObject({ leftOrder: 13, rightOrder: 16 });
    const client = await runPeer(
      vchanPeerArgs({ role: 'client', peer: 1, path: `/local/domain/1/${path}`, seedRx: DEFAULT_SEEDS.client.tx }),
      { ...inDomain(2), timeoutMs: 30_000 },
    );
    expect(client.result).toMatchObject({ ok: true, leftOrder: 13, rightOrder: 16 });
    // echo ends when the client closes
    const s = await server.done;
    expect(s.result).toMatchObject({ ok: true, mode: 'echo', received: 1 << 20, sent: 1 << 20 });
  });

  it('a pattern mismatch is reported with its position', async () => {
    const path = `data/vchan/2/${Math.floor(Math.random() * 1e9)}`;
    const server = await startPeer(vchanPeerArgs({ role: 'server', peer: 2, path, mode: 'recv', seedRx: 99 }), {
      ...inDomain(1),
      timeoutMs: 30_000,
    });
    await server.waitFor((l) => 'event' in l && l.event === 'listening');
    await runPeer(vchanPeerArgs({ role: 'client', peer: 1, path: `/local/domain/1/${path}`, mode: 'send' }), {
      ...inDomain(2),
      timeoutMs: 30_000,
    });
    const s = await server.done;
    expect(s.code).toBe(1);
    expect(s.result).toMatchObject({ ok: false, mismatchAt: 0 });
  });

  it('hold reports the peer closing', async () => {
    const path = `data/vchan/2/${Math.floor(Math.random() * 1e9)}`;
    const server = await startPeer(vchanPeerArgs({ role: 'server', peer: 2, path, mode: 'hold' }), { ...inDomain(1), timeoutMs: 30_000 });
    await server.waitFor((l) => 'event' in l && l.event === 'listening');
    await runPeer(vchanPeerArgs({ role: 'client', peer: 1, path: `/local/domain/1/${path}`, mode: 'send', bytes: 100_000 }), {
      ...inDomain(2),
      timeoutMs: 30_000,
    });
    const s = await server.done;
    expect(s.code).toBe(0);
    expect(s.result).toMatchObject({ event: 'closed', liveByte: 0, viaEvent: true, received: 100_000 });
  });

  it('hostile-peer scribbles and closes on schedule', async () => {
    const path = `data/vchan/2/${Math.floor(Math.random() * 1e9)}`;
    const hostile = await startPeer([String(2), path, '--duration-ms', '300', '--interval-ms', '20', '--seed', '5'], {
      program: 'hostile',
      ...inDomain(1),
      timeoutMs: 30_000,
    });
    await hostile.waitFor((l) => 'event' in l && l.event === 'listening');
    const client = await runPeer(vchanPeerArgs({ role: 'client', peer: 1, path: `/local/domain/1/${path}`, mode: 'hold' }), {
      ...inDomain(2),
      timeoutMs: 30_000,
    });
    const h = await hostile.done;
    expect(h.code).toBe(0);
    expect(h.result).toMatchObject({ ok: true, role: 'hostile', connected: true });
    expect(h.lines.filter((l) => 'event' in l && l.event === 'scribble').length).toBeGreaterThan(3);
    expect(client.timedOut).toBe(false);
  });
});
