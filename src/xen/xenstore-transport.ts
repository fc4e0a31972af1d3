/**
 * Byte transports to xenstored: its unix socket (dom0, or any domain under
 * the emulator) or the /dev/xen/xenbus character device (a domU). Both carry
 * the same framing; neither blocks the event loop.
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { VchanError } from '../errors.js';
import { kernelError } from './errors.js';
import { loadNative, type NativeWatcher } from './native.js';

export const DEFAULT_XENSTORED_SOCKET = '/var/run/xenstored/socket';
export const XENBUS_DEVICE = '/dev/xen/xenbus';

export interface XsTransport {
  /** One request in flight at a time (see deviceTransport). */
  oneAtATime?: boolean;
  write(bytes: Uint8Array): void;
  /** Keep the process alive while the connection has work (requests, watches). */
  setKeepAlive(on: boolean): void;
  close(): void;
}

export interface XsTransportEvents {
  onData(chunk: Buffer): void;
  /** The connection ended; `error` says why when it was not our close(). */
  onClose(error?: Error): void;
}

/** Where to connect: an explicit path, $XENSTORED_PATH, the default socket, or /dev/xen/xenbus. */
export async function openTransport(path: string | undefined, events: XsTransportEvents): Promise<XsTransport> {
  const candidates = path !== undefined ? [path] : [process.env.XENSTORED_PATH || DEFAULT_XENSTORED_SOCKET, XENBUS_DEVICE];
  for (const candidate of candidates) {
    const st = await stat(candidate).catch(() => undefined);
    if (!st) continue;
    if (st.isSocket()) return socketTransport(candidate, events);
    if (st.isCharacterDevice()) return deviceTransport(candidate, events);
    throw new VchanError('EINVAL', `xenstore: ${candidate} is neither a unix socket nor a character device`);
  }
  throw new VchanError(
    'ENOENT',
    `no xenstore connection: ${candidates.join(' and ')} ${candidates.length > 1 ? 'do' : 'does'} not exist. ` +
      'In dom0 start xenstored; in a domU the kernel must provide /dev/xen/xenbus (xenbus_dev_frontend); without Xen run under the emulator (xensim run --domid N -- <command>)',
    { syscall: 'connect' },
  );
}

function socketTransport(path: string, events: XsTransportEvents): Promise<XsTransport> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(path);
    let open = false;
    let closedByUs = false;
    let failure: Error | undefined;
    socket.once('connect', () => {
      open = true;
      resolve({
        write: (bytes) => void socket.write(bytes),
        setKeepAlive: (on) => void (on ? socket.ref() : socket.unref()),
        close: () => {
          closedByUs = true;
          socket.destroy();
        },
      });
    });
    socket.on('data', (chunk: Buffer) => events.onData(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      failure = error;
      if (!open) reject(new VchanError(error.code ?? 'EIO', `xenstore: cannot connect to ${path}: ${error.message}`, { cause: error, syscall: 'connect' }));
    });
    socket.on('close', () => {
      if (open) events.onClose(closedByUs ? undefined : (failure ?? new Error(`xenstored closed the connection on ${path}`)));
    });
  });
}

/** /dev/xen/xenbus: libuv cannot stream a character device, so the shim's uv_poll says when to read. */
async function deviceTransport(path: string, events: XsTransportEvents): Promise<XsTransport> {
  const native = loadNative();
  let fd: number;
  try {
    fd = openSync(path, 'r+');
  } catch (error) {
    throw kernelError(error, 'opening the xenstore device');
  }
  let closed = false;
  const buffer = Buffer.allocUnsafe(65536);
  const finish = (error?: Error): void => {
    if (closed) return;
    closed = true;
    watcher.close();
    closeSync(fd);
    events.onClose(error);
  };
  const watcher: NativeWatcher = new native.Watcher(fd, false, (error) => {
    if (error) return finish(error);
    // The watcher made the fd non-blocking; read what is there now.
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buffer, 0, buffer.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return;
        return finish(e as Error);
      }
      if (n === 0) return finish(new Error(`${path} reached end of file`));
      events.onData(Buffer.from(buffer.subarray(0, n)));
      if (n < buffer.length) return;
    }
  });
  return {
    // Linux's xenbus device answers a WATCH/UNWATCH inside write(), holding the
    // file's lock, while its reader thread needs that lock to queue an earlier
    // request's reply first: a write with a reply outstanding deadlocks the
    // kernel (seen on 6.1). libxenstore never pipelines; neither do we here.
    oneAtATime: true,
    write: (bytes) => {
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
    },
    setKeepAlive: (on) => (on ? watcher.ref() : watcher.unref()),
    close: () => finish(),
  };
}
