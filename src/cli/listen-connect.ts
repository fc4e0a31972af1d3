/** `vchan listen` and `vchan connect`: open the channel, then relay stdin/stdout through it. */
import { connect, listen } from '../net.js';
import { describeAddress, parseAddress, parseDomid, parseMilliseconds, parseRingSize } from './args.js';
import { pump } from './pump.js';

/** Raw option strings as commander hands them over; checked here so each message names its option. */
export interface RelayFlags {
  peer: string;
  port?: string;
  path?: string;
  linger?: string;
  progress?: boolean;
}

export const DEFAULT_LINGER_MS = 1000;

function common(flags: RelayFlags) {
  return {
    peer: parseDomid('--peer', flags.peer),
    address: parseAddress(flags),
    linger: flags.linger === undefined ? DEFAULT_LINGER_MS : parseMilliseconds('--linger', flags.linger, true),
    // Progress goes to a terminal by default; piped stderr stays clean unless asked.
    progress: flags.progress === true || process.stderr.isTTY === true,
  };
}

export async function runListen(flags: RelayFlags & { ring?: string }): Promise<number> {
  const { peer, address, linger, progress } = common(flags);
  const ring = flags.ring === undefined ? undefined : parseRingSize('--ring', flags.ring);
  const channel = listen({ peer, ...address, allowHalfOpen: true, ...(ring === undefined ? {} : { readMin: ring, writeMin: ring }) });
  if (progress) {
    channel.once('listening', () => process.stderr.write(`vchan: listening on ${describeAddress(address)} for domain ${peer}\n`));
    channel.once('connect', () => process.stderr.write(`vchan: domain ${peer} connected\n`));
  }
  return pump(channel, { linger, progress, path: describeAddress(address) });
}

export async function runConnect(flags: RelayFlags & { timeout?: string }): Promise<number> {
  const { peer, address, linger, progress } = common(flags);
  const timeout = flags.timeout === undefined ? undefined : parseMilliseconds('--timeout', flags.timeout);
  const channel = connect({ peer, ...address, allowHalfOpen: true, ...(timeout === undefined ? {} : { timeout }) });
  if (progress) channel.once('connect', () => process.stderr.write(`vchan: connected to domain ${peer}\n`));
  const where = 'port' in address ? `port ${address.port} of domain ${peer}` : address.path;
  return pump(channel, { linger, progress, path: where, ...(timeout === undefined ? {} : { connectTimeoutMs: timeout }) });
}
