/**
 * One error family for the whole library. Every failure carries a stable
 * `code`; kernel failures keep their errno name (`ENOSPC`, `ENOMEM`, ...)
 * and the syscall that produced them.
 */

export const ErrorCodes = {
  /** The peer closed the channel or its process or domain died. */
  PEER_CLOSED: 'ERR_VCHAN_PEER_CLOSED',
  /** The peer broke the protocol: corrupt indices, bad orders or grant list. */
  PROTOCOL: 'ERR_VCHAN_PROTOCOL',
  /** A deadline passed (connect timeout). */
  TIMEOUT: 'ERR_VCHAN_TIMEOUT',
  /** The caller aborted the operation with an AbortSignal. */
  ABORTED: 'ERR_VCHAN_ABORTED',
  /** This side already closed the channel. */
  CLOSED: 'ERR_VCHAN_CLOSED',
  /** A send/recv larger than the ring can ever hold. */
  TOO_BIG: 'ERR_VCHAN_TOO_BIG',
  /** The native shim could not be loaded (not built, or built for another Node). */
  NATIVE: 'ERR_VCHAN_NATIVE',
} as const;

/** A `VchanError`'s `code`: one of `ErrorCodes`, or an errno name (`ENOSPC`, `EINVAL`, …) for kernel and xenstore failures. */
export type VchanErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes] | string;

/** What `new VchanError()` takes besides the code and message. */
export interface VchanErrorOptions {
  /** The error behind this one, as `Error`'s `cause`. */
  cause?: unknown;
  /** The system call behind a kernel error. */
  syscall?: string;
  /** Negative errno, as Node's system errors carry it. */
  errno?: number;
}

/** Every failure of a channel that is not a bad argument: `code` says which (see the README's table of codes). */
export class VchanError extends Error {
  /** Stable: one of `ErrorCodes`, or the errno name of a kernel or xenstore failure. */
  readonly code: VchanErrorCode;
  /** The system call behind a kernel error. */
  readonly syscall?: string;
  /** Negative errno of a kernel error, as Node's system errors carry it. */
  readonly errno?: number;

  constructor(code: VchanErrorCode, message: string, options: VchanErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VchanError';
    this.code = code;
    if (options.syscall !== undefined) this.syscall = options.syscall;
    if (options.errno !== undefined) this.errno = options.errno;
  }
}

/**
 * `source`'s failure said again with more context: a VchanError with its
 * code (or `fallbackCode` when it has none), syscall and errno, and `message`.
 */
export function restated(source: unknown, message: string, cause: unknown = source, fallbackCode: VchanErrorCode = ErrorCodes.PROTOCOL): VchanError {
  const s = source as { code?: VchanErrorCode; syscall?: string; errno?: number };
  return new VchanError(s.code ?? fallbackCode, message, {
    cause,
    ...(s.syscall !== undefined ? { syscall: s.syscall } : {}),
    ...(s.errno !== undefined ? { errno: s.errno } : {}),
  });
}

export function peerClosedError(what = 'the peer closed the channel'): VchanError {
  return new VchanError(ErrorCodes.PEER_CLOSED, what);
}

export function protocolError(what: string): VchanError {
  return new VchanError(ErrorCodes.PROTOCOL, `peer broke the vchan protocol: ${what}`);
}

export function closedError(): VchanError {
  return new VchanError(ErrorCodes.CLOSED, 'the channel is closed');
}

/** The error to throw when an AbortSignal fired, keeping its reason. */
export function abortedError(signal: AbortSignal): VchanError {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === 'TimeoutError') {
    return new VchanError(ErrorCodes.TIMEOUT, 'timed out', { cause: reason });
  }
  const error = new VchanError(ErrorCodes.ABORTED, 'the operation was aborted', { cause: reason });
  // Like Node's own aborted operations, so `err.name === 'AbortError'` checks work.
  error.name = 'AbortError';
  return error;
}
