/**
 * Issue 11, defect 1, in a real Node-RED runtime: objects built in a `function` node (its own
 * vm context, so another realm's prototypes), by a change node's JSONata or by the json node
 * are signed, verified and appended like any other; an envelope parsed and tampered with in a
 * function node is a bad signature, not "malformed"; the shipped verify-device-messages
 * example tells tampering from replay; non-JSON values are refused naming where they are.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Envelope, verifyEnvelope } from '../../lib/format/envelope';
import { Identity } from '../../lib/format/identity';
import { canonicalize } from '../../lib/format/jcs';
import { readExample } from './examples';
import { ALL_NODES, type FlowNode, freshUserDir, helper, type Msg, nextMessage, nextMessages, noMessage } from './util';

const fn = require('@node-red/nodes/core/function/10-function.js') as unknown;
const change = require('@node-red/nodes/core/function/15-change.js') as unknown;
const json = require('@node-red/nodes/core/parsers/70-JSON.js') as unknown;
const inject = require('@node-red/nodes/core/common/20-inject.js') as unknown;
const debug = require('@node-red/nodes/core/common/21-debug.js') as unknown;
const catchNode = require('@node-red/nodes/core/common/25-catch.js') as unknown;
const NODES = [...ALL_NODES, fn, change, json, inject, debug, catchNode];

const DEVICE = Identity.generate();
const OPERATOR = Identity.generate();
const seed = (id: Identity): string => id.exportSeed().toString('hex');
const CREDS = { dev: { secretKey: seed(DEVICE) }, op: { secretKey: seed(OPERATOR) } };

const func = (id: string, body: string, wires: string[]): FlowNode => ({
  id,
  type: 'function',
  z: 't1',
  name: `function ${id}`,
  func: body,
  outputs: 1,
  timeout: 0,
  noerr: 0,
  initialize: '',
  finalize: '',
  libs: [],
  wires: [wires],
});

function flow(dir: string): FlowNode[] {
  return [
    { id: 't1', type: 'tab', label: 'realms' },
    { id: 'dev', type: 'bot-identity', name: 'device' },
    { id: 'op', type: 'bot-identity', name: 'operator' },
    {
      id: 'L1',
      type: 'bot-ledger',
      name: 'main',
      origin: 'test.example/realm',
      identity: 'op',
      dir,
      checkpointMs: 0,
      checkpointEntries: 0,
      maxEntryBytes: 65536,
    },
    // Producers of the payload: a function node, a change node with JSONata, the json node.
    func('build', 'msg.payload = { celsius: 21.5, tags: ["a", { b: [1, null] }], at: { unit: "C" } }; msg.topic = "plant/1/temp"; return msg;', ['s1']),
    {
      id: 'jsonata',
      type: 'change',
      z: 't1',
      name: '',
      rules: [{ t: 'set', p: 'payload', pt: 'msg', to: '$merge([{"a": 1}, {"list": [1, 2, {"x": true}]}])', tot: 'jsonata' }],
      wires: [['s1']],
    },
    { id: 'parse', type: 'json', z: 't1', name: '', property: 'payload', action: 'obj', pretty: false, wires: [['s1']] },
    // Through a context store: a function node stores its object, a change node reads it back (a deep clone keeps the realm).
    func('store', 'flow.set("reading", { level: { cm: 12 }, ok: [true] }); msg.topic = "plant/1/context"; return msg;', ['fromContext']),
    { id: 'fromContext', type: 'change', z: 't1', name: '', rules: [{ t: 'set', p: 'payload', pt: 'msg', to: 'reading', tot: 'flow' }], wires: [['s1']] },
    { id: 's1', type: 'bot-sign', z: 't1', identity: 'dev', name: '', wires: [['relay']] },
    // The envelope through JSON.parse in a function node (another realm) on its way to bot-verify.
    func('relay', 'msg.payload = JSON.parse(JSON.stringify(msg.payload)); return msg;', ['v1']),
    func('tamper', 'const e = JSON.parse(JSON.stringify(msg.payload)); e.payload = { ...e.payload, celsius: 99 }; msg.payload = e; return msg;', ['v1']),
    { id: 'v1', type: 'bot-verify', z: 't1', name: '', trusted: DEVICE.did, ledger: '', maxSkewMs: 300000, wires: [['relay2'], ['rej']] },
    func('relay2', 'msg.payload = JSON.parse(JSON.stringify(msg.payload)); return msg;', ['a1']),
    { id: 'a1', type: 'bot-append', z: 't1', ledger: 'L1', name: '', wires: [['out']] },
    { id: 'out', type: 'helper', z: 't1' },
    { id: 'rej', type: 'helper', z: 't1' },
    // Non-JSON values made in a function node, straight into bot-sign.
    func(
      'bad',
      'const a = { x: { y: {} } }; a.x.y.back = a; const v = { map: { a: { b: new Map() } }, date: { when: new Date(0) }, cycle: a, fn: { f() {} } }; msg.payload = v[msg.topic]; return msg;',
      ['s2'],
    ),
    { id: 's2', type: 'bot-sign', z: 't1', identity: 'dev', name: '', wires: [[]] },
    { id: 'c1', type: 'catch', z: 't1', scope: ['s2', 's1', 'a1'], uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 't1' },
  ];
}

describe('values from function nodes and other realms (Node-RED)', function () {
  this.timeout(20000);
  let userDir: string;
  beforeEach(() => {
    userDir = freshUserDir();
  });
  afterEach(async () => {
    await helper.unload();
    fs.rmSync(userDir, { recursive: true, force: true });
  });

  it('function, JSONata, json and context → bot-sign → (JSON.parse in a function) → bot-verify → bot-append: signed, valid, appended', async () => {
    await helper.load(NODES, flow(path.join(userDir, 'ledger')), CREDS);
    const got = nextMessages(helper.getNode('out'), 4, 10000);
    const rejected = noMessage(helper.getNode('rej'), 500);
    const caught = noMessage(helper.getNode('caught'), 500);
    helper.getNode('build').receive({ payload: 'go' });
    helper.getNode('jsonata').receive({ payload: 'go', topic: 'plant/1/jsonata' });
    helper.getNode('parse').receive({ payload: '{"level": 3, "ok": [true]}', topic: 'plant/1/json' });
    helper.getNode('store').receive({ payload: 'go' });
    const msgs = await got;
    await rejected;
    await caught;
    const payloads = msgs.map((m) => verifyEnvelope(m.payload).envelope.payload);
    assert.deepEqual(
      new Set(payloads.map((p) => canonicalize(p))),
      new Set([
        '{"at":{"unit":"C"},"celsius":21.5,"tags":["a",{"b":[1,null]}]}',
        '{"a":1,"list":[1,2,{"x":true}]}',
        '{"level":3,"ok":[true]}',
        '{"level":{"cm":12},"ok":[true]}',
      ]),
    );
    assert.deepEqual(msgs.map((m) => (m.ledger as { index: number }).index).sort(), [0, 1, 2, 3]);
    assert.equal((msgs.find((m) => (m.payload as Envelope).topic === 'plant/1/temp')?.unsigned as { celsius: number }).celsius, 21.5);
  });

  it('an envelope tampered with in a function node is a bad signature, not malformed', async () => {
    await helper.load(NODES, flow(path.join(userDir, 'ledger')), CREDS);
    // Sign one, then send the signed envelope through the tampering function.
    const signed = nextMessage(helper.getNode('out'), 10000);
    helper.getNode('build').receive({ payload: 'go' });
    const env = (await signed).payload as Envelope;
    const rej = nextMessage(helper.getNode('rej'), 5000);
    helper.getNode('tamper').receive({ payload: { ...env, seq: env.seq + 1 } });
    const r = await rej;
    assert.equal(r.error?.code, 'bad-signature', r.error?.message);
  });

  it('refuses non-JSON values from a function node naming where they are and what they are', async () => {
    await helper.load(NODES, flow(path.join(userDir, 'ledger')), CREDS);
    const errs = nextMessages(helper.getNode('caught'), 5, 5000);
    for (const t of ['map', 'date', 'cycle', 'fn', 'missing']) helper.getNode('bad').receive({ payload: 0, topic: t });
    const byTopic = new Map((await errs).map((m) => [m.topic as string, m.error]));
    assert.match(String(byTopic.get('map')?.message), /(^|: )msg\.payload\.a\.b is a Map, not a JSON value/);
    assert.match(String(byTopic.get('date')?.message), /(^|: )msg\.payload\.when is a Date/);
    assert.match(String(byTopic.get('cycle')?.message), /(^|: )msg\.payload\.x\.y\.back is circular \(it refers back to msg\.payload\)/);
    assert.match(String(byTopic.get('fn')?.message), /(^|: )msg\.payload\.f is a function/);
    assert.match(String(byTopic.get('missing')?.message), /(^|: )msg\.payload is missing/);
    for (const e of byTopic.values()) assert.equal(e?.code, 'E_JSON');
  });

  it('the shipped verify-device-messages example shows tampering as bad-signature and a replay as replay', async () => {
    const example = readExample('Verify device messages');
    // No timer: the test drives the device's bot-sign itself; output 2 of bot-verify also goes to a helper.
    const f = example.map((n) =>
      n.type === 'inject'
        ? { ...n, repeat: '', once: false }
        : n.type === 'bot-verify'
          ? { ...n, wires: [n.wires?.[0] ?? [], [...(n.wires?.[1] ?? []), 'rej']] }
          : n.type === 'bot-ledger'
            ? { ...n, dir: path.join(userDir, 'ex2') }
            : n,
    );
    const tab = example.find((n) => n.type === 'tab')?.id as string;
    f.push({ id: 'rej', type: 'helper', z: tab });
    await helper.load(NODES, f);
    const rejected = nextMessages(helper.getNode('rej'), 2, 10000);
    const sign = helper.getNode(example.find((n) => n.type === 'bot-sign')?.id as string);
    for (let i = 0; i < 7; i++) sign.receive({ payload: { celsius: 19 + i / 10 }, topic: 'devices/sensor-1/reading' });
    const codes = (await rejected).map((m: Msg) => m.error?.code);
    assert.deepEqual(codes, ['bad-signature', 'replay']);
  });
});
