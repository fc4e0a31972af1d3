/**
 * The thirteen ways VchanStream differed from a net.Socket that users hit
 * first, one named test each. Where net's behaviour is the point, the same
 * steps run on a real net.Socket pair first and ours must match it.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Vchan } from '../../src/channel.js';
import type { VchanError } from '../../src/errors.js';
import { MemoryHypervisor } from '../../src/memory/index.js';
import { connect, listen } from '../../src/net.js';
import { VchanStream } from '../../src/stream.js';
import { bundle } from '../interop/harness.js';
import { REPO_ROOT } from '../support/c-peer.js';

const NOTHING = { grants: 0, mappedPages: 0, ports: 0, watches: 0, storeEntries: 0 };
const held = (hv: MemoryHypervisor) => {
  const { backends: _backends, ...rest } = hv.held();
  return rest;
};

async function memoryPair(port = 1, options: { allowHalfOpen?: boolean } = {}) {
  const hv = new MemoryHypervisor();
  const dom0 = hv.backend(0);
  const dom5 = hv.backend(5);
  const server = listen({ peer: 5, port, backend: dom0, ...options });
  const client = connect({ peer: 0, port, backend: dom5, ...options });
  await Promise.all([once(server, 'connect'), once(client, 'connect')]);
  return { hv, dom0, dom5, server, client };
}

/** A connected net.Socket pair over a unix socket, both with net's defaults. */
async function netPair() {
  const path = join(tmpdir(), `vchan-ref-${process.pid}-${Math.random().toString(36).slice(2)}.sock`);
  const listener = net.createServer();
  listener.listen(path);
  await once(listener, 'listening');
  const accepted = once(listener, 'connection') as Promise<[net.Socket]>;
  const client = net.connect(path);
  const [[server]] = await Promise.all([accepted, once(client, 'connect')]);
  listener.close();
  return { server, client };
}

/** Records the lifecycle events of a stream (with error codes). */
function lifecycle(stream: NodeJS.EventEmitter): string[] {
  const events: string[] = [];
  for (const name of ['end', 'finish', 'close']) stream.on(name, () => events.push(name));
  stream.on('error', (error: { code?: string }) => events.push(`error ${error.code}`));
  return events;
}

function collect(stream: NodeJS.ReadableStream): { bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { bytes: () => Buffer.concat(chunks) };
}

const tick = () => new Promise((r) => setImmediate(r));

/**
 * Runs a bundled fixture in a child process; resolves with its exit and
 * output, or alive: true if it still runs `ms` after it printed `after`.
 */
function runFixture(fixture: string, args: string[], ms: number, after = '') {
  const script = bundle(join(REPO_ROOT, 'test/socket/fixtures', `${fixture}.ts`), `socket-${fixture}`);
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  let started = Date.now();
  return new Promise<{ alive: boolean; code: number | null; ms: number; out: string; err: string }>((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = (): void => {
      started = Date.now();
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve({ alive: true, code: null, ms: Date.now() - started, out, err });
      }, ms);
    };
    if (after === '') arm();
    else child.stdout.on('data', () => timer === undefined && out.includes(after) && arm());
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ alive: false, code, ms: Date.now() - started, out, err });
    });
  });
}

