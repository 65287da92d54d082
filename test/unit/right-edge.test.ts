/**
 * The right-edge cache of proofs (lib/format/merkle.ts RightEdgeCache): inclusion and
 * consistency proofs taken through it are byte-identical to the uncached computation and to
 * RFC 9162 §2.1.3.1 / §2.1.4.1 computed directly from the leaves, at every size and index,
 * while the tree grows and for older sizes while newer ones are cached; and they verify.
 */
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { Identity, Ledger, signEnvelope, verifyConsistency, verifyInclusion } from '../../lib';
import {
  consistencyProof,
  EMPTY_ROOT,
  Frontier,
  type Hash,
  inclusionProof,
  leafHash,
  type NewNode,
  type NodeReader,
  nodeHash,
  RightEdgeCache,
} from '../../lib/format/merkle';
import { tmpDir } from '../helpers';

/** MTH(D[a:b]) straight from the leaf hashes (RFC 9162 §2.1.1): the reference. */
function mth(d: readonly Hash[], a: number, b: number): Hash {
  const n = b - a;
  if (n === 0) return EMPTY_ROOT;
  if (n === 1) return d[a];
  let k = 1;
  while (k * 2 < n) k *= 2;
  return nodeHash(mth(d, a, a + k), mth(d, a + k, b));
}

/** PATH(m, D[a:b]) from the leaf hashes (RFC 9162 §2.1.3.1). */
function refPath(d: readonly Hash[], m: number, a: number, b: number): Hash[] {
  const n = b - a;
  if (n === 1) return [];
  let k = 1;
  while (k * 2 < n) k *= 2;
  return m < k ? [...refPath(d, m, a, a + k), mth(d, a + k, b)] : [...refPath(d, m - k, a + k, b), mth(d, a, a + k)];
}

/** SUBPROOF(m, D[a:b], complete) from the leaf hashes (RFC 9162 §2.1.4.1). */
function refSubproof(d: readonly Hash[], m: number, a: number, b: number, complete: boolean): Hash[] {
  const n = b - a;
  if (m === n) return complete ? [] : [mth(d, a, b)];
  let k = 1;
  while (k * 2 < n) k *= 2;
  return m <= k ? [...refSubproof(d, m, a, a + k, complete), mth(d, a + k, b)] : [...refSubproof(d, m - k, a + k, b, false), mth(d, a, a + k)];
}

function refConsistency(d: readonly Hash[], m: number, n: number): Hash[] {
  return m === 0 || m === n ? [] : refSubproof(d, m, 0, n, true);
}

/** A growing in-memory tree (the ledger's Frontier and stored perfect subtrees); counts node reads. */
class MemoryTree implements NodeReader {
  readonly leaves: Hash[] = [];
  readonly #frontier = new Frontier();
  readonly #nodes = new Map<string, Hash>();
  reads = 0;

  get size(): number {
    return this.#frontier.size;
  }

  append(count: number): void {
    const out: NewNode[] = [];
    for (let i = 0; i < count; i++) {
      const lh = leafHash(Buffer.from(`leaf ${this.leaves.length}`));
      this.leaves.push(lh);
      out.length = 0;
      this.#frontier.append(lh, out);
      for (const n of out) this.#nodes.set(`${n.level}/${n.index}`, n.hash);
    }
  }

  async node(level: number, index: number): Promise<Hash> {
    this.reads++;
    const h = this.#nodes.get(`${level}/${index}`);
    if (!h) throw new Error(`node (${level}, ${index}) is beyond tree size ${this.size}`);
    return h;
  }
}

