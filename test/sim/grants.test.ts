// Grants through Debian's real libxengnttab under the emulator: sharing,
// who may map what, DEALLOC lifetime, the gntalloc limit, zeroed pages,
// unmap notification on munmap and on kill -9.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { held, NOTHING_HELD, Probe, Sim } from './helpers.js';

let sim: Sim;
beforeAll(async () => {
  sim = await Sim.start();
});
afterAll(async () => {
  await sim?.stop();
});

describe('grants', () => {
  it('a page shared by dom1 to dom2 is the same memory in both processes', async () => {
    const a = await Probe.start(sim, 1);
    const b = await Probe.start(sim, 2);
    const [h, ...refs] = await a.ok('share 2 4 1');
    expect(refs).toHaveLength(4);
    await a.ok(`fill ${h} 7`);
    const mapped = await Promise.all(refs.map((r) => b.ok(`map 1 ${r} 1`)));
    // each mapping sees its page of the pattern; writes flow back
    await b.ok(`poke ${mapped[2]![0]} 100 201`);
    expect(await a.ok(`peek ${h} ${2 * 4096 + 100}`)).toEqual([201]);
    const s = await sim.status();
    expect(s.grants).toBe(4);
    expect(s.mappedPages).toBe(8);
    await a.exit();
    await b.exit();
    expect(held(await sim.idle())).toEqual(NOTHING_HELD);
  });

  it('only the grantee may map, and a read-only grant never maps writable', async () => {
    const a = await Probe.start(sim, 1);
    const b = await Probe.start(sim, 2);
    const c = await Probe.start(sim, 3);
    const [, rw] = await a.ok('share 2 1 1');
    const [hro, ro] = await a.ok('share 2 1 0');
    expect(await c.send(`map 1 ${rw} 1`)).toBe('err EINVAL'); // dom3 is not the grantee
    expect(await c.send(`map 1 ${rw} 0`)).toBe('err EINVAL');
    expect(await a.send(`map 1 ${rw} 1`)).toBe('err EINVAL'); // nor is the granter itself
    expect(await b.send(`map 1 ${ro} 1`)).toBe('err EINVAL'); // read-only grant, writable map
    expect(await b.send(`map 7 ${rw} 1`)).toBe('err EINVAL'); // no such domain
    expect(await b.send(`map 1 9999 1`)).toBe('err EINVAL'); // no such grant
    await a.ok(`poke ${hro} 5 42`);
    const [m] = await b.ok(`map 1 ${ro} 0`);
    expect(await b.ok(`peek ${m} 5`)).toEqual([42]);
    await Promise.all([a.exit(), b.exit(), c.exit()]);
    expect(held(await sim.idle())).toEqual(NOTHING_HELD);
  });

  it('pages outlive DEALLOC until the last mapping goes; the revoked grant no longer maps', async () => {
    const a = await Probe.start(sim, 1);
    const b = await Probe.start(sim, 2);
    const [h, ref] = await a.ok('share 2 1 1');
    await a.ok(`fill ${h} 3`);
    const [m] = await b.ok(`map 1 ${ref} 1`);
    await a.ok(`unshare ${h}`); // granter lets go: grant revoked, page pinned by dom2
    expect(await b.send(`check ${m} 3`)).toBe('ok');
    expect(await b.send(`map 1 ${ref} 1`)).toBe('err EINVAL');
    expect((await sim.status()).pages).toBe(1);
    await b.ok(`unmap ${m}`);
    expect((await sim.until((s) => s.pages === 0)).pages).toBe(0);
    await Promise.all([a.exit(), b.exit()]);
  });

  it('hands out zeroed pages, recycled ones included', async () => {
    const a = await Probe.start(sim, 1);
    const [h1] = await a.ok('share 2 8 1');
    await a.ok(`fill ${h1} 9`);
    await a.ok(`unshare ${h1}`);
    const [h2] = await a.ok('share 2 8 1');
    expect(await a.send(`zero ${h2}`)).toBe('ok');
    await a.exit();
  });

  it('refuses past the gntalloc limit (1024 pages per domain) with ENOSPC, all or nothing', async () => {
    const a = await Probe.start(sim, 4);
    await a.ok('share 0 1000 1');
    expect(await a.send('share 0 25 1')).toBe('err ENOSPC');
    const s = await sim.status();
    expect(s.domains.find((d) => d.domid === 4)!.grants).toBe(1000);
    await a.ok('share 0 24 1');
    expect(await a.send('share 0 1 1')).toBe('err ENOSPC');
    await a.exit();
    expect(held(await sim.idle())).toEqual(NOTHING_HELD);
  });

  it('mapping after the granter died fails cleanly', async () => {
    const a = await Probe.start(sim, 1);
    const b = await Probe.start(sim, 2);
    const [, ref] = await a.ok('share 2 1 1');
    await a.kill('SIGKILL');
    await sim.until((s) => s.grants === 0);
    expect(await b.send(`map 1 ${ref} 1`)).toBe('err EINVAL');
    await b.exit();
    expect(held(await sim.idle())).toEqual(NOTHING_HELD);
  });
});