describe('VchanStream as a net.Socket: the problems users hit first', { timeout: 20_000 }, () => {
  it("1. end() inside a 'data' handler ends cleanly and still delivers everything that had arrived", async () => {
    const hv = new MemoryHypervisor();
    // A 128 KiB read ring: all of the client's 100 000 bytes are in it before the server reads.
    const server = listen({ peer: 5, port: 1, backend: hv.backend(0), readMin: 131072 });
    const client = connect({ peer: 0, port: 1, backend: hv.backend(5) });
    await Promise.all([once(server, 'connect'), once(client, 'connect')]);
    const payload = randomBytes(100_000);
    await new Promise<void>((resolve, reject) => client.write(payload, (e) => (e ? reject(e) : resolve())));
    const events = lifecycle(server);
    const got = collect(server);
    const closed = once(server, 'close');
    server.once('data', () => server.end()); // "I have what I wanted"
    await closed;
    // 'finish' and 'end' come in either order (as on a socket, where they wait for different things); no error.
    expect([...events.slice(0, 2)].sort()).toEqual(['end', 'finish']);
    expect(events.slice(2)).toEqual(['close']);
    expect(got.bytes().equals(payload)).toBe(true);
  });

  it("a client that calls end(data) at once still connects, delivers, and closes (as net)", async () => {
    const hv = new MemoryHypervisor();
    const server = listen({ peer: 5, port: 23, backend: hv.backend(0) });
    await once(server, 'listening');
    const client = connect({ peer: 0, port: 23, backend: hv.backend(5) });
    const events = lifecycle(client);
    const connected = once(client, 'connect');
    const got = collect(server);
    const closed = once(client, 'close');
    client.end('at once');
    await Promise.all([connected, closed, once(server, 'end')]);
    expect(got.bytes().toString()).toBe('at once');
    expect(events).toContain('close');
    expect(events.filter((e) => e.startsWith('error'))).toEqual([]);
  });

  it("2. a server's greeting written and ended before its client came is delivered", async () => {
    const hv = new MemoryHypervisor();
    const server = listen({ peer: 5, port: 2, backend: hv.backend(0) });
    server.end('hello, whoever comes\n');
    const serverEvents = lifecycle(server);
    const serverClosed = once(server, 'close');
    await new Promise((r) => setTimeout(r, 100));
    expect(server.closed).toBe(false); // still offered
    const client = connect({ peer: 0, port: 2, backend: hv.backend(5), timeout: 2000 });
    const got = collect(client);
    await once(client, 'close');
    expect(got.bytes().toString()).toBe('hello, whoever comes\n');
    await serverClosed;
    expect(serverEvents).toEqual(['finish', 'end', 'close']);
    expect(held(hv)).toEqual(NOTHING);
  });

  for (const dying of ['client', 'server'] as const) {
    it(`3. a dead ${dying}'s pages, port and watches are released at once, with the application idle; its bytes are delivered after`, async () => {
      const { hv, dom0, dom5, server, client } = await memoryPair(3, { allowHalfOpen: true });
      const [survivor, victim, victimBackend] = dying === 'client' ? [server, client, dom5] : [client, server, dom0];
      const last = randomBytes(10_000);
      await new Promise<void>((resolve, reject) => victim.write(last, (e) => (e ? reject(e) : resolve())));
      // The application keeps the survivor and never calls end/destroy/close; nothing reads it yet.
      victimBackend.destroy();
      await tick();
      expect(held(hv)).toEqual(NOTHING);
      expect(survivor.vchan!.isOpen()).toBe(0);
      const got = collect(survivor);
      await once(survivor, 'end');
      expect(got.bytes().equals(last)).toBe(true);
    });
  }

  it('4. with the defaults, a for-await loop over a stream whose peer ended just ends, and the stream closes (as net)', async () => {
    const run = async (server: NodeJS.WritableStream & { end(data: string): void }, client: AsyncIterable<Buffer> & NodeJS.EventEmitter) => {
      server.end('all of it');
      const closed = once(client, 'close');
      let text = '';
      for await (const chunk of client) text += chunk.toString();
      await closed;
      return text;
    };
    const reference = await netPair();
    expect(await run(reference.server, reference.client)).toBe('all of it');
    const ours = await memoryPair(4);
    expect(await run(ours.server, ours.client)).toBe('all of it');
  });

  it('5. an open stream keeps the process alive, and unref() lets it exit (memory backend)', async () => {
    const open = await runFixture('keep-alive', ['open'], 500, 'connected');
    expect(open.out).toContain('connected');
    expect(open.alive).toBe(true);
    const unref = await runFixture('keep-alive', ['unref'], 3000, 'unref');
    expect(unref.out).toContain('unref');
    expect(unref).toMatchObject({ alive: false, code: 0 });
  });

  it("6. connect(options, listener) and listen(options, listener) call listener on 'connect'", async () => {
    const hv = new MemoryHypervisor();
    const calls: string[] = [];
    const server = listen({ peer: 5, port: 6, backend: hv.backend(0) }, () => calls.push('server'));
    const client = connect({ peer: 0, port: 6, backend: hv.backend(5) }, () => calls.push('client'));
    await Promise.all([once(server, 'connect'), once(client, 'connect')]);
    expect(calls.sort()).toEqual(['client', 'server']);
    expect(() => connect({ peer: 0, port: 6, backend: hv.backend(5) }, 'no' as never)).toThrow(TypeError);
    server.destroy();
    client.destroy();
  });

  it('7. a second listen() on a path this process already offers is EADDRINUSE; the first still works', async () => {
    const hv = new MemoryHypervisor();
    const dom0 = hv.backend(0);
    const first = listen({ peer: 5, port: 7, backend: dom0 });
    await once(first, 'listening');
    const second = listen({ peer: 5, path: '/local/domain/0/data/vchan/5/7', backend: dom0 });
    const [error] = (await once(second, 'error')) as [VchanError];
    expect(error.code).toBe('EADDRINUSE');
    expect(error.message).toMatch(/data\/vchan\/5\/7/);
    const client = connect({ peer: 0, port: 7, backend: hv.backend(5), timeout: 2000 });
    await Promise.all([once(first, 'connect'), once(client, 'connect')]);
    first.destroy();
    await once(first, 'close');
    // Released with the channel: the path can be offered again.
    const third = listen({ peer: 5, port: 7, backend: dom0 });
    await once(third, 'listening');
    third.destroy();
    client.destroy();
  });

  it('8. aborting the signal of a connected stream destroys it with ERR_VCHAN_ABORTED (AbortError)', async () => {
    const hv = new MemoryHypervisor();
    const controller = new AbortController();
    const server = listen({ peer: 5, port: 8, backend: hv.backend(0) });
    const client = connect({ peer: 0, port: 8, backend: hv.backend(5), signal: controller.signal });
    await Promise.all([once(server, 'connect'), once(client, 'connect')]);
    const failed = once(client, 'error') as Promise<[VchanError]>;
    controller.abort();
    const [error] = await failed;
    expect(error.code).toBe('ERR_VCHAN_ABORTED');
    expect(error.name).toBe('AbortError');
    await once(server, 'end').catch(() => undefined);
    server.destroy();
  });

  it('9. a pending connect({ timeout }) keeps the process alive until it fails (memory backend)', async () => {
    const run = await runFixture('keep-alive', ['pending'], 5000);
    expect(run.alive).toBe(false);
    expect(run.out.trim()).toBe('error ERR_VCHAN_TIMEOUT');
    expect(run.ms).toBeGreaterThanOrEqual(380);
  });

  it("12. 'connect' never fires in the same turn as 'listening': awaiting 'listening' first still sees it", async () => {
    const hv = new MemoryHypervisor();
    // The client is already there when the server's stream finishes setting up.
    const serverVchan = await Vchan.server({ peer: 5, path: 'data/vchan/5/12', backend: hv.backend(0) });
    const client = new VchanStream(Vchan.client({ peer: 0, path: '/local/domain/0/data/vchan/5/12', backend: hv.backend(5) }));
    await once(client, 'connect');
    const server = new VchanStream(serverVchan);
    await once(server, 'listening');
    const seen = await Promise.race([once(server, 'connect').then(() => 'connect'), new Promise((r) => setTimeout(() => r('missed'), 1000))]);
    expect(seen).toBe('connect');
    server.destroy();
    client.destroy();
  });

  it('13. destroy() of a stream still waiting in connect() closes at once and releases everything', async () => {
    const hv = new MemoryHypervisor();
    const dom5 = hv.backend(5);
    const client = connect({ peer: 0, port: 13, backend: dom5 });
    await new Promise((r) => setTimeout(r, 20));
    expect(hv.held().watches).toBeGreaterThan(0);
    const events = lifecycle(client);
    const closed = Promise.race([once(client, 'close').then(() => 'closed'), new Promise((r) => setTimeout(() => r('hung'), 1000))]);
    client.destroy();
    expect(await closed).toBe('closed');
    expect(events).toEqual(['close']);
    expect(held(hv)).toEqual(NOTHING);
  });
});

