/**
 * bot-ledger's MQTT lines (issue 10, defects 1 and 8), in a real Node-RED runtime against a
 * real Mosquitto: a broker URL with a password is refused by the runtime and the editor alike
 * and the password is never logged; the URL in log lines is redacted; what the link drops
 * (a request with an illegal reply topic) is logged printable and at most once a minute.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import mqtt from 'mqtt';
import { Identity } from '../../lib/format/identity';
import { ledgerId } from '../../lib/consortium/quorum';
import { ledgerTopics } from '../../lib/consortium/publisher';
import { Mosquitto } from '../mosquitto';
import { editorDefinitions, editorVerdict } from './editor';
import { ALL_NODES, freshUserDir, helper, sleep, until } from './util';

const OP_SECRET = crypto.randomBytes(32);
const OP = Identity.fromSeed(OP_SECRET);
const CREDS = { op: { secretKey: OP_SECRET.toString('base64') } };
const ORIGIN = 'example.com/h2-ledger';

describe('bot-ledger MQTT: credentials never in URLs or logs, peer text logged printable (real MQTT broker)', function () {
  this.timeout(20000);
  let broker: Mosquitto;
  let userDir: string;
  const def = editorDefinitions('bot-ledger')['bot-ledger']!;
  const logText = (): string => JSON.stringify(helper.log().args);
  const load = async (url: string): Promise<{ configError?: { code?: string; message: string }; consensus: Promise<unknown> }> => {
    await helper.load(
      ALL_NODES,
      [
        { id: 'op', type: 'bot-identity', name: 'operator' },
        {
          id: 'L1',
          type: 'bot-ledger',
          name: 'H2',
          origin: ORIGIN,
          identity: 'op',
          dir: path.join(userDir, 'l'),
          checkpointMs: 0,
          broker: url,
          clientId: 'h2-owner',
        },
      ],
      { ...CREDS, L1: { username: 'partner-a', password: 'cred-pw-77' } },
    );
    return helper.getNode('L1') as unknown as { configError?: { code?: string; message: string }; consensus: Promise<unknown> };
  };

  before(async () => {
    broker = await Mosquitto.start();
  });
  beforeEach(() => {
    userDir = freshUserDir();
  });
  afterEach(async () => {
    await helper.unload();
    fs.rmSync(userDir, { recursive: true, force: true });
  });
  after(async () => {
    await broker.close();
  });

  it('refuses a broker URL with a password (runtime and editor agree) and never logs it', async () => {
    const url = broker.url.replace('mqtt://', 'mqtt://alice:s3cret-pw@');
    const n = await load(url);
    assert.equal(n.configError?.code, 'E_QUERY');
    assert.match(n.configError?.message ?? '', /must not contain a password.*Username and Password/);
    await sleep(300);
    assert.ok(!logText().includes('s3cret-pw'), 'the password is not in the log');
    assert.ok(!logText().includes('cred-pw-77'), 'nor the credentials password');
    const editor = editorVerdict(def, 'broker', url);
    assert.equal(typeof editor, 'string');
    assert.match(String(editor), /must not contain a password.*Username and Password fields/);
    for (const ok of ['mqtt://alice@broker.example.com:1883', 'mqtts://b:8883', '']) assert.equal(editorVerdict(def, 'broker', ok), true, ok);
  });

  it("logs the URL without a password, and a peer's bad reply topic printable, once a minute", async () => {
    const url = broker.url.replace('mqtt://', 'mqtt://alice@');
    const n = await load(url);
    assert.equal(n.configError, undefined);
    await n.consensus;
    await until(() => logText().includes(`MQTT ${url}: connected`), 5000, 'connected logged');
    const attacker = mqtt.connect(broker.url, { protocolVersion: 4, reconnectPeriod: 0 });
    attacker.on('error', () => undefined);
    await new Promise<void>((r) => attacker.once('connect', () => r()));
    const rpc = ledgerTopics(ledgerId(ORIGIN, OP.did)).rpc;
    for (let i = 0; i < 5; i++) {
      await attacker.publishAsync(rpc, JSON.stringify({ v: 1, id: `e${i}`, reply: `bot/v1/_reply/x\u0000\u001b[2J${i}`, method: 'checkpoint' }), { qos: 1 });
    }
    await until(() => logText().includes('with reply topic'), 5000, 'the drop logged');
    await sleep(300);
    const msgs = helper.log().args.map((a) => String((a[0] as { msg?: unknown }).msg ?? ''));
    const lines = msgs.filter((m) => m.includes('with reply topic'));
    assert.equal(lines.length, 1, `one line a minute: ${lines.join(' | ')}`);
    assert.ok(lines[0]!.includes('\\u0000\\u001B[2J0'), lines[0]);
    for (const m of msgs) assert.ok(!/[\u0000-\u001f\u007f-\u009f]/.test(m), `no raw control characters in ${JSON.stringify(m)}`);
    assert.ok(!logText().includes('cred-pw-77'));
    await attacker.endAsync(true);
  });
});
