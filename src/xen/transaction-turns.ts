/**
 * Transactions on one xenstore connection, one at a time, and the pause
 * before a conflicting one runs again. xenstored allows a connection only a
 * few open transactions (`xenstored -t`, default 10: past it, ENOSPC), and
 * ours all create nodes under the same parents (data/vchan/<peer>/…), so
 * run side by side they conflict with each other (EAGAIN) until the retries
 * run out: 150 offers at once got 27 channels. Queued, ours never conflict
 * with each other; a conflict with another process waits a random, growing
 * pause so that the two stop colliding.
 */
import { abortedError } from '../errors.js';

export class TransactionTurns {
  private tail: Promise<unknown> = Promise.resolve();

  /** Runs `body` once every transaction queued before it has finished. */
  run<T>(body: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const turn = this.tail.then(() => {
      if (signal?.aborted) throw abortedError(signal);
      return body();
    });
    this.tail = turn.catch(() => undefined);
    return turn;
  }
}

/** At most this long between attempts, in ms. */
const MAX_PAUSE_MS = 100;

/** Waits a random pause of up to 2^attempt ms (capped), or until `signal` aborts. */
export function pauseAfterConflict(attempt: number, signal?: AbortSignal): Promise<void> {
  const ms = Math.random() * Math.min(MAX_PAUSE_MS, 2 ** attempt);
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortedError(signal));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortedError(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
