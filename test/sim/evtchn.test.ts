// Event channels through Debian's real libxenevtchn under the emulator.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { held, NOTHING_HELD, Probe, Sim } from './helpers.js';

let sim: Sim;
beforeAll(async () => {
  sim = await Sim.start();
});
afterAll(async () => {
  await sim?.stop();
});

describe('event channels', () => {
  it('binds only to a port offered to the binding domain', async () => {
    const a = await Probe.start(sim, 1);
    const b = await Probe.start(sim, 2);
    const c = await Probe.start(sim, 3);
    const [pa] = await a.ok('unbound 2');
    expect(await c.send(`bind 1 ${pa}`)).toBe('err EINVAL'); // offered to dom2, not dom3
    expect(await b.send(`bind 1 ${pa! + 50}`)).toBe('err EINVAL'); // no such port
    expect(await b.send(`bind 77 1`)).toBe('err ESRCH'); // no such domain
    const [pb] = await b.ok(`bind 1 ${pa}`);
    expect(await b.send(`bind 1 ${pa}`)).toBe('err EINVAL'); // already connected
    expect(pb).toBeGreaterThan(0);
    await Promise.all([a.exit(), b.exit(), c.exit()]);
    expect(held(await sim.idle())).toEqual(NOTHING_HELD);
  });

  it('delivers notifications both ways; a fired port stays masked until written back', async () => {
    const a = await Probe.start(sim, 1);
    const b = await Probe.start(sim, 2);
    const [pa] = await a.ok('unbound 2');
    const [pb] = await b.ok(`bind 1 ${pa}`);
    await b.ok(`notify ${pb}`);
    expect(await a.ok('wait 2000')).toEqual([pa]);
    await b.ok(`notify ${pb}`);
    await b.ok(`notify ${pb}`);
    expect(await a.send('wait 100')).toBe('timeout'); // masked: nothing more to read
    await a.ok(`unmask ${pa}`);
    expect(await a.ok('wait 2000')).toEqual([pa]); // the pending event, once
    await a.ok(`unmask ${pa}`);
    expect(await a.send('wait 100')).toBe('timeout');
    await a.ok(`notify ${pa}`);
    expect(await b.ok('wait 2000')).toEqual([pb]);
    await Promise.all([a.exit(), b.exit()]);
  });

  it('unbind: the peer end goes unbound and its sends are dropped; a second unbind is ENOTCONN', async () => {
    const a = await Probe.start(sim, 1);
    const b = await Probe.start(sim, 2);
    const [pa] = await a.ok('unbound 2');
    const [pb] = await b.ok(`bind 1 ${pa}`);
    await a.ok(`unbind ${pa}`);
    expect(await a.send(`unbind ${pa}`)).toBe('err ENOTCONN');
    expect(await a.send(`notify ${pa}`)).toBe('err ENOTCONN');
    await b.ok(`notify ${pb}`); // silently dropped, as Xen does for an unbound port
    expect(await a.send('wait 100')).toBe('timeout');
    // dom2's end is unbound again, offered back to dom1
    const [again] = await a.ok(`bind 2 ${pb}`);
    await a.ok(`notify ${again}`);
    expect(await b.ok('wait 2000')).toEqual([pb]);
    await Promise.all([a.exit(), b.exit()]);
    expect(held(await sim.idle())).toEqual(NOTHING_HELD);
  });

  it('loopback within dom0, on an fd made non-blocking with FIONBIO (as libuv does)', async () => {
    const a = await Probe.start(sim, 0);
    await a.ok('fionbio'); // the VFS's ioctl, not the driver's: must reach the socket
    const [p] = await a.ok('unbound 0');
    const [q] = await a.ok(`bind 0 ${p}`);
    await a.ok(`notify ${q}`);
    expect(await a.ok('wait 2000')).toEqual([p]);
    await a.ok(`notify ${p}`);
    expect(await a.ok('wait 2000')).toEqual([q]);
    await a.exit();
    expect(held(await sim.idle())).toEqual(NOTHING_HELD);
  });

  it('a killed process leaves no port behind, and its peer end becomes unbound', async () => {
    const a = await Probe.start(sim, 1);
    const b = await Probe.start(sim, 2);
    const [pa] = await a.ok('unbound 2');
    await b.ok(`bind 1 ${pa}`);
    expect((await sim.status()).ports).toBe(2);
    await b.kill('SIGKILL');
    await sim.until((s) => s.ports === 1);
    // dom2's port closed: dom1's end is offered to dom2 again
    const b2 = await Probe.start(sim, 2);
    await b2.ok(`bind 1 ${pa}`);
    await Promise.all([a.exit(), b2.exit()]);
    expect(held(await sim.idle())).toEqual(NOTHING_HELD);
    expect(readdirSync(join(sim.dir, 'evtchn'))).toEqual([]); // and no FIFO
  });

  it('a notifier that knew the remote end finds the new one after the peer dies and another binds', async () => {
    const a = await Probe.start(sim, 1);
    const b = await Probe.start(sim, 2);
    const [pa] = await a.ok('unbound 2');
    const [pb] = await b.ok(`bind 1 ${pa}`);
    await a.ok(`notify ${pa}`); // a now fires b's port directly
    expect(await b.ok('wait 2000')).toEqual([pb]);
    await b.kill('SIGKILL');
    await sim.until((s) => s.ports === 1);
    await a.ok(`notify ${pa}`); // unbound end: dropped
    const b2 = await Probe.start(sim, 2);
    const [pb2] = await b2.ok(`bind 1 ${pa}`);
    await a.ok(`notify ${pa}`);
    expect(await b2.ok('wait 2000')).toEqual([pb2]);
    await b2.ok(`notify ${pb2}`);
    expect(await a.ok('wait 2000')).toEqual([pa]);
    await Promise.all([a.exit(), b2.exit()]);
    expect(held(await sim.idle())).toEqual(NOTHING_HELD);
  });

  it('many notifies while masked are one event; a notify after unmask is a new one', async () => {
    const a = await Probe.start(sim, 1);
    const b = await Probe.start(sim, 2);
    const [pa] = await a.ok('unbound 2');
    const [pb] = await b.ok(`bind 1 ${pa}`);
    for (let i = 0; i < 50; i++) await b.ok(`notify ${pb}`);
    expect(await a.ok('wait 2000')).toEqual([pa]);
    expect(await a.send('wait 100')).toBe('timeout');
    await a.ok(`unmask ${pa}`);
    expect(await a.ok('wait 2000')).toEqual([pa]); // the one pending bit
    await a.ok(`unmask ${pa}`);
    expect(await a.send('wait 100')).toBe('timeout');
    await b.ok(`notify ${pb}`);
    expect(await a.ok('wait 2000')).toEqual([pa]);
    await Promise.all([a.exit(), b.exit()]);
  });
});
