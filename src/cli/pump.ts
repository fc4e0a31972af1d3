/**
 * The netcat-like relay of `vchan listen` and `vchan connect`: stdin goes
 * into the channel and the channel comes out on stdout, both at once, with
 * backpressure both ways (a slow stdout stalls the peer, not our memory).
 *
 * libvchan has no half-close: closing is the only end-of-data signal there
 * is, and a closed side can no longer read. So when stdin ends we keep the
 * channel open and keep reading, and close it ourselves only once
 *   - everything we sent is in the ring and the peer has read all of it, and
 *   - the peer has sent nothing for `linger` ms (it looks finished too).
 * A side that sent nothing at all never closes first: it waits for the
 * peer, so `vchan connect > file < /dev/null` cannot cut a slow sender off.
 *
 * The run is complete (exit 0) when the channel closed with all of stdin
 * read by the peer and all the peer's bytes written to stdout. A peer that
 * is killed looks exactly like one that closed (Xen clears its liveness
 * byte), so a killed sender is detected only through what it left undone
 * on our side: stdin not all sent, or our bytes left unread in the ring.
 */
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCodes, VchanError } from '../errors.js';
import type { VchanStream } from '../stream.js';
import { describeError, EXIT_FAILURE, EXIT_OK, report } from './errors.js';
import { Progress } from './progress.js';

export interface PumpOptions {
  /** Quiet time (ms) from the peer before we close after our stdin ended; Infinity: wait for the peer. */
  linger: number;
  progress: boolean;
  /** Context for the TIMEOUT message of connect. */
  connectTimeoutMs?: number;
  path?: string;
  stdin?: Readable & { isTTY?: boolean };
  stdout?: Writable;
}

const EMPTY = Buffer.alloc(0);
/** While what arrived still waits for stdout, the closer looks again this often. */
const BACKLOG_RECHECK_MS = 50;

export function pump(channel: VchanStream, options: PumpOptions): Promise<number> {
  return new Promise((resolve) => new Relay(channel, options, resolve).start());
}

class Relay {
  private readonly stdin: Readable & { isTTY?: boolean };
  private readonly stdout: Writable;
  private sent = 0;
  private received = 0;
  private connected = false;
  private stdinEnded = false;
  /** When everything from stdin was in the ring (0: not yet). */
  private flushedAt = 0;
  private lastReceivedAt = 0;
  private lastActivityAt = 0;
  private peerClosed = false;
  private weClosed = false;
  private finished = false;
  /** Set once the closer runs; aborted when we finish, ending its waits. */
  private closer: AbortController | undefined;
  private progress: Progress | undefined;

  constructor(
    private readonly channel: VchanStream,
    private readonly options: PumpOptions,
    private readonly done: (code: number) => void,
  ) {
    this.stdin = options.stdin ?? process.stdin;
    this.stdout = options.stdout ?? process.stdout;
  }

