/**
 * Child process of crash.test.ts ("SIGKILL while appending and signing checkpoints"): appends
 * envelopes of one device as fast as the ledger takes them (64 in flight: group commits) and
 * signs a checkpoint after each commit while none is being signed, so checkpoint writes
 * interleave with the batches. Prints `r <index> <leafHash>` per receipt and `c <note as JSON>`
 * per checkpoint emitted to onCheckpoint listeners (given out), each only once the ledger
 * told it (durable); stdout is a pipe, written
 * synchronously on Linux. The parent SIGKILLs it at a random moment; it stops by itself
 * after 50000 entries.
 *
 * argv: ledger dir, origin, operator seed (hex), device seed (hex), first seq.
 */
import { signEnvelope } from '../lib/format/envelope';
import { Identity } from '../lib/format/identity';
import { Ledger } from '../lib/store/ledger';

async function main(): Promise<void> {
  const [dir, origin, opHex, devHex, first] = process.argv.slice(2);
  const op = Identity.fromSeed(Buffer.from(opHex, 'hex'));
  const dev = Identity.fromSeed(Buffer.from(devHex, 'hex'));
  const l = await Ledger.open({ dir, origin, identity: op });
  const out = (line: string): void => {
    process.stdout.write(line + '\n');
  };
  const fail = (err: unknown): void => {
    process.stderr.write(`crash-child: ${String(err)}\n`);
    process.exit(1);
  };
  let seq = Number(first);
  const end = seq + 50000;
  let inflight = 0;
  const pump = (): void => {
    while (inflight < 64 && seq < end) {
      inflight++;
      const env = signEnvelope(dev, { kind: 'reading', seq: seq++, ts: Date.now(), payload: { n: seq } });
      l.append(env).then((r) => {
        out(`r ${r.index} ${r.leafHash}`);
        inflight--;
        pump();
      }, fail);
    }
    if (inflight === 0 && seq >= end) void l.close().then(() => process.exit(0));
  };
  // Given out as the consortium gives it out: to onCheckpoint listeners (publish to witnesses).
  l.onCheckpoint((cp) => out(`c ${JSON.stringify(cp.note)}`));
  let signing = false;
  l.onCommit(() => {
    if (signing) return;
    signing = true;
    l.checkpoint().then(() => {
      signing = false;
    }, fail);
  });
  out('ready');
  pump();
}

main().catch((err: unknown) => {
  process.stderr.write(`crash-child: ${String(err)}\n`);
  process.exit(1);
});
