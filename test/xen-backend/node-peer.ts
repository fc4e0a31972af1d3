/**
 * The Node twin of test/c/vchan-peer.c, over XenBackend: same arguments
 * (server|client <peer> <path> [--bytes N] [--left-min N] [--right-min N]
 * [--chunk N] [--stall-ms N]), same pattern streams and JSON lines, so a
 * test can pair it with the C peer or with itself. Bundled by esbuild and
 * run under `xensim run`; never imported by the library.
 */
import { Vchan } from '../../src/channel.js';
import { XenBackend } from '../../src/xen/backend.js';
import { DEFAULT_SEEDS, PatternSource, PatternVerifier } from '../support/pattern.js';

/** Every line carries our pid (to kill us) and the wall clock (to time a peer's death). */
function print(line: object): void {
  process.stdout.write(`${JSON.stringify({ ...line, pid: process.pid, wallMs: Date.now() })}\n`);
}

function parse(argv: string[]) {
  const [role, peer, path, ...rest] = argv;
  if ((role !== 'server' && role !== 'client') || peer === undefined || path === undefined) {
    throw new Error('usage: node-peer server|client <peer> <path> [--bytes N] [--left-min N] [--right-min N] [--chunk N] [--stall-ms N]');
  }
  const opts: Record<string, number> = { bytes: 1 << 20, chunk: 65536, 'stall-ms': 10000 };
  for (let i = 0; i < rest.length; i += 2) {
    const key = rest[i]?.replace(/^--/, '');
    const value = Number(rest[i + 1]);
    if (!key || !Number.isInteger(value)) throw new Error(`bad option ${rest[i]} ${rest[i + 1]}`);
    opts[key] = value;
  }
  return { role, peer: Number(peer), path, opts } as const;
}

async function main(): Promise<void> {
  const { role, peer, path, opts } = parse(process.argv.slice(2));
  const seeds = DEFAULT_SEEDS[role];
  const backend = new XenBackend();
  const bytes = opts.bytes!;
  let sent = 0;
  let received = 0;
  let vchan: Vchan | undefined;
  try {
    vchan =
      role === 'server'
        ? await Vchan.server({ peer, path, backend, ...(opts['left-min'] ? { readMin: opts['left-min'] } : {}), ...(opts['right-min'] ? { writeMin: opts['right-min'] } : {}) })
        : await Vchan.client({ peer, path, backend, signal: AbortSignal.timeout(opts['stall-ms']!) });
    if (role === 'server') print({ event: 'listening', path });
    const v = vchan;
    const source = new PatternSource(seeds.tx);
    const verifier = new PatternVerifier(seeds.rx);
    const rx = new Uint8Array(opts.chunk!);
    let pending: Uint8Array | undefined;
    let pendingOffset = 0;
    let opened = false;
    let start = 0;
    while (sent < bytes || received < bytes) {
      if (!opened && v.isOpen() === 1) {
        opened = true;
        start = performance.now();
        print({ event: 'open' });
      }
      let progress = false;
      if (sent < bytes) {
        pending ??= source.next(Math.min(opts.chunk!, bytes - sent));
        const n = v.write(pending, pendingOffset, pending.length - pendingOffset);
        if (n > 0) {
          progress = true;
          sent += n;
          pendingOffset += n;
          if (pendingOffset === pending.length) {
            pending = undefined;
            pendingOffset = 0;
          }
        }
      }
      if (received < bytes) {
        const n = v.read(rx);
        if (n > 0) {
          progress = true;
          received += n;
          verifier.push(rx.subarray(0, n));
        }
      }
      if (!progress) {
        if (v.isOpen() === 0) throw new Error('peer closed before the transfer finished');
        await v.wait(AbortSignal.timeout(opts['stall-ms']!));
      }
    }
    const seconds = (performance.now() - start) / 1000;
    // Let the peer drain what we wrote before we close (libvchan has no half-close).
    while (v.isOpen() !== 0 && v.bufferSpace() < v.writeSize) await v.wait(AbortSignal.timeout(opts['stall-ms']!)).catch(() => undefined);
    print({
      ok: true,
      role,
      sent,
      received,
      txHash: source.digest(),
      rxHash: verifier.digest(),
      mbps: bytes / 1e6 / seconds,
      seconds,
      readSize: v.readSize,
      writeSize: v.writeSize,
    });
  } catch (error) {
    print({ ok: false, role, error: `${(error as { code?: string }).code ?? ''} ${(error as Error).message}`.trim(), sent, received });
    process.exitCode = 1;
  } finally {
    await vchan?.close().catch(() => undefined);
    backend.close();
  }
}

void main();