describe('unmap notification', () => {
  // dom1 offers an event channel to dom2; the byte is cleared before the event is sent.
  async function pair() {
    const a = await Probe.start(sim, 1);
    const b = await Probe.start(sim, 2);
    const [pa] = await a.ok('unbound 2');
    const [pb] = await b.ok(`bind 1 ${pa}`);
    return { a, b, pa: pa!, pb: pb! };
  }

  it('granter munmap: clears the byte, then kicks the grantee', async () => {
    const { a, b, pa, pb } = await pair();
    const [h, ref] = await a.ok(`sharenotify 2 21 ${pa}`);
    const [m] = await b.ok(`map 1 ${ref} 1`);
    await a.ok(`poke ${h} 21 1`);
    expect(await b.ok(`peek ${m} 21`)).toEqual([1]);
    await a.ok(`unshare ${h}`);
    expect(await b.ok('wait 2000')).toEqual([pb]);
    expect(await b.ok(`peek ${m} 21`)).toEqual([0]);
    await Promise.all([a.exit(), b.exit()]);
  });

  it('grantee killed with SIGKILL: the granter sees the byte cleared and the event', async () => {
    const { a, b, pa, pb } = await pair();
    const [h, ref] = await a.ok('share 2 1 1');
    await b.ok(`mapnotify 1 ${ref} 20 ${pb}`);
    await a.ok(`poke ${h} 20 1`);
    const t0 = Date.now();
    await b.kill('SIGKILL');
    expect(await a.ok('wait 2000')).toEqual([pa]);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await a.ok(`peek ${h} 20`)).toEqual([0]);
    await a.exit();
    expect(held(await sim.idle())).toEqual(NOTHING_HELD);
  });

  it('granter killed with SIGKILL: the grantee sees the byte cleared and the event', async () => {
    const { a, b, pa, pb } = await pair();
    const [h, ref] = await a.ok(`sharenotify 2 21 ${pa}`);
    const [m] = await b.ok(`map 1 ${ref} 1`);
    await a.ok(`poke ${h} 21 1`);
    await a.kill('SIGKILL');
    expect(await b.ok('wait 2000')).toEqual([pb]);
    expect(await b.ok(`peek ${m} 21`)).toEqual([0]);
    await b.exit();
    expect(held(await sim.idle())).toEqual(NOTHING_HELD);
  });

  // Unlike a process's death, a domain's destruction runs no notification: its kernel never unmaps anything.
  for (const dead of ['granter', 'grantee'] as const) {
    it(`${dead}'s domain destroyed: no byte cleared, no event; the survivor's memory stays`, async () => {
      const doomed = dead === 'granter' ? 11 : 12;
      const granter = await Probe.start(sim, dead === 'granter' ? doomed : 1);
      const grantee = await Probe.start(sim, dead === 'grantee' ? doomed : 2);
      const [pg] = await granter.ok(`unbound ${dead === 'grantee' ? doomed : 2}`);
      const [pm] = await grantee.ok(`bind ${dead === 'granter' ? doomed : 1} ${pg}`);
      const [h, ref] = await granter.ok(`sharenotify ${dead === 'grantee' ? doomed : 2} 21 ${pg}`);
      const [m] = await grantee.ok(`mapnotify ${dead === 'granter' ? doomed : 1} ${ref} 20 ${pm}`);
      await granter.ok(`poke ${h} 20 1`);
      await granter.ok(`poke ${h} 21 1`);
      const [victim, survivor, mine] = dead === 'granter' ? [granter, grantee, m] : [grantee, granter, h];
      await sim.destroyDomain(doomed);
      expect(await survivor!.send('wait 300')).toBe('timeout');
      expect(await survivor!.ok(`peek ${mine} 20`)).toEqual([1]);
      expect(await survivor!.ok(`peek ${mine} 21`)).toEqual([1]);
      await victim!.kill('SIGKILL');
      await survivor!.exit();
      expect(held(await sim.idle())).toEqual(NOTHING_HELD);
    });
  }

  it('one that fires while the port is masked is remembered, with a notify meanwhile as one event', async () => {
    const { a, b, pa, pb } = await pair();
    const [h, ref] = await a.ok('share 2 1 1');
    const [m] = await b.ok(`mapnotify 1 ${ref} 20 ${pb}`);
    await b.ok(`notify ${pb}`);
    expect(await a.ok('wait 2000')).toEqual([pa]); // now masked
    await b.ok(`unmap ${m}`); // the broker fires pa
    expect(await a.send('wait 100')).toBe('timeout'); // no wake-up while masked
    await a.ok(`unmask ${pa}`);
    expect(await a.ok('wait 2000')).toEqual([pa]); // remembered
    await a.ok(`unmask ${pa}`);
    expect(await a.send('wait 100')).toBe('timeout'); // once
    // masked again, then both a notify and the broker fire: one pending event
    const [m2] = await b.ok(`mapnotify 1 ${ref} 20 ${pb}`);
    await b.ok(`notify ${pb}`);
    expect(await a.ok('wait 2000')).toEqual([pa]);
    await b.ok(`notify ${pb}`);
    await b.ok(`unmap ${m2}`);
    expect(await a.send('wait 100')).toBe('timeout');
    await a.ok(`unmask ${pa}`);
    expect(await a.ok('wait 2000')).toEqual([pa]);
    await a.ok(`unmask ${pa}`);
    expect(await a.send('wait 100')).toBe('timeout');
    await a.ok(`unshare ${h}`);
    await Promise.all([a.exit(), b.exit()]);
    expect(held(await sim.idle())).toEqual(NOTHING_HELD);
  });

  it('an armed notification keeps its port open after unbind, until it has run', async () => {
    const { a, b, pa, pb } = await pair();
    const [h, ref] = await a.ok('share 2 1 1');
    const [m] = await b.ok(`mapnotify 1 ${ref} 20 ${pb}`);
    await b.ok(`unbind ${pb}`); // the mapping still holds the port, as gntdev does
    expect((await sim.status()).ports).toBe(2);
    await a.ok(`poke ${h} 20 1`);
    await b.ok(`unmap ${m}`);
    expect(await a.ok('wait 2000')).toEqual([pa]);
    expect(await a.ok(`peek ${h} 20`)).toEqual([0]);
    expect((await sim.until((s) => s.ports === 1)).ports).toBe(1); // now dom2's end is closed
    await Promise.all([a.exit(), b.exit()]);
    expect(held(await sim.idle())).toEqual(NOTHING_HELD);
  });
});
