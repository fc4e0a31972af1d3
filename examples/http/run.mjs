#!/usr/bin/env node
// http under the xensim emulator, in one command: the server in domain 0,
// the client in domain 5; the client checks every response itself.
//
//   node examples/http/run.mjs
import { fileURLToPath } from 'node:url';
import { checker, withEmulator } from '../lib/emulator.mjs';

const here = (name) => fileURLToPath(new URL(name, import.meta.url));

const { check, finish } = checker();
try {
  await withEmulator(async ({ run }) => {
    const server = run(0, 'dom0 server', [process.execPath, here('server.mjs'), '--peer', '5']);
    await server.waitFor(/^listening/);
    const client = run(5, 'dom5 client', [process.execPath, here('client.mjs'), '--peer', '0']);
    const [clientCode, serverCode] = [await client.exit, await server.exit];
    check(clientCode === 0, `the client checked every response (exit ${clientCode})`);
    check(serverCode === 0, `the server exited cleanly (exit ${serverCode})`);
    check(client.lines.includes('4 requests over 1 vchan, every response checked'), 'the client saw 4 requests over 1 vchan');
    check(server.lines.includes('channel closed after 4 requests'), 'the server served 4 requests on one channel, then saw it close');
  });
} catch (error) {
  check(false, error.message);
}
finish('HTTP keep-alive over one vchan: 4 requests, all answered correctly');
