// The xensim command line and the preload's boundaries: who is affected,
// exit statuses, private brokers, status, domain lifetime.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ensureTools, held, NOTHING_HELD, PRELOAD, Probe, Sim } from './helpers.js';

const execFileP = promisify(execFile);

/** Runs argv with stdin text; resolves with exit status and output. */
function run(argv: string[], env: NodeJS.ProcessEnv, stdin = '') {
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    const c = spawn(argv[0]!, argv.slice(1), { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    c.stdin.end(stdin);
    c.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

let sim: Sim;
beforeAll(async () => {
  sim = await Sim.start();
});
afterAll(async () => {
  await sim?.stop();
});

describe('programs not under xensim', () => {
  it('see no Xen devices, with or without the library loaded', async () => {
    const t = await ensureTools();
    const plain = await run([t.probe], t.env, 'fd /dev/xen/evtchn\nfd /dev/xen/gntalloc\n');
    expect(plain.stdout).toBe('err ENOENT\nerr ENOENT\n');
    // the library without a broker socket is inert
    const inert = await run([t.probe], { ...t.env, LD_PRELOAD: PRELOAD }, 'fd /dev/xen/evtchn\nfd /dev/xen/gntdev\n');
    expect(inert.stdout).toBe('err ENOENT\nerr ENOENT\n');
  });

  it('run normally with the library active, and never register with the broker', async () => {
    const env = await sim.domainEnv(0);
    const script = `
      const fs = require('fs'), os = require('os'), path = require('path');
      const d = fs.mkdtempSync(path.join(os.tmpdir(), 'xsp-'));
      const f = path.join(d, 'x');
      fs.writeFileSync(f, Buffer.alloc(1 << 20, 7));
      const big = Buffer.alloc(64 << 20, 1);            // mmap-backed allocations
      const sum = fs.readFileSync(f).reduce((a, b) => a + b, 0) + big[12345];
      fs.rmSync(d, { recursive: true });
      console.log(sum);`;
    const r = await run([process.execPath, '-e', script], env);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(String(7 * (1 << 20) + 1));
    const s = await sim.status();
    expect(s.processes).toEqual([]);
  });
});

describe('xensim run', () => {
  it('passes the exit status through, and a signal death as the same signal', async () => {
    expect((await run([...sim.runArgs(1), 'sh', '-c', 'exit 3'], sim.env)).code).toBe(3);
    const killed = await run([...sim.runArgs(1), 'sh', '-c', 'kill -TERM $$'], sim.env);
    expect(killed.signal).toBe('SIGTERM');
    expect((await run([...sim.runArgs(1), '/nonexistent/prog'], sim.env)).code).toBe(127);
  });

  it('gives the command its domain: preload, device socket and xenstore socket', async () => {
    const r = await run([...sim.runArgs(6), 'sh', '-c', 'echo $XENSIM_DOMID $LD_PRELOAD $XENSIM_SOCKET $XENSTORED_PATH'], sim.env);
    const [domid, preload, sock, xs] = r.stdout.trim().split(' ');
    expect(domid).toBe('6');
    expect(preload).toBe(PRELOAD);
    expect(sock).toBe(`${sim.dir}/dom6.sock`);
    expect(xs).toBe(`${sim.dir}/dom6.xenstore.sock`);
  });

  it('starts a private broker when none runs', async () => {
    const t = await ensureTools();
    const dir = mkdtempSync('/tmp/xst-none-');
    try {
      const r = await run(
        [process.execPath, CLI, 'run', '--domid', '0', '--', t.probe],
        { ...t.env, XENSIM_DIR: dir },
        'share 0 1 1\nmap 0 8 1\npoke 1 9 99\npeek 2 9\nfd /dev/xen/privcmd\nfd /dev/xen/hypercall\n',
      );
      expect(r.stdout.split('\n').slice(0, 4)).toEqual(['ok 1 8', 'ok 2', 'ok 99', 'ok 99']);
      expect(r.stdout).toMatch(/\nok \d+\nerr ENOENT\n$/); // privcmd opens, hypercall is absent
      expect(r.code, r.stderr).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a device open without a reachable broker fails with ENXIO', async () => {
    const t = await ensureTools();
    const r = await run([t.probe], { ...t.env, LD_PRELOAD: PRELOAD, XENSIM_SOCKET: '/tmp/xst-no-such.sock' }, 'fd /dev/xen/evtchn\n');
    expect(r.stdout).toBe('err ENXIO\n');
  });
});

describe('xensim start / stop', () => {
  it('stop ends the background broker and removes its sockets, FIFOs, page and event slot files', async () => {
    const other = await Sim.start();
    const s = await other.status();
    const shmBefore = readdirSync('/dev/shm').filter((f) => f.startsWith(`xensim-${s.pid}-`));
    expect(shmBefore.map((f) => f.split('.').pop()).sort()).toEqual(['events', 'pages']);
    expect(existsSync(join(other.dir, 'ctl.sock'))).toBe(true);
    expect(existsSync(join(other.dir, 'evtchn'))).toBe(true);
    await execFileP(process.execPath, [CLI, 'stop'], { env: other.env });
    expect(existsSync(join(other.dir, 'ctl.sock'))).toBe(false);
    expect(existsSync(join(other.dir, 'dom0.sock'))).toBe(false);
    expect(existsSync(join(other.dir, 'evtchn'))).toBe(false);
    expect(readdirSync('/dev/shm').filter((f) => f.startsWith(`xensim-${s.pid}-`))).toEqual([]);
    // gone, or a zombie waiting for whoever adopted it to reap it
    const state = () => (existsSync(`/proc/${s.pid}/stat`) ? readFileSync(`/proc/${s.pid}/stat`, 'utf8').split(') ')[1]![0] : 'gone');
    await new Promise((r) => setTimeout(r, 300));
    expect(['gone', 'Z']).toContain(state());
    await other.stop();
  });
});

describe('xensim status', () => {
  it('lists domains, resources and processes as JSON', async () => {
    const p = await Probe.start(sim, 2);
    const [h] = await p.ok('share 0 3 1');
    await p.ok('unbound 0');
    const { stdout } = await execFileP(process.execPath, [CLI, 'status'], { env: sim.env });
    const s = JSON.parse(stdout);
    expect(s.domains.map((d: { domid: number }) => d.domid)).toContain(2);
    expect(s).toMatchObject({ grants: 3, pages: 3, mappedPages: 3, ports: 1 });
    const proc = s.processes.find((x: { pid: number }) => x.pid === p.pid);
    expect(proc).toMatchObject({ domid: 2, mappings: 1, mappedPages: 3 });
    expect(proc.devices.map((d: { kind: string }) => d.kind).sort()).toEqual(['evtchn', 'gntalloc']);
    expect(h).toBe(1);
    await p.kill('SIGKILL'); // a crash leaves nothing behind
    expect(held(await sim.idle())).toEqual(NOTHING_HELD);
  });
});

describe('domain lifetime', () => {
  it('a domain lives while an xensim run holds it; the last exit fires @releaseDomain', async () => {
    const t = await ensureTools();
    const watch = spawn(`${t.xenstoreBin}/xenstore-watch`, ['-n', '2', '@releaseDomain'], {
      env: await sim.domainEnv(0),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    watch.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise((r) => watch.on('close', r));
    await sim.until(() => out.length > 0); // the watch's first, immediate event
    const r = await run([...sim.runArgs(9), 'sh', '-c', 'sleep 0.2'], sim.env);
    expect(r.code).toBe(0);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    expect(out.trim().split('\n')).toHaveLength(2);
    const s = await sim.status();
    expect(s.domains.map((d) => d.domid)).not.toContain(9);
  });
});
