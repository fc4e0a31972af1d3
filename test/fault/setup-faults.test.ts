/**
 * A fault at every step, on the memory backend: for each role (server,
 * client) and API (Vchan, listen/connect), the k-th backend call of the side
 * under test fails with each errno that call can return on Xen (gntalloc,
 * gntdev, evtchn, xenstore), for every k of a whole session — setup, a few
 * bytes each way, teardown. The peer is honest and unhurt.
 *
 * Every run must end within its deadline (the peer is there: any wait
 * that reaches it is a hang) with success (the failure was absorbed: a
 * refused peer watch, an EACCES read retried on the watch) or with exactly
 * one VchanError carrying the injected errno; no uncaught exception or
 * unhandled rejection; and once both sides are done, the hypervisor holds nothing —
 * except, when the failed call was itself the teardown's removal of an
 * entry or a watch, that one entry or watch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Vchan } from '../../src/channel.js';
import { VchanError } from '../../src/errors.js';
import { MemoryHypervisor, type MemoryBackend } from '../../src/memory/index.js';
import { connect, listen } from '../../src/net.js';
import type { VchanStream } from '../../src/stream.js';
import { interpose, type CallName, type InterposedBackend } from '../support/interposed-backend.js';

/** What each call can fail with on Xen (the kernel drivers and xenstored). */
const ERRNOS: Record<CallName, readonly string[]> = {
  domainId: ['EACCES', 'ECONNRESET'],
  sharePages: ['ENOSPC', 'ENOMEM'],
  mapGrants: ['ENOMEM', 'E2BIG', 'EINVAL'],
  bindUnboundPort: ['ENOSPC', 'EINVAL'],
  bindInterdomain: ['ENOSPC', 'EINVAL'],
  'store.read': ['EACCES', 'E2BIG', 'EAGAIN', 'ECONNRESET'],
  'store.writeAll': ['EACCES', 'ENOSPC', 'E2BIG', 'EAGAIN', 'ECONNRESET'],
  'store.remove': ['EACCES', 'EAGAIN', 'ECONNRESET'],
  'store.watch': ['EACCES', 'ENOSPC', 'E2BIG', 'EAGAIN', 'ECONNRESET'],
  'watch.close': ['EAGAIN', 'ECONNRESET'],
};

const SERVER = 0;
const CLIENT = 5;
const PATH = `data/vchan/${CLIENT}/1`;
const ABS = `/local/domain/${SERVER}/${PATH}`;
const RUN_MS = 3000;

type Role = 'server' | 'client';
type Api = 'vchan' | 'stream';

interface Fault {
  readonly k: number;
  readonly errno: string;
}

interface Outcome {
  /** Codes of the errors the side under test reported (a rejection, an 'error' event, a failed close). */
  errors: string[];
  /** The call that failed, if the session got that far. */
  failed?: { name: CallName; errno: string };
  calls: number;
}

/** Unhandled rejections and uncaught exceptions while the matrix runs: each one is a defect. */
const stray: unknown[] = [];
const onStray = (error: unknown): void => void stray.push(error);
beforeAll(() => {
  process.on('unhandledRejection', onStray);
  process.on('uncaughtException', onStray);
});
afterAll(() => {
  process.off('unhandledRejection', onStray);
  process.off('uncaughtException', onStray);
});

function injector(fault: Fault | undefined, outcome: Outcome) {
  return (call: { name: CallName; index: number }): void => {
    outcome.calls = call.index;
    if (!fault || call.index !== fault.k) return;
    outcome.failed = { name: call.name, errno: fault.errno };
    throw new VchanError(fault.errno, `${fault.errno}: injected into call ${call.index} (${call.name})`, { syscall: call.name });
  };
}

const codeOf = (error: unknown): string => (error instanceof VchanError ? String(error.code) : `not a VchanError: ${String(error)}`);

async function settle(ms = 5): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** Reads `length` bytes from a Vchan within the run's deadline. */
async function readBytes(v: Vchan, length: number, signal: AbortSignal): Promise<string> {
  const into = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    got += v.read(into, got, length - got);
    if (got < length) await v.wait(signal);
  }
  return into.toString();
}

