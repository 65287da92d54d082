/**
 * Issue 11, defect 7: the example flows deploy right. What must be filled in is empty (the
 * editor's red triangle) rather than a placeholder that passes as valid; broker and endpoint
 * addresses come from one place, environment variables with defaults in the flow's
 * properties (`${BOT_MQTT_URL}` in a field, a JSONata flow env var for the default), checked
 * in a real Node-RED runtime against a real Mosquitto; the files are named as the README titles them.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import mqtt from 'mqtt';
import { Identity } from '../../lib/format/identity';
import { Mosquitto } from '../mosquitto';
import { editorDefinitions, editorVerdict, type EditorDefinition } from './editor';
import { EXAMPLES_DIR, readExample } from './examples';
import { ALL_NODES, type FlowNode, freshUserDir, helper, type TestNode, until } from './util';

const botConsensus = require('../../nodes/bot-consensus') as unknown;
const botGrant = require('../../nodes/bot-grant') as unknown;
const botPartner = require('../../nodes/bot-partner') as unknown;
const botDevice = require('../../nodes/bot-device') as unknown;
const inject = require('@node-red/nodes/core/common/20-inject.js') as unknown;
const debug = require('@node-red/nodes/core/common/21-debug.js') as unknown;
const comment = require('@node-red/nodes/core/common/90-comment.js') as unknown;
const catchNode = require('@node-red/nodes/core/common/25-catch.js') as unknown;
const NODES = [...ALL_NODES, botConsensus, botGrant, botPartner, botDevice, inject, debug, comment, catchNode];

const TITLES = [
  'Confidential - owner',
  'Confidential - partner with a mirror',
  'Consortium partner A',
  'Consortium partner B',
  'Consortium partner C',
  'Device registry - enrol, verify, revoke',
  'Partner access - owner',
  'Partner access - reader',
  'Query with proofs',
  'Sign and append sensor readings',
  'Verify device messages',
];
/** Node-RED's editor treats a whole-field `${NAME}` as valid, whatever the validator (editor-client red.js validateNodeProperty). */
const ENV_REF = /^\$\{([a-zA-Z_][a-zA-Z0-9_]*)\}$/;
/** What the user must fill in before deploying: empty, so the editor marks it. */
const MUST_FILL = [
  'Confidential - partner with a mirror: plant owner.operator',
  'Confidential - partner with a mirror: plant owner.grant',
  'Partner access - reader: owner over MQTT.operator',
  'Partner access - reader: owner over MQTT.grant',
  'Partner access - reader: owner over HTTP.operator',
  'Partner access - reader: owner over HTTP.grant',
];

/** Every string-valued field of a node (not its wires, position or info text). */
function fields(n: FlowNode): [string, string][] {
  return Object.entries(n).filter(
    (e): e is [string, string] => typeof e[1] === 'string' && !['id', 'type', 'z', 'info', 'name', 'label', 'func'].includes(e[0]),
  );
}