describe('VchanStream as a net.Socket: the rest of its shape', { timeout: 20_000 }, () => {
  it('11. bytesRead, bytesWritten, readyState, connecting, pending match a net.Socket through the same steps', async () => {
    const steps = async (a: net.Socket | ReturnType<typeof listen>, b: net.Socket | ReturnType<typeof listen>) => {
      const seen: unknown[] = [];
      const look = (s: typeof a) => [s.readyState, s.connecting, s.pending];
      seen.push(look(a), look(b));
      await new Promise<void>((resolve) => a.write(Buffer.alloc(3000, 1), () => resolve()));
      let got = 0;
      b.on('data', (c: Buffer) => (got += c.length));
      while (got < 3000) await tick();
      seen.push(a.bytesWritten, b.bytesRead, look(a));
      const aClosed = once(a, 'close');
      const bEnded = once(b, 'end').then(() => look(b));
      a.end();
      seen.push(await bEnded);
      await aClosed;
      seen.push(look(a));
      return seen;
    };
    const reference = await netPair();
    const expected = await steps(reference.client, reference.server);
    const ours = await memoryPair(11);
    expect(await steps(ours.client, ours.server)).toEqual(expected);
  });

  it('11. destroySoon() ends, then destroys once finished; resetAndDestroy() closes at once; peer, path and port say who it is', async () => {
    const { server, client } = await memoryPair(21);
    expect([client.peer, client.port, client.path]).toEqual([0, 21, '/local/domain/0/data/vchan/5/21']);
    expect([server.peer, server.port, server.path]).toEqual([5, 21, 'data/vchan/5/21']);
    const got = collect(server);
    const done = Promise.all([once(client, 'close'), once(server, 'end')]);
    client.write('last words');
    client.destroySoon();
    await done;
    expect(got.bytes().toString()).toBe('last words');
    const other = await memoryPair(22);
    const closed = Promise.all([once(other.client, 'close'), once(other.server, 'close')]);
    other.client.resetAndDestroy();
    await closed;
  });

  it('a keep-alive http.Agent over vchans lets its process exit within 1 s of the last response (xensim, XenBackend)', async () => {
    const { Sim } = await import('../sim/helpers.js');
    const sim = await Sim.start();
    try {
      const serverScript = bundle(join(REPO_ROOT, 'test/socket/fixtures/agent-server.ts'), 'socket-agent-server');
      const inDomain = (domid: number, ...argv: string[]) => {
        const [cmd, ...args] = [...sim.runArgs(domid), process.execPath, ...argv];
        return spawn(cmd!, args, { env: sim.env, stdio: ['ignore', 'pipe', 'pipe'] });
      };
      const server = inDomain(1, serverScript, '2', '30');
      let serverOut = '';
      server.stdout.setEncoding('utf8').on('data', (d: string) => (serverOut += d));
      while (!serverOut.includes('listening')) await new Promise((r) => setTimeout(r, 20));
      const clientScript = bundle(join(REPO_ROOT, 'test/socket/fixtures/agent-client.ts'), 'socket-agent-client');
      const started = Date.now();
      const client = inDomain(2, clientScript, '1', '30', '20');
      let out = '';
      let err = '';
      client.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      client.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      const exited = await Promise.race([
        once(client, 'exit').then(([code]) => ({ code: code as number, at: Date.now() })),
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 20_000)),
      ]);
      if (!exited) client.kill('SIGKILL');
      server.kill('SIGKILL');
      expect(err).toBe('');
      const done = Number(/done (\d+)/.exec(out)?.[1]);
      expect(done, `the client never finished its 20 requests (${Date.now() - started} ms)`).toBeGreaterThan(0);
      expect(exited, 'the client process was still alive 20 s after it started').toBeDefined();
      expect(exited!.code).toBe(0);
      expect(exited!.at - done).toBeLessThan(1000);
    } finally {
      await sim.stop();
    }
  });
});

