/**
 * The Mosquitto ACL the package ships (mosquitto/bot-acl.conf, docs/threat-model.md "What the
 * broker must add"), used verbatim on a real Mosquitto with passwords: a consortium member
 * witnesses the owner's ledger and mirrors its entries; a partner that is not a member calls
 * the owner's rpc and gets its answer; an authenticated outsider can neither forge the owner's
 * retained checkpoint, read the partner's answers or the owner's requests, nor read entries;
 * an anonymous client is refused.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { Consortium } from '../../lib/consortium/consortium';
import { signEnvelope } from '../../lib/format/envelope';
import { Identity } from '../../lib/format/identity';
import { Ledger } from '../../lib/store/ledger';
import { MqttLink } from '../../lib/consortium/mqtt-link';
import { signCheckpoint } from '../../lib/format/note';
import { ledgerId, QuorumPolicy } from '../../lib/consortium/quorum';
import { ledgerTopics } from '../../lib/consortium/publisher';
import { brokerKind, Mosquitto } from '../mosquitto';
import { tmpDir, until } from '../helpers';

const ACL_FILE = path.resolve(__dirname, '../../../mosquitto/bot-acl.conf');

/** The shipped ACL with its example member blocks replaced by the test's members (same block form). */
function aclFor(members: string[]): string {
  const text = fs.readFileSync(ACL_FILE, 'utf8');
  const block = /^user [0-9a-f]{16}\n((?:topic .*\n)+)/m.exec(text);
  assert.ok(block, 'the shipped ACL has a member block');
  const rules = block[1];
  const patterns = text.replace(/^user [0-9a-f]{16}\n(?:topic .*\n)+\n?/gm, '');
  return patterns + members.map((m) => `user ${m}\n${rules}`).join('\n');
}

function rawClient(url: string, username: string | undefined, password: string | undefined): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, {
      protocolVersion: 4,
      clientId: username ?? `anon-${Date.now()}`,
      username,
      password,
      reconnectPeriod: 0,
      connectTimeout: 3000,
    });
    c.once('connect', () => resolve(c));
    c.once('error', (err) => {
      c.end(true);
      reject(err);
    });
  });
}

