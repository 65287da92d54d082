/** The ledger over a real LevelDB: durability, group commit, replay, reopen, queries, proofs. */
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import {
  Identity,
  leafHash,
  Ledger,
  NoteVerifier,
  openNote,
  parseCheckpoint,
  type SignedEnvelope,
  signEnvelope,
  verifyConsistency,
  verifyInclusion,
} from '../../lib';
import { tmpDir } from '../helpers';

const op = Identity.generate();
const devices = [Identity.generate(), Identity.generate(), Identity.generate()];
const ORIGIN = 'example.com/plant-1';

function readings(id: Identity, n: number, seq0 = 0, ts0 = 1_700_000_000_000): SignedEnvelope[] {
  return Array.from({ length: n }, (_, i) =>
    signEnvelope(id, {
      kind: 'reading',
      seq: seq0 + i,
      ts: ts0 + (seq0 + i) * 1000,
      topic: `plant/1/${['temp', 'rh', 'co2'][(seq0 + i) % 3]}`,
      payload: { v: seq0 + i },
    }),
  );
}

describe('ledger', function () {
  this.timeout(60000);
  let t: ReturnType<typeof tmpDir>;
  beforeEach(() => {
    t = tmpDir('bot-ledger-');
  });
  afterEach(() => t.cleanup());

  it('appends durably with receipts, and group-commits concurrent appends', async () => {
    const led = await Ledger.open({ dir: t.dir, origin: ORIGIN, identity: op });
    const envs = readings(devices[0], 500);
    const receipts = await Promise.all(envs.map((e) => led.append(e)));
    assert.deepEqual(
      receipts.map((r) => r.index),
      envs.map((_, i) => i),
    );
    receipts.forEach((r, i) => {
      assert.equal(r.leafHash, leafHash(envs[i].bytes).toString('base64'));
      assert.equal(r.origin, ORIGIN);
      assert.ok(r.treeSize > r.index && r.treeSize <= 500);
    });
    assert.ok(led.stats.commits < 50, `500 concurrent appends took ${led.stats.commits} commits`);
    assert.equal(led.size, 500);
    await led.close();
  });

  it('reopens from its head with the same root, seqs and tail postings', async () => {
    let led = await Ledger.open({ dir: t.dir, origin: ORIGIN, identity: op });
    for (const e of readings(devices[1], 100)) await led.append(e);
    const root = led.root();
    await led.close();
    led = await Ledger.open({ dir: t.dir, create: false });
    assert.equal(led.size, 100);
    assert.ok(led.root().equals(root));
    assert.equal(led.origin, ORIGIN);
    assert.equal(led.operator.did, op.did);
    assert.equal(await led.lastSeq(devices[1].did), 99);
    await assert.rejects(led.append(readings(devices[1], 1, 99)[0]), { code: 'E_REPLAY' });
    await led.append(readings(devices[1], 1, 100)[0]);
    const q = await led.query({ signer: devices[1].did, from: 60, limit: 1000 });
    assert.deepEqual(
      q.map((e) => e.index),
      Array.from({ length: 41 }, (_, i) => 60 + i),
    );
    await led.close();
  });

  it("stores concurrent appends in call order, even while a signer's last seq is read from disk", async () => {
    let led = await Ledger.open({ dir: t.dir, origin: ORIGIN, identity: op });
    await led.append(readings(devices[0], 1)[0]);
    await led.append(readings(devices[1], 1)[0]);
    await led.close();
    led = await Ledger.open({ dir: t.dir });
    await led.lastSeq(devices[1].did); // cached: its appends could overtake an uncached signer's
    const order = [readings(devices[0], 1, 1)[0], readings(devices[1], 1, 1)[0], readings(devices[0], 1, 2)[0], readings(devices[2], 1)[0]];
    const receipts = await Promise.all(order.map((e) => led.append(e)));
    assert.deepEqual(
      receipts.map((r) => r.index),
      [2, 3, 4, 5],
    );
    await led.close();
  });

  it('admits a burst of 10,000 concurrent appends in call order, refusing exactly the replays, across the admission queue cuts', async () => {
    const led = await Ledger.open({ dir: t.dir, origin: ORIGIN, identity: op });
    const signers = Array.from({ length: 40 }, () => Identity.generate());
    const envs = Array.from({ length: 10000 }, (_, i) => readings(signers[i % 40], 1, Math.floor(i / 40))[0]);
    // Replays of earlier seqs, spread through the burst (each after its original in call order).
    const burst: SignedEnvelope[] = [];
    envs.forEach((e, i) => {
      burst.push(e);
      if (i % 1000 === 999) burst.push(envs[i - 40]);
    });
    const results = await Promise.allSettled(burst.map((e) => led.append(e)));
    const refused = results.flatMap((r, i) => (r.status === 'rejected' ? [i] : []));
    assert.equal(refused.length, 10);
    for (const i of refused) assert.equal((results[i] as PromiseRejectedResult).reason.code, 'E_REPLAY');
    const indices = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.index] : []));
    assert.deepEqual(
      indices,
      Array.from({ length: 10000 }, (_, i) => i),
    );
    assert.equal(led.size, 10000);
    await led.close();
  });

  it('refuses replays, bad signatures and oversized entries, writing nothing', async () => {
    const led = await Ledger.open({ dir: t.dir, origin: ORIGIN, identity: op, maxEntryBytes: 400 });
    const [a, b] = readings(devices[0], 2, 10);
    await led.append(b);
    await assert.rejects(led.append(a), { code: 'E_REPLAY' });
    await assert.rejects(led.append(b), { code: 'E_REPLAY' });
    const dup = readings(devices[2], 1, 5)[0];
    const results = await Promise.allSettled([led.append(dup), led.append(dup)]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    const forged = { ...readings(devices[0], 1, 50)[0].envelope, payload: { v: 'forged' } };
    await assert.rejects(led.append(forged), { code: 'E_SIGNATURE' });
    await assert.rejects(led.append({ hello: 'world' }), { code: 'E_ENVELOPE' });
    await assert.rejects(led.append(signEnvelope(devices[0], { kind: 'reading', seq: 99, ts: 1, payload: 'x'.repeat(500) })), { code: 'E_TOO_LARGE' });
    assert.equal(led.size, 2);
    assert.equal(await led.lastSeq(devices[0].did), 11);
    await led.close();
  });

  it('reports missing, locked, foreign and closed ledgers with typed errors', async () => {
    await assert.rejects(Ledger.open({ dir: t.dir + '/none', create: false }), { code: 'E_NOT_FOUND' });
    await assert.rejects(Ledger.open({ dir: t.dir + '/new' }), { code: 'E_NOTE' });
    await assert.rejects(Ledger.open({ dir: t.dir + '/new2', origin: 'bad origin', identity: op }), { code: 'E_NOTE' });
    const led = await Ledger.open({ dir: t.dir, origin: ORIGIN, identity: op });
    await assert.rejects(Ledger.open({ dir: t.dir, create: false }), { code: 'E_LOCKED' });
    const pending = readings(devices[0], 20).map((e) => led.append(e));
    await led.close();
    assert.equal((await Promise.all(pending)).length, 20, 'close finishes accepted appends');
    await assert.rejects(led.append(readings(devices[0], 1, 20)[0]), { code: 'E_CLOSED' });
    await assert.rejects(Ledger.open({ dir: t.dir, identity: devices[0] }), { code: 'E_KEY' });
    await assert.rejects(Ledger.open({ dir: t.dir, origin: 'example.com/other' }), { code: 'E_NOTE' });
    const again = await Ledger.open({ dir: t.dir });
    assert.equal(again.size, 20);
    await again.close();
  });

  it('signs C2SP checkpoints only when the tree grew, keeping the history', async () => {
    const led = await Ledger.open({ dir: t.dir, origin: ORIGIN, identity: op });
    const cp0 = await led.checkpoint();
    assert.equal(cp0?.size, 0);
    assert.equal(await led.checkpoint(), undefined);
    for (const e of readings(devices[0], 70)) await led.append(e);
    const cp1 = await led.checkpoint();
    assert.equal(cp1?.size, 70);
    const note = openNote(cp1!.note, [NoteVerifier.ed25519(ORIGIN, op.publicKey)]);
    const c = parseCheckpoint(note.text);
    assert.deepEqual([c.origin, c.size], [ORIGIN, 70]);
    assert.ok(c.root.equals(led.root()));
    for (const e of readings(devices[0], 5, 70)) await led.append(e);
    await led.checkpoint();
    const sizes: number[] = [];
    for await (const h of led.checkpoints()) sizes.push(h.size);
    assert.deepEqual(sizes, [0, 70, 75]);
    assert.ok(
      parseCheckpoint(openNote((await led.checkpointAt(70))!.note, [NoteVerifier.ed25519(ORIGIN, op.publicKey)]).text).root.equals(await led.rootAt(70)),
    );
    await led.close();
    const reader = await Ledger.open({ dir: t.dir });
    await assert.rejects(reader.checkpoint(), { code: 'E_KEY' });
    assert.equal(reader.latestCheckpoint()?.size, 75);
    await reader.close();
  });

  it('queries by index range, signer, exact and wildcard topic, and time', async () => {
    const led = await Ledger.open({ dir: t.dir, origin: ORIGIN, identity: op });
    const all = [...readings(devices[0], 150), ...readings(devices[1], 150)];
    await Promise.all(all.map((e) => led.append(e)));
    const idx = async (q: Parameters<Ledger['query']>[0]): Promise<number[]> => (await led.query(q)).map((e) => e.index);
    const expect = (f: (e: SignedEnvelope, i: number) => boolean, from = 0, limit = 100): number[] =>
      all
        .map((e, i) => (f(e, i) ? i : -1))
        .filter((i) => i >= from)
        .slice(0, limit);
    assert.deepEqual(await idx({ from: 10, to: 13 }), [10, 11, 12]);
    assert.deepEqual(
      await idx({ signer: devices[1].did, limit: 5 }),
      expect((e) => e.signer.did === devices[1].did, 0, 5),
    );
    assert.deepEqual(
      await idx({ topic: 'plant/1/rh', from: 100 }),
      expect((e) => e.envelope.topic === 'plant/1/rh', 100),
    );
    assert.deepEqual(
      await idx({ topic: 'plant/+/co2', signer: devices[0].did, limit: 1000 }),
      expect((e) => e.envelope.topic === 'plant/1/co2' && e.signer.did === devices[0].did, 0, 1000),
    );
    assert.deepEqual(await idx({ topic: 'plant/#', limit: 7 }), [0, 1, 2, 3, 4, 5, 6]);
    assert.deepEqual(await idx({ topic: 'other/#' }), []);
    const since = 1_700_000_000_000 + 120_000,
      until = since + 59_000;
    assert.deepEqual(
      await idx({ since, until, limit: 1000 }),
      expect((e) => e.envelope.ts >= since && e.envelope.ts <= until, 0, 1000),
    );
    for (const bad of [{ limit: 0 }, { from: -1 }, { topic: 'a/#/b' }, { signer: 'did:key:nope' }, { since: 1.5 }]) {
      await assert.rejects(led.query(bad), (err: Error & { code: string }) => ['E_QUERY', 'E_DID'].includes(err.code), JSON.stringify(bad));
    }
    await led.close();
  });

  it('keeps index postings and last seqs across a completed index segment and a reopen', async () => {
    let led = await Ledger.open({ dir: t.dir, origin: ORIGIN, identity: op });
    const early = Identity.generate(); // only in the first, completed segment
    const all = [...readings(early, 50), ...readings(devices[0], 4100), ...readings(devices[1], 200)];
    await Promise.all(all.map((e) => led.append(e)));
    const check = async (): Promise<void> => {
      const bySigner = await led.query({ signer: devices[1].did, limit: 10000 });
      assert.deepEqual(
        bySigner.map((e) => e.index),
        Array.from({ length: 200 }, (_, i) => 4150 + i),
      );
      const byTopic = await led.query({ topic: 'plant/1/co2', from: 4000, limit: 10000 });
      assert.deepEqual(
        byTopic.map((e) => e.index),
        all.map((e, i) => (e.envelope.topic === 'plant/1/co2' && i >= 4000 ? i : -1)).filter((i) => i >= 0),
      );
      const since = all[4090].envelope.ts,
        until = all[4100].envelope.ts;
      const byTime = await led.query({ since, until, limit: 10000 });
      assert.deepEqual(
        byTime.map((e) => e.index),
        all.map((e, i) => (e.envelope.ts >= since && e.envelope.ts <= until ? i : -1)).filter((i) => i >= 0),
      );
      assert.equal(await led.lastSeq(early.did), 49);
      assert.equal(await led.lastSeq(devices[0].did), 4099);
    };
    await check();
    await led.close();
    led = await Ledger.open({ dir: t.dir });
    await check();
    await assert.rejects(led.append(readings(early, 1, 49)[0]), { code: 'E_REPLAY' });
    await led.close();
  });

  it('gives inclusion and consistency proofs that verify at every size (property)', async () => {
    const led = await Ledger.open({ dir: t.dir, origin: ORIGIN, identity: op });
    const id = Identity.generate();
    let seq = 0;
    // Random batch sizes, so that chunk boundaries and commit boundaries fall anywhere.
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 90 }), { minLength: 1, maxLength: 4 }), fc.nat(), fc.nat(), fc.nat(), async (batches, a, b, c) => {
        for (const n of batches)
          await Promise.all(
            readings(id, n, seq)
              .map((e) => led.append(e))
              .concat(((seq += n), [])),
          );
        const size = led.size;
        const m = 1 + (a % size),
          n = m + (b % (size - m + 1)),
          index = c % m;
        const rootM = await led.rootAt(m),
          rootN = await led.rootAt(n);
        const entry = await led.get(index);
        const proof = await led.inclusionProof(index, m);
        verifyInclusion(index, m, entry.leafHash, proof, rootM);
        const cons = await led.consistencyProof(m, n);
        verifyConsistency(m, n, cons, rootM, rootN);
        if (proof.length > 0) {
          const bad = proof.map((h) => Buffer.from(h));
          bad[c % bad.length][c % 32] ^= 1 << (a % 8);
          assert.throws(() => verifyInclusion(index, m, entry.leafHash, bad, rootM), { code: 'E_PROOF' });
        }
        if (cons.length > 0) {
          const bad = cons.map((h) => Buffer.from(h));
          bad[a % bad.length][b % 32] ^= 1 << (c % 8);
          assert.throws(() => verifyConsistency(m, n, bad, rootM, rootN), { code: 'E_PROOF' });
        }
        assert.throws(() => verifyInclusion(index, m, leafHash(Buffer.from('other')), proof, rootM), { code: 'E_PROOF' });
      }),
      { numRuns: 60 },
    );
    await assert.rejects(led.inclusionProof(led.size), { code: 'E_RANGE' });
    await assert.rejects(led.consistencyProof(2, led.size + 1), { code: 'E_RANGE' });
    await led.close();
  });
});
