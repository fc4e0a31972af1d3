#!/usr/bin/env node
// json-rpc under the xensim emulator, in one command: the service in
// domain 0, the client in domain 5; the client checks every answer itself.
//
//   node examples/json-rpc/run.mjs
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
    check(clientCode === 0, `the client checked every answer (exit ${clientCode})`);
    check(serverCode === 0, `the server exited cleanly (exit ${serverCode})`);
    check(server.lines.includes('note: "hello from the client"'), 'the server received the notification');
    check(server.lines.includes('connection closed after 1 note(s)'), 'the server saw the connection close');
  });
} catch (error) {
  check(false, error.message);
}
finish('JSON-RPC between domains: a notification, 4 requests, 1 error response, all as expected');
