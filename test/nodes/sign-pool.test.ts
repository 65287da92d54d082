/**
 * bot-sign under a burst (lib/format/sign-pool.ts): the signatures move to a worker thread, and
 * every envelope is still byte for byte what signEnvelope makes, in input order with
 * increasing seqs; a redeploy in the middle of a burst ends the workers without hanging.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { signEnvelope, verifyEnvelope } from '../../lib/format/envelope';
import { Identity } from '../../lib/format/identity';
import type { SignPool } from '../../lib/format/sign-pool';
import { ALL_NODES, type FlowNode, userDirPerTest, helper, nextMessages } from './util';

const SECRET_HEX = crypto.randomBytes(32).toString('hex');
const DEVICE = Identity.import(SECRET_HEX);
const FLOW: FlowNode[] = [
  { id: 't1', type: 'tab', label: 'sign' },
  { id: 'id1', type: 'bot-identity', name: 'device' },
  { id: 's1', type: 'bot-sign', z: 't1', identity: 'id1', name: '', wires: [['out']] },
  { id: 'out', type: 'helper', z: 't1' },
];
const CREDS = { id1: { secretKey: SECRET_HEX } };

describe('bot-sign with its signing pool (Node-RED)', function () {
  this.timeout(20000);
  userDirPerTest();

  it('signs a burst on the pool: identical envelopes, in input order, seqs increasing', async () => {
    await helper.load(ALL_NODES, FLOW, CREDS);
    const s1 = helper.getNode('s1');
    const n = 600;
    const got = nextMessages(helper.getNode('out'), n, 15000);
    for (let i = 0; i < n; i++) s1.receive({ topic: `plant/line-${i % 3}/t`, payload: { i, celsius: 20 + i / 10 } });
    const msgs = await got;
    let last = -1;
    msgs.forEach((m, i) => {
      assert.deepEqual(m.unsigned, { i, celsius: 20 + i / 10 });
      const v = verifyEnvelope(m.payload);
      const e = v.envelope;
      assert.ok(e.seq > last, 'seqs increase in output order');
      last = e.seq;
      const inline = signEnvelope(DEVICE, { kind: e.kind, seq: e.seq, ts: e.ts, topic: `plant/line-${i % 3}/t`, payload: { i, celsius: 20 + i / 10 } });
      assert.equal(v.bytes.toString(), inline.bytes.toString());
    });
    const pool = (s1 as unknown as { signPool?: SignPool }).signPool;
    assert.ok(pool && pool.stats.pooled > 0, `the burst used the workers: ${JSON.stringify(pool?.stats)}`);
    // A single message at a low rate is signed inline.
    await new Promise((r) => setTimeout(r, 20));
    const inlineBefore = pool.stats.inline;
    const one = nextMessages(helper.getNode('out'), 1);
    s1.receive({ payload: 'one' });
    verifyEnvelope((await one)[0].payload);
    assert.equal(pool.stats.inline, inlineBefore + 1);
  });

  it('a redeploy during a burst delivers or ends every message and leaves no worker running', async () => {
    await helper.load(ALL_NODES, FLOW, CREDS);
    const s1 = helper.getNode('s1');
    const pool = (s1 as unknown as { signPool?: SignPool }).signPool as SignPool;
    for (let i = 0; i < 400; i++) s1.receive({ payload: i });
    const t = Date.now();
    await helper.unload();
    assert.ok(Date.now() - t < 5000);
    assert.equal(pool._threads().length, 0);
    assert.equal(pool.pending, 0);
  });
});
