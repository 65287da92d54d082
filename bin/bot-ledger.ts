#!/usr/bin/env node
/**
 * bot-ledger: append to, prove from and audit a Blockchain-of-Things ledger. The logic is in
 * bin/cli.ts; this wrapper wires the process: streams, signals and the exit status.
 */
import { main } from './cli';

const argv = process.argv.slice(2);
const controller = new AbortController();
/** `append` and `serve` stop gracefully; other commands end at once on a signal. */
const graceful = argv[0] === 'append' || argv[0] === 'serve';
let signalled = false;

for (const [sig, num] of [
  ['SIGINT', 2],
  ['SIGTERM', 15],
] as const) {
  process.on(sig, () => {
    // First signal during append: stop reading, print the receipts of the entries already
    // accepted once they are durable, close the ledger, exit 128+n. During serve: stop
    // listening, close the ledger, exit 0. Second signal: exit now.
    if (signalled || !graceful) process.exit(128 + num);
    signalled = true;
    controller.abort(sig);
  });
}

main(argv, { signal: controller.signal }).then(
  (status) => {
    // Let stdout and stderr drain (pipes are asynchronous), then exit even if a handle lingers.
    process.stdout.write('', () => process.stderr.write('', () => process.exit(status)));
  },
  (err: unknown) => {
    process.stderr.write(`bot-ledger: internal error: ${(err as Error)?.message ?? String(err)}\n`);
    process.exit(1);
  },
);
