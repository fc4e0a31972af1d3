#!/usr/bin/env node
/**
 * The `vchan` command: netcat for vchans (`listen`, `connect`) and a drop-in
 * for Xen's vchan-socket-proxy (`proxy`). Exit codes: 0 done, 1 failed (one
 * line on stderr says why), 2 bad command line.
 */
import { Command, CommanderError } from 'commander';
import { describeError, EXIT_FAILURE, EXIT_USAGE, report, UsageError } from './errors.js';
import { DEFAULT_LINGER_MS, runConnect, runListen, type RelayFlags } from './listen-connect.js';
import { runProxy, type ProxyFlags } from './proxy.js';
import { packageVersion } from '../package-root.js';

const LINGER_HELP =
  `after stdin ends and the peer has read all we sent, close once the peer has sent nothing for this long ` +
  `('forever': wait for the peer to close; a side that sent nothing always waits)`;

function program(run: (work: Promise<number>) => void): Command {
  const vchan = new Command('vchan')
    .description('Move bytes between Xen domains over libvchan (compatible with C libxenvchan peers).')
    .version(packageVersion(), '-V, --version', "print the package's version")
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, 'vchan: ')) })
    .showHelpAfterError('(add --help for usage)')
    .addHelpText(
      'after',
      `
Examples:
  vchan listen --peer 5 --port 1000 < backup.tar          # in domain 0: offer the file to domain 5
  vchan connect --peer 0 --port 1000 > backup.tar          # in domain 5: fetch it
  vchan proxy -m client 5 data/vchan/0/qmp /run/qmp.sock    # a unix socket here reaches domain 5

Exit status: 0 when the channel closed after a complete transfer, 1 on failure (a one-line reason
on stderr), 2 for a bad command line. See docs/cli.md.`,
    );

  vchan
    .command('listen')
    .description('offer a channel to one domain, then relay stdin into it and its data to stdout')
    .requiredOption('--peer <domid>', 'the domain that may connect (0..32751)')
    .option('--port <n>', 'publish under data/vchan/<peer>/<n> (Qubes naming)')
    .option('--path <xs-path>', 'publish under this xenstore path instead (at most 49 characters)')
    .option('--ring <bytes>', 'minimum size of each ring, 1 .. 1M (K and M suffixes); default 64K')
    .option('--linger <ms>', LINGER_HELP, String(DEFAULT_LINGER_MS))
    .option('--progress', 'bytes and MB/s on stderr (default: only when stderr is a terminal)')
    .addHelpText(
      'after',
      `
Example:
  vchan listen --peer 5 --port 1000 --ring 1M < disk.img    # then in domain 5: vchan connect --peer 0 --port 1000 > disk.img`,
    )
    .action((flags: RelayFlags & { ring?: string }) => run(runListen(flags)));

  vchan
    .command('connect')
    .description("connect to a domain's channel, then relay stdin into it and its data to stdout")
    .requiredOption('--peer <domid>', 'the domain offering the channel (0..32751)')
    .option('--port <n>', 'connect to /local/domain/<peer>/data/vchan/<own id>/<n> (Qubes naming)')
    .option('--path <xs-path>', "the server's xenstore path instead")
    .option('--timeout <ms>', 'give up when no server appears within this long (default: wait)')
    .option('--linger <ms>', LINGER_HELP, String(DEFAULT_LINGER_MS))
    .option('--progress', 'bytes and MB/s on stderr (default: only when stderr is a terminal)')
    .addHelpText(
      'after',
      `
Example:
  vchan connect --peer 0 --port 1000 --timeout 5000 > disk.img    # fetch what domain 0 offers on port 1000`,
    )
    .action((flags: RelayFlags & { timeout?: string }) => run(runConnect(flags)));

  vchan
    .command('proxy')
    .description("forward between a unix socket and a vchan, like Xen's vchan-socket-proxy")
    .argument('<domid>', 'the other domain')
    .argument('<nodepath>', 'xenstore path of the vchan')
    .argument('<socket>', 'unix socket path, number of an open socket fd, or - for stdin/stdout')
    .option('-m, --mode <mode>', 'client (listen on the socket, connect to the vchan) or server (offer the vchan, connect to the socket)', 'client')
    .option('-s, --state-path <path>', 'xenstore path to write "running" to once set up')
    .option('-v, --verbose', 'log connections on stderr')
    .addHelpText(
      'after',
      `
Examples:
  vchan proxy -m server 0 data/vchan/0/qmp /run/qemu/qmp.sock              # in domain 5: offer the vchan, reach QEMU's socket
  vchan proxy -m client -s device-model/5/state 5 /local/domain/5/data/vchan/0/qmp /run/qmp-5.sock   # in domain 0`,
    )
    .action((domid: string, nodePath: string, socket: string, flags: ProxyFlags) => run(runProxy(domid, nodePath, socket, flags)));

  return vchan;
}

async function main(argv: string[]): Promise<number> {
  let work: Promise<number> | undefined;
  try {
    program((w) => (work = w)).parse(argv);
    return work ? await work : EXIT_USAGE;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : EXIT_USAGE;
    if (error instanceof UsageError) {
      report(error.message);
      return EXIT_USAGE;
    }
    report(describeError(error));
    return EXIT_FAILURE;
  }
}

main(process.argv).then(
  (code) => process.exit(code),
  (error: unknown) => {
    report(describeError(error));
    process.exit(EXIT_FAILURE);
  },
);
