/**
 * The TypeScript bench peer: one end of one measurement, run as its own
 * process (under `xensim run` on the emulator). Same modes and result line
 * as bench/c/bench-peer.c; see that file for what each mode does.
 */
import { XenBackend } from '../../src/index.js';
import { parseArgs, print } from './common.js';
import { streamModes } from './stream-modes.js';
import { vchanModes } from './vchan-modes.js';

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const backend = a.transport === 'vchan' ? new XenBackend() : undefined;
  try {
    const result = a.api === 'vchan' ? await vchanModes[a.mode](a, backend!) : await streamModes[a.mode](a, backend);
    print({ ok: true, ...result });
  } finally {
    backend?.close();
  }
}

main().then(
  // Exit at once: a socket or watcher left by a mode must not keep the run alive.
  () => process.exit(0),
  (error: unknown) => {
    print({ ok: false, error: `${(error as { code?: string }).code ?? ''} ${(error as Error).message}`.trim() });
    process.exit(1);
  },
);
