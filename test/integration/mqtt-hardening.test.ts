/**
 * Nothing a peer sends over MQTT knocks an owner offline (issue 10): illegal reply topics and
 * retained requests are dropped with a printable 'drop' event, illegal topic names and
 * oversize payloads are never handed to mqtt.js, answers are paged by size so that a mirror
 * of large entries catches up, broker URLs are shown without their password, and close()
 * is bounded whatever the broker does. Against a real Mosquitto and a raw mqtt.js attacker.
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { fromTrustedLeaf, Identity, Ledger, ledgerId, parseEnvelope, signEnvelope, verifyEnvelope } from '../../lib';
import { type LinkDrop, type LinkState, MAX_ANSWER_BYTES, MAX_MESSAGE_BYTES, MqttLink, redactUrl, urlHasPassword } from '../../lib/consortium/mqtt-link';
import { answerLedgerRpc, LedgerPublisher, ledgerTopics, MAX_ENTRIES_PER_MESSAGE, pageBySize } from '../../lib/consortium/publisher';
import { Mirror } from '../../lib/consortium/mirror';
import { checkTopicName, MAX_TOPIC_BYTES, printable, topicNameProblem } from '../../lib/format/topic';
import { Mosquitto } from '../mosquitto';
import { tmpDir, until } from '../helpers';

/** Reply topics a broker refuses (or that name no single topic), each under the legal prefix. */
const BAD_REPLIES: [string, string][] = [
  ['U+0000', 'bot/v1/_reply/a\u0000b'],
  ['U+0001', 'bot/v1/_reply/a\u0001'],
  ['U+0085', 'bot/v1/_reply/a\u0085'],
  ['U+FFFF', 'bot/v1/_reply/a\uffff'],
  ['a lone surrogate', 'bot/v1/_reply/a\ud800'],
  ['70 000 characters', `bot/v1/_reply/${'x'.repeat(70000)}`],
  ['a "+"', 'bot/v1/_reply/a/+'],
];

/** Characters that must never reach a log line raw. */
const RAW = /[\u0000-\u001f\u007f-\u009f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]/;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function rawClient(url: string, clientId: string): Promise<MqttClient> {
  const c = mqtt.connect(url, { protocolVersion: 4, clientId, reconnectPeriod: 0 });
  c.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
  });
  return c;
}

const rawPublish = (c: MqttClient, topic: string, payload: string | Buffer, retain = false): Promise<void> =>
  new Promise((resolve, reject) => c.publish(topic, payload, { qos: 1, retain }, (err) => (err ? reject(err) : resolve())));

