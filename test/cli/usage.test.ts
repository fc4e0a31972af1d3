// The command line itself: usage errors name the bad argument and exit 2;
// --help exits 0 and shows an example. No emulator needed: nothing gets
// as far as opening a channel.
import { describe, expect, it } from 'vitest';
import { runCliPlain } from './helpers.js';

describe('vchan usage errors (exit 2)', () => {
  const cases: Array<[string[], RegExp]> = [
    [['listen', '--peer', 'abc', '--port', '1'], /^vchan: --peer must be a domain id \(0\.\.32751\), got 'abc'$/m],
    [['connect', '--peer', '40000', '--port', '1'], /^vchan: --peer must be a domain id \(0\.\.32751\), got '40000'$/m],
    [['listen', '--port', '1'], /^vchan: required option '--peer <domid>' not specified$/m],
    [['listen', '--peer', '1'], /^vchan: --port <n> or --path <xs-path> is required$/m],
    [['connect', '--peer', '1', '--port', '1', '--path', 'data/x'], /^vchan: give either --port or --path, not both$/m],
    [['connect', '--peer', '1', '--port', '-3'], /--port/],
    [['connect', '--peer', '1', '--port', 'x1'], /^vchan: --port must be a port number \(0\.\.2147483647\), got 'x1'$/m],
    [['listen', '--peer', '1', '--path', 'a//b'], /^vchan: --path must be a xenstore path/m],
    [['listen', '--peer', '1', '--port', '1', '--ring', '2M'], /^vchan: --ring must be a ring size of 1\.\.1048576 bytes .*got '2M'$/m],
    [['connect', '--peer', '1', '--port', '1', '--timeout', 'soon'], /^vchan: --timeout must be a number of milliseconds, got 'soon'$/m],
    [['connect', '--peer', '1', '--port', '1', '--linger', '-1'], /--linger/],
    [['connect', '--peer', '1', '--port', '1', '--bogus'], /^vchan: unknown option '--bogus'$/m],
    [['proxy', '-m', 'both', '1', 'data/vchan/1/1', '/tmp/s'], /^vchan: -m\/--mode must be client or server, got 'both'$/m],
    [['proxy', 'one', 'data/vchan/1/1', '/tmp/s'], /^vchan: domid must be a domain id \(0\.\.32751\), got 'one'$/m],
    [['proxy', '1', 'data/vchan/1/1'], /^vchan: missing required argument 'socket'$/m],
    [['frobnicate'], /^vchan: unknown command 'frobnicate'$/m],
  ];
  for (const [args, message] of cases) {
    it(`vchan ${args.join(' ')}`, async () => {
      const r = await runCliPlain(args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe('');
    });
  }
});

describe('vchan --help (exit 0, with an example)', () => {
  for (const args of [['--help'], ['listen', '--help'], ['connect', '--help'], ['proxy', '--help'], ['help', 'proxy']]) {
    it(`vchan ${args.join(' ')}`, async () => {
      const r = await runCliPlain(args);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^Usage: vchan/);
      expect(r.stdout).toMatch(/Examples?:\n {2}vchan (listen|connect|proxy) /);
    });
  }
});
