/** Ed25519 identities, did:key, strict verification, encodings, canonical JSON edge cases. */
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as util from 'node:util';
import { base58Decode, base58Encode } from '../lib/base58';
import { canonicalize, fromBase64, fromBase64Url, fromHex, Identity, PublicKey, verifyPortable } from '../lib';
import { tmpDir } from './helpers';

const SEED1 = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
// Group order L of edwards25519 (RFC 8032 §5.1).
const L = (1n << 252n) + 27742317777372353535851937790883648493n;

describe('identity', () => {
  it('encodes did:key with multicodec 0xed01 and base58btc (W3C did:key test key)', () => {
    // did:key spec example: the Ed25519 key whose did is did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp
    const did = 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp';
    const pk = PublicKey.fromDid(did);
    assert.equal(pk.did, did);
    assert.equal(PublicKey.fromBytes(pk.bytes).did, did);
    assert.match(Identity.fromSeed(fromHex(SEED1)).did, /^did:key:z6Mk/);
  });

  it('rejects malformed did:keys', () => {
    for (const bad of ['did:key:', 'did:web:example.com', 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooW0',
      'did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme', 'did:key:z' + base58Encode(Buffer.concat([Buffer.from([0xed, 0x01]), Buffer.alloc(31)]))]) {
      assert.throws(() => PublicKey.fromDid(bad), { code: 'E_DID' }, bad);
    }
  });

  it('round-trips base58btc including leading zeros', () => {
    for (const b of [Buffer.alloc(0), Buffer.from([0]), Buffer.from([0, 0, 1, 2]), crypto.randomBytes(34)]) {
      assert.deepEqual(Buffer.from(base58Decode(base58Encode(b))), b);
    }
    assert.throws(() => base58Decode('0OIl'), { code: 'E_ENCODING' });
  });

  it('imports a seed as hex, base64, base64url, PKCS#8 PEM and a C2SP note key', () => {
    const seed = fromHex(SEED1);
    const want = Identity.fromSeed(seed).did;
    const pem = crypto.createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' })
      .export({ format: 'pem', type: 'pkcs8' }).toString();
    for (const text of [SEED1, SEED1.toUpperCase(), seed.toString('base64'), seed.toString('base64url'), pem, ` ${SEED1}\n`,
      'PRIVATE+KEY+example+00000000+' + Buffer.concat([Buffer.from([1]), seed]).toString('base64')]) {
      assert.equal(Identity.import(text).did, want);
    }
  });

  it('refuses bad secret keys without echoing them', () => {
    const secretish = 'ab'.repeat(31);
    for (const text of [secretish, 'not a key', '', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----',
      crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()]) {
      assert.throws(() => Identity.import(text), (err: Error & { code: string }) => err.code === 'E_KEY' && !err.message.includes(secretish));
    }
  });

  it('never shows the secret in JSON, inspect or strings', () => {
    const id = Identity.fromSeed(fromHex(SEED1));
    const shown = [JSON.stringify(id), util.inspect(id, { showHidden: true, depth: 5 }), String(id), JSON.stringify({ id })].join('\n');
    assert.ok(!shown.includes(SEED1) && !shown.includes(fromHex(SEED1).toString('base64')), shown);
    assert.ok(shown.includes(id.did));
  });

  it('writes key files with mode 0600 and refuses readable ones', () => {
    const t = tmpDir();
    try {
      const id = Identity.generate();
      const f = path.join(t.dir, 'op.key');
      id.writeKeyFile(f);
      assert.equal(fs.statSync(f).mode & 0o777, 0o600);
      assert.equal(Identity.fromFile(f).did, id.did);
      assert.throws(() => id.writeKeyFile(f), { code: 'EEXIST' });
      fs.chmodSync(f, 0o644);
      assert.throws(() => Identity.fromFile(f), { code: 'E_KEY' });
      assert.throws(() => Identity.fromFile(path.join(t.dir, 'missing')), { code: 'E_KEY' });
    } finally { t.cleanup(); }
  });

  it('applies strict RFC 8032 verification in OpenSSL and noble alike', () => {
    const id = Identity.fromSeed(fromHex(SEED1));
    const msg = Buffer.from('strict');
    const sig = id.sign(msg);
    assert.ok(id.publicKey.verify(msg, sig) && verifyPortable(msg, sig, id.publicKey.bytes));
    // S + L is the same scalar mod L but non-canonical: both must refuse it (§5.1.7 step 1).
    const s = BigInt('0x' + Buffer.from(sig.subarray(32)).reverse().toString('hex')) + L;
    const sPlusL = Buffer.from(s.toString(16).padStart(64, '0'), 'hex').reverse();
    const malleable = Buffer.concat([sig.subarray(0, 32), sPlusL]);
    assert.equal(id.publicKey.verify(msg, malleable), false);
    assert.equal(verifyPortable(msg, malleable, id.publicKey.bytes), false);
    // A non-canonical public key encoding (y ≥ p) is refused at import.
    const nonCanonical = Buffer.alloc(32, 0xff); nonCanonical[31] = 0x7f; nonCanonical[0] = 0xee;
    assert.throws(() => PublicKey.fromBytes(nonCanonical), { code: 'E_KEY' });
    assert.equal(id.publicKey.verify(msg, sig.subarray(1)), false);
  });
});

describe('encodings', () => {
  it('accepts only canonical base64, base64url and hex', () => {
    assert.deepEqual(fromBase64('AAE='), Buffer.from([0, 1]));
    for (const bad of ['AAE', 'AAF=', 'A===', 'AA-_', ' AAE=']) assert.throws(() => fromBase64(bad), { code: 'E_ENCODING' }, bad);
    assert.deepEqual(fromBase64Url('AAE'), Buffer.from([0, 1]));
    for (const bad of ['AAE=', 'AAF', 'A', 'AA+/']) assert.throws(() => fromBase64Url(bad), { code: 'E_ENCODING' }, bad);
    for (const bad of ['abc', 'zz']) assert.throws(() => fromHex(bad), { code: 'E_ENCODING' });
  });
});

describe('canonical JSON', () => {
  it('refuses values that are not I-JSON', () => {
    for (const bad of [NaN, Infinity, undefined, () => 1, new Date(0), { a: undefined }, '\ud800', 10n]) {
      assert.throws(() => canonicalize(bad), { code: 'E_JSON' });
    }
    assert.equal(canonicalize({ b: -0, a: [1e21, 1e-7, 'é\u0001'] }), '{"a":[1e+21,1e-7,"é\\u0001"],"b":0}');
  });
});
