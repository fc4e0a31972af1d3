/**
 * A hostile server's xenstore entries: anything that is not a decimal Xen
 * could have handed out (a grant ref is a u32, an event channel port is
 * below 2^17) is ERR_VCHAN_PROTOCOL naming the entry, before any backend
 * call; nothing is taken. A port in range that nobody offered is the
 * kernel's EINVAL, as on Xen. (test/interop/hostile-entries.test.ts: the
 * same on the Xen backend.)
 */
import { describe, expect, it } from 'vitest';
import { Vchan } from '../../src/channel.js';
import { VchanError } from '../../src/errors.js';
import { MemoryHypervisor } from '../../src/memory/index.js';

const PATH = 'data/vchan/5/1';
const ABS = `/local/domain/0/${PATH}`;

async function clientFacing(ringRef: string, eventChannel: string): Promise<{ error: unknown; heldBefore: object; heldAfter: object }> {
  const hv = new MemoryHypervisor();
  const server = hv.backend(0);
  // Port 1, offered to the client: an entry naming it is honest.
  await server.bindUnboundPort(5, () => undefined);
  await server.store.writeAll(
    [
      [`${PATH}/ring-ref`, ringRef],
      [`${PATH}/event-channel`, eventChannel],
    ],
    [
      { domid: 0, access: 'none' },
      { domid: 5, access: 'read' },
    ],
  );
  const client = hv.backend(5);
  const heldBefore = hv.held();
  const error = await Vchan.client({ peer: 0, path: ABS, backend: client }).then(
    () => undefined,
    (e: unknown) => e,
  );
  return { error, heldBefore, heldAfter: hv.held() };
}

const NOT_DECIMAL = ['', '-1', '+5', ' 5', '5 ', '5\n', '0x10', '1e3', '5.0', 'abc', '１２'];

describe("a hostile server's xenstore entries", () => {
  const cases: Array<[entry: 'ring-ref' | 'event-channel', value: string]> = [
    ...NOT_DECIMAL.map((v): ['event-channel', string] => ['event-channel', v]),
    ['event-channel', '0'],
    ['event-channel', '4294967295'],
    ['event-channel', '4294967296'],
    ['event-channel', '131072'],
    ['event-channel', '99999999999'],
    ...NOT_DECIMAL.map((v): ['ring-ref', string] => ['ring-ref', v]),
    ['ring-ref', '0'],
    ['ring-ref', '4294967296'],
    ['ring-ref', '99999999999'],
  ];
  it.each(cases)('%s = %j: ERR_VCHAN_PROTOCOL naming the entry, nothing held', async (entry, value) => {
    const { error, heldBefore, heldAfter } = await clientFacing(entry === 'ring-ref' ? value : '8', entry === 'event-channel' ? value : '1');
    expect(error).toBeInstanceOf(VchanError);
    expect((error as VchanError).code).toBe('ERR_VCHAN_PROTOCOL');
    expect((error as VchanError).message).toContain(`${ABS}/${entry}`);
    expect(heldAfter).toEqual(heldBefore);
  });

  it('the largest values Xen can hand out pass the parser; not offered to us, they are the kernel EINVAL', async () => {
    for (const [ringRef, eventChannel, syscall] of [
      ['8', '131071', 'IOCTL_EVTCHN_BIND_INTERDOMAIN'],
      ['4294967295', '1', 'GNTDEV_MAP_GRANT_REF'],
    ]) {
      const { error, heldBefore, heldAfter } = await clientFacing(ringRef!, eventChannel!);
      expect(error).toBeInstanceOf(VchanError);
      expect(error).toMatchObject({ code: 'EINVAL', syscall });
      expect(heldAfter).toEqual(heldBefore);
    }
  });
});
