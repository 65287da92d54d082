/**
 * Issue 11 (partial): "latest N". `order: "desc"` gives the newest `limit` matching entries,
 * newest first, each with an inclusion proof that verifies against the checkpoint: over a real
 * LevelDB ledger with sparse matches across several index windows, and through bot-query in a
 * real Node-RED runtime.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type ProvenAnswer } from '../../lib/access/answer';
import { signEnvelope } from '../../lib/format/envelope';
import { Identity } from '../../lib/format/identity';
import { canonicalBytes } from '../../lib/format/jcs';
import { Ledger } from '../../lib/store/ledger';
import { leafHash, verifyInclusion } from '../../lib/format/merkle';
import { NoteVerifier, openNote, parseCheckpoint } from '../../lib/format/note';
import { provenQueryLatest, queryOrder } from '../../lib/access/answer';
import { tmpDir } from '../helpers';
import { ALL_NODES, type FlowNode, freshUserDir, helper, nextMessage, nextMessages } from './util';

const OPERATOR = Identity.generate();
const ORIGIN = 'test.example/latest';

/** Every entry's proof verifies against the answer's signed checkpoint. */
function assertProven(a: ProvenAnswer): void {
  const cp = parseCheckpoint(openNote(a.checkpoint, [NoteVerifier.ed25519(ORIGIN, OPERATOR.publicKey)]).text);
  for (const e of a.entries)
    verifyInclusion(
      e.index,
      cp.size,
      leafHash(canonicalBytes(e.leaf)),
      e.proof.map((p) => Buffer.from(p, 'base64')),
      cp.root,
    );
}

describe('queries newest first (order "desc")', function () {
  this.timeout(20000);

  it('finds the newest matches across several index windows, newest first, each proven', async () => {
    const t = tmpDir();
    const l = await Ledger.open({ dir: t.dir, origin: ORIGIN, identity: OPERATOR });
    try {
      const rare = new Set([2, 10, 20, 45]);
      for (let i = 0; i < 60; i++) {
        await l.append(
          signEnvelope(OPERATOR, { kind: 'reading', seq: i + 1, ts: 1700000000000 + i, topic: rare.has(i) ? 'plant/rare' : `plant/${i % 3}`, payload: i }),
        );
      }
      const cp = await l.checkpoint();
      assert.ok(cp);
      const newest = await provenQueryLatest(l, { topic: 'plant/rare', limit: 3 }, cp, 4);
      assert.deepEqual(
        newest.entries.map((e) => e.index),
        [45, 20, 10],
      );
      assertProven(newest);
      const all = await provenQueryLatest(l, { limit: 5 }, cp, 4);
      assert.deepEqual(
        all.entries.map((e) => e.index),
        [59, 58, 57, 56, 55],
      );
      const bounded = await provenQueryLatest(l, { topic: 'plant/+', from: 3, to: 21, limit: 10 }, cp, 4);
      assert.deepEqual(
        bounded.entries.map((e) => e.index),
        [20, 19, 18, 17, 16, 15, 14, 13, 12, 11],
      );
      assertProven(bounded);
      assert.deepEqual((await provenQueryLatest(l, { topic: 'plant/none', limit: 3 }, cp, 4)).entries, []);
      await assert.rejects(provenQueryLatest(l, { limit: 0 }, cp), { code: 'E_QUERY' });
      assert.equal(queryOrder({ order: 'desc' }), 'desc');
      assert.equal(queryOrder({}), 'asc');
      assert.throws(() => queryOrder({ order: 'newest' }), { code: 'E_QUERY' });
    } finally {
      await l.close();
      t.cleanup();
    }
  });

  describe('bot-query (Node-RED)', () => {
    let userDir: string;
    beforeEach(() => {
      userDir = freshUserDir();
    });
    afterEach(async () => {
      await helper.unload();
      fs.rmSync(userDir, { recursive: true, force: true });
    });

    it('answers {order: "desc", limit} with the newest entries first; a bad order is E_QUERY', async () => {
      const flow: FlowNode[] = [
        { id: 't1', type: 'tab', label: 'latest' },
        { id: 'op', type: 'bot-identity', name: 'operator' },
        {
          id: 'L1',
          type: 'bot-ledger',
          name: 'main',
          origin: ORIGIN,
          identity: 'op',
          dir: path.join(userDir, 'ledger'),
          checkpointMs: 0,
          checkpointEntries: 0,
          maxEntryBytes: 65536,
        },
        { id: 's1', type: 'bot-sign', z: 't1', identity: 'op', name: '', wires: [['a1']] },
        { id: 'a1', type: 'bot-append', z: 't1', ledger: 'L1', name: '', wires: [['out']] },
        { id: 'out', type: 'helper', z: 't1' },
        {
          id: 'q1',
          type: 'bot-query',
          z: 't1',
          ledger: 'L1',
          name: '',
          from: '',
          to: '',
          signer: '',
          topic: '',
          since: '',
          until: '',
          limit: 100,
          wires: [['qout']],
        },
        { id: 'qout', type: 'helper', z: 't1' },
        { id: 'c1', type: 'catch', z: 't1', scope: null, uncaught: false, wires: [['caught']] },
        { id: 'caught', type: 'helper', z: 't1' },
      ];
      await helper.load(ALL_NODES, flow, { op: { secretKey: OPERATOR.exportSeed().toString('hex') } });
      const appended = nextMessages(helper.getNode('out'), 12, 10000);
      for (let i = 0; i < 12; i++) helper.getNode('s1').receive({ payload: { i }, topic: i % 2 ? 'plant/odd' : 'plant/even' });
      await appended;
      const ask = async (payload: unknown): Promise<ProvenAnswer> => {
        const got = nextMessage(helper.getNode('qout'), 5000);
        helper.getNode('q1').receive({ payload });
        return (await got).payload as ProvenAnswer;
      };
      const latest = await ask({ order: 'desc', limit: 3 });
      assert.deepEqual(
        latest.entries.map((e) => e.index),
        [11, 10, 9],
      );
      assertProven(latest);
      assert.deepEqual(
        (await ask({ order: 'desc', topic: 'plant/even', limit: 2 })).entries.map((e) => e.index),
        [10, 8],
      );
      assert.deepEqual(
        (await ask({ limit: 2 })).entries.map((e) => e.index),
        [0, 1],
        'oldest first stays the default',
      );
      const err = nextMessage(helper.getNode('caught'), 5000);
      helper.getNode('q1').receive({ payload: { order: 'newest' } });
      assert.equal((await err).error?.code, 'E_QUERY');
    });
  });
});
