/**
 * `vchan proxy`: a drop-in for Xen's vchan-socket-proxy, with its arguments
 * (`[-m client|server] [-s state-path] [-v] domid nodepath socket|fd|-`) and
 * its way of carrying on after a session:
 *
 *   client mode, socket path or fd: listen on the unix socket; each
 *     accepted connection, one at a time, gets a new vchan connection to
 *     the server at `nodepath` (waiting for it to appear); when either side
 *     ends, the vchan is closed and the next connection is served.
 *   client mode, `-`: one vchan connection for stdin/stdout, then exit.
 *   server mode: offer the vchan at `nodepath` to `domid`; when a client
 *     connects, connect to the unix socket (or use the fd / stdin+stdout).
 *     With an absolute socket path it runs until stopped: after the vchan
 *     client leaves, the vchan is offered again; when the socket side ends
 *     while the vchan client stays, the socket is connected again. With
 *     anything else it exits after the first session.
 *
 * `-s` writes "running" to the xenstore path once the vchan (server) or the
 * socket (client) is set up.
 */
import type { Server, Socket } from 'node:net';
import { connect, listen } from '../net.js';
import type { VchanStream } from '../stream.js';
import { parseDomid, parseXenstorePath } from './args.js';
import { describeError, EXIT_FAILURE, EXIT_OK, report, UsageError } from './errors.js';
import { forward } from './forward.js';
import { connectLocal, listenLocal, parseLocal, socketStream, stdioStream, type LocalSpec, type LocalStream } from './local-end.js';
import { writeRunningState } from './state-path.js';

export interface ProxyFlags {
  mode?: string;
  statePath?: string;
  verbose?: boolean;
}

interface ProxyPlan {
  peer: number;
  path: string;
  local: LocalSpec;
  statePath?: string;
  log: (line: string) => void;
}

/** Resolves when the channel is connected; rejects with its setup error. */
function connected(channel: VchanStream): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => {
      channel.off('connect', onConnect);
      reject(error);
    };
    const onConnect = (): void => {
      channel.off('error', onError);
      resolve();
    };
    channel.once('connect', onConnect);
    channel.once('error', onError);
  });
}

function listening(channel: VchanStream): Promise<void> {
  return new Promise((resolve, reject) => {
    channel.once('listening', () => {
      channel.off('error', reject);
      resolve();
    });
    channel.once('error', reject);
  });
}

/** Closes the channel; bytes already in the ring stay readable by the peer. */
function release(channel: VchanStream): Promise<void> {
  return new Promise((resolve) => {
    channel.on('error', () => undefined);
    if (channel.closed) return resolve();
    channel.once('close', () => resolve());
    channel.destroy();
  });
}

export async function runProxy(domid: string, nodePath: string, localText: string, flags: ProxyFlags): Promise<number> {
  const mode = flags.mode ?? 'client';
  if (mode !== 'client' && mode !== 'server') throw new UsageError(`-m/--mode must be client or server, got '${mode}'`);
  const plan: ProxyPlan = {
    peer: parseDomid('domid', domid),
    path: parseXenstorePath('nodepath', nodePath),
    local: parseLocal(localText),
    ...(flags.statePath === undefined ? {} : { statePath: flags.statePath }),
    log: flags.verbose ? (line) => process.stderr.write(`vchan proxy: ${line}\n`) : () => undefined,
  };
  const stop = new Stopper();
  try {
    return await (mode === 'server' ? serve(plan, stop) : relayClients(plan, stop));
  } finally {
    await stop.cleanup();
  }
}

/** Everything to let go of when a signal stops us. */
class Stopper {
  readonly channels = new Set<VchanStream>();
  server: Server | undefined;
  local: LocalStream | undefined;
  private stopped: ((code: number) => void) | undefined;
  /** Resolves with the exit code when SIGINT/SIGTERM/SIGHUP arrives. */
  readonly signalled = new Promise<number>((resolve) => (this.stopped = resolve));

  constructor() {
    for (const [signal, number] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]] as const) {
      process.once(signal, () => this.stopped?.(128 + number));
    }
  }

  track(channel: VchanStream): VchanStream {
    this.channels.add(channel);
    // Sessions listen for errors while they run; between sessions an error must not crash us.
    channel.on('error', () => undefined);
    channel.once('close', () => this.channels.delete(channel));
    return channel;
  }

  async cleanup(): Promise<void> {
    this.local?.close();
    this.server?.close();
    await Promise.all([...this.channels].map(release));
  }
}

