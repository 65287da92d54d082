/**
 * The upper tree stored as tiles (lib/store/tree-tiles.ts) over a real LevelDB: tiles written
 * commit by commit equal tiles built from the hash chunks alone (a ledger written before
 * tiles existed) and a build resumed after a crash; every node read from them is the tree's;
 * and a ledger whose tiles were deleted opens, rebuilds them and gives the same proofs.
 */
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import { Level } from 'level';
import { auditLedger, Frontier, type Hash, Identity, leafHash, Ledger, type NewNode, signEnvelope, verifyConsistency, verifyInclusion } from '../../lib';
import * as L from '../../lib/store/layout';
import type { PutOp } from '../../lib/store/query-index';
import { buildTiles, decodeTile, fullTileHash, locate, readTails, TileBatch, tileHash } from '../../lib/store/tree-tiles';
import { assertStoreFailure, injectFaults } from '../faults';
import { tmpDir } from '../helpers';

/** Every key and value under a prefix. */
async function dump(db: Level<string, Buffer>, prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const [k, v] of db.iterator({ gte: prefix, lt: prefix + '\uffff' })) out.set(k, v.toString('hex'));
  return out;
}

describe('tree tiles', function () {
  this.timeout(60000);
  let t: ReturnType<typeof tmpDir>;
  beforeEach(() => {
    t = tmpDir('bot-tiles-');
  });
  afterEach(() => t.cleanup());

  it('tiles written commit by commit = tiles built from the chunks = a resumed build; every upper node reads back', async () => {
    // 150k synthetic leaves: 2 full tiles and a partial one at tile level 1, a partial one at level 2.
    const N = 150_000 + 12_345;
    const f = new Frontier();
    const nodes: NewNode[] = [];
    const upper = new Map<string, Hash>();
    const chunkOps: PutOp[] = [];
    const tileOps: PutOp[] = [];
    let batch = new TileBatch([]);
    let chunkHashes: Buffer[] = [];
    const rnd = (): number => crypto.randomInt(1, 5000);
    let nextCommit = rnd();
    let tails = batch.finish([]);
    batch = new TileBatch(tails);
    for (let i = 0; i < N; i++) {
      nodes.length = 0;
      f.append(leafHash(Buffer.from(String(i))), nodes);
      for (const n of nodes) {
        chunkHashes.push(n.hash);
        batch.add(n, tileOps);
        if (n.level >= L.CHUNK_LEVELS) upper.set(`${n.level}/${n.index}`, n.hash);
      }
      if (i % L.CHUNK === L.CHUNK - 1 || i === N - 1) {
        chunkOps.push({ type: 'put', key: L.hashKey(Math.floor(i / L.CHUNK)), value: Buffer.concat(chunkHashes) });
        chunkHashes = [];
      }
      if (i + 1 === nextCommit || i === N - 1) {
        tails = batch.finish(tileOps);
        batch = new TileBatch(tails);
        nextCommit += rnd();
      }
    }
    const a = new Level<string, Buffer>(t.dir + '/a', { valueEncoding: 'buffer' });
    const b = new Level<string, Buffer>(t.dir + '/b', { valueEncoding: 'buffer' });
    try {
      await a.batch(tileOps);
      await b.batch([...chunkOps, { type: 'put', key: L.KEY_HEAD, value: Buffer.from('{}') }]);
      assert.ok((await buildTiles(b, N)) > 0);
      const written = await dump(a, L.TILE_PREFIX);
      assert.deepEqual(await dump(b, L.TILE_PREFIX), written);
      assert.ok([...written.keys()].some((k) => k.startsWith(L.TILE_PREFIX + '02')));
      assert.equal(await buildTiles(b, N), 0, 'a second build writes nothing');
      // A build cut short: the last tiles of levels 0 and 1 gone, level 2 never written.
      const keys = [...written.keys()];
      for (const k of [...keys.filter((k) => k.startsWith('T00')).slice(-7), ...keys.filter((k) => !k.startsWith('T00')).slice(-3)]) await b.del(k);
      await buildTiles(b, N);
      assert.deepEqual(await dump(b, L.TILE_PREFIX), written);
      // Every node at level ≥ 6, from the tails (in memory) or the stored full tiles.
      const read = await readTails(a, N);
      for (const [key, hash] of upper) {
        const [level, index] = key.split('/').map(Number);
        const { t: tl, n, k, j } = locate(level, index);
        const h = read[tl].index === n ? tileHash(read[tl], k, j) : fullTileHash(tl, (await a.get(L.tileKey(tl, n))) as Buffer, k, j);
        assert.ok(h?.equals(hash), `node ${key}`);
      }
      assert.deepEqual(
        read.map((tile) => tile.index),
        tails.map((tile) => tile.index),
      );
      assert.throws(() => decodeTile(1, 0, Buffer.alloc(33)), { code: 'E_CORRUPT' });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a ledger written without tiles opens, builds them, and gives the same proofs; appends go on', async () => {
    const op = Identity.generate();
    const dev = Identity.generate();
    const env = (seq: number): ReturnType<typeof signEnvelope> => signEnvelope(dev, { kind: 'reading', seq, ts: 1_700_000_000_000 + seq, payload: { v: seq } });
    let ledger = await Ledger.open({ dir: t.dir, origin: 'example.com/tiles', identity: op });
    for (let i = 0; i < 1200; i += 100) await ledger.appendAll(Array.from({ length: 100 }, (_, k) => env(i + k)));
    await ledger.append(env(1200));
    const size = ledger.size;
    const root = ledger.root();
    const proofs = await Promise.all([0, 63, 64, 255, 256, 700, 1023, 1024, 1200].map((i) => ledger.inclusionProof(i)));
    const cons = await ledger.consistencyProof(300);
    await ledger.close();
    // What the version before tiles wrote: no T keys.
    const db = new Level<string, Buffer>(t.dir, { valueEncoding: 'buffer' });
    const tiles = await dump(db, L.TILE_PREFIX);
    assert.ok(tiles.size >= 5);
    await db.batch([...tiles.keys()].map((key) => ({ type: 'del' as const, key })));
    await db.close();
    ledger = await Ledger.open({ dir: t.dir });
    try {
      assert.equal(ledger.size, size);
      assert.ok(ledger.root().equals(root));
      assert.deepEqual(await Promise.all([0, 63, 64, 255, 256, 700, 1023, 1024, 1200].map((i) => ledger.inclusionProof(i))), proofs);
      assert.deepEqual(await ledger.consistencyProof(300), cons);
      for (let i = 1201; i < 1500; i++) await ledger.append(env(i));
      const r = ledger.root();
      for (const i of [0, 5, 640, 1200, 1400, 1499]) verifyInclusion(i, ledger.size, (await ledger.get(i)).leafHash, await ledger.inclusionProof(i), r);
      for (const m of [1, 64, 256, 1201, 1300]) verifyConsistency(m, ledger.size, await ledger.consistencyProof(m), await ledger.rootAt(m), r);
      assert.equal((await auditLedger(ledger, { workers: 0 })).ok, true);
    } finally {
      await ledger.close();
    }
    // And the tiles written by appends after the rebuild equal a build from scratch.
    const db2 = new Level<string, Buffer>(t.dir, { valueEncoding: 'buffer' });
    try {
      const after = await dump(db2, L.TILE_PREFIX);
      await db2.batch([...after.keys()].map((key) => ({ type: 'del' as const, key })));
      await buildTiles(db2, 1500);
      assert.deepEqual(await dump(db2, L.TILE_PREFIX), after);
    } finally {
      await db2.close();
    }
  });

  it('a tile build whose write fails at open is a typed E_STORE (not corruption), and the next open builds them', async () => {
    const op = Identity.generate();
    const dev = Identity.generate();
    let ledger = await Ledger.open({ dir: t.dir, origin: 'example.com/tiles', identity: op });
    await ledger.appendAll(Array.from({ length: 300 }, (_, seq) => signEnvelope(dev, { kind: 'reading', seq, ts: 1_700_000_000_000, payload: { v: seq } })));
    const proof = await ledger.inclusionProof(100);
    await ledger.close();
    const db = new Level<string, Buffer>(t.dir, { valueEncoding: 'buffer' });
    const tiles = await dump(db, L.TILE_PREFIX);
    await db.batch([...tiles.keys()].map((key) => ({ type: 'del' as const, key })));
    await db.close();
    // The build's last write (the synced one that makes its batches durable) fails: the disk is full.
    const inj = injectFaults();
    try {
      inj.arm('append', 'before', 'ENOSPC', { dir: t.dir });
      await assert.rejects(Ledger.open({ dir: t.dir }), (e: Error) => assertStoreFailure(e, /No space left on device/));
      assert.ok(inj.fired);
    } finally {
      inj.restore();
    }
    ledger = await Ledger.open({ dir: t.dir });
    try {
      assert.deepEqual(await ledger.inclusionProof(100), proof);
    } finally {
      await ledger.close();
    }
    const db3 = new Level<string, Buffer>(t.dir, { valueEncoding: 'buffer' });
    try {
      assert.deepEqual(await dump(db3, L.TILE_PREFIX), tiles);
    } finally {
      await db3.close();
    }
  });
});
