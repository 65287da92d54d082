/**
 * lib/view/ledger-view.ts over a real LevelDB ledger: pages of entries newest first with filters
 * and cursors, entry details whose proofs verify against the signed checkpoint, the watch's
 * summaries, live rows, grant detection and its bounded change rate.
 */
import { strict as assert } from 'node:assert';
import { fromBase64 } from '../../lib/format/bytes';
import { signEnvelope } from '../../lib/format/envelope';
import { Identity } from '../../lib/format/identity';
import { Ledger } from '../../lib/store/ledger';
import { entryDetail, entryPage, LedgerWatch, MAX_PAGE, Throttle } from '../../lib/view/ledger-view';
import { leafHash, verifyInclusion } from '../../lib/format/merkle';
import { NoteVerifier, openNote, parseCheckpoint } from '../../lib/format/note';
import { tmpDir } from '../helpers';

const ORIGIN = 'example.com/view-test';
const T0 = 1_700_000_000_000;

describe('ledger view', function () {
  this.timeout(20000);
  const t = tmpDir('bot-view-');
  const op = Identity.generate();
  const dev = [Identity.generate(), Identity.generate()];
  let led: Ledger;
  const seq = [0, 0];
  /** Entry i: signer dev[i % 2], topic plant/<i % 3>/temp, ts T0 + i s. */
  const env = (i: number) => signEnvelope(dev[i % 2], { kind: 'reading', seq: seq[i % 2]++, ts: T0 + i * 1000, topic: `plant/${i % 3}/temp`, payload: { i } });

  before(async () => {
    led = await Ledger.open({ dir: t.dir, origin: ORIGIN, identity: op });
    for (let i = 0; i < 250; i++) await led.append(env(i));
    await led.checkpoint();
  });
  after(async () => {
    await led.close();
    t.cleanup();
  });

  it('pages entries newest first, back to the start', async () => {
    const p1 = await entryPage(led, { limit: 100 });
    assert.deepEqual([p1.treeSize, p1.entries.length, p1.entries[0].index, p1.entries[99].index, p1.next], [250, 100, 249, 150, 150]);
    const p3 = await entryPage(led, { limit: 100, before: 50 });
    assert.deepEqual([p3.entries.length, p3.entries[0].index, p3.entries[49].index, p3.next], [50, 49, 0, null]);
    assert.equal(p1.entries[0].topic, 'plant/0/temp');
    assert.equal(p1.entries[0].signer, dev[1].did);
    assert.equal(p1.entries[0].ts, T0 + 249000);
    await assert.rejects(entryPage(led, { limit: MAX_PAGE + 1 }), { code: 'E_RANGE' });
    await assert.rejects(entryPage(led, { topic: 'plant/#/x' }), { code: 'E_QUERY' });
  });

  it('filters by signer, MQTT topic filter and time, with a cursor that continues the search', async () => {
    const want = (f: (i: number) => boolean, below = 250): number[] => Array.from({ length: below }, (_, i) => below - 1 - i).filter(f);
    const bySigner = await entryPage(led, { signer: dev[0].did, limit: 30 });
    assert.deepEqual(
      bySigner.entries.map((e) => e.index),
      want((i) => i % 2 === 0).slice(0, 30),
    );
    const more = await entryPage(led, { signer: dev[0].did, limit: 30, before: bySigner.next! });
    assert.deepEqual(
      more.entries.map((e) => e.index),
      want((i) => i % 2 === 0).slice(30, 60),
    );
    const byTopic = await entryPage(led, { topic: 'plant/1/#', signer: dev[1].did, limit: 200 });
    assert.deepEqual(
      byTopic.entries.map((e) => e.index),
      want((i) => i % 3 === 1 && i % 2 === 1),
    );
    assert.equal(byTopic.next, null);
    const byTime = await entryPage(led, { since: T0 + 10_000, until: T0 + 19_000 });
    assert.deepEqual(
      byTime.entries.map((e) => e.index),
      [19, 18, 17, 16, 15, 14, 13, 12, 11, 10],
    );
    assert.deepEqual((await entryPage(led, { topic: 'nowhere/#' })).entries, []);
  });

  it('gives an entry with the exact leaf and a proof that verifies against the signed checkpoint', async () => {
    const d = await entryDetail(led, 137);
    const leaf = Buffer.from(d.leaf, 'base64');
    assert.ok(leaf.equals((await led.get(137)).leaf));
    assert.equal(d.leafHash, leafHash(leaf).toString('base64'));
    assert.ok(d.checkpoint);
    const cp = parseCheckpoint(openNote(d.checkpoint.note, [NoteVerifier.ed25519(ORIGIN, op.publicKey)]).text);
    assert.equal(cp.size, 250);
    verifyInclusion(
      137,
      cp.size,
      leafHash(leaf),
      d.proof.map((h) => fromBase64(h)),
      cp.root,
    );
    assert.deepEqual([d.operator, d.origin], [op.did, ORIGIN]);
    await assert.rejects(entryDetail(led, 250), { code: 'E_RANGE' });
  });

  it('watches: summaries, live rows newest first, grant detection, bounded change rate', async () => {
    let changes = 0;
    const w = new LedgerWatch({
      ledger: led,
      onChange: () => {
        changes++;
      },
      maxPerSecond: 4,
    });
    try {
      assert.equal(w.grantsChanged(), true, 'the first call says to read the grants');
      assert.equal(w.grantsChanged(), false);
      const s0 = await w.summary();
      assert.deepEqual(
        [s0.origin, s0.did, s0.treeSize, s0.mqtt, s0.consensus, s0.checkpoint?.size, s0.checkpoint?.approx],
        [ORIGIN, op.did, 250, 'standalone', null, 250, true],
      );
      assert.equal(s0.checkpoint?.time, T0 + 249000, 'before it is seen signed, the age is that of its last entry');
      // 60 appends in 1.5 s give at most a handful of change calls (≤ 4/s, plus a trailing one).
      const start = Date.now();
      for (let i = 250; i < 310; i++) {
        await led.append(env(i));
        await new Promise((r) => setTimeout(r, 25));
      }
      const secs = (Date.now() - start) / 1000;
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(changes >= 2 && changes <= Math.ceil(secs * 4) + 2, `${changes} change calls in ${secs} s`);
      const rows = w.drainRows();
      assert.equal(rows.length, 50);
      assert.deepEqual([rows[0].index, rows[49].index], [309, 260]);
      assert.deepEqual(w.drainRows(), []);
      assert.equal(w.grantsChanged(), false, 'readings are not grants');
      const cp = await led.checkpoint();
      const s1 = await w.summary();
      assert.deepEqual([s1.treeSize, s1.checkpoint?.size, s1.checkpoint?.approx], [310, cp?.size, false]);
      assert.ok(s1.rate > 0);
      w.setMqttState('connected');
      assert.equal((await w.summary()).mqtt, 'connected');
      await led.append(signEnvelope(op, { kind: 'grant', seq: 0, ts: Date.now(), payload: { note: 'not parsed here' } }));
      assert.equal(w.grantsChanged(), true, 'a grant entry was appended');
    } finally {
      w.close();
    }
  });

  it('throttles: runs at most once per interval and always ends with a trailing run', async () => {
    let runs = 0;
    const th = new Throttle(() => {
      runs++;
    }, 100);
    const end = Date.now() + 450;
    while (Date.now() < end) {
      th.request();
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 150));
    assert.ok(runs >= 4 && runs <= 6, `${runs} runs`);
    // A request within the interval is not dropped: it runs once the interval has passed.
    runs = 0;
    const t2 = new Throttle(() => {
      runs++;
    }, 100);
    t2.request();
    t2.request();
    t2.request();
    assert.equal(runs, 1);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(runs, 2);
    t2.stop();
    const before = runs;
    th.stop();
    th.request();
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(runs, before);
  });
});
