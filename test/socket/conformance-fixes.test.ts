/**
 * Differences the conformance harness (test/conformance) found, each fixed
 * and pinned here by the same steps on a net.Socket pair and on ours.
 */
import { once } from 'node:events';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { expect, it } from 'vitest';
import { MemoryHypervisor } from '../../src/memory/index.js';
import { connect, listen } from '../../src/net.js';

/** A listening unix-socket server for the reference steps, at a fresh path. */
async function unixServer(name: string, onConnection?: (s: net.Socket) => void): Promise<{ netServer: net.Server; path: string }> {
  const path = join(tmpdir(), `vchan-fix-${name}-${process.pid}.sock`);
  const netServer = net.createServer(onConnection).listen(path);
  await once(netServer, 'listening');
  return { netServer, path };
}

/** The server reads from the start; act() writes, then destroys it; `seen` is how many bytes it read. */
function writeThenDestroy(server: Duplex): { act: () => void; seen: Promise<number> } {
  let got = 0;
  server.on('data', (d: Buffer) => (got += d.length));
  server.on('error', () => {});
  const act = () => {
    server.write('y', () => {});
    server.destroy(new Error('destroyed by the test'));
  };
  return { act, seen: new Promise((resolve) => server.on('close', () => resolve(got))) };
}

it("no 'data' while the 'connect' listeners run: a server that writes and destroys in 'connect' reads nothing (seed -603291779)", async () => {
  const { netServer, path } = await unixServer('data');
  const accepted = once(netServer, 'connection') as Promise<[net.Socket]>;
  net.connect(path).on('error', () => {}).end('x');
  const [socket] = await accepted;
  const steps = writeThenDestroy(socket);
  steps.act(); // in its 'connection' listener
  const reference = await steps.seen;
  netServer.close();

  const hv = new MemoryHypervisor();
  const server = listen({ peer: 5, port: 1, backend: hv.backend(0) });
  const ours = writeThenDestroy(server);
  server.once('connect', ours.act);
  connect({ peer: 0, port: 1, backend: hv.backend(5) }).on('error', () => {}).end('x');
  expect(reference).toBe(0);
  expect(await ours.seen).toBe(reference);
});

/** Both ends end() at once; the client reads with for await. Its events, in order. */
async function bothEndAtOnce(client: Duplex, server: Promise<Duplex>): Promise<string[]> {
  const events: string[] = [];
  for (const name of ['finish', 'end', 'close']) client.on(name, () => events.push(name));
  client.end();
  void server.then((s) => s.resume().end());
  for await (const _ of client);
  await once(client, 'close');
  return events;
}

it("'finish' comes once our bytes are in the ring, not when the channel is released: both ending at once, a for-await client still sees it (seed 475782478)", async () => {
  const { netServer, path } = await unixServer('finish');
  const accepted = once(netServer, 'connection').then(([s]) => s as net.Socket);
  const reference = await bothEndAtOnce(net.connect(path), accepted);
  netServer.close();

  const hv = new MemoryHypervisor();
  const server = listen({ peer: 5, port: 2, backend: hv.backend(0) });
  const ours = await bothEndAtOnce(connect({ peer: 0, port: 2, backend: hv.backend(5) }), Promise.resolve(server));
  expect(reference).toContain('finish');
  expect(ours).toContain('finish');
});

/**
 * The client writes before it is connected and destroys itself in a 'connect' listener added before
 * or after that write: how many bytes reach the server? (net moves them in a listener of its own.)
 */
async function writeBeforeConnect(client: Duplex, server: Promise<Duplex>, listenerFirst: boolean): Promise<number> {
  client.on('error', () => {});
  if (listenerFirst) client.once('connect', () => client.destroy());
  client.write('written before connect', () => {});
  if (!listenerFirst) client.once('connect', () => client.destroy());
  const s = await server;
  let got = 0;
  s.on('data', (d: Buffer) => (got += d.length)).on('error', () => {});
  await once(s, 'close');
  return got;
}

it("bytes written before 'connect' move in 'connect', after the listeners added before the write (seed 1445116413)", async () => {
  const { netServer, path } = await unixServer('write');
  const hv = new MemoryHypervisor();
  let port = 3;
  for (const listenerFirst of [true, false]) {
    const accepted = once(netServer, 'connection').then(([s]) => s as net.Socket);
    const reference = await writeBeforeConnect(net.connect(path), accepted, listenerFirst);
    const server = listen({ peer: 5, port: ++port, backend: hv.backend(0) });
    const ours = await writeBeforeConnect(connect({ peer: 0, port, backend: hv.backend(5) }), Promise.resolve(server), listenerFirst);
    expect([listenerFirst, ours]).toEqual([listenerFirst, reference]);
  }
  netServer.close();
});

/** Called in the server's 'connect' (net: 'connection'): the order of its 'end' and of a setImmediate set now. */
function endTurn(server: Duplex): Promise<string[]> {
  const events: string[] = [];
  server.on('end', () => events.push('end')).resume();
  setImmediate(() => events.push('next turn'));
  return once(server, 'end').then(() => new Promise((r) => setImmediate(() => r(events))));
}

it("a peer's bytes and EOF come a turn after 'connect' at the earliest, as a socket's (seed -1926539960)", async () => {
  let reference!: Promise<string[]>;
  const { netServer, path } = await unixServer('turn', (s) => (reference = endTurn(s)));
  await once(net.connect(path).end(), 'close');
  netServer.close();

  const hv = new MemoryHypervisor();
  const server = listen({ peer: 5, port: 9, backend: hv.backend(0) });
  const ours = new Promise<string[]>((resolve) => server.once('connect', () => resolve(endTurn(server))));
  connect({ peer: 0, port: 9, backend: hv.backend(5) }).end();
  expect(await reference).toEqual(['next turn', 'end']);
  expect(await ours).toEqual(['next turn', 'end']);
});

it("a write cut short by our own destroy() fails as destroyed, not as ERR_VCHAN_PEER_CLOSED (seed -1841182620)", async () => {
  const { netServer, path } = await unixServer('destroyed', (s) => s.resume());
  const codeOf = (client: Duplex) =>
    new Promise<string | undefined>((resolve) => {
      client.once('connect', () => client.destroy());
      client.write(Buffer.alloc(0), (e) => resolve((e as { code?: string } | null | undefined)?.code));
    });
  const reference = await codeOf(net.connect(path));
  netServer.close();

  const hv = new MemoryHypervisor();
  listen({ peer: 5, port: 10, backend: hv.backend(0) }).resume();
  const ours = await codeOf(connect({ peer: 0, port: 10, backend: hv.backend(5) }));
  expect(reference).toBe('ERR_SOCKET_CLOSED');
  expect(ours).toBe('ERR_STREAM_DESTROYED');
});