/** The honest other side, on a backend of its own. */
async function honestServer(backend: MemoryBackend): Promise<Vchan> {
  return Vchan.server({ peer: CLIENT, path: PATH, readMin: 1 << 16, writeMin: 1 << 16, backend });
}

/** One session of the side under test (`role` over `api`) with `fault` injected; the peer is honest. */
async function session(role: Role, api: Api, fault: Fault | undefined): Promise<{ outcome: Outcome; hv: MemoryHypervisor; names: CallName[] }> {
  const hv = new MemoryHypervisor();
  const outcome: Outcome = { errors: [], calls: 0 };
  const underTest: InterposedBackend = interpose(hv.backend(role === 'server' ? SERVER : CLIENT), injector(fault, outcome));
  const peerBackend = hv.backend(role === 'server' ? CLIENT : SERVER);
  const deadline = AbortSignal.timeout(RUN_MS);
  const run = role === 'server' ? (api === 'vchan' ? vchanServer : streamServer) : api === 'vchan' ? vchanClient : streamClient;
  await run(underTest, peerBackend, outcome, deadline);
  await settle();
  return { outcome, hv, names: underTest.calls.map((c) => c.name) };
}

type Run = (backend: InterposedBackend, peer: MemoryBackend, outcome: Outcome, deadline: AbortSignal) => Promise<void>;

const vchanServer: Run = async (backend, peer, outcome, deadline) => {
  let server: Vchan;
  try {
    server = await Vchan.server({ peer: CLIENT, path: PATH, readMin: 1 << 16, writeMin: 1 << 16, backend });
  } catch (error) {
    outcome.errors.push(codeOf(error));
    return;
  }
  const client = await Vchan.client({ peer: SERVER, path: ABS, backend: peer, signal: deadline });
  await exchange(server, client, outcome, deadline);
  await client.close();
};

const vchanClient: Run = async (backend, peer, outcome, deadline) => {
  const server = await honestServer(peer);
  let client: Vchan;
  try {
    client = await Vchan.client({ peer: SERVER, path: ABS, backend, signal: deadline });
  } catch (error) {
    outcome.errors.push(codeOf(error));
    await server.close();
    return;
  }
  await exchange(client, server, outcome, deadline);
  await server.close();
};

/** A few bytes each way, then the side under test closes first. */
async function exchange(tested: Vchan, other: Vchan, outcome: Outcome, deadline: AbortSignal): Promise<void> {
  try {
    expect(tested.write(Buffer.from('ping'))).toBe(4);
    expect(await readBytes(other, 4, deadline)).toBe('ping');
    expect(other.write(Buffer.from('pong'))).toBe(4);
    expect(await readBytes(tested, 4, deadline)).toBe('pong');
  } catch (error) {
    outcome.errors.push(codeOf(error));
  }
  await tested.close().catch((error: unknown) => outcome.errors.push(codeOf(error)));
}

/** Follows a stream until 'close' (or the deadline: recorded as a hang); records each 'error'. */
function followed(stream: VchanStream, outcome: Outcome, deadline: AbortSignal): Promise<void> {
  stream.on('error', (error) => outcome.errors.push(codeOf(error)));
  return new Promise((resolve) => {
    const hung = (): void => {
      outcome.errors.push('HUNG: no close before the deadline');
      resolve();
    };
    deadline.addEventListener('abort', hung, { once: true });
    stream.once('close', () => {
      deadline.removeEventListener('abort', hung);
      resolve();
    });
  });
}

const streamServer: Run = async (backend, peer, outcome, deadline) => {
  const stream = listen({ peer: CLIENT, path: PATH, readMin: 1 << 16, writeMin: 1 << 16, backend });
  const closed = followed(stream, outcome, deadline);
  const listening = await Promise.race([new Promise((r) => stream.once('listening', () => r(true))), closed.then(() => false)]);
  if (!listening) return;
  const client = await Vchan.client({ peer: SERVER, path: ABS, backend: peer, signal: deadline });
  await streamExchange(stream, client, deadline);
  stream.destroy();
  await closed;
  await client.close();
};