function subscribe(c: MqttClient, filter: string): Promise<void> {
  return new Promise((resolve, reject) => c.subscribe(filter, { qos: 1 }, (err) => (err ? reject(err) : resolve())));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('the shipped Mosquitto ACL (mosquitto/bot-acl.conf) on a real broker', function () {
  this.timeout(30000);
  const dirs: (() => void)[] = [];
  const stops: (() => Promise<unknown> | unknown)[] = [];
  let broker: Mosquitto;
  let owner: { id: Identity; ledger: Ledger; lid: string; cons: Consortium };
  let witness: { id: Identity; ledger: Ledger; lid: string; cons: Consortium };
  const partnerId = 'aaaaaaaaaaaaaaaa';
  const outsiderId = 'bbbbbbbbbbbbbbbb';
  const pw = (u: string): string => `pw-${u}`;

  async function member(
    name: string,
    id: Identity,
    witnessOf: { origin: string; did: string } | undefined,
    witnessedBy: Identity | undefined,
  ): Promise<{ id: Identity; ledger: Ledger; lid: string; cons: Consortium }> {
    const t = tmpDir('bot-acl-');
    dirs.push(t.cleanup);
    const origin = `example.com/${name}`;
    const ledger = await Ledger.open({ dir: t.dir, origin, identity: id });
    const lid = ledgerId(origin, id.did);
    const link = new MqttLink({ url: broker.url, clientId: lid, username: lid, password: pw(lid), reconnectMs: 100, maxReconnectMs: 500 });
    link.on('error', () => undefined);
    const policy = QuorumPolicy.create({ origin, operator: id.did, witnesses: witnessedBy ? [{ name: 'example.com/W', key: witnessedBy.did }] : [] });
    const cons = new Consortium({ ledger, identity: id, link, policy, witnessed: witnessOf ? [witnessOf] : [], retryMs: 200, rpcTimeoutMs: 2000 });
    stops.push(async () => {
      await cons.stop();
      await link.close();
      await ledger.close();
    });
    return { id, ledger, lid, cons };
  }

  before(async function () {
    if (brokerKind() !== 'mosquitto') {
      console.log('      (skipped: the shipped ACL is a Mosquitto file, and Mosquitto is not installed; CI requires it)');
      this.skip();
    }
    // Ledger ids depend on keys: make the identities first, then the broker that knows them.
    const wId = Identity.generate();
    const oId = Identity.generate();
    const wLid = ledgerId('example.com/W', wId.did);
    const oLid = ledgerId('example.com/O', oId.did);
    const users: Record<string, string> = {};
    for (const u of [wLid, oLid, partnerId, outsiderId]) users[u] = pw(u);
    broker = await Mosquitto.start({ users, acl: aclFor([wLid, oLid]) });
    witness = await member('W', wId, { origin: 'example.com/O', did: oId.did }, undefined);
    owner = await member('O', oId, undefined, wId);
    assert.equal(owner.lid, oLid);
    await witness.cons.start();
    await owner.cons.start();
  });

  after(async () => {
    for (const s of stops.splice(0).reverse()) await s();
    await broker?.close();
    for (const d of dirs) d();
  });

  it('lets the consortium work: the witness cosigns, a member mirrors entries, a partner gets its answers', async () => {
    const entries = await rawClient(broker.url, witness.lid, pw(witness.lid));
    stops.push(() => entries.end(true));
    const seen: string[] = [];
    entries.on('message', (t) => seen.push(t));
    await subscribe(entries, ledgerTopics(owner.lid).entries);

    const r = await owner.ledger.append(signEnvelope(owner.id, { kind: 'reading', seq: 1, ts: Date.now(), topic: 'plant/1/temp', payload: { t: 21 } }));
    await owner.ledger.checkpoint();
    const st = await owner.cons.waitConfirmed(r.index, 10000);
    assert.equal(st.status, 'confirmed');
    await until('the member to see the entries message', () => seen.length > 0, 5000);

    const partner = new MqttLink({ url: broker.url, clientId: partnerId, username: partnerId, password: pw(partnerId) });
    partner.on('error', () => undefined);
    stops.push(() => partner.close());
    partner.start();
    await partner.connected(5000);
    const answer = (await partner.request(ledgerTopics(owner.lid).rpc, 'checkpoint', {}, 5000)) as { treeSize: number };
    assert.equal(answer.treeSize, 1);
  });

  it("keeps an outsider out: no forged checkpoint, no one else's answers or requests, no entries", async () => {
    const topics = ledgerTopics(owner.lid);
    const outsider = await rawClient(broker.url, outsiderId, pw(outsiderId));
    stops.push(() => outsider.end(true));
    const got: string[] = [];
    outsider.on('message', (t) => got.push(t));
    await subscribe(outsider, `bot/v1/_reply/${partnerId}`);
    await subscribe(outsider, topics.rpc);
    await subscribe(outsider, topics.entries);

    // A forged checkpoint published retained on the owner's topic must never reach anyone.
    const forged = signCheckpoint('example.com/O', 99, Buffer.alloc(32, 7), Identity.generate());
    await new Promise<void>((resolve) => outsider.publish(topics.checkpoint, forged, { qos: 1, retain: true }, () => resolve()));

    const partner = new MqttLink({ url: broker.url, clientId: partnerId, username: partnerId, password: pw(partnerId) });
    partner.on('error', () => undefined);
    stops.push(() => partner.close());
    partner.start();
    await partner.connected(5000);
    await partner.request(topics.rpc, 'checkpoint', {}, 5000);
    await owner.ledger.append(signEnvelope(owner.id, { kind: 'reading', seq: 2, ts: Date.now(), topic: 'plant/1/temp', payload: { t: 22 } }));

    const reader = await rawClient(broker.url, partnerId, pw(partnerId));
    stops.push(() => reader.end(true));
    const retained: string[] = [];
    reader.on('message', (_t, p) => retained.push(p.toString()));
    await subscribe(reader, topics.checkpoint);
    await subscribe(reader, topics.entries);
    await owner.ledger.append(signEnvelope(owner.id, { kind: 'reading', seq: 3, ts: Date.now(), topic: 'plant/1/temp', payload: { t: 23 } }));
    await sleep(500);
    assert.deepEqual(got, [], 'the outsider received nothing');
    assert.ok(
      retained.length >= 1 && retained.every((n) => n.startsWith('example.com/O\n') && n !== forged),
      "the partner sees only the owner's own checkpoint",
    );
    assert.ok(!retained.some((n) => n.startsWith('{')), 'a partner that is not a member gets no entries message');
  });

  it('refuses an anonymous client', async () => {
    await assert.rejects(rawClient(broker.url, undefined, undefined));
  });
});
