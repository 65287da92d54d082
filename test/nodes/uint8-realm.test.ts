/**
 * Issue 11 defect 11 (bytes from another realm): a Uint8Array built in a `function` node (its
 * own vm context, so its own Uint8Array) holding a signed envelope's JSON is appended by
 * bot-append like a Buffer; `instanceof Uint8Array` is false for it, so bot-append used to
 * spread it into an object of numbered fields and refuse it. bot-grant treats it as it treats
 * any payload that is not an object (a grant with the node's settings), whatever its realm.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { types } from 'node:util';
import { Identity } from '../../lib/format/identity';
import { ALL_NODES, type FlowNode, freshUserDir, helper, nextMessage } from './util';

const fn = require('@node-red/nodes/core/function/10-function.js') as unknown;
const botGrant = require('../../nodes/bot-grant') as unknown;
const NODES = [...ALL_NODES, fn, botGrant];

const DEVICE = Identity.generate();
const OPERATOR = Identity.generate();
const PARTNER = Identity.generate();
const seed = (id: Identity): string => id.exportSeed().toString('hex');

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
/** The envelope's JSON as a Uint8Array of the function node's realm. */
const TO_BYTES =
  'const t = JSON.stringify(msg.payload); const u = new Uint8Array(t.length); for (let i = 0; i < t.length; i++) u[i] = t.charCodeAt(i); msg.payload = u; return msg;';

describe('bytes made in a function node (another realm) are bytes to bot-append and bot-grant', function () {
  this.timeout(15000);
  let userDir: string;

  before(async () => {
    userDir = freshUserDir();
    const flow: FlowNode[] = [
      { id: 't1', type: 'tab', label: 'bytes' },
      { id: 'dev', type: 'bot-identity', name: 'device' },
      { id: 'op', type: 'bot-identity', name: 'operator' },
      {
        id: 'L1',
        type: 'bot-ledger',
        name: 'main',
        origin: 'test.example/bytes',
        identity: 'op',
        dir: path.join(userDir, 'ledger'),
        checkpointMs: 0,
        checkpointEntries: 0,
        maxEntryBytes: 65536,
      },
      { id: 's1', type: 'bot-sign', z: 't1', identity: 'dev', name: '', wires: [['bytes']] },
      func('bytes', TO_BYTES, ['a1']),
      { id: 'a1', type: 'bot-append', z: 't1', ledger: 'L1', name: '', wires: [['out']] },
      { id: 'out', type: 'helper', z: 't1' },
      func('grantBytes', 'msg.payload = new Uint8Array([1, 2, 3]); return msg;', ['g1']),
      {
        id: 'g1',
        type: 'bot-grant',
        z: 't1',
        ledger: 'L1',
        name: '',
        subject: PARTNER.did,
        actions: 'read',
        signers: '',
        topics: 'plant/#',
        validDays: 1,
        wires: [['gout']],
      },
      { id: 'gout', type: 'helper', z: 't1' },
      { id: 'c1', type: 'catch', z: 't1', scope: null, uncaught: false, wires: [['caught']] },
      { id: 'caught', type: 'helper', z: 't1' },
    ];
    await helper.load(NODES, flow, { dev: { secretKey: seed(DEVICE) }, op: { secretKey: seed(OPERATOR) } });
  });

  after(async () => {
    await helper.unload();
    fs.rmSync(userDir, { recursive: true, force: true });
  });

  it("bot-append appends an envelope given as a function node's Uint8Array", async () => {
    const out = nextMessage(helper.getNode('out'));
    const caught = nextMessage(helper.getNode('caught'));
    caught.catch(() => undefined);
    helper.getNode('s1').receive({ topic: 'plant/1/temp', payload: { celsius: 21.5 } });
    const msg = await Promise.race([
      out,
      caught.then((m) => {
        throw new Error(`refused: ${m.error?.message}`);
      }),
    ]);
    assert.ok(types.isUint8Array(msg.payload) && !(msg.payload instanceof Uint8Array), "the bytes are of the function node's realm");
    const receipt = msg.ledger as { index: number; origin: string };
    assert.equal(receipt.index, 0);
    assert.equal(receipt.origin, 'test.example/bytes');
  });

  it("bot-grant takes a function node's Uint8Array as no settings (a grant with the node's), like a Buffer", async () => {
    const out = nextMessage(helper.getNode('gout'));
    helper.getNode('grantBytes').receive({ payload: 'x' });
    const msg = await out;
    assert.equal((msg.grant as { subject: string }).subject, PARTNER.did);
  });
});