const streamClient: Run = async (backend, peer, outcome, deadline) => {
  const server = await honestServer(peer);
  const stream = connect({ peer: SERVER, path: ABS, backend, signal: deadline });
  const closed = followed(stream, outcome, deadline);
  const connected = await Promise.race([new Promise((r) => stream.once('connect', () => r(true))), closed.then(() => false)]);
  if (connected) {
    await streamExchange(stream, server, deadline);
    stream.destroy();
    await closed;
  }
  await server.close();
};

async function streamExchange(stream: VchanStream, other: Vchan, deadline: AbortSignal): Promise<void> {
  stream.write('ping');
  expect(await readBytes(other, 4, deadline)).toBe('ping');
  other.write(Buffer.from('pong'));
  const [chunk] = (await Promise.race([
    new Promise((resolve) => stream.once('data', (c: Buffer) => resolve([c]))),
    new Promise((resolve) => deadline.addEventListener('abort', () => resolve([Buffer.alloc(0)]), { once: true })),
  ])) as Buffer[];
  expect(chunk!.toString()).toBe('pong');
}

/** What may stay behind: only what the failed teardown call was to remove. */
function allowedLeftovers(failed: Outcome['failed']): { storeEntries: number; watches: number } {
  return { storeEntries: failed?.name === 'store.remove' ? 2 : 0, watches: failed?.name === 'watch.close' ? 1 : 0 };
}

const sizes: string[] = [];
afterAll(() => {
  if (sizes.length) process.stdout.write(`\nfault matrix:\n${sizes.join('\n')}\n`);
});

describe('a fault at every step (memory backend)', () => {
  for (const role of ['server', 'client'] as const) {
    for (const api of ['vchan', 'stream'] as const) {
      it(`${role} over ${api === 'vchan' ? 'the Vchan API' : role === 'server' ? 'listen()' : 'connect()'}`, async () => {
        const clean = await session(role, api, undefined);
        expect(clean.outcome.errors, 'the clean session').toEqual([]);
        expect(clean.hv.held()).toMatchObject({ grants: 0, mappedPages: 0, ports: 0, watches: 0, storeEntries: 0 });
        const calls = clean.outcome.calls;
        expect(calls).toBeGreaterThan(5);

        let runs = 0;
        const outcomes = new Map<string, number>();
        for (let k = 1; k <= calls; k++) {
          // A faulty session makes the same calls as the clean one up to the k-th.
          const name = clean.names[k - 1]!;
          for (const errno of ERRNOS[name]) {
            const started = Date.now();
            const { outcome, hv } = await session(role, api, { k, errno });
            expect(outcome.failed, `${role}/${api}: call ${k}`).toEqual({ name, errno });
            runs++;
            const at = `${role}/${api}: call ${k} (${name}) failing with ${errno} → ${JSON.stringify(outcome.errors)}`;
            expect(Date.now() - started, at).toBeLessThan(RUN_MS);
            // One error at most, and it is the kernel's or xenstore's own errno, passed on as named.
            expect(outcome.errors.length, `${at}: more than one error`).toBeLessThanOrEqual(1);
            for (const code of outcome.errors) expect(code, at).toBe(errno);
            const left = allowedLeftovers(outcome.failed);
            const held = hv.held();
            expect({ grants: held.grants, mappedPages: held.mappedPages, ports: held.ports }, at).toEqual({ grants: 0, mappedPages: 0, ports: 0 });
            expect(held.storeEntries, at).toBeLessThanOrEqual(left.storeEntries);
            expect(held.watches, at).toBeLessThanOrEqual(left.watches);
            if (process.env.FAULT_LOG) process.stdout.write(`${at} held ${JSON.stringify(held)}\n`);
            const key = outcome.errors[0] === undefined ? 'success' : outcome.errors[0] === errno ? 'the injected errno' : outcome.errors[0];
            outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
          }
        }
        expect(stray).toEqual([]);
        sizes.push(`  ${role}/${api}: ${calls} calls, ${runs} runs: ${[...outcomes].map(([k, n]) => `${n} ${k}`).join(', ')}`);
      });
    }
  }
});
