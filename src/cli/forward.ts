/**
 * One proxy session: bytes both ways between a local stream and a vchan
 * until one side ends. Like vchan-socket-proxy, the end of local input is
 * passed on by flushing it into the ring (nothing else can signal it, as
 * libvchan has no half-close); the vchan closing is passed on by writing
 * out what arrived and closing the local side.
 */
import type { VchanStream } from '../stream.js';
import type { LocalStream } from './local-end.js';

export type SessionEnd = 'local-ended' | 'vchan-closed';

const EMPTY = Buffer.alloc(0);

export function forward(local: LocalStream, channel: VchanStream): Promise<SessionEnd> {
  const { input, output } = local;
  return new Promise((resolve) => {
    let settled = false;
    const onInput = (chunk: Buffer): void => {
      if (!channel.write(chunk)) input.pause();
    };
    const onChannelDrain = (): void => {
      input.resume();
    };
    // Writes complete in order: the callback runs once all local input is in the ring.
    const onInputEnd = (): void => {
      channel.write(EMPTY, () => settle('local-ended'));
    };
    const onOutputDrain = (): void => {
      channel.resume();
    };
    const onChannelData = (chunk: Buffer): void => {
      if (!output.write(chunk)) channel.pause();
    };
    const onChannelEnd = (): void => settle('vchan-closed');
    // A refused write means the peer left; a local error ends this session only.
    const onChannelError = (): void => settle('vchan-closed');
    const onLocalError = (): void => settle('local-ended');

    const listeners = [
      [input, 'data', onInput],
      [input, 'end', onInputEnd],
      [input, 'error', onLocalError],
      [output, 'error', onLocalError],
      [output, 'drain', onOutputDrain],
      [channel, 'drain', onChannelDrain],
      [channel, 'data', onChannelData],
      [channel, 'end', onChannelEnd],
      [channel, 'error', onChannelError],
    ] as const;

    function settle(end: SessionEnd): void {
      if (settled) return;
      settled = true;
      for (const [emitter, event, listener] of listeners) emitter.off(event, listener as (...args: unknown[]) => void);
      input.pause();
      channel.pause();
      resolve(end);
    }

    for (const [emitter, event, listener] of listeners) emitter.on(event, listener as (...args: unknown[]) => void);
    input.resume();
    channel.resume();
  });
}