describe('MQTT hardening: nothing a peer sends knocks an owner offline (real MQTT broker)', function () {
  this.timeout(30000);
  let broker: Mosquitto;
  let t: ReturnType<typeof tmpDir>;
  const links: MqttLink[] = [];
  const raws: MqttClient[] = [];
  const link = (clientId?: string): MqttLink => {
    const l = new MqttLink({ url: broker.url, clientId, reconnectMs: 100, maxReconnectMs: 400 });
    l.on('error', () => undefined);
    links.push(l);
    l.start();
    return l;
  };
  before(async () => {
    broker = await Mosquitto.start();
    t = tmpDir('bot-hardening-');
  });
  after(async () => {
    await Promise.all(links.map((l) => l.close()));
    await Promise.all(raws.map((c) => c.endAsync(true)));
    await broker.close();
    t.cleanup();
  });

  it('topic names: legal ones pass; controls, non-characters, lone surrogates, wildcards, empty and > 65535 bytes are refused (MQTT 3.1.1 §1.5.3, §4.7)', () => {
    for (const ok of ['a', 'bot/v1/0123456789abcdef/rpc', 'ü/😀/\u00a0', '/', 'x'.repeat(MAX_TOPIC_BYTES), 'é'.repeat(32767)]) {
      assert.equal(topicNameProblem(ok), undefined, printable(ok));
    }
    const bad = [
      '',
      'a\u0000',
      'a\u001f',
      'a\u007f',
      'a\u009f',
      'a\ufdd0',
      'a\ufdef',
      'a\ufffe',
      '\u{1fffe}',
      '\u{10ffff}',
      'a\udc00',
      'a+',
      '#',
      'x'.repeat(MAX_TOPIC_BYTES + 1),
      'é'.repeat(32768),
    ];
    for (const b of bad) assert.throws(() => checkTopicName(b), { code: 'E_QUERY' }, printable(b));
    // What is shown of a bad one is printable, truncated, and says how long it was.
    const shown = printable('a\u0000b\u0085"\\\u202e' + 'x'.repeat(200), 20);
    assert.ok(!RAW.test(shown) && !shown.includes('\u202e'), shown);
    assert.match(shown, /^"a\\u0000b\\u0085\\"\\\\\\u202Exxxxxxxxxxxxx"… \(207 characters\)$/);
  });

  it('an owner drops requests with illegal reply topics and retained requests, stays connected, and still answers', async () => {
    const op = Identity.generate();
    const origin = 'example.com/hardened';
    const id = ledgerId(origin, op.did);
    const topics = ledgerTopics(id);
    const attacker = await rawClient(broker.url, 'attacker');
    raws.push(attacker);
    const answered: string[] = [];
    attacker.on('message', (topic) => answered.push(topic));
    await attacker.subscribeAsync('bot/v1/_reply/attacker', { qos: 1 });
    const request = (reply: string, n: string): string => JSON.stringify({ v: 1, id: `evil-${n}`, reply, method: 'checkpoint', params: {} });
    // Retained before the owner is up: the broker hands them over at every (re)subscribe.
    await rawPublish(attacker, topics.rpc, request('bot/v1/_reply/a\u0000b', 'retained-bad'), true);

    const owner = await Ledger.open({ dir: path.join(t.dir, 'owner'), origin, identity: op });
    const ownerLink = link('owner');
    const states: LinkState[] = [];
    const drops: LinkDrop[] = [];
    ownerLink.on('drop', (d: LinkDrop) => drops.push(d));
    const publisher = new LedgerPublisher(owner, ownerLink, id);
    publisher.start();
    await until('owner connected', () => ownerLink.state === 'connected');
    ownerLink.on('state', (s: LinkState) => states.push(s));
    await sleep(200); // the retained request arrives with the subscription
    for (const [what, reply] of BAD_REPLIES) await rawPublish(attacker, topics.rpc, request(reply, what));

    const partner = link('partner');
    await until('partner connected', () => partner.state === 'connected');
    const res = (await partner.request(topics.rpc, 'checkpoint', {}, 5000)) as { treeSize: number };
    assert.equal(res.treeSize, 0);
    await sleep(300); // room for a disconnect, if the broker were to close the connection
    assert.deepEqual(states, [], `the owner stayed connected: ${states.join(', ')}`);
    assert.equal(ownerLink.state, 'connected');
    await until('every bad request dropped', () => drops.filter((d) => d.reason === 'bad-reply').length === BAD_REPLIES.length);
    assert.equal(drops.filter((d) => d.reason === 'retained-request').length, 1);
    assert.deepEqual(answered, [], "nothing answered on the attacker's topics");
    assert.ok(!/malformed|protocol error/i.test(broker.log), broker.log.slice(-500));
    for (const d of drops) {
      assert.ok(!RAW.test(d.message), `printable: ${JSON.stringify(d.message).slice(0, 200)}`);
      assert.ok(d.message.length < 400, `truncated: ${d.message.length}`);
    }
    assert.match(drops.find((d) => d.message.includes('\\u0000'))?.message ?? '', /reply topic "bot\/v1\/_reply\/a\\u0000b"/);

    // A good request the attacker made retained: the broker forwards it live once (retain 0,
    // MQTT 3.1.1 §3.3.1.3), answered; when it comes back retained (a restart), it is ignored.
    await rawPublish(attacker, topics.rpc, request('bot/v1/_reply/attacker', 'live-then-retained'), true);
    await until('the live one answered', () => answered.length === 1);
    const again = link('owner-again'); // a second owner link stands for the owner's restart
    const dropsAgain: LinkDrop[] = [];
    again.on('drop', (d: LinkDrop) => dropsAgain.push(d));
    again.serve(topics.rpc, async () => ({ answered: true }));
    await until('the retained request ignored on restart', () => dropsAgain.some((d) => d.reason === 'retained-request'));
    await sleep(200);
    assert.equal(answered.length, 1, 'a retained request is not answered');
    await rawPublish(attacker, topics.rpc, '', true); // clear the retained request

    publisher.stop();
    await owner.close();
  });

  it('publish refuses illegal topic names and oversize payloads without calling mqtt.js; oversize incoming messages and answers are reported', async () => {
    const a = link('pub-a');
    const drops: LinkDrop[] = [];
    a.on('drop', (d: LinkDrop) => drops.push(d));
    await until('connected', () => a.state === 'connected');
    const states: LinkState[] = [];
    a.on('state', (s: LinkState) => states.push(s));
    for (const [, topic] of BAD_REPLIES) await assert.rejects(a.publish(topic, 'x'), { code: 'E_QUERY' });
    await assert.rejects(a.publish('bot/v1/big', Buffer.alloc(MAX_MESSAGE_BYTES + 1)), { code: 'E_TOO_LARGE' });
    await a.publish('bot/v1/fits', Buffer.alloc(MAX_MESSAGE_BYTES));
    assert.deepEqual(
      drops.map((d) => d.reason),
      [...BAD_REPLIES.map(() => 'bad-topic'), 'oversize-out'],
    );

    // A peer's oversize message is dropped with an event, not silently.
    const got: number[] = [];
    a.subscribe('bot/v1/in', (_t, p) => got.push(p.length));
    await sleep(150);
    const peer = await rawClient(broker.url, 'pub-peer');
    raws.push(peer);
    await rawPublish(peer, 'bot/v1/in', Buffer.alloc(MAX_MESSAGE_BYTES + 1));
    await rawPublish(peer, 'bot/v1/in', 'small');
    await until('small one delivered', () => got.length === 1);
    assert.deepEqual(got, [5]);
    assert.ok(
      drops.some((d) => d.reason === 'oversize-in' && /1048577-byte message on "bot\/v1\/in"/.test(d.message)),
      JSON.stringify(drops.slice(-2)),
    );

    // An answer above the limit becomes an E_TOO_LARGE error answer, not a silent timeout.
    const server = link('pub-server');
    const serverDrops: LinkDrop[] = [];
    server.on('drop', (d: LinkDrop) => serverDrops.push(d));
    server.serve('bot/v1/big/rpc', async () => 'x'.repeat(MAX_MESSAGE_BYTES));
    await until('server connected', () => server.state === 'connected');
    await assert.rejects(a.request('bot/v1/big/rpc', 'huge', {}, 5000), { code: 'E_TOO_LARGE', message: /above the 1048576-byte MQTT message limit/ });
    assert.deepEqual(
      serverDrops.map((d) => d.reason),
      ['answer-too-large'],
    );
    assert.deepEqual(states, []);
  });

  it('entries are paged by size: a mirror of 1100 entries of ~1.3 KiB catches up; one entry above the budget is E_TOO_LARGE', async () => {
    assert.deepEqual(pageBySize([10, 10, 10]), [3]);
    assert.deepEqual(pageBySize(Array(2500).fill(10)), [1000, 1000, 500]);
    assert.deepEqual(pageBySize([MAX_ANSWER_BYTES, 5, MAX_ANSWER_BYTES / 2, MAX_ANSWER_BYTES / 2]), [1, 2, 1]);

    const op = Identity.generate();
    const dev = Identity.generate();
    const origin = 'example.com/big-entries';
    const owner = await Ledger.open({ dir: path.join(t.dir, 'big-owner'), origin, identity: op, maxEntryBytes: 2 * MAX_MESSAGE_BYTES });
    const pad = 'p'.repeat(1000); // entries of about 1.3 KiB
    await Promise.all(
      Array.from({ length: 1100 }, (_, i) =>
        owner.append(signEnvelope(dev, { kind: 'reading', seq: i, ts: Date.now(), payload: { i, pad } }, { maxBytes: owner.maxEntryBytes })),
      ),
    );
    await owner.checkpoint();
    const first = (await answerLedgerRpc(owner, 'entries', { from: 0, to: 1100 })) as { from: number; entries: unknown[] };
    const n = first.entries.length;
    assert.ok(n > 1 && n < MAX_ENTRIES_PER_MESSAGE, `a short page: ${n}`);
    assert.ok(Buffer.byteLength(JSON.stringify({ v: 1, id: 'x'.repeat(64), result: first })) <= MAX_MESSAGE_BYTES);

    const pubLink = link();
    const publisher = new LedgerPublisher(owner, pubLink, ledgerId(origin, op.did));
    publisher.start();
    const local = await Ledger.open({ dir: path.join(t.dir, 'big-copy'), origin, operator: op.did, maxEntryBytes: owner.maxEntryBytes });
    const mirror = new Mirror({ ledger: local, link: link(), origin, did: op.did, retryMs: 200, timeoutMs: 3000 });
    mirror.start();
    await until('mirror caught up', () => mirror.state().checkpointSize === 1100 || mirror.state().error, 15000);
    assert.deepEqual(mirror.state(), { size: 1100, checkpointSize: 1100, remoteSize: 1100, behind: false });
    assert.ok(local.root().equals(owner.root()));

    // One entry alone above the answer budget: a typed error, not an undeliverable answer.
    await owner.append(
      signEnvelope(dev, { kind: 'reading', seq: 5000, ts: Date.now(), payload: 'b'.repeat(MAX_ANSWER_BYTES) }, { maxBytes: owner.maxEntryBytes }),
    );
    await owner.checkpoint();
    await assert.rejects(answerLedgerRpc(owner, 'entries', { from: 1100, to: 1101 }), { code: 'E_TOO_LARGE', message: /entry 1100 is \d+ bytes/ });
    await until('the mirror reports it', () => mirror.state().error?.code === 'E_TOO_LARGE');
    assert.equal(local.size, 1100);

    await mirror.stop();
    publisher.stop();
    await Promise.all([local.close(), owner.close()]);
  });

  it('envelopes carry legal MQTT topic names only (they key the topic index); stored older leaves still read', () => {
    const dev = Identity.generate();
    const input = { kind: 'reading', seq: 1, ts: 1700000000000, payload: 1 };
    for (const topic of ['a\u0001', 'a\u0085', 'a\uffff', 'a\ufdd0', 'a\ud800', 'a\u007f']) {
      assert.throws(() => signEnvelope(dev, { ...input, topic }), { code: 'E_ENVELOPE' }, printable(topic));
      const good = signEnvelope(dev, { ...input, topic: 'plant/1' }).envelope;
      assert.throws(() => verifyEnvelope({ ...good, topic }), { code: 'E_ENVELOPE' }, printable(topic));
      assert.throws(() => parseEnvelope({ ...good, topic }), { code: 'E_ENVELOPE' }, printable(topic));
    }
    assert.equal(signEnvelope(dev, { ...input, topic: 'ü/😀' }).envelope.topic, 'ü/😀');
    // A leaf stored before the rule (a control in its topic) is still read back from the store.
    const good = signEnvelope(dev, { ...input, topic: 'plant/1' });
    const legacy = Buffer.from(good.bytes.toString('utf8').replace('"plant/1"', '"plant\\u00011"'), 'utf8');
    assert.equal(fromTrustedLeaf(legacy).envelope.topic, 'plant\u00011');
  });

  it('broker URLs are shown without their password', () => {
    assert.equal(redactUrl('mqtt://alice:s3cret@broker.example.com:1883/x'), 'mqtt://alice:***@broker.example.com:1883/x');
    assert.equal(redactUrl('mqtts://alice:p@ss:w@rd@b:8883'), 'mqtts://alice:***@b:8883');
    assert.equal(redactUrl('wss://alice@b/mqtt'), 'wss://alice@b/mqtt');
    assert.equal(redactUrl('mqtt://b:1883/?u=a@b'), 'mqtt://b:1883/?u=a@b');
    assert.equal(urlHasPassword('mqtt://alice:s3cret@b'), true);
    assert.equal(urlHasPassword('mqtt://:s3cret@b'), true);
    assert.equal(urlHasPassword('mqtt://alice@b'), false);
    assert.equal(urlHasPassword('mqtt://b:1883'), false);
  });
});

describe('MqttLink.close() is bounded whatever the broker does', function () {
  this.timeout(15000);
  for (const how of ['killed', 'frozen'] as const) {
    it(`resolves within 2 s when the broker is ${how} with a publish in flight`, async () => {
      // A broker of this test's own, so that it can be killed or frozen.
      const b = await Mosquitto.start();
      try {
        const l = new MqttLink({ url: b.url, reconnectMs: 100 });
        l.on('error', () => undefined);
        l.start();
        await until('connected', () => l.state === 'connected');
        if (how === 'frozen') b.signal('SIGSTOP');
        const inFlight = l.publish('bot/v1/x', 'unacknowledged');
        inFlight.catch(() => undefined);
        if (how === 'killed') b.signal('SIGKILL');
        await sleep(100);
        const t0 = Date.now();
        await l.close();
        const took = Date.now() - t0;
        assert.ok(took < 2000, `close took ${took} ms`);
        assert.equal(l.state, 'closed');
      } finally {
        await b.close();
      }
    });
  }
});