describe('example flows', function () {
  this.timeout(20000);

  it('are named as the README titles them, and the README links each file', () => {
    assert.deepEqual(
      fs
        .readdirSync(EXAMPLES_DIR)
        .filter((f) => f.endsWith('.json'))
        .map((f) => f.slice(0, -5))
        .sort(),
      TITLES,
    );
    const readme = fs.readFileSync(path.resolve(EXAMPLES_DIR, '../README.md'), 'utf8');
    for (const t of TITLES) assert.ok(readme.includes(`examples/${t}.json`), `README names examples/${t}.json`);
  });

  it('ship no placeholder that passes as valid: what must be filled is empty and marked by the editor', () => {
    const defs: Record<string, EditorDefinition> = {};
    for (const f of [
      'bot-identity',
      'bot-ledger',
      'bot-sign',
      'bot-verify',
      'bot-append',
      'bot-query',
      'bot-consensus',
      'bot-grant',
      'bot-partner',
      'bot-device',
    ])
      Object.assign(defs, editorDefinitions(f));
    const invalid: string[] = [];
    for (const title of TITLES) {
      const flow = readExample(title);
      const text = JSON.stringify(flow);
      assert.ok(!/PASTE|did:key:z/i.test(text), `${title}: no placeholder grant id or did:key`);
      for (const n of flow) {
        const def = defs[n.type];
        if (!def) continue;
        for (const prop of Object.keys(def.defaults)) {
          const v = n[prop] ?? def.defaults[prop].value;
          if (typeof v === 'string' && ENV_REF.test(v)) continue;
          const verdict = editorVerdict(def, prop, v, n);
          if (verdict !== true) invalid.push(`${title}: ${n.name || n.id}.${prop}`);
        }
      }
    }
    assert.deepEqual(invalid.sort(), [...MUST_FILL].sort());
  });

  it('take every broker and endpoint address from a flow environment variable that has a default', () => {
    for (const title of TITLES) {
      const flow = readExample(title);
      const tabs = new Map(flow.filter((n) => n.type === 'tab').map((t) => [t.id, (t.env ?? []) as { name: string; value: string; type: string }[]]));
      for (const n of flow) {
        for (const [k, v] of fields(n)) {
          assert.ok(!/(127\.0\.0\.1|localhost|:\/\/)/.test(v) || ENV_REF.test(v), `${title}: ${n.id}.${k} = ${v} is an address written into the node`);
          const ref = ENV_REF.exec(v);
          if (!ref) continue;
          assert.ok(n.z !== undefined, `${title}: ${n.id} uses \${${ref[1]}}, so it is scoped to its flow (z) to see the flow's environment`);
          const env = tabs.get(n.z as string)?.find((e) => e.name === ref[1]);
          assert.ok(env, `${title}: ${ref[1]} is defined in the flow's environment`);
          assert.equal(env.type, 'jsonata');
          assert.match(env.value, new RegExp(`^\\$env\\("\\$parent\\.${ref[1]}"\\) \\? \\$env\\("\\$parent\\.${ref[1]}"\\) : "[a-z]+://`));
        }
      }
    }
  });

  describe('in a real Node-RED runtime', () => {
    let userDir: string;
    let broker: Mosquitto | undefined;
    beforeEach(() => {
      userDir = freshUserDir();
    });
    afterEach(async () => {
      delete process.env.BOT_MQTT_URL;
      delete process.env.BOT_OWNER_URL;
      await helper.unload();
      await broker?.stop();
      broker = undefined;
      fs.rmSync(userDir, { recursive: true, force: true });
    });

    /** The flows of an example with its timers off and ledgers in this test's user directory. */
    const prepared = (title: string): FlowNode[] =>
      readExample(title).map((n) =>
        n.type === 'inject' ? { ...n, repeat: '', once: false } : n.type === 'bot-ledger' ? { ...n, dir: path.join(userDir, n.id) } : n,
      );

    it('without the environment variables, the flow environment gives the defaults', async () => {
      // The example's flows (their environments) with a probe node instead of nodes that would connect.
      const flows = ['Consortium partner A', 'Partner access - reader'].flatMap((t) => readExample(t).filter((n) => n.type === 'tab'));
      await helper.load(NODES, [...flows, ...flows.map((t) => ({ id: `probe-${t.id}`, type: 'helper', z: t.id }))]);
      const setting = (tab: string, name: string): unknown =>
        (helper.getNode(`probe-${tab}`) as TestNode & { _flow: { getSetting(n: string): unknown } })._flow.getSetting(name);
      assert.equal(setting('a-tab', 'BOT_MQTT_URL'), 'mqtt://127.0.0.1:1883');
      assert.equal(setting('pr-tab', 'BOT_MQTT_URL'), 'mqtt://127.0.0.1:1883');
      assert.equal(setting('pr-tab', 'BOT_OWNER_URL'), 'http://127.0.0.1:1880/bot/request');
    });

    it('with BOT_MQTT_URL set, a consortium example publishes its retained checkpoint on that broker, and the reader uses BOT_OWNER_URL', async () => {
      broker = await Mosquitto.start();
      process.env.BOT_MQTT_URL = broker.url;
      process.env.BOT_OWNER_URL = 'http://127.0.0.1:9/bot/request';
      const key = Identity.generate().exportSeed().toString('hex');
      const flow = prepared('Consortium partner A');
      await helper.load(NODES, flow, { 'a-key': { secretKey: key } });
      const client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
      try {
        const topics: string[] = [];
        client.on('message', (t) => topics.push(t));
        await client.subscribeAsync('bot/v1/+/checkpoint');
        helper.getNode('a-sign').receive({ payload: { kwh: 1 }, topic: 'a/meter' });
        await until(() => topics.length > 0, 10000, 'a retained checkpoint on the broker of BOT_MQTT_URL');
      } finally {
        await client.endAsync();
      }
      await helper.unload();
      // The reader's HTTP owner: the URL the node was created with is the environment's.
      const reader = prepared('Partner access - reader').map((n) => (n.type === 'bot-partner' ? { ...n, operator: Identity.generate().did, grant: 'g-1' } : n));
      await helper.load(NODES, reader, { 'pr-key': { secretKey: key } });
      const http = helper.getNode('pr-owner-http') as TestNode & { _flow: { getSetting(n: string): unknown } };
      assert.equal(http._flow.getSetting('BOT_OWNER_URL'), 'http://127.0.0.1:9/bot/request');
      assert.equal(http._flow.getSetting('BOT_MQTT_URL'), broker.url);
    });
  });
});
