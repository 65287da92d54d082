/**
 * Devices enrolled in the ledger, in a real Node-RED runtime (docs/design.md "Devices", issue 14
 * part 1): bot-device enrols, revokes and records a rotation; bot-verify with "Devices of" the
 * ledger passes an enrolled device's readings for its topics, and sends to output 2 with a
 * typed code a reading for another topic, one from a stranger, the next one after a revocation
 * (no redeploy) and one from a rotated-away key; a static trusted list keeps working beside it.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { type Envelope, signEnvelope } from '../../lib/format/envelope';
import { Identity } from '../../lib/format/identity';
import { rotateInput } from '../../lib/devices/device-terms';
import { readExample } from './examples';
import { ALL_NODES, type FlowNode, userDirPerTest, helper, type Msg, nextMessage } from './util';

const botDevice = require('../../nodes/bot-device') as unknown;
const inject = require('@node-red/nodes/core/common/20-inject.js') as unknown;
const debug = require('@node-red/nodes/core/common/21-debug.js') as unknown;
const comment = require('@node-red/nodes/core/common/90-comment.js') as unknown;
const fn = require('@node-red/nodes/core/function/10-function.js') as unknown;
const NODES = [...ALL_NODES, botDevice];
const OPERATOR = Identity.generate();
const ORIGIN = 'test.example/devices';
const seed = (id: Identity): string => id.exportSeed().toString('hex');

describe('bot-device and bot-verify with a device registry (Node-RED)', function () {
  this.timeout(15000);
  const userDir = userDirPerTest();
  const seqs = new Map<string, number>();
  const reading = (id: Identity, topic?: string): Envelope => {
    const seq = seqs.get(id.did) ?? 0;
    seqs.set(id.did, seq + 1);
    const e = signEnvelope(id, { kind: 'reading', seq, ts: Date.now(), ...(topic ? { topic } : {}), payload: { t: 20 + seq } });
    return JSON.parse(e.bytes.toString()) as Envelope;
  };
  const flow = (dir: string, trusted = ''): FlowNode[] => [
    { id: 't1', type: 'tab', label: 'devices' },
    { id: 'op', type: 'bot-identity', name: 'operator' },
    { id: 'L1', type: 'bot-ledger', name: 'plant', origin: ORIGIN, identity: 'op', dir, checkpointMs: 0, checkpointEntries: 0, maxEntryBytes: 65536 },
    { id: 'd1', type: 'bot-device', z: 't1', ledger: 'L1', topics: 'plant/1/+/temp', validDays: '', name: '', wires: [['dout']] },
    { id: 'v1', type: 'bot-verify', z: 't1', name: '', trusted, devices: 'L1', ledger: '', maxSkewMs: 300000, wires: [['a1'], ['rej']] },
    { id: 'a1', type: 'bot-append', z: 't1', ledger: 'L1', name: '', wires: [['ok']] },
    { id: 'dout', type: 'helper', z: 't1' },
    { id: 'ok', type: 'helper', z: 't1' },
    { id: 'rej', type: 'helper', z: 't1' },
    { id: 'c1', type: 'catch', z: 't1', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 't1' },
  ];
  const op = async (payload: unknown): Promise<Msg> => {
    const got = Promise.race([nextMessage(helper.getNode('dout')), nextMessage(helper.getNode('caught')).then((m) => ({ ...m, caught: true }))]);
    helper.getNode('d1').receive({ payload });
    return got;
  };
  /** Send one envelope through bot-verify: 'ok' once appended, or the rejection code. */
  const verify = async (env: Envelope): Promise<string> => {
    const got = Promise.race([
      nextMessage(helper.getNode('ok')).then(() => 'ok'),
      nextMessage(helper.getNode('rej')).then((m) => String(m.error?.code)),
      nextMessage(helper.getNode('caught')).then((m) => `caught ${String(m.error?.message)}`),
    ]);
    helper.getNode('v1').receive({ payload: env });
    return got;
  };

  it('enrol → verify passes → revoke → the next message goes to output 2 as revoked; other topics, strangers and rotated keys are refused', async () => {
    const dev = Identity.generate();
    const dev2 = Identity.generate();
    const next = Identity.generate();
    const stranger = Identity.generate();
    const fixed = Identity.generate();
    await helper.load(NODES, flow(path.join(userDir(), 'ledger'), fixed.did), { op: { secretKey: seed(OPERATOR) } });

    const e = await op({ op: 'enrol', device: dev.did, name: 'sensor 1', meta: { location: 'hall 3' } });
    assert.equal(e.caught, undefined, String(e.error?.message));
    assert.equal((e.payload as Envelope).kind, 'device-enrol');
    assert.deepEqual((e.device as { topics: string[] }).topics, ['plant/1/+/temp'], 'the node setting gives the default topics');
    await op({ op: 'enrol', device: dev2.did, name: 'sensor 2', topics: ['plant/2/#'] });

    assert.equal(await verify(reading(dev, 'plant/1/a/temp')), 'ok');
    assert.equal(await verify(reading(dev2, 'plant/2/door')), 'ok');
    assert.equal(await verify(reading(dev, 'plant/2/a/temp')), 'topic-not-allowed');
    assert.equal(await verify(reading(dev)), 'topic-not-allowed');
    assert.equal(await verify(reading(stranger, 'plant/1/a/temp')), 'unknown-signer');
    assert.equal(await verify(reading(fixed, 'anything')), 'ok', 'the static trusted list works beside the registry');

    const r = await op({ op: 'revoke', device: dev.did, reason: 'stolen' });
    assert.equal((r.device as { ended: { how: string } }).ended.how, 'revoked');
    const rej = nextMessage(helper.getNode('rej'));
    helper.getNode('v1').receive({ payload: reading(dev, 'plant/1/a/temp') });
    const m = await rej;
    assert.equal(m.error?.code, 'revoked');
    assert.equal(m.signer, dev.did);

    // Rotation: the envelope signed by dev2's current key, straight into bot-device.
    const rot = signEnvelope(dev2, rotateInput(ORIGIN, next.did, seqs.get(dev2.did) ?? 0, Date.now()));
    seqs.set(dev2.did, (seqs.get(dev2.did) ?? 0) + 1);
    const rr = await op(JSON.parse(rot.bytes.toString()));
    assert.equal(rr.caught, undefined, String(rr.error?.message));
    assert.equal((rr.device as { key: string }).key, next.did);
    assert.equal(await verify(reading(next, 'plant/2/x')), 'ok');
    assert.equal(await verify(reading(dev2, 'plant/2/x')), 'rotated');
    // A replayed rotation is refused.
    const again = await op({ op: 'rotate', envelope: rot.toJSON() });
    assert.equal(again.caught, true);
    assert.equal(again.error?.code, 'E_DEVICE');

    const list = await op({ op: 'list' });
    assert.deepEqual(
      (list.payload as { name: string; status: string }[]).map((d) => [d.name, d.status]),
      [
        ['sensor 2', 'active'],
        ['sensor 1', 'revoked'],
      ],
    );
  });

  it('the example "Device registry - enrol, verify, revoke" enrols, appends, refuses a foreign topic and, once revoked, the next reading', async () => {
    const flow = readExample('Device registry - enrol, verify, revoke').map((n) =>
      n.type === 'inject' ? { ...n, repeat: '', once: false } : n.type === 'bot-ledger' ? { ...n, dir: path.join(userDir(), n.id) } : n,
    );
    const keys = { 'dr-op-key': OPERATOR, 'dr-s1-key': Identity.generate(), 'dr-s2-key': Identity.generate() };
    const creds = Object.fromEntries(Object.entries(keys).map(([k, id]) => [k, { secretKey: seed(id) }]));
    await helper.load([...NODES, inject, debug, comment, fn], flow, creds);
    const click = async <T>(injectId: string, at: string, pick: (m: Msg) => T): Promise<T> => {
      const got = nextMessage(helper.getNode(at));
      helper.getNode(injectId).receive({});
      return pick(await got);
    };
    const device = (m: Msg): string => `${String((m.device as { name: string }).name)} ${String((m.payload as Envelope).kind)}`;
    assert.equal(await click('dr-enrol-1', 'dr-device-out', device), 'sensor 1 device-enrol');
    assert.equal(await click('dr-enrol-2', 'dr-device-out', device), 'sensor 2 device-enrol');
    const appended = (m: Msg): number => (m.ledger as { index: number }).index;
    assert.equal(await click('dr-read-1', 'dr-receipt', appended), 2);
    assert.equal(await click('dr-read-2', 'dr-receipt', appended), 3);
    const code = (m: Msg): string => String(m.error?.code);
    assert.equal(await click('dr-wrong-topic', 'dr-rejected', code), 'topic-not-allowed');
    assert.equal(await click('dr-revoke', 'dr-device-out', device), 'sensor 1 device-revoke');
    assert.equal(await click('dr-read-1', 'dr-rejected', code), 'revoked');
    assert.equal(await click('dr-read-2', 'dr-receipt', appended), 5);
  });
});
