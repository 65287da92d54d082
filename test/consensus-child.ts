/**
 * One partner of the consortium test (test/consensus.test.ts), run as a separate process
 * with child_process.fork. Everything comes over IPC (the key seed never on argv):
 *
 *   {cmd:'init', seed, dir, url, name, partners:[{name, did}]}  open ledger + Consortium
 *   {cmd:'append', n}             append n readings; result: their indexes
 *   {cmd:'status', index}         Consortium.status
 *   {cmd:'info'}                  Consortium.info
 *   {cmd:'wait', index, ms}       Consortium.waitConfirmed
 *   {cmd:'stop'}                  stop, close, leave IPC (the process must then exit by itself)
 *   {cmd:'witnessState', origin}  Consortium.witnessState
 *   {cmd:'forge'}                 sign a checkpoint over a different root at the latest size
 *                                 and publish it on the own retained checkpoint topic
 *
 * Answers are {id, result} or {id, error:{code, message}}. Checkpoints are signed every 200 ms.
 */
import * as crypto from 'node:crypto';
import { Consortium } from '../lib/consortium/consortium';
import { fromHex } from '../lib/format/bytes';
import { Identity } from '../lib/format/identity';
import { Ledger } from '../lib/store/ledger';
import { MqttLink } from '../lib/consortium/mqtt-link';
import { signCheckpoint } from '../lib/format/note';
import { signEnvelope } from '../lib/format/envelope';
import { QuorumPolicy } from '../lib/consortium/quorum';

interface Init {
  seed: string;
  dir: string;
  url: string;
  name: string;
  partners: { name: string; did: string }[];
}
interface Msg {
  id: number;
  cmd: string;
  [k: string]: unknown;
}

const origin = (name: string): string => `example.com/${name}`;

let ledger: Ledger | undefined;
let cons: Consortium | undefined;
let link: MqttLink | undefined;
let identity: Identity | undefined;
let seq = 0;
let timer: NodeJS.Timeout | undefined;
let stopping = false;

async function init(m: Init): Promise<unknown> {
  identity = Identity.fromSeed(fromHex(m.seed));
  ledger = await Ledger.open({ dir: m.dir, origin: origin(m.name), identity });
  seq = (await ledger.lastSeq(identity.did)) + 1;
  link = new MqttLink({ url: m.url, reconnectMs: 100, maxReconnectMs: 500, clientId: `cons-${m.name}-${crypto.randomBytes(3).toString('hex')}` });
  link.on('error', () => undefined);
  const policy = QuorumPolicy.create({
    origin: origin(m.name),
    operator: identity.did,
    witnesses: m.partners.map((p) => ({ name: origin(p.name), key: p.did })),
  });
  cons = new Consortium({
    ledger,
    identity,
    link,
    policy,
    retryMs: 500,
    rpcTimeoutMs: 2000,
    witnessed: m.partners.map((p) => ({ origin: origin(p.name), did: p.did })),
  });
  await cons.start();
  timer = setInterval(() => {
    ledger!.checkpoint().catch(() => undefined);
  }, 200);
  return { did: identity.did, ledgerId: cons.ledgerId };
}

async function handle(m: Msg): Promise<unknown> {
  switch (m.cmd) {
    case 'init':
      return init(m as unknown as Init);
    case 'append': {
      const n = Number(m.n ?? 1);
      const receipts = await Promise.all(
        Array.from({ length: n }, () =>
          ledger!.append(signEnvelope(identity!, { kind: 'reading', seq: seq++, ts: Date.now(), topic: 'plant/1/temp', payload: { t: 20 + Math.random() } })),
        ),
      );
      return receipts.map((r) => r.index);
    }
    case 'status':
      return cons!.status(Number(m.index));
    case 'info':
      return cons!.info();
    case 'wait':
      return cons!.waitConfirmed(Number(m.index), Number(m.ms));
    case 'witnessState':
      return cons!.witnessState(String(m.origin));
    case 'forge': {
      const latest = ledger!.latestCheckpoint();
      if (!latest) throw new Error('no checkpoint to forge');
      const forged = signCheckpoint(ledger!.origin, latest.size, crypto.randomBytes(32), identity!);
      await link!.publish(cons!.topics.checkpoint, forged, { retain: true });
      return { size: latest.size };
    }
    case 'stop': {
      // Stop everything, answer, then leave the IPC channel: the process must then exit by
      // itself, which shows that no timer, socket or subscription is left behind.
      stopping = true;
      if (timer) clearInterval(timer);
      await cons?.stop();
      await link?.close();
      await ledger?.close();
      setImmediate(() => process.disconnect?.());
      return true;
    }
    default:
      throw new Error(`unknown command ${m.cmd}`);
  }
}

process.on('message', (m: Msg) => {
  handle(m).then(
    (result) => process.send?.({ id: m.id, result }),
    (err: Error & { code?: string }) => process.send?.({ id: m.id, error: { code: err.code ?? 'E_ERROR', message: err.message } }),
  );
});
// The parent went away without a stop: do not linger.
process.on('disconnect', () => {
  if (!stopping) process.exit(0);
});