describe('right-edge cache of proofs', function () {
  this.timeout(60000);

  it('gives the uncached and the reference proofs for random sizes and indices, as the tree grows and for older sizes (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 5 }),
        fc.array(fc.tuple(fc.nat(), fc.nat(), fc.nat()), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 4 }),
        async (batches, picks, max) => {
          const tree = new MemoryTree();
          const cache = new RightEdgeCache(max);
          const cachedSizes: number[] = [];
          for (const count of batches) {
            tree.append(count);
            cachedSizes.push(tree.size);
            for (const [x, y, z] of picks) {
              // The latest size, a size cached before (older), and any size up to the latest.
              const older = cachedSizes[x % cachedSizes.length];
              for (const n of [tree.size, older, 1 + (y % tree.size)]) {
                const index = z % n;
                const root = mth(tree.leaves, 0, n);
                const cached = await inclusionProof(tree, index, n, cache);
                assert.deepEqual(cached, await inclusionProof(tree, index, n));
                assert.deepEqual(cached, refPath(tree.leaves, index, 0, n));
                verifyInclusion(index, n, tree.leaves[index], cached, root);
                // Twice: the second is all from the cache for this size.
                assert.deepEqual(await inclusionProof(tree, index, n, cache), cached);
                const m = y % (n + 1);
                const cons = await consistencyProof(tree, m, n, cache);
                assert.deepEqual(cons, await consistencyProof(tree, m, n));
                assert.deepEqual(cons, refConsistency(tree.leaves, m, n));
                verifyConsistency(m, n, cons, mth(tree.leaves, 0, m), root);
                assert.ok(cache.sizes <= max);
              }
            }
          }
        },
      ),
      { numRuns: 30 },
    );
  });

  it('reads fewer nodes once a size is cached, and a caller changing a proof does not change later ones', async () => {
    const tree = new MemoryTree();
    tree.append(1000); // popcount 6: a right edge of 4 nodes that are not perfect subtrees
    const cache = new RightEdgeCache();
    const first = await inclusionProof(tree, 0, 1000, cache);
    const readsFirst = tree.reads;
    tree.reads = 0;
    const second = await inclusionProof(tree, 0, 1000, cache);
    assert.equal(readsFirst - tree.reads, 5, 'the right edge of 1000 is 5 stored subtrees, read once');
    assert.deepEqual(second, first);
    const top = first.length - 1; // the sibling [512, 1000): from the cache
    second[top].fill(0);
    assert.deepEqual(await inclusionProof(tree, 0, 1000, cache), first);
    const reference = refPath(tree.leaves, 0, 0, 1000);
    assert.deepEqual(first, reference);
    assert.throws(() => new RightEdgeCache(0), { code: 'E_RANGE' });
  });

  it('a ledger proves with the cache what the leaves give, at the latest and older sizes, as it grows (property)', async () => {
    const t = tmpDir('bot-right-edge-');
    const dev = Identity.generate();
    const led = await Ledger.open({ dir: t.dir, origin: 'example.com/right-edge', identity: Identity.generate() });
    const leaves: Hash[] = [];
    let seq = 0;
    try {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 1, max: 150 }), fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 1, maxLength: 5 }), async (count, picks) => {
          const envs = Array.from({ length: count }, () =>
            signEnvelope(dev, { kind: 'reading', seq: seq++, ts: 1_700_000_000_000 + seq, payload: { v: seq } }),
          );
          await led.appendAll(envs);
          for (const e of envs) leaves.push(leafHash(e.bytes));
          assert.equal(led.size, leaves.length);
          for (const [x, y] of picks) {
            for (const n of [led.size, 1 + (x % led.size)]) {
              const index = y % n;
              const root = await led.rootAt(n);
              assert.ok(root.equals(mth(leaves, 0, n)));
              const proof = await led.inclusionProof(index, n);
              assert.deepEqual(proof, refPath(leaves, index, 0, n));
              verifyInclusion(index, n, leaves[index], proof, root);
              const m = x % (n + 1);
              const cons = await led.consistencyProof(m, n);
              assert.deepEqual(cons, refConsistency(leaves, m, n));
              verifyConsistency(m, n, cons, mth(leaves, 0, m), root);
            }
          }
        }),
        { numRuns: 25 },
      );
    } finally {
      await led.close();
      t.cleanup();
    }
  });
});
