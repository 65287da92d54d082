/** A ledger published over a real Mosquitto: retained checkpoint, live entries, RPC proofs. */
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import {
  fromBase64,
  Identity,
  leafHash,
  Ledger,
  NoteVerifier,
  openNote,
  parseCheckpoint,
  signEnvelope,
  canonicalBytes,
  verifyConsistency,
  verifyInclusion,
} from '../../lib';
import { MqttLink } from '../../lib/consortium/mqtt-link';
import { answerLedgerRpc, LedgerPublisher, ledgerTopics } from '../../lib/consortium/publisher';
import { Mosquitto } from '../mosquitto';
import { tmpDir, until } from '../helpers';

describe('ledger sync over MQTT (real MQTT broker)', function () {
  this.timeout(60000);
  let broker: Mosquitto;
  let t: ReturnType<typeof tmpDir>;
  before(async () => {
    broker = await Mosquitto.start();
    t = tmpDir('bot-sync-');
  });
  after(async () => {
    await broker.close();
    t.cleanup();
  });

  it('publishes the retained checkpoint and new entries, and answers proofs over RPC', async () => {
    const op = Identity.generate();
    const dev = Identity.generate();
    const led = await Ledger.open({ dir: t.dir, origin: 'example.com/sync', identity: op });
    const id = crypto.randomBytes(8).toString('hex');
    const topics = ledgerTopics(id);
    const pubLink = new MqttLink({ url: broker.url, reconnectMs: 100 });
    const reader = new MqttLink({ url: broker.url, reconnectMs: 100 });
    pubLink.on('error', () => undefined);
    reader.on('error', () => undefined);
    const publisher = new LedgerPublisher(led, pubLink, id);
    publisher.start();
    pubLink.start();
    let seq = 0;
    await Promise.all(Array.from({ length: 40 }, () => led.append(signEnvelope(dev, { kind: 'reading', seq: seq++, ts: Date.now(), payload: seq }))));
    await led.checkpoint();
    await until('publisher connected', () => pubLink.state === 'connected');

    reader.start();
    let note: string | undefined;
    const entries: { from: number; leaves: unknown[] }[] = [];
    reader.subscribe(topics.checkpoint, (_t, p) => {
      note = p.toString();
    });
    reader.subscribe(topics.entries, (_t, p) => {
      entries.push(JSON.parse(p.toString()));
    });
    await until('retained checkpoint', () => note?.startsWith('example.com/sync\n40\n'));
    const cp = parseCheckpoint(openNote(note!, [NoteVerifier.ed25519('example.com/sync', op.publicKey)]).text);

    await Promise.all(Array.from({ length: 10 }, () => led.append(signEnvelope(dev, { kind: 'reading', seq: seq++, ts: Date.now(), payload: seq }))));
    await until('live entries', () => entries.reduce((n, e) => n + e.leaves.length, 0) === 10);
    assert.equal(entries[0].from, 40);
    await led.checkpoint();
    await until('new checkpoint', () => note?.startsWith('example.com/sync\n50\n'));
    const cp2 = parseCheckpoint(openNote(note!, [NoteVerifier.ed25519('example.com/sync', op.publicKey)]).text);

    const cons = (await reader.request(topics.rpc, 'consistency', { from: 40, to: 50 })) as { proof: string[] };
    verifyConsistency(
      40,
      50,
      cons.proof.map((h) => fromBase64(h)),
      cp.root,
      cp2.root,
    );
    const got = (await reader.request(topics.rpc, 'entries', { from: 45, to: 47 })) as { entries: unknown[] };
    assert.equal(got.entries.length, 2);
    const inc = (await reader.request(topics.rpc, 'inclusion', { index: 45, size: 50 })) as { proof: string[] };
    verifyInclusion(
      45,
      50,
      leafHash(canonicalBytes(got.entries[0])),
      inc.proof.map((h) => fromBase64(h)),
      cp2.root,
    );
    await assert.rejects(reader.request(topics.rpc, 'inclusion', { index: 60, size: 50 }), { code: 'E_RANGE' });
    await assert.rejects(reader.request(topics.rpc, 'nope', {}), { code: 'E_QUERY' });
    await assert.rejects(answerLedgerRpc(led, 'entries', { from: -1, to: 3 }), { code: 'E_QUERY' });

    publisher.stop();
    await Promise.all([pubLink.close(), reader.close()]);
    await led.close();
  });
});