/** Races a step against a stop signal: a number means stop with that code. */
function orStop<T>(step: Promise<T>, stop: Stopper): Promise<T | { stopped: number }> {
  return Promise.race([step, stop.signalled.then((code) => ({ stopped: code }))]);
}

function isStop(value: unknown): value is { stopped: number } {
  return typeof value === 'object' && value !== null && 'stopped' in value;
}

async function serve(plan: ProxyPlan, stop: Stopper): Promise<number> {
  const keepGoing = plan.local.kind === 'path' && plan.local.path.startsWith('/');
  let stateWritten = false;
  for (;;) {
    const channel = stop.track(listen({ peer: plan.peer, path: plan.path, allowHalfOpen: true }));
    try {
      const ready = await orStop(listening(channel), stop);
      if (isStop(ready)) return ready.stopped;
    } catch (error) {
      report(`cannot offer the vchan at ${plan.path}: ${describeError(error)}`);
      return EXIT_FAILURE;
    }
    if (plan.statePath !== undefined && !stateWritten) {
      await writeRunningState(plan.statePath);
      stateWritten = true;
    }
    plan.log(`offering ${plan.path} to domain ${plan.peer}`);
    try {
      const client = await orStop(connected(channel), stop);
      if (isStop(client)) return client.stopped;
    } catch (error) {
      report(describeError(error));
      return EXIT_FAILURE;
    }
    plan.log('vchan client connected');
    // Sessions on this vchan: a new local connection each time the local side ends first.
    for (;;) {
      let local: LocalStream;
      try {
        local = await connectLocal(plan.local);
      } catch (error) {
        report(`cannot connect to the local socket: ${describeError(error)}`);
        return EXIT_FAILURE;
      }
      stop.local = local;
      const end = await orStop(forward(local, channel), stop);
      if (isStop(end)) return end.stopped;
      if (end === 'vchan-closed') {
        plan.log('vchan client disconnected');
        // Withdraw the old offer first: a reconnecting C client must not find its entries.
        const released = release(channel);
        await local.finish();
        await released;
        break;
      }
      plan.log('local side closed');
      local.close();
      if (!keepGoing) {
        await release(channel);
        return EXIT_OK;
      }
    }
    if (!keepGoing) return EXIT_OK;
  }
}

async function relayClients(plan: ProxyPlan, stop: Stopper): Promise<number> {
  if (plan.local.kind === 'stdio') {
    if (plan.statePath !== undefined) await writeRunningState(plan.statePath);
    return (await session(plan, stdioStream(), stop)) ?? EXIT_OK;
  }
  let server: Server;
  try {
    server = await listenLocal(plan.local);
  } catch (error) {
    report(`cannot listen on the local socket: ${describeError(error)}`);
    return EXIT_FAILURE;
  }
  stop.server = server;
  // Connections wait (paused) in arrival order and are served one at a time.
  // Taken from the start: one may come while we still write the state.
  const waiting: Socket[] = [];
  let wake: (() => void) | undefined;
  server.on('connection', (socket: Socket) => {
    waiting.push(socket);
    wake?.();
  });
  if (plan.statePath !== undefined) await writeRunningState(plan.statePath);
  for (;;) {
    if (waiting.length === 0) {
      const arrived = await orStop(new Promise<void>((resolve) => (wake = resolve)), stop);
      if (isStop(arrived)) return arrived.stopped;
      continue;
    }
    const code = await session(plan, socketStream(waiting.shift()!), stop);
    if (code !== undefined) return code;
  }
}

/** One client-mode session: a new vchan connection for this local stream. Returns an exit code to stop with. */
async function session(plan: ProxyPlan, local: LocalStream, stop: Stopper): Promise<number | undefined> {
  stop.local = local;
  plan.log(`connecting to ${plan.path} in domain ${plan.peer}`);
  const channel = stop.track(connect({ peer: plan.peer, path: plan.path, allowHalfOpen: true }));
  try {
    const up = await orStop(connected(channel), stop);
    if (isStop(up)) return up.stopped;
  } catch (error) {
    report(`vchan client init failed: ${describeError(error)}`);
    local.close();
    return EXIT_FAILURE;
  }
  plan.log('vchan connected');
  const end = await orStop(forward(local, channel), stop);
  if (isStop(end)) return end.stopped;
  plan.log(end === 'vchan-closed' ? 'vchan server disconnected' : 'local side closed');
  if (end === 'vchan-closed') await local.finish();
  else local.close();
  await release(channel);
  return undefined;
}
