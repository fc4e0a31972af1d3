/**
 * The server's domain destroyed while a client sets up. A destroyed domain
 * runs no unmap notification, so the client learns it only from xenstore
 * (its /local/domain/<id> goes). Here the toolstack (a dom0 process) removes
 * that home at a chosen step of the client's setup; the server's process is
 * left untouched, so nothing but xenstore tells the client.
 */
import { describe, expect, it } from 'vitest';
import { Vchan } from '../../src/channel.js';
import { VchanError } from '../../src/errors.js';
import { connect } from '../../src/net.js';
import { MemoryHypervisor } from '../../src/memory/index.js';
import { interpose, type Call } from '../support/interposed-backend.js';

const SERVER = 3;
/** dom0: only a privileged domain can tell a destroyed domain from a live one in xenstore (README). */
const CLIENT = 0;
const PATH = `data/vchan/${CLIENT}/1`;
const ABS = `/local/domain/${SERVER}/${PATH}`;
const DOMID_NODE = `/local/domain/${SERVER}/domid`;
const NOTHING: Record<string, number> = { grants: 0, mappedPages: 0, ports: 0, watches: 0, storeEntries: 0 };

/** A server in SERVER for CLIENT; `destroyWhen` picks the client's call before which SERVER's domain goes. */
async function world(destroyWhen: (call: Call) => boolean) {
  const hv = new MemoryHypervisor();
  const toolstack = hv.backend(0);
  const serverBackend = hv.backend(SERVER);
  const server = await Vchan.server({ peer: CLIENT, path: PATH, readMin: 1 << 16, writeMin: 1 << 16, backend: serverBackend });
  let destroyedAt: Call | undefined;
  const client = interpose(hv.backend(CLIENT), async (call) => {
    if (destroyedAt || !destroyWhen(call)) return;
    destroyedAt = call;
    await toolstack.store.remove(`/local/domain/${SERVER}`);
  });
  /** After the client let go: with the server's process gone too, nothing may be left. */
  const heldAfterServerDies = async () => {
    await server.close().catch(() => undefined);
    serverBackend.destroy();
    await hv.released(serverBackend);
    const { backends: _, ...held } = hv.held();
    return held;
  };
  return { hv, client, server, destroyedAt: () => destroyedAt, heldAfterServerDies };
}

/** Resolves with 'closed' once the channel reads as closed, or 'hung' after `ms`. */
async function seenClosed(vchan: Vchan, ms = 2000): Promise<'closed' | 'hung'> {
  const deadline = AbortSignal.timeout(ms);
  try {
    while (vchan.isOpen() !== 0) await vchan.wait(deadline);
    return 'closed';
  } catch (error) {
    if ((error as VchanError).code === 'ERR_VCHAN_TIMEOUT') return 'hung';
    throw error;
  }
}

describe("the server's domain destroyed during the client's setup", () => {
  it('after the rings are mapped, before the peer watch first looks: the client sees it gone and lets go', async () => {
    const w = await world((call) => call.name === 'store.read' && call.args[0] === DOMID_NODE);
    const setup = await Vchan.client({ peer: SERVER, path: ABS, backend: w.client }).then(
      (vchan) => ({ vchan }),
      (error: unknown) => ({ error }),
    );
    // The rings were mapped before the domain went.
    const names = w.client.calls.slice(0, w.destroyedAt()!.index).map((c) => c.name);
    expect(names.filter((n) => n === 'mapGrants').length).toBe(3);
    if ('error' in setup) {
      expect(setup.error).toBeInstanceOf(VchanError);
      expect((setup.error as VchanError).code).toBe('ERR_VCHAN_PEER_CLOSED');
    } else {
      expect(await seenClosed(setup.vchan)).toBe('closed');
      await setup.vchan.close();
    }
    expect(await w.heldAfterServerDies()).toEqual(NOTHING);
  });

  it('the same through connect(): the stream ends or fails with ERR_VCHAN_PEER_CLOSED within 2 s', async () => {
    const w = await world((call) => call.name === 'store.read' && call.args[0] === DOMID_NODE);
    const stream = connect({ peer: SERVER, path: ABS, backend: w.client });
    stream.resume();
    const outcome = await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve('hung'), 2000);
      const done = (how: string) => () => {
        clearTimeout(timer);
        resolve(how);
      };
      stream.once('end', done('end'));
      stream.once('error', (error: VchanError) => done(`error ${error.code}`)());
    });
    expect(['end', 'error ERR_VCHAN_PEER_CLOSED']).toContain(outcome);
    stream.destroy();
    await new Promise((r) => stream.once('close', r));
    expect(await w.heldAfterServerDies()).toEqual(NOTHING);
  });

  it('before every call of the setup in turn: a named error or a channel seen closed, never a hang, nothing held', async () => {
    // How many calls a clean setup makes, counted rather than assumed.
    const clean = await world(() => false);
    const connected = await Vchan.client({ peer: SERVER, path: ABS, backend: clean.client });
    const steps = clean.client.calls.length;
    await connected.close();
    expect(steps).toBeGreaterThan(5);

    for (let k = 1; k <= steps; k++) {
      const w = await world((call) => call.index === k);
      // The entries may be gone before the client read them: it then waits for a server, until its deadline.
      const setup = await Vchan.client({ peer: SERVER, path: ABS, backend: w.client, signal: AbortSignal.timeout(300) }).then(
        (vchan) => ({ vchan }),
        (error: unknown) => ({ error }),
      );
      const at = `domain destroyed before call ${k} (${w.destroyedAt()?.name})`;
      expect(w.destroyedAt(), at).toBeDefined();
      if ('error' in setup) {
        expect(setup.error, at).toBeInstanceOf(VchanError);
        expect(['ERR_VCHAN_PEER_CLOSED', 'ERR_VCHAN_TIMEOUT'], at).toContain((setup.error as VchanError).code);
      } else {
        expect(await seenClosed(setup.vchan), at).toBe('closed');
        await setup.vchan.close();
      }
      expect(await w.heldAfterServerDies(), at).toEqual(NOTHING);
    }
  });
});
