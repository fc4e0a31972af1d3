/**
 * How the `vchan` command fails: a usage error (exit 2) names the bad
 * argument; a runtime failure (exit 1) is one line saying why.
 */
import { ErrorCodes, VchanError } from '../errors.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A bad command line: printed as `vchan: <message>`, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A failure we describe ourselves (e.g. the peer left early): printed as `vchan: <message>`, exit 1. */
export class CommandFailure extends Error {
  override name = 'CommandFailure';
}

/**
 * One line for any error: library errors keep their stable code in front
 * (`ERR_VCHAN_TIMEOUT: ...`, `EACCES: ...`), so scripts can match on it.
 */
export function describeError(error: unknown, context: { connectTimeoutMs?: number; path?: string } = {}): string {
  if (error instanceof CommandFailure || error instanceof UsageError) return oneLine(error.message);
  if (error instanceof VchanError) {
    if (error.code === ErrorCodes.TIMEOUT && context.connectTimeoutMs !== undefined) {
      return `${error.code}: no server offered ${context.path ?? 'the channel'} within ${context.connectTimeoutMs} ms`;
    }
    return oneLine(`${error.code}: ${error.message}`);
  }
  const e = error as { code?: unknown; message?: unknown };
  if (typeof e?.code === 'string' && typeof e.message === 'string') {
    return oneLine(e.message.startsWith(e.code) ? e.message : `${e.code}: ${e.message}`);
  }
  return oneLine(error instanceof Error ? error.message : String(error));
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/** Writes `vchan: <line>` to stderr. */
export function report(line: string): void {
  process.stderr.write(`vchan: ${line}\n`);
}
