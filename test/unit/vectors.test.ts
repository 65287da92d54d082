/**
 * Published known-answer vectors: RFC 6962 (transparency-dev/merkle), RFC 8032 §7.1, RFC 8785, and the
 * Ed25519 edge cases (small-order points from C2SP/CCTV; "Taming the many EdDSAs" vectors 0-11) under the
 * strict rule, checked in the runtime, its portable path and the browser verifier alike.
 */
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as ed from '@noble/ed25519';
import { base58Encode } from '../../lib/format/base58';
import {
  canonicalize,
  consistencyProof,
  EMPTY_ROOT,
  Frontier,
  type Hash,
  Identity,
  inclusionProof,
  leafHash,
  type NewNode,
  nodeHash,
  type NodeReader,
  PublicKey,
  rootAt,
  verifyConsistency,
  verifyInclusion,
  verifyPortable,
} from '../../lib';
import { vector } from '../helpers';

interface Rfc6962 {
  leaves_hex: string[];
  leaf_hashes: string[];
  roots_by_size: Record<string, string>;
  empty_root: string;
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
  for (const l of leaves) {
    out.length = 0;
    f.append(leafHash(l), out);
    for (const n of out) nodes.set(`${n.level}/${n.index}`, n.hash);
  }
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
      assert.deepEqual(
        proof.map((h) => h.toString('hex')),
        p.proof,
        `proof of ${p.leafIdx} in ${p.treeSize}`,
      );
      verifyInclusion(p.leafIdx, p.treeSize, hx(p.leafHash), p.proof.map(hx), hx(p.root));
    }
  });

  it('generates and verifies the published consistency proofs', async () => {
    const tree = memoryTree(leaves);
    for (const p of v.consistency_proofs) {
      const proof = await consistencyProof(tree, p.size1, p.size2);
      assert.deepEqual(
        proof.map((h) => h.toString('hex')),
        p.proof,
        `proof ${p.size1}→${p.size2}`,
      );
      verifyConsistency(p.size1, p.size2, p.proof.map(hx), hx(p.root1), hx(p.root2));
    }
  });

  it('rejects every single-bit change of a published proof', () => {
    for (const p of v.inclusion_proofs) {
      for (let k = 0; k < p.proof.length; k++) {
        const bad = p.proof.map(hx);
        bad[k][0] ^= 1;
        assert.throws(() => verifyInclusion(p.leafIdx, p.treeSize, hx(p.leafHash), bad, hx(p.root)), { code: 'E_PROOF' });
      }
    }
    for (const p of v.consistency_proofs) {
      for (let k = 0; k < p.proof.length; k++) {
        const bad = p.proof.map(hx);
        bad[k][31] ^= 0x80;
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
      assert.throws(
        () => canonicalize(bad),
        (e: Error & { code?: string }) => e.code === 'E_JSON',
      );
      assert.throws(
        () => canonicalize({ [bad]: 1 }),
        (e: Error & { code?: string }) => e.code === 'E_JSON',
      );
    }
    assert.equal(canonicalize('\uD83D\uDE00'), '"\uD83D\uDE00"');
    assert.equal(canonicalize({ '\uD83D\uDE00': '\u20ac' }), '{"\uD83D\uDE00":"\u20ac"}');
  });
});

/** The editor's browser verifier (plugins/bot-ledger-verify.js), run in Node with the vendored @noble modules it imports. */
interface BrowserVerifier {
  verifyEd25519(sig: Uint8Array, msg: Uint8Array, pub: Uint8Array): boolean;
  didPublicKey(did: string): Uint8Array;
  verifyEnvelopeSignature(env: unknown): void;
}

/**
 * Import plugins/bot-ledger-verify.js as the sidebar serves it: the module sits in client/ and
 * imports ../vendor/hashes/sha2.js and ../vendor/ed25519/index.js (plugins/bot-sidebar.ts VENDOR).
 */
