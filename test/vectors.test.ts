/** Published known-answer vectors: RFC 6962 (transparency-dev/merkle), RFC 8032 §7.1, RFC 8785. */
import { strict as assert } from 'node:assert';
import {
  canonicalize, consistencyProof, EMPTY_ROOT, Frontier, Hash, Identity, inclusionProof, leafHash, NewNode, nodeHash,
  NodeReader, PublicKey, rootAt, verifyConsistency, verifyInclusion, verifyPortable,
} from '../lib';
import { vector } from './helpers';

interface Rfc6962 {
  leaves_hex: string[]; leaf_hashes: string[]; roots_by_size: Record<string, string>; empty_root: string;
  inclusion_proofs: { leafIdx: number; treeSize: number; leafHash: string; root: string; proof: string[] }[];
  consistency_proofs: { size1: number; size2: number; root1: string; root2: string; proof: string[] }[];
  hasher_kat: Record<string, string>;
}
const hx = (s: string): Buffer => Buffer.from(s, 'hex');

/** An in-memory NodeReader over the 8 test leaves, built with the same Frontier the ledger uses. */
function memoryTree(leaves: Buffer[]): NodeReader & { size: number } {
  const f = new Frontier();
  const nodes = new Map<string, Hash>();
  const out: NewNode[] = [];
  for (const l of leaves) { out.length = 0; f.append(leafHash(l), out); for (const n of out) nodes.set(`${n.level}/${n.index}`, n.hash); }
  return { size: f.size, node: async (l, i) => nodes.get(`${l}/${i}`) as Hash };
}

describe('RFC 6962 vectors', () => {
  const v = vector<Rfc6962>('rfc6962-vectors.json');
  const leaves = v.leaves_hex.map(hx);

  it('hashes leaves and nodes (hasher KATs)', () => {
    assert.equal(leafHash(Buffer.from('L123456')).toString('hex'), v.hasher_kat['HashLeaf("L123456")']);
    assert.equal(nodeHash(Buffer.from('N123'), Buffer.from('N456')).toString('hex'), v.hasher_kat['HashChildren("N123","N456")']);
    assert.equal(EMPTY_ROOT.toString('hex'), v.empty_root);
    leaves.forEach((l, i) => assert.equal(leafHash(l).toString('hex'), v.leaf_hashes[i]));
  });

  it('gives the published root at every size 0–8, incrementally and from stored nodes', async () => {
    const f = new Frontier();
    assert.equal(f.root().toString('hex'), v.roots_by_size['0']);
    for (let n = 1; n <= 8; n++) {
      f.append(leafHash(leaves[n - 1]), []);
      assert.equal(f.root().toString('hex'), v.roots_by_size[String(n)], `incremental root at ${n}`);
    }
    const tree = memoryTree(leaves);
    for (let n = 0; n <= 8; n++) assert.equal((await rootAt(tree, n)).toString('hex'), v.roots_by_size[String(n)], `stored root at ${n}`);
  });

  it('generates and verifies the published inclusion proofs', async () => {
    const tree = memoryTree(leaves);
    for (const p of v.inclusion_proofs) {
      const proof = await inclusionProof(tree, p.leafIdx, p.treeSize);
      assert.deepEqual(proof.map((h) => h.toString('hex')), p.proof, `proof of ${p.leafIdx} in ${p.treeSize}`);
      verifyInclusion(p.leafIdx, p.treeSize, hx(p.leafHash), p.proof.map(hx), hx(p.root));
    }
  });

  it('generates and verifies the published consistency proofs', async () => {
    const tree = memoryTree(leaves);
    for (const p of v.consistency_proofs) {
      const proof = await consistencyProof(tree, p.size1, p.size2);
      assert.deepEqual(proof.map((h) => h.toString('hex')), p.proof, `proof ${p.size1}→${p.size2}`);
      verifyConsistency(p.size1, p.size2, p.proof.map(hx), hx(p.root1), hx(p.root2));
    }
  });

  it('rejects every single-bit change of a published proof', () => {
    for (const p of v.inclusion_proofs) {
      for (let k = 0; k < p.proof.length; k++) {
        const bad = p.proof.map(hx); bad[k][0] ^= 1;
        assert.throws(() => verifyInclusion(p.leafIdx, p.treeSize, hx(p.leafHash), bad, hx(p.root)), { code: 'E_PROOF' });
      }
    }
    for (const p of v.consistency_proofs) {
      for (let k = 0; k < p.proof.length; k++) {
        const bad = p.proof.map(hx); bad[k][31] ^= 0x80;
        assert.throws(() => verifyConsistency(p.size1, p.size2, bad, hx(p.root1), hx(p.root2)), { code: 'E_PROOF' });
      }
      assert.throws(() => verifyConsistency(p.size1, p.size2, p.proof.slice(1).map(hx), hx(p.root1), hx(p.root2)), { code: 'E_PROOF' });
    }
  });
});

describe('RFC 8032 §7.1 vectors', () => {
  const v = vector<{ vectors: { secret_key: string; public_key: string; message: string; signature: string }[] }>('ed25519-vectors.json');
  for (const t of v.vectors) {
    it(`test vector with a ${t.message.length / 2}-byte message`, () => {
      const id = Identity.fromSeed(hx(t.secret_key));
      assert.equal(id.publicKey.bytes.toString('hex'), t.public_key);
      assert.equal(id.sign(hx(t.message)).toString('hex'), t.signature);
      assert.ok(id.publicKey.verify(hx(t.message), hx(t.signature)));
      assert.ok(verifyPortable(hx(t.message), hx(t.signature), hx(t.public_key)), 'noble agrees');
      assert.equal(PublicKey.fromDid(id.did).bytes.toString('hex'), t.public_key);
    });
  }
});

describe('RFC 8785 vectors', () => {
  const v = vector<{ cases: Record<string, { input: string; output: string }> }>('jcs-vectors.json');
  for (const [name, c] of Object.entries(v.cases)) {
    it(`canonicalizes "${name}"`, () => assert.equal(canonicalize(JSON.parse(c.input)), c.output));
  }
  it('refuses lone surrogates (not I-JSON, RFC 8785 §3.2.2.2) in values and keys, keeps pairs', () => {
    for (const bad of ['\uD800', 'a\uDC00b', '\uDE00\uD83D', 'x\uD83D']) {
      assert.throws(() => canonicalize(bad), (e: Error & { code?: string }) => e.code === 'E_JSON');
      assert.throws(() => canonicalize({ [bad]: 1 }), (e: Error & { code?: string }) => e.code === 'E_JSON');
    }
    assert.equal(canonicalize('\uD83D\uDE00'), '"\uD83D\uDE00"');
    assert.equal(canonicalize({ '\uD83D\uDE00': '\u20ac' }), '{"\uD83D\uDE00":"\u20ac"}');
  });
});