  start(): void {
    const { channel, stdin, stdout } = this;
    if (this.options.progress) {
      this.progress = new Progress(() => ({ sent: this.sent, received: this.received, lastActivityAt: this.lastActivityAt }));
    }

    channel.on('connect', () => {
      this.connected = true;
      this.progress?.connected();
      this.maybeStartCloser();
    });
    channel.on('data', (chunk: Buffer) => {
      this.received += chunk.length;
      this.lastReceivedAt = this.lastActivityAt = Date.now();
      if (!stdout.write(chunk)) {
        channel.pause();
        stdout.once('drain', () => channel.resume());
      }
    });
    channel.on('end', () => (this.weClosed ? this.succeed() : this.onPeerClosed()));
    channel.on('error', (error: Error) => this.fail(this.explain(error)));
    channel.on('drain', () => {
      if (!this.peerClosed) stdin.resume();
    });

    stdin.on('data', (chunk: Buffer) => {
      if (this.peerClosed) {
        this.fail(`peer closed the channel before the end of stdin (${this.sent} bytes sent)`);
        return;
      }
      this.sent += chunk.length;
      if (!channel.write(chunk, () => (this.lastActivityAt = Date.now()))) stdin.pause();
    });
    stdin.on('end', () => {
      this.stdinEnded = true;
      if (this.peerClosed) {
        this.onPeerClosed();
        return;
      }
      // Writes complete in order: this callback runs once all of stdin is in the ring.
      channel.write(EMPTY, (error) => {
        if (error) return;
        this.flushedAt = Date.now();
        this.maybeStartCloser();
      });
    });
    stdin.on('error', (error) => this.fail(`stdin: ${describeError(error)}`));
    stdout.on('error', (error) => this.fail(`stdout: ${describeError(error)}`));

    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(signal, () => this.finish(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1), `stopped by ${signal}`));
    }
  }

  /** Library errors in the words of this command; a write refused because the peer left is the common one. */
  private explain(error: Error): string {
    if (error instanceof VchanError && error.code === ErrorCodes.PEER_CLOSED) {
      return `peer closed the channel before reading all we sent (${this.sent} bytes taken from stdin so far)`;
    }
    return describeError(error, { connectTimeoutMs: this.options.connectTimeoutMs, path: this.options.path });
  }

  private maybeStartCloser(): void {
    if (this.closer || !this.connected || !this.flushedAt || this.finished) return;
    // A pure receiver waits for the sender to close; so does `--linger forever`.
    if (this.sent === 0 || this.options.linger === Infinity) return;
    this.closer = new AbortController();
    void this.closeWhenDone(this.closer.signal).catch(() => undefined); // the peer left or we finished: reported elsewhere
  }

  /**
   * Closes once the peer has read all we sent (its read notifications wake
   * drained(): nothing polls the ring), nothing it sent waits for stdout, and
   * it has been quiet for --linger.
   */
  private async closeWhenDone(signal: AbortSignal): Promise<void> {
    const vchan = this.channel.vchan;
    if (!vchan) return;
    for (;;) {
      await vchan.drained({ signal });
      if (this.peerClosed || this.weClosed || this.finished) return;
      const quietFor = Date.now() - Math.max(this.lastReceivedAt, this.flushedAt);
      const backlog = vchan.available() > 0 || this.channel.readableLength > 0;
      if (!backlog && quietFor >= this.options.linger) break;
      await sleep(backlog ? BACKLOG_RECHECK_MS : this.options.linger - quietFor, undefined, { signal });
    }
    this.weClosed = true;
    // end(): what already arrived is delivered, then the channel closes.
    this.channel.end();
  }

  /** The peer closed (or died) and everything it sent has reached stdout. */
  private onPeerClosed(): void {
    this.peerClosed = true;
    const vchan = this.channel.vchan;
    const unread = (vchan && !vchan.closed ? vchan.writeSize - vchan.bufferSpace() : 0) + this.channel.writableLength;
    if (unread > 0) {
      this.fail(`peer closed the channel before reading all we sent (${unread} of ${this.sent} bytes unread)`);
    } else if (this.stdinEnded || this.stdin.isTTY) {
      // A terminal has no end: the peer closing ends an interactive session.
      this.succeed();
    } else {
      // Only more input tells whether stdin had more to send: 'data' fails, 'end' succeeds.
      this.stdin.resume();
    }
  }

  private succeed(): void {
    this.finish(EXIT_OK);
  }

  private fail(reason: string): void {
    this.finish(EXIT_FAILURE, reason);
  }

  private finish(code: number, reason?: string): void {
    if (this.finished) return;
    this.finished = true;
    this.closer?.abort();
    this.stdin.pause();
    this.progress?.finish();
    if (reason !== undefined) report(reason);
    const release = (): void => {
      this.channel.destroy();
      // The channel releases its pages and xenstore entries on 'close'; never wait forever for it.
      const timer = setTimeout(() => this.done(code), 1000);
      this.channel.once('close', () => {
        clearTimeout(timer);
        this.done(code);
      });
      if (this.channel.destroyed && this.channel.closed) {
        clearTimeout(timer);
        this.done(code);
      }
    };
    // Everything we received must be on stdout before we report success.
    if (code === EXIT_OK && !this.stdout.destroyed) this.stdout.write(EMPTY, () => release());
    else release();
  }
}
