/**
 * Kernel-style failures of the in-memory hypervisor: a VchanError whose
 * `code` is the errno name the real driver or xenstored would return, so
 * code under test sees the same codes as on Xen.
 */
import { VchanError } from '../errors.js';

const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EBADF: 9,
  EACCES: 13,
  EINVAL: 22,
  ENOSPC: 28,
  ENOTSUP: 95,
} as const;

export type ErrnoName = keyof typeof ERRNO;

export function sysError(code: ErrnoName, message: string, syscall?: string): VchanError {
  return new VchanError(code, `${code}: ${message}`, {
    ...(syscall === undefined ? {} : { syscall }),
    errno: -ERRNO[code],
  });
}

/** An error as plain data, to cross a MessagePort. */
export interface ErrorData {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  readonly syscall?: string;
  readonly errno?: number;
}

export function errorToData(error: unknown): ErrorData {
  if (error instanceof VchanError) {
    return {
      name: error.name,
      message: error.message,
      code: String(error.code),
      ...(error.syscall === undefined ? {} : { syscall: error.syscall }),
      ...(error.errno === undefined ? {} : { errno: error.errno }),
    };
  }
  if (error instanceof Error) return { name: error.name, message: error.message };
  return { name: 'Error', message: String(error) };
}

export function errorFromData(data: ErrorData): Error {
  if (data.code !== undefined) {
    return new VchanError(data.code, data.message, {
      ...(data.syscall === undefined ? {} : { syscall: data.syscall }),
      ...(data.errno === undefined ? {} : { errno: data.errno }),
    });
  }
  if (data.name === 'TypeError') return new TypeError(data.message);
  if (data.name === 'RangeError') return new RangeError(data.message);
  return new Error(data.message);
}
