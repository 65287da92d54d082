/**
 * Issue 11 defect 6: a partner over MQTT checks that the owner's ledger is on the broker
 * before it sends a request (lib/access/partner.ts OwnerCheck): a wrong operator did:key or origin is
 * E_NOT_FOUND "no ledger with this origin and key on the broker" within the check's bound
 * (2 s), shown in the status, instead of E_TIMEOUT after the request timeout while the status
 * said "owner reachable over MQTT". Real Mosquitto, one Node-RED runtime with the owner's and
 * the partner's ledgers.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Identity } from '../../lib/format/identity';
import { MqttLink } from '../../lib/consortium/mqtt-link';
import { OwnerCheck } from '../../lib/access/partner';
import { signCheckpoint } from '../../lib/format/note';
import { ledgerId } from '../../lib/consortium/quorum';
import { ledgerTopics } from '../../lib/consortium/publisher';
import { Mosquitto } from '../mosquitto';
import { ALL_NODES, type FlowNode, freshUserDir, helper, type Msg, nextMessage, statuses, type TestNode, until } from './util';

const botPartner = require('../../nodes/bot-partner') as unknown;
const NODES = [...ALL_NODES, botPartner];

const OWNER = Identity.generate();
const QUIET = Identity.generate(); // an owner whose ledger has signed no checkpoint yet
const ME = Identity.generate();
const WRONG = Identity.generate();
const ORIGIN = 'owner.example/checked';
const QUIET_ORIGIN = 'owner.example/quiet';
const seed = (id: Identity): string => id.exportSeed().toString('hex');
const NO_LEDGER = 'no ledger with this origin and key on the broker';
const TIMEOUT_MS = 5000;

describe("bot-partner over MQTT: the owner's ledger is checked on the broker first (real MQTT broker)", function () {
  this.timeout(30000);
  let broker: Mosquitto;
  let userDir: string;
  let junk: MqttLink | undefined;
  const seen: Record<string, { fill?: string; text?: string }[]> = {};

  const flow = (): FlowNode[] => {
    const ledger = (id: string, name: string, origin: string, identity: string, checkpointMs: number): FlowNode => ({
      id,
      type: 'bot-ledger',
      name,
      origin,
      identity,
      dir: path.join(userDir, name),
      checkpointMs,
      checkpointEntries: 0,
      maxEntryBytes: 65536,
      broker: broker.url,
      clientId: '',
      witnesses: '',
      quorum: '',
      witnessed: '',
    });
    const partner = (id: string, origin: string, operator: string): FlowNode => ({
      id,
      type: 'bot-partner',
      name: `partner ${id}`,
      origin,
      operator,
      grant: 'g-1',
      identity: 'me',
      via: 'mqtt',
      ledger: 'L-mine',
      timeoutMs: TIMEOUT_MS,
    });
    const query = (id: string, p: string): FlowNode[] => [
      { id: `q-${id}`, type: 'bot-query', z: 't1', mode: 'partner', partner: p, name: '', wires: [[`out-${id}`]] },
      { id: `out-${id}`, type: 'helper', z: 't1' },
    ];
    return [
      { id: 't1', type: 'tab', label: 'owner check' },
      { id: 'op', type: 'bot-identity', name: 'owner operator' },
      { id: 'qop', type: 'bot-identity', name: 'quiet operator' },
      { id: 'me', type: 'bot-identity', name: 'partner key' },
      // The owner signs a checkpoint at once (retained on its checkpoint topic); the quiet one never.
      ledger('L-owner', 'owner', ORIGIN, 'op', 200),
      ledger('L-quiet', 'quiet', QUIET_ORIGIN, 'qop', 0),
      ledger('L-mine', 'mine', 'partner.example/me', 'me', 0),
      partner('p-good', ORIGIN, OWNER.did),
      partner('p-key', ORIGIN, WRONG.did),
      partner('p-origin', 'owner.example/typo', OWNER.did),
      partner('p-quiet', QUIET_ORIGIN, QUIET.did),
      ...query('good', 'p-good'),
      ...query('key', 'p-key'),
      ...query('origin', 'p-origin'),
      ...query('quiet', 'p-quiet'),
      // One catch node (the test helper registers the catch type once per catch node in a flow).
      { id: 'c1', type: 'catch', z: 't1', scope: null, uncaught: false, wires: [['caught']] },
      { id: 'caught', type: 'helper', z: 't1' },
    ];
  };

  const node = (id: string): TestNode => helper.getNode(id);

  /** Send a read through a partner-mode bot-query; the error it ends with (or the output), and how long it took. */
  async function read(id: string): Promise<{ ms: number; msg: Msg; failed: boolean }> {
    const t0 = Date.now();
    const out = nextMessage(node(`out-${id}`), TIMEOUT_MS + 3000).then((msg) => ({ msg, failed: false }));
    const caught = nextMessage(node('caught'), TIMEOUT_MS + 3000).then((msg) => ({ msg, failed: true }));
    out.catch(() => undefined);
    caught.catch(() => undefined);
    node(`q-${id}`).receive({ payload: { limit: 5 } });
    const r = await Promise.race([out, caught]);
    node('out-' + id).removeAllListeners('input');
    node('caught').removeAllListeners('input');
    if (r.failed) assert.equal(r.msg.error?.source?.id, `q-${id}`);
    return { ms: Date.now() - t0, ...r };
  }

  before(async () => {
    broker = await Mosquitto.start();
    userDir = freshUserDir();
    // A retained message on the wrong key's checkpoint topic that no key signed: it must not count.
    junk = new MqttLink({ url: broker.url });
    junk.start();
    await junk.connected(5000);
    await junk.publish(ledgerTopics(ledgerId(ORIGIN, WRONG.did)).checkpoint, signCheckpoint(ORIGIN, 0, Buffer.alloc(32), Identity.generate()), {
      retain: true,
    });
    await helper.load(NODES, flow(), { op: { secretKey: seed(OWNER) }, qop: { secretKey: seed(QUIET) }, me: { secretKey: seed(ME) } });
    for (const id of ['good', 'key', 'origin', 'quiet']) seen[id] = statuses(node(`q-${id}`));
    await (node('L-owner') as unknown as { consensus: Promise<unknown> }).consensus;
  });

  after(async () => {
    await helper.unload();
    await junk?.close();
    await broker?.close();
    if (userDir) fs.rmSync(userDir, { recursive: true, force: true });
  });

  for (const [id, what] of [
    ['key', 'a wrong operator did:key'],
    ['origin', 'a wrong origin'],
  ] as const) {
    it(`${what}: E_NOT_FOUND "${NO_LEDGER}" within the 2 s check, not E_TIMEOUT after ${TIMEOUT_MS} ms; the status says so`, async () => {
      const r = await read(id);
      assert.ok(r.failed, `an error, not an output: ${JSON.stringify(r.msg.payload)}`);
      assert.equal(r.msg.error?.code, 'E_NOT_FOUND', r.msg.error?.message);
      assert.ok(r.msg.error?.message?.replace(/^\w+Error: /, '').startsWith(NO_LEDGER), r.msg.error?.message);
      assert.ok(r.ms < 3500, `answered after ${r.ms} ms`);
      if (id === 'key') assert.match(r.msg.error?.message ?? '', /did not verify/, 'the junk retained checkpoint is named, not believed');
      // The status shows the reason in full (and never claimed the owner was reachable).
      await until(() => seen[id].some((s) => s.fill === 'red' && s.text === NO_LEDGER), 3000, 'the red status');
      assert.ok(!seen[id].some((s) => s.text === 'owner reachable over MQTT'), JSON.stringify(seen[id]));
    });
  }

  it('the right did:key and origin: the retained checkpoint verifies, the request goes out (the owner refuses the unknown grant)', async () => {
    await until(() => seen.good.some((s) => s.text === 'owner reachable over MQTT'), 5000, 'owner reachable');
    const r = await read('good');
    assert.ok(r.failed);
    assert.equal(r.msg.error?.code, 'E_NO_GRANT', r.msg.error?.message);
    assert.ok(r.ms < 3000, `answered after ${r.ms} ms`);
  });

  it('an owner that is offline is found by its retained checkpoint alone, also on a link already subscribed to that topic', async () => {
    const offline = Identity.generate();
    const origin = 'owner.example/offline';
    const topic = ledgerTopics(ledgerId(origin, offline.did)).checkpoint;
    await junk!.publish(topic, signCheckpoint(origin, 3, Buffer.alloc(32, 7), offline), { retain: true });
    const probe = new MqttLink({ url: broker.url });
    probe.start();
    try {
      await probe.connected(5000);
      // A witness or mirror of that ledger on the same link holds the exact subscription already.
      let seen = 0;
      probe.subscribe(topic, () => {
        seen++;
      });
      await until(() => seen > 0, 3000, 'the retained checkpoint on the exact subscription');
      const t0 = Date.now();
      const check = new OwnerCheck(probe, { origin, operator: offline.did });
      await check.check();
      assert.ok(check.found);
      assert.ok(Date.now() - t0 < 1000, `found after ${Date.now() - t0} ms`);
      // The same key under another origin (or another key) is not found, whatever is retained.
      await assert.rejects(
        new OwnerCheck(probe, { origin: 'owner.example/other', operator: offline.did }, 300).check(),
        (err: Error & { code?: string }) => err.code === 'E_NOT_FOUND',
      );
    } finally {
      await probe.close();
    }
  });

  it('an owner that has signed no checkpoint yet is found through its rpc topic', async () => {
    const r = await read('quiet');
    assert.equal(r.msg.error?.code, 'E_NO_GRANT', r.msg.error?.message);
    await until(() => seen.quiet.some((s) => s.text === 'owner reachable over MQTT'), 3000, 'owner reachable');
  });
});
