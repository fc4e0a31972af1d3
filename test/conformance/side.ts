/**
 * Runs one end's script on a Duplex and records its trace. The same code
 * drives a net.Socket, a VchanStream in this thread, or one in a worker.
 */
import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { payload } from './pattern.js';
import type { Role, SideScript } from './scenario.js';
import type { SideTrace } from './trace.js';

/** An end that neither closed nor failed by then is recorded as 'stuck' and destroyed. */
const STUCK_MS = 1000;

export interface SideOptions {
  /** The stream is connected already (a net server's accepted socket): 'connect' is ours to report, a tick later. */
  connected?: boolean;
  /** Settles when the peer went before it ever connected: a vchan end then waits for ever, so stop it. */
  abandon?: Promise<unknown>;
}

export function runSide(stream: Duplex, role: Role, script: SideScript, options: SideOptions = {}): Promise<SideTrace> {
  const trace: SideTrace = { events: [], writes: [], lateBytes: 0, destroyed: false, received: 0, hash: '', partial: false };
  const hash = createHash('sha1');
  let sent = 0;
  let sawEnd = false;
  let finished = false;
  let needDrain = false;
  const onData: Array<() => void> = [];

  const send = (length: number, kind: 'buffer' | 'string'): Buffer | string => {
    const bytes = payload(role, sent, length);
    sent += length;
    if (sawEnd) trace.lateBytes += length;
    return kind === 'string' ? bytes.toString('latin1') : bytes;
  };

  const finish = (): void => {
    if (finished) return;
    finished = true;
    switch (script.finish) {
      case 'end':
        stream.end();
        break;
      case 'endData':
        if (!stream.writableEnded && !stream.destroyed) stream.end(send(script.endDataSize, 'buffer'));
        else stream.end();
        break;
      case 'destroy':
        trace.destroyed = true;
        stream.destroy();
        break;
      case 'destroyErr':
        trace.destroyed = true;
        stream.destroy(Object.assign(new Error('destroyed by the scenario'), { code: 'ESCENARIO' }));
        break;
      case 'none':
        break;
    }
  };

  const writeAll = (): void => {
    if (script.cork) stream.cork();
    script.writes.forEach((step, index) => {
      trace.writes.push('none');
      const chunk = send(step.size, step.kind);
      const more = stream.write(chunk, (error?: Error | null) => {
        trace.writes[index] = error ? codeOf(error) : 'ok';
        if (index === 0 && script.finishAt === 'writecb') finish();
      });
      needDrain = !more;
    });
    if (script.cork) process.nextTick(() => stream.uncork());
    if (script.finishAt === 'drain') {
      if (needDrain) stream.once('drain', finish);
      else finish();
    }
    if (script.finishAt === 'writecb' && script.writes.length === 0) finish();
  };

  const onConnect = (): void => {
    trace.events.push('connect');
    if (script.writeAt === 'connect') writeAll();
    if (script.finishAt === 'connect') finish();
  };

  stream.on('end', () => {
    trace.events.push('end');
    sawEnd = true;
    if (script.finishAt === 'end') finish();
  });
  stream.on('finish', () => trace.events.push('finish'));
  stream.on('error', (error: Error) => trace.events.push(`error:${codeOf(error)}`));
  const closed = new Promise<void>((resolve) => stream.once('close', () => {
    trace.events.push('close');
    resolve();
  }));

  const chunk = (data: Buffer): void => {
    trace.received += data.length;
    hash.update(data);
    if (script.finishAt === 'data' && !finished) finish();
    for (const f of onData.splice(0)) f();
  };
  const reading = read(stream, script, chunk, () => (trace.partial = true));

  if (options.connected) process.nextTick(onConnect);
  else stream.once('connect', onConnect);
  if (script.writeAt === 'now') writeAll();
  if (script.finishAt === 'now') finish();

  let timer: ReturnType<typeof setTimeout> | undefined;
  const stuck = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      trace.events.push('stuck');
      stream.destroy();
      resolve();
    }, STUCK_MS);
  });
  const abandoned = new Promise<void>((resolve) =>
    options.abandon?.then(() =>
      setTimeout(() => {
        if (!stream.destroyed) {
          trace.events.push('abandoned');
          stream.destroy();
        }
        resolve();
      }, 20),
    ),
  );
  return Promise.race([Promise.all([closed, reading]), stuck, abandoned]).then(
    () =>
      new Promise((resolve) => {
        clearTimeout(timer);
        // Write callbacks that come with 'close' are called in the same turn or the next.
        setImmediate(() => {
          trace.hash = hash.digest('hex').slice(0, 12);
          resolve(trace);
        });
      }),
  );
}

async function read(stream: Duplex, script: SideScript, chunk: (data: Buffer) => void, broke: () => void): Promise<void> {
  switch (script.read) {
    case 'flow':
      stream.on('data', chunk);
      return;
    case 'pauseResume': {
      let paused = false;
      stream.on('data', (data: Buffer) => {
        chunk(data);
        if (paused) return;
        paused = true;
        stream.pause();
        setImmediate(() => stream.resume());
      });
      return;
    }
    case 'iterate':
    case 'iterateBreak':
      try {
        for await (const data of stream) {
          chunk(data as Buffer);
          if (script.read === 'iterateBreak') {
            broke();
            break;
          }
        }
      } catch {
        // The error is in the trace from the 'error' listener.
      }
  }
}

/** Error code as recorded: the code, else the name. */
export function codeOf(error: Error): string {
  return (error as { code?: string }).code ?? error.name;
}
