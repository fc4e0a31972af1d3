import type { XsErrno } from '../../src/xen/xenstore-wire.js';

/** A request failed; the connection gets an ERROR reply naming `code`. */
export class XsError extends Error {
  readonly code: XsErrno;
  constructor(code: XsErrno, message?: string) {
    super(message ?? code);
    this.name = 'XsError';
    this.code = code;
  }
}

export function fail(code: XsErrno, message?: string): never {
  throw new XsError(code, message);
}
