/**
 * The local side of `vchan proxy`, named as vchan-socket-proxy names it:
 * a unix socket path, the number of an open file descriptor, or `-` for
 * stdin/stdout.
 */
import { connect as netConnect, createServer, Socket, type Server } from 'node:net';
import type { Readable, Writable } from 'node:stream';

export type LocalSpec = { kind: 'path'; path: string } | { kind: 'fd'; fd: number } | { kind: 'stdio' };

export function parseLocal(text: string): LocalSpec {
  if (text === '-') return { kind: 'stdio' };
  if (/^[0-9]+$/.test(text)) return { kind: 'fd', fd: Number(text) };
  return { kind: 'path', path: text };
}

/** One local connection: bytes in, bytes out, and how to let go of it. */
export interface LocalStream {
  input: Readable;
  output: Writable;
  /** Flushes what was written, then closes. */
  finish(): Promise<void>;
  /** Closes at once. */
  close(): void;
}

export function socketStream(socket: Socket): LocalStream {
  // Errors end the session (see forward.ts); this keeps a late one from crashing the proxy.
  socket.on('error', () => undefined);
  return {
    input: socket,
    output: socket,
    finish: () =>
      new Promise((resolve) => {
        if (socket.destroyed) return resolve();
        socket.end(() => {
          socket.destroy();
          resolve();
        });
        socket.once('close', () => resolve());
      }),
    close: () => socket.destroy(),
  };
}

export function stdioStream(): LocalStream {
  return {
    input: process.stdin,
    output: process.stdout,
    finish: () => new Promise((resolve) => process.stdout.write(Buffer.alloc(0), () => resolve())),
    close: () => process.stdin.pause(),
  };
}

/** Server mode: connects to the local socket (or adopts the fd) for a new vchan client. */
export function connectLocal(spec: LocalSpec): Promise<LocalStream> {
  if (spec.kind === 'stdio') return Promise.resolve(stdioStream());
  return new Promise((resolve, reject) => {
    const socket = spec.kind === 'fd' ? new Socket({ fd: spec.fd, allowHalfOpen: true, readable: true, writable: true }) : netConnect({ path: spec.path, allowHalfOpen: true });
    if (spec.kind === 'fd') return resolve(socketStream(socket));
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socketStream(socket));
    });
    socket.once('error', reject);
  });
}

/** Client mode: a listening unix socket (created at the path, or adopted from the fd). */
export function listenLocal(spec: Exclude<LocalSpec, { kind: 'stdio' }>): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
    server.once('error', reject);
    const ready = (): void => {
      server.off('error', reject);
      resolve(server);
    };
    if (spec.kind === 'fd') server.listen({ fd: spec.fd }, ready);
    else server.listen({ path: spec.path, backlog: 5 }, ready);
  });
}
