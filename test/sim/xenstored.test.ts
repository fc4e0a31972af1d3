/**
 * The emulator's xenstored, driven by Debian's real xenstore-utils (through
 * Debian's libxenstore, pointed at our sockets with XENSTORED_PATH) and by
 * our own wire codec where a tool cannot show the detail.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XsType, encodeHeader } from '../../src/xen/xenstore-wire.js';
import { Xenstored, type XenstoredLimits } from '../../sim/xenstored/index.js';
import { XsRequestError, XsWireClient } from './xs-wire-client.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
let ROOT = '';
let tmp = '';

/** A Xenstored served on one unix socket per domain. */
class Host {
  readonly xs: Xenstored;
  private readonly servers: net.Server[] = [];
  private readonly dir: string;

  constructor(name: string, limits?: Partial<XenstoredLimits>) {
    this.xs = new Xenstored(limits);
    this.dir = fs.mkdtempSync(path.join(tmp, `${name}-`));
  }

  socketPath(domid: number): string {
    return path.join(this.dir, `d${domid}.sock`);
  }

  async serve(domid: number): Promise<void> {
    if (domid !== 0) this.xs.addDomain(domid, `guest${domid}`);
    const server = net.createServer((s) => this.xs.connect(s, domid));
    this.servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath(domid), resolve);
    });
  }

  client(domid: number): Promise<XsWireClient> {
    return XsWireClient.connect(this.socketPath(domid));
  }

  close(): void {
    for (const s of this.servers) s.close();
    this.xs.close();
  }
}

interface ToolResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function toolEnv(host: Host, domid: number): NodeJS.ProcessEnv {
  return {
    ...process.env,
    XENSTORED_PATH: host.socketPath(domid),
    LD_LIBRARY_PATH: path.join(ROOT, 'usr/lib/x86_64-linux-gnu'),
  };
}

function toolPath(tool: string): string {
  return path.join(ROOT, 'usr/bin', tool);
}