describe('Vchan as the C API: a peer seen gone', { timeout: 20_000 }, () => {
  it('serves what the peer left from a copy, then ERR_VCHAN_PEER_CLOSED, with everything already released', async () => {
    const hv = new MemoryHypervisor();
    const dom5 = hv.backend(5);
    const server = await Vchan.server({ peer: 5, path: 'data/vchan/5/40', backend: hv.backend(0) });
    const client = await Vchan.client({ peer: 0, path: '/local/domain/0/data/vchan/5/40', backend: dom5 });
    client.write(Buffer.from('0123456789'));
    const woke = server.wait();
    dom5.destroy();
    await woke;
    await tick();
    expect(held(hv)).toEqual(NOTHING);
    expect(server.isOpen()).toBe(0);
    expect(server.available()).toBe(10);
    expect(server.dataReady()).toBe(10);
    const four = Buffer.alloc(4);
    expect(server.recv(four)).toBe(4);
    expect(four.toString()).toBe('0123');
    const rest = Buffer.alloc(100);
    expect(server.read(rest)).toBe(6);
    expect(rest.subarray(0, 6).toString()).toBe('456789');
    expect(() => server.read(rest)).toThrow(expect.objectContaining({ code: 'ERR_VCHAN_PEER_CLOSED' }));
    expect(() => server.write(rest)).toThrow(expect.objectContaining({ code: 'ERR_VCHAN_PEER_CLOSED' }));
    await server.released();
    await server.close();
    expect(() => server.read(rest)).toThrow(expect.objectContaining({ code: 'ERR_VCHAN_CLOSED' }));
  });
});
