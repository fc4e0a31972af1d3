import { constants } from 'node:os';

/** A failure the preload hands to the C caller as `errno`. */
export class SimErrno extends Error {
  readonly errno: number;
  constructor(readonly code: keyof typeof constants.errno, message?: string) {
    super(message ?? code);
    this.errno = constants.errno[code];
  }
}

export function fail(code: keyof typeof constants.errno, message?: string): never {
  throw new SimErrno(code, message);
}

/** The negative errno the wire carries for a thrown error (EIO for bugs). */
export function errnoOf(e: unknown): number {
  if (e instanceof SimErrno) return -e.errno;
  return -constants.errno.EIO;
}