/** Runs a Debian xenstore tool as `domid` (asynchronously: our server shares this event loop). */
function run(host: Host, domid: number, tool: string, ...args: string[]): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(toolPath(tool), args, { env: toolEnv(host, domid), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function ok(host: Host, domid: number, tool: string, ...args: string[]): Promise<string> {
  const r = await run(host, domid, tool, ...args);
  if (r.code !== 0) throw new Error(`${tool} ${args.join(' ')} as dom${domid} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** `xenstore-watch` running in the background; lines arrive as events fire. */
class WatchTool {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;
  private buf = '';

  constructor(host: Host, domid: number, ...args: string[]) {
    this.child = spawn(toolPath('xenstore-watch'), args, { env: toolEnv(host, domid), stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (d: Buffer) => {
      this.buf += d.toString();
      const parts = this.buf.split('\n');
      this.buf = parts.pop() ?? '';
      this.lines.push(...parts);
    });
    this.exited = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
  }

  async waitForLines(n: number, timeoutMs = 3000): Promise<string[]> {
    await until(() => this.lines.length >= n, timeoutMs, () => `xenstore-watch printed ${JSON.stringify(this.lines)}, expected ${n} lines`);
    return this.lines;
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}

async function until(cond: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function expectErrno(p: Promise<unknown>, code: string): Promise<void> {
  await expect(p).rejects.toSatisfy((e: unknown) => e instanceof XsRequestError && e.code === code);
}

beforeAll(() => {
  try {
    ROOT = execFileSync('bash', [path.join(REPO, 'scripts/debian-packages.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`cannot fetch Debian's xenstore-utils (scripts/debian-packages.sh failed): ${err.stderr ?? err.message}`);
  }
  for (const t of ['xenstore-read', 'xenstore-write', 'xenstore-ls', 'xenstore-rm', 'xenstore-chmod', 'xenstore-watch', 'xenstore-list', 'xenstore-exists']) {
    if (!fs.existsSync(toolPath(t))) throw new Error(`Debian's ${t} missing under ${ROOT}`);
  }
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xenstored-test-'));
});

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('xenstored with Debian xenstore-utils', () => {
  let host: Host;
  beforeAll(async () => {
    host = new Host('main');
    await host.serve(0);
    await host.serve(5);
    await host.serve(6);
  });
  afterAll(() => host.close());

  it('dom0: write, read, list, ls, exists, rm', async () => {
    await ok(host, 0, 'xenstore-write', '/test/a/b', 'hello', '/test/a/c', 'world');
    expect(await ok(host, 0, 'xenstore-read', '/test/a/b', '/test/a/c')).toBe('hello\nworld\n');
    expect(await ok(host, 0, 'xenstore-list', '/test/a')).toBe('b\nc\n');
    const ls = await ok(host, 0, 'xenstore-ls', '-f', '/test');
    expect(ls).toContain('/test/a/b = "hello"');
    expect(ls).toContain('/test/a/c = "world"');
    expect((await run(host, 0, 'xenstore-exists', '/test/a/b')).code).toBe(0);
    await ok(host, 0, 'xenstore-rm', '/test/a');
    expect((await run(host, 0, 'xenstore-exists', '/test/a/b')).code).toBe(1);
    expect(await ok(host, 0, 'xenstore-list', '/test')).toBe('');
    // Identity of dom0 is there from the start.
    expect(await ok(host, 0, 'xenstore-read', '/local/domain/0/domid', '/local/domain/0/name')).toBe('0\nDomain-0\n');
  });

  it('domU: relative paths live under its home, which it owns', async () => {
    await ok(host, 5, 'xenstore-write', 'data/greeting', 'hi from 5');
    expect(await ok(host, 5, 'xenstore-read', 'data/greeting', 'domid', 'name')).toBe('hi from 5\n5\nguest5\n');
    expect(await ok(host, 0, 'xenstore-read', '/local/domain/5/data/greeting')).toBe('hi from 5\n');
    const ls = await ok(host, 5, 'xenstore-ls', '-p', '/local/domain/5');
    expect(ls).toMatch(/domid = "5".*\(n0,r5\)/);
    expect(ls).toMatch(/greeting = "hi from 5".*\(n5\)/);
    // Its identity is dom0's to change.
    expect((await run(host, 5, 'xenstore-write', 'domid', '7')).code).not.toBe(0);
    await ok(host, 5, 'xenstore-rm', 'data');
    expect((await run(host, 5, 'xenstore-exists', 'data/greeting')).code).toBe(1);
    const c = await host.client(5);
    expect((await c.call(XsType.GET_DOMAIN_PATH, '5\0')).toString()).toBe('/local/domain/5\0');
    await c.close();
  });

  it('a domU is refused (EACCES) a key its perms exclude, allowed after xenstore-chmod', async () => {
    await ok(host, 0, 'xenstore-write', '/local/domain/0/secret', 's3cret');
    const r = await run(host, 5, 'xenstore-read', '/local/domain/0/secret');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("couldn't read path");
    const ls = await run(host, 5, 'xenstore-ls', '/local/domain/0');
    expect(ls.code).not.toBe(0);
    expect(ls.stderr).toContain('Permission denied');

    const c5 = await host.client(5);
    const c6 = await host.client(6);
    await expectErrno(c5.read('/local/domain/0/secret'), 'EACCES');
    // A missing node under an unreadable parent is EACCES too: existence stays hidden.
    await expectErrno(c5.read('/local/domain/0/nothing-here'), 'EACCES');

    await ok(host, 0, 'xenstore-chmod', '/local/domain/0/secret', 'n0', 'r5');
    expect(await ok(host, 5, 'xenstore-read', '/local/domain/0/secret')).toBe('s3cret\n');
    await expectErrno(c6.read('/local/domain/0/secret'), 'EACCES');
    expect((await run(host, 5, 'xenstore-write', '/local/domain/0/secret', 'x')).code).not.toBe(0);
    await expectErrno(c5.write('/local/domain/0/secret', 'x'), 'EACCES');
    // Readable parent, missing child: the truth, ENOENT.
    await expectErrno(c5.read('/local/domain/0/secret/none'), 'ENOENT');

    await ok(host, 0, 'xenstore-chmod', '/local/domain/0/secret', 'n0', 'b5');
    await ok(host, 5, 'xenstore-write', '/local/domain/0/secret', 'changed by 5', '/local/domain/0/secret/sub', 'child');
    expect(await ok(host, 0, 'xenstore-read', '/local/domain/0/secret')).toBe('changed by 5\n');
    // A node a domU creates copies its parent's perms, with the domU as owner.
    expect(await ok(host, 0, 'xenstore-ls', '-p', '/local/domain/0/secret')).toMatch(/sub = "child".*\(n5,b5\)/);
    // Owners may change perms but not give the node away; non-owners may not change them.
    const giveAway = await run(host, 5, 'xenstore-chmod', '/local/domain/0/secret/sub', 'n6');
    expect(giveAway.code).not.toBe(0);
    expect(giveAway.stderr).toContain('Operation not permitted');
    const notOwner = await run(host, 5, 'xenstore-chmod', '/local/domain/0/secret', 'n0', 'b5', 'r6');
    expect(notOwner.code).not.toBe(0);
    expect(notOwner.stderr).toContain('Permission denied');
    await ok(host, 5, 'xenstore-chmod', '/local/domain/0/secret/sub', 'n5', 'r6');
    expect(await ok(host, 6, 'xenstore-read', '/local/domain/0/secret/sub')).toBe('child\n');
    await c5.close();
    await c6.close();
  });

  it('xenstore-watch fires once on registration and then on each change at or below the path', async () => {
    const w = new WatchTool(host, 0, '-n', '3', '/local/domain/0/w');
    expect(await w.waitForLines(1)).toEqual(['/local/domain/0/w']);
    await ok(host, 0, 'xenstore-write', '/local/domain/0/w/x', '1');
    await w.waitForLines(2);
    await ok(host, 0, 'xenstore-rm', '/local/domain/0/w');
    expect(await w.exited).toBe(0);
    expect(w.lines).toEqual(['/local/domain/0/w', '/local/domain/0/w/x', '/local/domain/0/w']);

    // A relative watch reports relative paths.
    const w5 = new WatchTool(host, 5, '-n', '2', 'data');
    await w5.waitForLines(1);
    await ok(host, 5, 'xenstore-write', 'data/y', '1');
    expect(await w5.exited).toBe(0);
    expect(w5.lines).toEqual(['data', 'data/y']);
  });

  it('a domU watcher only hears of nodes it may read', async () => {
    const c5 = await host.client(5);
    await c5.watch('/local/domain/0/pub', 'tok');
    await c5.waitForEvents(1);
    await ok(host, 0, 'xenstore-write', '/local/domain/0/pub/hidden', '1');
    await ok(host, 0, 'xenstore-write', '/local/domain/0/pub/shown', '1');
    await ok(host, 0, 'xenstore-chmod', '/local/domain/0/pub/shown', 'n0', 'r5');
    const events = await c5.waitForEvents(2);
    await new Promise((r) => setTimeout(r, 100));
    expect(events.map((e) => e.path)).toEqual(['/local/domain/0/pub', '/local/domain/0/pub/shown']);
    expect(events.every((e) => e.token === 'tok')).toBe(true);
    await c5.close();
  });

  it('a transaction conflict gives EAGAIN; a clean retry commits', async () => {
    const a = await host.client(0);
    const b = await host.client(0);
    await a.write('/tx/counter', '1');
    await a.watch('/tx', 'txw');
    await a.waitForEvents(1);

    let t = await a.startTransaction();
    expect(t).toBeGreaterThan(0);
    expect(await a.read('/tx/counter', t)).toBe('1');
    await b.write('/tx/counter', '2'); // concurrent change to what t read
    await a.write('/tx/result', 'from-t', t);
    await expectErrno(a.endTransaction(t, true), 'EAGAIN');
    await expectErrno(b.read('/tx/result'), 'ENOENT');
    // The transaction is gone after its end, whatever the outcome.
    await expectErrno(a.read('/tx/counter', t), 'ENOENT');

    t = await a.startTransaction();
    expect(await a.read('/tx/counter', t)).toBe('2');
    await a.write('/tx/result', 'from-retry', t);
    // Isolation: invisible outside until commit, and no watch event yet.
    await expectErrno(b.read('/tx/result'), 'ENOENT');
    const before = a.events.length;
    expect(before).toBe(2); // registration + b's write of counter
    await a.endTransaction(t, true);
    expect(await b.read('/tx/result')).toBe('from-retry');
    expect((await a.waitForEvents(3))[2]?.path).toBe('/tx/result');

    // Reading a node as missing counts too: its creation is a conflict.
    t = await a.startTransaction();
    await expectErrno(a.read('/tx/late', t), 'ENOENT');
    await b.write('/tx/late', 'now');
    await expectErrno(a.endTransaction(t, true), 'EAGAIN');
    // So is removal of a node read.
    t = await a.startTransaction();
    await a.read('/tx/late', t);
    await b.call(XsType.RM, '/tx/late\0');
    await expectErrno(a.endTransaction(t, true), 'EAGAIN');

    // Nesting is refused; aborting discards.
    t = await a.startTransaction();
    expect(await a.errorOf(XsType.TRANSACTION_START, '\0', t)).toBe('EBUSY');
    await a.write('/tx/result', 'aborted', t);
    await a.endTransaction(t, false);
    expect(await b.read('/tx/result')).toBe('from-retry');
    await a.close();
    await b.close();
  });

  it('@introduceDomain and @releaseDomain fire for dom0; releaseDomain removes the domain', async () => {
    const w = new WatchTool(host, 0, '-n', '2', '@releaseDomain');
    expect(await w.waitForLines(1)).toEqual(['@releaseDomain']);
    const c0 = await host.client(0);
    await c0.watch('@introduceDomain', 'intro');
    const c5 = await host.client(5);
    await c5.watch('@releaseDomain', 'rel');

    await host.serve(7);
    expect((await c0.waitForEvents(2))[1]).toEqual({ path: '@introduceDomain', token: 'intro' });
    expect(await ok(host, 7, 'xenstore-read', 'name')).toBe('guest7\n');
    const c7 = await host.client(7);
    host.xs.releaseDomain(7);
    expect(await w.exited).toBe(0);
    expect(w.lines).toEqual(['@releaseDomain', '@releaseDomain']);
    await c7.closed; // its connections went with it
    expect((await run(host, 0, 'xenstore-exists', '/local/domain/7')).code).toBe(1);
    // Special watches are dom0's: a domU only sees the registration event.
    await new Promise((r) => setTimeout(r, 100));
    expect(c5.events).toEqual([{ path: '@releaseDomain', token: 'rel' }]);
    await c0.close();
    await c5.close();
  });

  it('long child lists: DIRECTORY says E2BIG, libxenstore falls back to DIRECTORY_PART', async () => {
    const args: string[] = [];
    for (let i = 0; i < 300; i++) args.push(`/big/child-with-a-long-name-${String(i).padStart(4, '0')}`, `${i}`);
    for (let i = 0; i < args.length; i += 100) await ok(host, 0, 'xenstore-write', ...args.slice(i, i + 100));
    const c = await host.client(0);
    expect(await c.errorOf(XsType.DIRECTORY, '/big\0')).toBe('E2BIG');
    const list = (await ok(host, 0, 'xenstore-list', '/big')).trim().split('\n');
    expect(list.length).toBe(300);
    expect(list[299]).toBe('child-with-a-long-name-0299');
    await c.close();
  });

  it('closing a connection drops its watches and transactions', async () => {
    const c = await host.client(6);
    await c.watch('a', 't1');
    await c.watch('b', 't2');
    await c.watch('/local/domain/6', 't3');
    await c.startTransaction();
    let s = host.xs.stats();
    expect(s.perDomain[6]).toEqual({ watches: 3, connections: 1 });
    expect(s.transactions).toBeGreaterThanOrEqual(1);
    const txBefore = s.transactions;
    await c.close();
    await until(() => host.xs.stats().perDomain[6]?.connections === 0, 2000, () => JSON.stringify(host.xs.stats()));
    s = host.xs.stats();
    expect(s.perDomain[6]).toEqual({ watches: 0, connections: 0 });
    expect(s.transactions).toBe(txBefore - 1);
  });
});

describe('xenstored limits', () => {
  let host: Host;
  beforeAll(async () => {
    host = new Host('quota', { maxNodesPerDomain: 8, maxWatchesPerDomain: 3, maxTransactionsPerConnection: 2 });
    await host.serve(0);
    await host.serve(5);
    await host.serve(6);
  });
  afterAll(() => host.close());

  it('node quota: ENOSPC past the per-domain node count, for domUs only', async () => {
    // The home counts: /local/domain/5 is domain 5's.
    const c5 = await host.client(5);
    let written = 0;
    let code = 'OK';
    for (; written < 20; written++) {
      code = await c5.errorOf(XsType.WRITE, `n${written}\0v`);
      if (code !== 'OK') break;
    }
    expect(code).toBe('ENOSPC');
    expect(written).toBe(7);
    const r = await run(host, 5, 'xenstore-write', 'more', 'v');
    expect(r.code).not.toBe(0);
    // Removing frees quota.
    await ok(host, 5, 'xenstore-rm', 'n0');
    await ok(host, 5, 'xenstore-write', 'more', 'v');
    // dom0 is not bound by quota, even writing nodes domain 5 owns.
    for (let i = 0; i < 5; i++) await ok(host, 0, 'xenstore-write', `/local/domain/5/by-dom0-${i}`, 'v');
    await c5.close();
  });

  it('node size: ENOSPC for a domU, fine for dom0; over-long paths are EINVAL', async () => {
    const c6 = await host.client(6);
    const c0 = await host.client(0);
    expect(await c6.errorOf(XsType.WRITE, `v\0${'x'.repeat(2100)}`)).toBe('ENOSPC');
    expect((await run(host, 6, 'xenstore-write', 'v', 'x'.repeat(2100))).code).not.toBe(0);
    expect(await c6.errorOf(XsType.WRITE, `v\0${'x'.repeat(1000)}`)).toBe('OK');
    expect(await c0.errorOf(XsType.WRITE, `/local/domain/0/big\0${'x'.repeat(4000)}`)).toBe('OK');
    // xenstored limits the part below /local/domain/N/ to 2048 bytes.
    expect(await c6.errorOf(XsType.WRITE, `${'p'.repeat(2049)}\0v`)).toBe('EINVAL');
    expect(await c6.errorOf(XsType.READ, `${'p'.repeat(2048)}\0`)).toBe('ENOENT');
    await c6.close();
    await c0.close();
  });

  it('payload over 4096 bytes: libxenstore refuses to send it; a raw one gets the connection dropped', async () => {
    const r = await run(host, 0, 'xenstore-write', '/local/domain/0/huge', 'x'.repeat(5000));
    expect(r.code).not.toBe(0);
    const c = await host.client(0);
    c.socket.write(encodeHeader({ type: XsType.WRITE, reqId: 1, txId: 0, len: 5000 }));
    await c.closed;
  });

  it('watch quota: E2BIG past the per-domain count; transaction quota: ENOSPC', async () => {
    const c5 = await host.client(5);
    const other = await host.client(5);
    await c5.watch('a', '1');
    await c5.watch('b', '2');
    await other.watch('c', '3'); // the quota spans all the domain's connections
    await expectErrno(c5.watch('d', '4'), 'E2BIG');
    await expectErrno(c5.watch('a', '1'), 'EEXIST');
    const c0 = await host.client(0);
    for (let i = 0; i < 10; i++) await c0.watch(`/w${i}`, 't');

    await c5.startTransaction();
    await c5.startTransaction();
    await expectErrno(c5.startTransaction(), 'ENOSPC');
    await other.startTransaction(); // per connection
    await expectErrno(c5.call(XsType.SET_PERMS, ['n2', 'n5', 'r1', 'r2', 'r3', 'r4', 'r6']), 'ENOSPC');
    for (const c of [c5, other, c0]) await c.close();
  });

  it('rejects malformed requests as xenstored does', async () => {
    const c5 = await host.client(5);
    expect(await c5.errorOf(XsType.READ, 'no-nul')).toBe('EINVAL');
    expect(await c5.errorOf(XsType.READ, '/bad//path\0')).toBe('EINVAL');
    expect(await c5.errorOf(XsType.READ, '/trailing/\0')).toBe('EINVAL');
    expect(await c5.errorOf(XsType.READ, '/sp ace\0')).toBe('EINVAL');
    expect(await c5.errorOf(XsType.WATCH, 'only-path\0')).toBe('EINVAL');
    expect(await c5.errorOf(XsType.SET_PERMS, ['n1'])).toBe('EINVAL');
    expect(await c5.errorOf(XsType.SET_PERMS, ['x', 'q5'])).toBe('EINVAL');
    expect(await c5.errorOf(XsType.INTRODUCE, ['9', '0', '1'])).toBe('EACCES');
    expect(await c5.errorOf(XsType.READ, 'domid\0', 77)).toBe('ENOENT');
    expect(await c5.errorOf(XsType.CONTROL, 'print\0')).toBe('ENOSYS');
    expect(await c5.errorOf(1234, '')).toBe('ENOSYS');
    expect(await c5.errorOf(XsType.RM, '/\0')).toBe('EACCES');
    const c0 = await host.client(0);
    expect(await c0.errorOf(XsType.RM, '/\0')).toBe('EINVAL');
    await c0.close();
    await c5.close();
  });
});
