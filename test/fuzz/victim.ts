/**
 * The victims of the fuzzer, in the test's own thread: a VchanStream
 * (listen/connect) or a Vchan driven by hand, as server or client, sending
 * its pattern bytes and reading everything. Each reports every error that
 * reached it (the oracle judges them) and what it received.
 */
import type { Backend } from '../../src/backend.js';
import { Vchan } from '../../src/channel.js';
import { ErrorCodes } from '../../src/errors.js';
import { connect, listen } from '../../src/net.js';
import type { VchanStream } from '../../src/stream.js';
import { fillPattern, PatternChecker } from '../support/pattern.js';
import type { Plan } from './plan.js';

export interface VictimReport {
  errors: unknown[];
  received: number;
  /** In an honest session: whether every byte received matched. */
  intact: boolean;
}

export interface Victim {
  done: Promise<VictimReport>;
  /** Set up (a server: published and watching its client's domain), or failed. */
  ready: Promise<void>;
  /** For a finding: what the victim looks like now. */
  state(): string;
  /** Gives up on a hung victim (the oracle already noted the hang). */
  kill(): Promise<void>;
}

export interface Where {
  peer: number;
  /** Relative for a server, absolute for a client. */
  path: string;
  backend: Backend;
}

function checker(plan: Plan) {
  const check = new PatternChecker(plan.seed ^ 2);
  const report = { received: 0, intact: true };
  return {
    report,
    push(chunk: Uint8Array) {
      report.received += chunk.length;
      if (!plan.honest || !report.intact) return;
      try {
        check.push(chunk);
      } catch {
        report.intact = false;
      }
    },
  };
}

export function streamVictim(plan: Plan, where: Where): Victim {
  const options = { peer: where.peer, path: where.path, backend: where.backend };
  const stream: VchanStream = plan.role === 'server' ? listen({ ...options, readMin: plan.readMin, writeMin: plan.writeMin }) : connect(options);
  const errors: unknown[] = [];
  let killed = false;
  const rx = checker(plan);
  // What our own destroy() does to queued writes is not the attacker's doing.
  const note = (error: unknown) => killed || errors.push(error);
  stream.on('error', note);
  stream.on('data', (chunk: Buffer) => rx.push(chunk));
  for (let sent = 0; sent < plan.victimBytes; ) {
    const n = Math.min(16384, plan.victimBytes - sent);
    stream.write(fillPattern(plan.seed ^ 1, sent, new Uint8Array(n)), (error) => error && note(error));
    sent += n;
  }
  const done = new Promise<VictimReport>((resolve) => stream.once('close', () => resolve({ errors, ...rx.report })));
  const ready = new Promise<void>((resolve) => {
    stream.once('ready', resolve);
    stream.once('close', resolve);
  });
  return {
    done,
    ready,
    state: () => `stream readyState ${stream.readyState}, connecting ${stream.connecting}, isOpen ${stream.vchan?.isOpen()}, destroyed ${stream.destroyed}`,
    async kill() {
      killed = true;
      stream.destroy();
      await done;
    },
  };
}

export function vchanVictim(plan: Plan, where: Where): Victim {
  const errors: unknown[] = [];
  const rx = checker(plan);
  const abort = new AbortController();
  let vchan: Vchan | undefined;
  let setUp!: () => void;
  const ready = new Promise<void>((resolve) => (setUp = resolve));
  const run = async (): Promise<void> => {
    const v = (vchan =
      plan.role === 'server'
        ? await Vchan.server({ peer: where.peer, path: where.path, readMin: plan.readMin, writeMin: plan.writeMin, backend: where.backend })
        : await Vchan.client({ peer: where.peer, path: where.path, backend: where.backend, signal: abort.signal }));
    setUp();
    const into = new Uint8Array(65536);
    let sent = 0;
    try {
      for (;;) {
        let moved = false;
        if (sent < plan.victimBytes) {
          try {
            const n = v.write(fillPattern(plan.seed ^ 1, sent, new Uint8Array(Math.min(8192, plan.victimBytes - sent))));
            sent += n;
            moved = n > 0;
          } catch (error) {
            // The peer is gone: stop writing, still read what it left.
            if ((error as { code?: string }).code !== ErrorCodes.PEER_CLOSED) throw error;
            sent = plan.victimBytes;
          }
        }
        const n = v.read(into); // throws PEER_CLOSED once the peer is gone and the ring is empty
        if (n > 0) rx.push(into.subarray(0, n));
        else if (!moved) await v.wait(abort.signal);
      }
    } catch (error) {
      if ((error as { code?: string }).code !== ErrorCodes.PEER_CLOSED) throw error;
    } finally {
      await v.close();
      await v.released();
    }
  };
  const done = run().finally(() => setUp()).then(
    () => ({ errors, ...rx.report }),
    async (error: unknown) => {
      errors.push(error);
      if (vchan !== undefined) {
        await vchan.close().catch((e: unknown) => errors.push(e));
        await vchan.released();
      }
      return { errors, ...rx.report };
    },
  );
  return {
    done,
    ready,
    state: () => (vchan === undefined ? 'Vchan not set up' : `Vchan isOpen() ${vchan.isOpen()}, closed ${vchan.closed}, available ${vchan.available()}`),
    async kill() {
      const before = errors.length;
      abort.abort();
      await done;
      errors.length = before; // our own abort is not the attacker's doing
      await done;
    },
  };
}