async function loadBrowserVerifier(): Promise<BrowserVerifier> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bot-verify-module-'));
  fs.mkdirSync(path.join(root, 'client'));
  fs.mkdirSync(path.join(root, 'vendor'));
  fs.copyFileSync(path.resolve(__dirname, '../../../plugins/bot-ledger-verify.js'), path.join(root, 'client', 'bot-ledger-verify.mjs'));
  fs.symlinkSync(path.dirname(require.resolve('@noble/hashes/sha2.js')), path.join(root, 'vendor', 'hashes'));
  fs.symlinkSync(path.dirname(require.resolve('@noble/ed25519')), path.join(root, 'vendor', 'ed25519'));
  try {
    return (await import(pathToFileURL(path.join(root, 'client', 'bot-ledger-verify.mjs')).href)) as BrowserVerifier;
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

interface SmallOrderPoint {
  hex: string;
  order: number;
  canonical: boolean;
  note: string;
}
interface SpeccheckCase {
  n: number;
  message: string;
  pub_key: string;
  signature: string;
  strict: boolean;
  why: string;
  openssl_3_0: boolean;
  libsodium: boolean;
}

/** The runtime's verdict: decode the key as a did:key would (refusing weak keys), then verify. */
function runtimeVerdict(msg: Buffer, sig: Buffer, pub: Buffer): boolean {
  let pk: PublicKey;
  try {
    pk = PublicKey.fromBytes(pub);
  } catch (err) {
    assert.equal((err as { code?: string }).code, 'E_KEY');
    return false;
  }
  return pk.verify(msg, sig);
}

/** OpenSSL (node:crypto) on its own, without the runtime's checks: the published OpenSSL 3.0 row. */
function opensslAlone(msg: Buffer, sig: Buffer, pub: Buffer): boolean {
  const key = crypto.createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), pub]), format: 'der', type: 'spki' });
  return crypto.verify(null, msg, key, sig);
}

