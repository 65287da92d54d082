/** The query index over a real LevelDB: postings by signer, exact topic and minute, segment records, rebuild at open. */
import { strict as assert } from 'node:assert';
import { Level } from 'level';
import { Identity, signEnvelope, type SignedEnvelope } from '../../lib';
import * as L from '../../lib/store/layout';
import { type IndexCriteria, type PutOp, QueryIndex } from '../../lib/store/query-index';
import { tmpDir } from '../helpers';

const T0 = 1_700_000_000_000 - (1_700_000_000_000 % 60000); // a minute boundary
const ids = [Identity.generate(), Identity.generate(), Identity.generate()];
const sids = ids.map((id) => L.signerId(id.did));

/** What the index reads of an entry. */
interface Fields {
  signer: number;
  seq: number;
  ts: number;
  topic?: string;
}

/** Index entries in one batch, write its ops to the store, then commit it; returns the ops. */
async function commit(ix: QueryIndex, db: Level<string, Buffer>, entries: readonly Fields[]): Promise<PutOp[]> {
  const b = ix.batch();
  const ops: PutOp[] = [];
  for (const e of entries) b.add(sids[e.signer], e, ops);
  if (ops.length > 0) await db.batch(ops, { sync: false });
  ix.commit(b);
  return ops;
}

async function collect(ix: QueryIndex, q: IndexCriteria, from: number, to: number): Promise<number[] | undefined> {
  const c = ix.candidates(q, from, to);
  if (!c) return undefined;
  const out: number[] = [];
  for await (const i of c) out.push(i);
  return out;
}

/** Indices in [from, to) of the entries matching f. */
function where(all: readonly Fields[], f: (e: Fields) => boolean, from = 0, to = all.length): number[] {
  return all.map((e, i) => (i >= from && i < to && f(e) ? i : -1)).filter((i) => i >= 0);
}

