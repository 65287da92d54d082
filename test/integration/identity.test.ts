/** Ed25519 identities, did:key, strict verification, encodings, canonical JSON edge cases. */
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as util from 'node:util';
import { base58Decode, base58Encode } from '../../lib/format/base58';
import { spawn } from 'node:child_process';
import {
  canonicalize,
  fromBase64,
  fromBase64Url,
  fromHex,
  fromTrustedLeaf,
  Identity,
  Ledger,
  PublicKey,
  toBase64Url,
  verifyEnvelope,
  verifyPortable,
} from '../../lib';
import { tmpDir } from '../helpers';

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
    for (const bad of [
      'did:key:',
      'did:web:example.com',
      'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooW0',
      'did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme',
      'did:key:z' + base58Encode(Buffer.concat([Buffer.from([0xed, 0x01]), Buffer.alloc(31)])),
    ]) {
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
    const pem = crypto
      .createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' })
      .export({ format: 'pem', type: 'pkcs8' })
      .toString();
    for (const text of [
      SEED1,
      SEED1.toUpperCase(),
      seed.toString('base64'),
      seed.toString('base64url'),
      pem,
      ` ${SEED1}\n`,
      'PRIVATE+KEY+example+00000000+' + Buffer.concat([Buffer.from([1]), seed]).toString('base64'),
    ]) {
      assert.equal(Identity.import(text).did, want);
    }
  });

  it('refuses bad secret keys without echoing them', () => {
    const secretish = 'ab'.repeat(31);
    for (const text of [
      secretish,
      'not a key',
      '',
      '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----',
      crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    ]) {
      assert.throws(
        () => Identity.import(text),
        (err: Error & { code: string }) => err.code === 'E_KEY' && !err.message.includes(secretish),
      );
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
    } finally {
      t.cleanup();
    }
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
    const nonCanonical = Buffer.alloc(32, 0xff);
    nonCanonical[31] = 0x7f;
    nonCanonical[0] = 0xee;
    assert.throws(() => PublicKey.fromBytes(nonCanonical), { code: 'E_KEY' });
    assert.equal(id.publicKey.verify(msg, sig.subarray(1)), false);
  });
});

/** did:key of 32 raw key bytes (multicodec 0xed01, base58btc), whatever the bytes. */
const didOf = (b: Uint8Array): string => 'did:key:z' + base58Encode(Buffer.concat([Buffer.from([0xed, 0x01]), b]));
const IDENTITY_POINT = Buffer.from('0100000000000000000000000000000000000000000000000000000000000000', 'hex');
/** R = identity, S = 0: satisfies [S]B = R + [k]A for A = identity and any message, so needs no secret. */
const NO_SECRET_SIG = Buffer.concat([IDENTITY_POINT, Buffer.alloc(32)]);

/** An envelope "signed" under the identity point's did:key without any secret. */
function forgedEnvelope(seq: number): Record<string, unknown> {
  return {
    v: 1,
    kind: 'reading',
    signer: didOf(IDENTITY_POINT),
    seq,
    ts: 1700000000000 + seq,
    topic: 'plant/1/valve',
    payload: { open: true },
    sig: toBase64Url(NO_SECRET_SIG),
  };
}

/**
 * Append an envelope without any check, as a ledger written before the strict rule (or by a
 * tampering operator) holds it: only for building the fixture the audit must refuse.
 */
async function plantUnchecked(l: Ledger, env: Record<string, unknown>): Promise<void> {
  const original = PublicKey.fromDid;
  const weak = Object.assign(Object.create(PublicKey.prototype) as PublicKey, { bytes: IDENTITY_POINT, did: env.signer });
  PublicKey.fromDid = (did: string): PublicKey => (did === env.signer ? weak : original.call(PublicKey, did));
  try {
    await l.append(fromTrustedLeaf(Buffer.from(canonicalize(env))));
  } finally {
    PublicKey.fromDid = original;
  }
}

describe('weak Ed25519 keys (issue 10, defect 5)', function () {
  this.timeout(20000);

  it('refuses did:keys of small-order points, non-canonical encodings and non-points, with E_DID / E_KEY', () => {
    const bad = [
      '0100000000000000000000000000000000000000000000000000000000000000', // identity
      '0100000000000000000000000000000000000000000000000000000000000080', // identity, sign bit set (x = -0)
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // order 2
      '0000000000000000000000000000000000000000000000000000000000000000', // all-zero key: order 4
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', // order 8
      'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // identity as y = p + 1
      'efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // y = p + 2 (non-canonical)
      '0200000000000000000000000000000000000000000000000000000000000000', // y = 2: no x on the curve
    ];
    for (const h of bad) {
      assert.throws(() => PublicKey.fromBytes(Buffer.from(h, 'hex')), { code: 'E_KEY' }, h);
      assert.throws(
        () => PublicKey.fromDid(didOf(Buffer.from(h, 'hex'))),
        (e: Error & { code?: string }) => e.code === 'E_DID' && /did:key/.test(e.message),
        h,
      );
    }
    // An ordinary key still decodes (RFC 8032 §7.1 test 1).
    assert.equal(
      PublicKey.fromBytes(fromHex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a')).bytes.toString('hex'),
      'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    );
  });

  it('refuses an envelope signed without a secret under a small-order did:key', () => {
    assert.throws(() => verifyEnvelope(forgedEnvelope(0)), { code: 'E_DID' });
    assert.equal(verifyPortable(Buffer.from('any message'), NO_SECRET_SIG, IDENTITY_POINT), false);
  });

  it('bot-ledger verify refuses a ledger holding an entry signed under a small-order key', async () => {
    const t = tmpDir('bot-weak-');
    try {
      const dir = path.join(t.dir, 'ledger');
      const op = Identity.generate();
      const l = await Ledger.open({ dir, origin: 'example.com/weak', identity: op });
      try {
        const dev = Identity.generate();
        await l.append(verifyEnvelope({ ...canonicalEnvelope(dev, 0) }));
        await plantUnchecked(l, forgedEnvelope(0));
        await l.checkpoint();
      } finally {
        await l.close();
      }
      const r = await runCli(['verify', dir, '--operator', op.did]);
      assert.equal(r.status, 1, `the audit passed a weak-key entry: ${r.stdout}`);
      const line = JSON.parse(r.stdout.trim().split('\n')[0]) as { ok: boolean; index: number; reason: string };
      assert.equal(line.ok, false);
      assert.equal(line.index, 1);
      assert.match(line.reason, /small order/);
      assert.match(r.stderr, /^bot-ledger: verification failed at entry 1: [^\n]*small order[^\n]*\n$/);
    } finally {
      t.cleanup();
    }
  });
});

/** An ordinary signed envelope as a plain object. */
function canonicalEnvelope(id: Identity, seq: number): Record<string, unknown> {
  const body = { v: 1, kind: 'reading', signer: id.did, seq, ts: 1700000000000, payload: { t: 21.5 } };
  const sig = id.sign(Buffer.from('bot-envelope-v1\n' + canonicalize(body)));
  return { ...body, sig: toBase64Url(sig) };
}

/** Run the bot-ledger CLI as a separate process (as test/cli.test.ts does). */
function runCli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const env = { ...process.env };
  delete env.BOT_LEDGER_KEY_FILE;
  delete env.BOT_DEBUG;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.resolve(__dirname, '../../bin/bot-ledger.js'), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '',
      stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

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