describe('Ed25519 strict rule: small-order points and "Taming the many EdDSAs" vectors', () => {
  const small = vector<{ points: SmallOrderPoint[] }>('ed25519-small-order.json').points;
  const cases = vector<{ cases: SpeccheckCase[] }>('ed25519-speccheck.json').cases;
  const P = (1n << 255n) - 19n;
  let browser: BrowserVerifier;
  before(async () => {
    browser = await loadBrowserVerifier();
  });

  it('the small-order list is the torsion subgroup, recomputed from the curve', () => {
    const canonicalOrders: number[] = [];
    for (const s of small) {
      const b = hx(s.hex);
      const pt = ed.Point.fromBytes(b, true); // ZIP-215 decoding reads every listed encoding
      const order = [1, 2, 4, 8].find((n) => pt.multiply(BigInt(n), false).is0());
      assert.equal(order, s.order, s.hex);
      const y = BigInt('0x' + Buffer.from(b).reverse().toString('hex')) & ((1n << 255n) - 1n);
      const xNegZero = pt.x === 0n && (b[31] & 0x80) !== 0;
      assert.equal(y < P && !xNegZero, s.canonical, `canonical flag of ${s.hex}`);
      if (s.canonical) {
        assert.equal(Buffer.from(pt.toBytes()).toString('hex'), s.hex);
        canonicalOrders.push(order as number);
      }
    }
    // The 8 torsion points: one of order 1, one of order 2, two of order 4, four of order 8.
    assert.deepEqual(canonicalOrders.sort(), [1, 2, 4, 4, 8, 8, 8, 8]);
  });

  it('refuses every small-order or non-canonical key as a did:key, in the runtime and the browser', () => {
    for (const s of small) {
      const b = hx(s.hex);
      assert.throws(() => PublicKey.fromBytes(b), { code: 'E_KEY' }, s.hex);
      const did = 'did:key:z' + base58Encode(Buffer.concat([Buffer.from([0xed, 0x01]), b]));
      assert.throws(() => PublicKey.fromDid(did), { code: 'E_DID' }, did);
      assert.throws(() => browser.didPublicKey(did), /did:key/, `browser accepted ${did}`);
    }
  });

  it('a signature made without any secret under a small-order key verifies nowhere (it does in OpenSSL alone)', () => {
    // A = identity: [S]B = R + [k]A holds for R = identity and S = 0, whatever the message.
    const identity = hx(small.find((s) => s.order === 1 && s.canonical)!.hex);
    const forged = Buffer.concat([identity, Buffer.alloc(32)]);
    const msg = Buffer.from('bot-envelope-v1\n{"anything":"at all"}');
    assert.equal(opensslAlone(msg, forged, identity), true, 'OpenSSL alone accepts it: the reason for the checks');
    assert.equal(runtimeVerdict(msg, forged, identity), false);
    assert.equal(verifyPortable(msg, forged, identity), false);
    assert.equal(browser.verifyEd25519(forged, msg, identity), false);
  });

  it('under every small-order key, a secret-free signature (R = identity, S = 0, 8 | k) verifies nowhere', () => {
    const L = (1n << 252n) + 27742317777372353535851937790883648493n;
    const R = hx('0100000000000000000000000000000000000000000000000000000000000000');
    const forged = Buffer.concat([R, Buffer.alloc(32)]);
    for (const s of small) {
      const A = hx(s.hex);
      // A message whose k = SHA-512(R ‖ A ‖ M) mod L is a multiple of 8, so [S]B = R + [k]A holds with S = 0.
      let msg = Buffer.alloc(0);
      for (let i = 0; ; i++) {
        msg = Buffer.from(`forged ${i}`);
        const k =
          BigInt(
            '0x' +
              Buffer.from(
                crypto
                  .createHash('sha512')
                  .update(Buffer.concat([R, A, msg]))
                  .digest(),
              )
                .reverse()
                .toString('hex'),
          ) % L;
        if (k % 8n === 0n) break;
      }
      if (s.canonical) assert.equal(opensslAlone(msg, forged, A), true, `OpenSSL alone accepts the forgery under ${s.hex}`);
      assert.deepEqual([runtimeVerdict(msg, forged, A), verifyPortable(msg, forged, A), browser.verifyEd25519(forged, msg, A)], [false, false, false], s.hex);
    }
  });

  for (const c of Array.from({ length: 12 }, (_, n) => n)) {
    it(`Taming vector ${c}: runtime, portable path and browser give the strict verdict`, () => {
      const t = cases[c];
      assert.equal(t.n, c);
      const [msg, pub, sig] = [hx(t.message), hx(t.pub_key), hx(t.signature)];
      assert.equal(opensslAlone(msg, sig, pub), t.openssl_3_0, 'OpenSSL 3.0 alone gives its published verdict');
      const got = { runtime: runtimeVerdict(msg, sig, pub), portable: verifyPortable(msg, sig, pub), browser: browser.verifyEd25519(sig, msg, pub) };
      assert.deepEqual(got, { runtime: t.strict, portable: t.strict, browser: t.strict }, `${t.why}`);
    });
  }

  it('a torsion point added to R breaks the signature everywhere (cofactorless, same in all three)', () => {
    const id = Identity.fromSeed(Buffer.alloc(32, 0x42));
    const msg = Buffer.from('torsion');
    const sig = id.sign(msg);
    const R = ed.Point.fromBytes(sig.subarray(0, 32));
    for (const s of small.filter((p) => p.canonical && p.order > 1)) {
      const bad = Buffer.concat([Buffer.from(R.add(ed.Point.fromBytes(hx(s.hex))).toBytes()), sig.subarray(32)]);
      assert.deepEqual(
        [id.publicKey.verify(msg, bad), verifyPortable(msg, bad, id.publicKey.bytes), browser.verifyEd25519(bad, msg, id.publicKey.bytes)],
        [false, false, false],
        s.hex,
      );
    }
    assert.deepEqual(
      [id.publicKey.verify(msg, sig), verifyPortable(msg, sig, id.publicKey.bytes), browser.verifyEd25519(sig, msg, id.publicKey.bytes)],
      [true, true, true],
    );
  });
});