describe('query index', function () {
  this.timeout(20000);
  let t: ReturnType<typeof tmpDir>;
  let db: Level<string, Buffer>;
  beforeEach(async () => {
    t = tmpDir('bot-query-index-');
    db = new Level<string, Buffer>(t.dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
    await db.open();
  });
  afterEach(async () => {
    await db.close();
    t.cleanup();
  });

  it('plans signer, exact-topic and time queries on the open segment; an uncommitted batch changes nothing', async () => {
    const ix = QueryIndex.rebuild(db, 0, []);
    const all: Fields[] = Array.from({ length: 10 }, (_, i) => ({ signer: i % 2, seq: i, ts: T0 + i * 30000, topic: `t/${i % 3}` }));
    assert.deepEqual(await commit(ix, db, all.slice(0, 4)), []);
    assert.deepEqual(await commit(ix, db, all.slice(4)), [], 'no segment completed: nothing written');
    assert.equal(ix.size, 10);
    const check = async (): Promise<void> => {
      assert.deepEqual(
        await collect(ix, { signer: ids[0].did }, 0, 10),
        where(all, (e) => e.signer === 0),
      );
      assert.deepEqual(
        await collect(ix, { signer: ids[1].did, topic: 't/#' }, 3, 8),
        where(all, (e) => e.signer === 1, 3, 8),
        'signer first',
      );
      assert.deepEqual(
        await collect(ix, { topic: 't/2' }, 0, 10),
        where(all, (e) => e.topic === 't/2'),
      );
      assert.deepEqual(await collect(ix, { signer: ids[2].did }, 0, 10), []);
      // Minute buckets: the caller filters the exact times.
      assert.deepEqual(await collect(ix, { since: T0 + 60000, until: T0 + 119999 }, 0, 10), [2, 3]);
      assert.deepEqual(await collect(ix, { since: T0 + 90000 }, 0, 9), [2, 3, 4, 5, 6, 7, 8]);
      assert.deepEqual(await collect(ix, { until: T0 + 30000 }, 1, 10), [1]);
      assert.deepEqual(await collect(ix, { topic: 't/0' }, 5, 5), []);
      assert.equal(ix.candidates({ topic: 't/+' }, 0, 10), undefined, 'a wildcard topic scans');
      assert.equal(ix.candidates({}, 0, 10), undefined);
      assert.equal(await ix.lastSeq(sids[0]), 8);
      assert.equal(await ix.lastSeq(sids[2]), -1);
    };
    await check();
    // A batch that is built but never committed (its write failed) leaves the committed index as it was.
    const b = ix.batch();
    const ops: PutOp[] = [];
    for (let i = 10; i < 20; i++) b.add(sids[i % 3], { seq: 100 + i, ts: T0 + i * 30000, topic: 't/2' }, ops);
    assert.equal(b.size, 20);
    assert.equal(ix.size, 10);
    await check();
  });

  it("writes a completed segment's postings once, headed by each signer's last seq, and reads them with the rebuilt open segment", async () => {
    let ix = QueryIndex.rebuild(db, 0, []);
    const sealed: Fields[] = Array.from({ length: L.SEGMENT }, (_, i) => ({
      signer: i < 50 ? 2 : i % 2,
      seq: i,
      ts: T0 + i * 1000,
      topic: i % 5 === 0 ? undefined : `t/${i % 3}`,
    }));
    // The open segment holds real envelopes: a rebuild reads them back from their leaves.
    const open: SignedEnvelope[] = Array.from({ length: 10 }, (_, i) =>
      signEnvelope(ids[i % 2], { kind: 'reading', seq: L.SEGMENT + i, ts: T0 + (L.SEGMENT + i) * 1000, topic: `t/${(L.SEGMENT + i) % 3}`, payload: i }),
    );
    const all: Fields[] = [...sealed, ...open.map((e, i) => ({ signer: i % 2, seq: e.envelope.seq, ts: e.envelope.ts, topic: e.envelope.topic }))];
    assert.deepEqual(await commit(ix, db, all.slice(0, L.SEGMENT - 6)), []);
    const ops = await commit(ix, db, all.slice(L.SEGMENT - 6));
    assert.equal(ix.size, L.SEGMENT + 10);
    // One record per signer, topic and minute of segment 0, and nothing of segment 1.
    const minutes = new Set(sealed.map((e) => Math.floor(e.ts / 60000)));
    assert.equal(ops.length, 3 + 3 + minutes.size);
    assert.ok(ops.every((o) => o.key.endsWith(L.segmentHex(0))));
    const rec = ops.find((o) => o.key === L.signerPostingKey(sids[2], 0));
    assert.ok(rec);
    assert.equal(L.postingSeq(rec.value), 49);
    assert.deepEqual(
      L.decodePostings(rec.value, 0, true),
      where(sealed, (e) => e.signer === 2),
    );

    const check = async (): Promise<void> => {
      assert.deepEqual(
        await collect(ix, { signer: ids[0].did }, 0, ix.size),
        where(all, (e) => e.signer === 0),
      );
      assert.deepEqual(
        await collect(ix, { signer: ids[1].did }, L.SEGMENT - 5, L.SEGMENT + 3),
        where(all, (e) => e.signer === 1, L.SEGMENT - 5, L.SEGMENT + 3),
      );
      assert.deepEqual(
        await collect(ix, { topic: 't/1' }, 100, ix.size),
        where(all, (e) => e.topic === 't/1', 100),
      );
      const since = all[L.SEGMENT - 30].ts,
        until = all[L.SEGMENT + 5].ts;
      const lo = Math.floor(since / 60000) * 60000,
        hi = Math.floor(until / 60000) * 60000 + 59999;
      assert.deepEqual(
        await collect(ix, { since, until }, 0, ix.size),
        where(all, (e) => e.ts >= lo && e.ts <= hi),
      );
      assert.equal(await ix.lastSeq(sids[2]), 49, 'from the stored signer record');
      assert.equal(await ix.lastSeq(sids[0]), L.SEGMENT + 8, 'from the open segment');
    };
    await check();
    // Opening: the log reads the open segment's chunks, the index rebuilds its postings.
    ix = QueryIndex.rebuild(db, L.SEGMENT + 10, [open.map((e) => e.bytes)]);
    assert.equal(ix.size, L.SEGMENT + 10);
    await check();
  });

  it('refuses an unreadable entry of the open segment at rebuild with E_CORRUPT naming its index', () => {
    const good = signEnvelope(ids[0], { kind: 'reading', seq: 1, ts: T0, payload: 1 }).bytes;
    for (const size of [2, L.SEGMENT + 66]) {
      const chunks = size < L.CHUNK ? [[good, Buffer.from('{')]] : [Array<Buffer>(L.CHUNK).fill(good), [good, Buffer.from('{')]];
      assert.throws(
        () => QueryIndex.rebuild(db, size, chunks),
        (err: Error & { code?: string; cause?: { index?: number } }) => err.code === 'E_CORRUPT' && err.cause?.index === size - 1,
      );
    }
  });
});
