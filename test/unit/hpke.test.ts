import { strict as assert } from 'node:assert';
import { isBotError } from '../../lib/errors';
import { EncryptionKey, HPKE_SUITES, HPKE_X25519_SUITE, HPKE_XWING_SUITE, openBase, sealBase, setupBaseR, setupBaseS } from '../../lib/confidential/hpke';
import { vector } from '../helpers';

interface A1 {
  kem_id: number;
  kdf_id: number;
  aead_id: number;
  info: string;
  ikmE: string;
  pkEm: string;
  skEm: string;
  ikmR: string;
  pkRm: string;
  skRm: string;
  enc: string;
  encryptions: { sequence_number: number; pt: string; aad: string; ct: string }[];
  exports: { exporter_context: string; L: number; exported_value: string }[];
}

const V = vector<A1>('hpke-rfc9180-a1.json');
const h = (s: string): Buffer => Buffer.from(s, 'hex');

describe('HPKE (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM', () => {
  it('names the suite by its RFC 9180 §7 identifiers', () => {
    const { kem, kdf, aead } = HPKE_SUITES[HPKE_X25519_SUITE];
    assert.deepEqual({ kem, kdf, aead }, { kem: V.kem_id, kdf: V.kdf_id, aead: V.aead_id });
  });

  it('DeriveKeyPair (§7.1.3) gives the Appendix A.1.1 key pairs', async () => {
    const r = await EncryptionKey.derive(h(V.ikmR));
    assert.equal(r.publicKey.toString('hex'), V.pkRm);
    assert.equal(r.secret().toString('hex'), V.skRm);
    const e = await EncryptionKey.derive(h(V.ikmE));
    assert.equal(e.publicKey.toString('hex'), V.pkEm);
    assert.equal(e.secret().toString('hex'), V.skEm);
    const again = await EncryptionKey.fromSecret(h(V.skRm));
    assert.equal(again.publicKey.toString('hex'), V.pkRm);
  });

  it('SetupBaseS / SetupBaseR give the Appendix A.1.1 enc, ciphertexts and exported values', async () => {
    const s = await setupBaseS(HPKE_X25519_SUITE, h(V.pkRm), h(V.info), h(V.ikmE));
    assert.equal(s.enc.toString('hex'), V.enc);
    const r = await setupBaseR(HPKE_X25519_SUITE, await EncryptionKey.fromSecret(h(V.skRm)), s.enc, h(V.info));
    const bySeq = new Map(V.encryptions.map((e) => [e.sequence_number, e]));
    const last = Math.max(...bySeq.keys());
    for (let seq = 0; seq <= last; seq++) {
      const v = bySeq.get(seq);
      // Sequence numbers between the listed ones advance both contexts with the same message.
      const pt = h(v?.pt ?? V.encryptions[0].pt);
      const aad = v ? h(v.aad) : Buffer.from(`Count-${seq}`);
      const ct = await s.seal(aad, pt);
      if (v) assert.equal(ct.toString('hex'), v.ct, `ct at sequence number ${seq}`);
      assert.deepEqual(await r.open(aad, ct), pt);
    }
    for (const x of V.exports) {
      assert.equal((await s.export(h(x.exporter_context), x.L)).toString('hex'), x.exported_value);
      assert.equal((await r.export(h(x.exporter_context), x.L)).toString('hex'), x.exported_value);
    }
  });

  it('single-shot seal/open round trip; a wrong key, info, aad or a flipped byte is E_DECRYPT', async () => {
    const k = await EncryptionKey.generate();
    const other = await EncryptionKey.generate();
    const info = Buffer.from('info');
    const aad = Buffer.from('aad');
    const pt = Buffer.from('a scope key of 32 bytes, really.');
    const { enc, ct } = await sealBase(HPKE_X25519_SUITE, k.publicKey, info, aad, pt);
    assert.deepEqual(await openBase(HPKE_X25519_SUITE, k, enc, info, aad, ct), pt);
    const refused = async (p: Promise<unknown>): Promise<void> => {
      await assert.rejects(p, (e: unknown) => isBotError(e, 'E_DECRYPT'));
    };
    await refused(openBase(HPKE_X25519_SUITE, other, enc, info, aad, ct));
    await refused(openBase(HPKE_X25519_SUITE, k, enc, Buffer.from('infp'), aad, ct));
    await refused(openBase(HPKE_X25519_SUITE, k, enc, info, Buffer.from('aae'), ct));
    const flipped = Buffer.from(ct);
    flipped[3] ^= 1;
    await refused(openBase(HPKE_X25519_SUITE, k, enc, info, aad, flipped));
    const enc2 = Buffer.from(enc);
    enc2[0] ^= 1;
    await refused(openBase(HPKE_X25519_SUITE, k, enc2, info, aad, ct));
  });

  it('keys: wrong sizes are E_KEY; the secret is not in toJSON', async () => {
    await assert.rejects(EncryptionKey.fromSecret(Buffer.alloc(31)), (e: unknown) => isBotError(e, 'E_KEY'));
    await assert.rejects(EncryptionKey.derive(Buffer.alloc(16)), (e: unknown) => isBotError(e, 'E_KEY'));
    await assert.rejects(sealBase(HPKE_X25519_SUITE, Buffer.alloc(31), Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(1)), (e: unknown) =>
      isBotError(e, 'E_KEY'),
    );
    const k = await EncryptionKey.generate();
    const shown = JSON.stringify(k);
    assert.ok(!shown.includes(k.secret().toString('base64')));
    assert.ok(shown.includes(k.publicKey.toString('base64')));
  });
});

interface XW {
  kem_id: number;
  sk: string;
  pk: string;
  eseed: string;
  ct: string;
}

describe('HPKE with X-Wing (ML-KEM-768 + X25519), the post-quantum hybrid suite', () => {
  const X = vector<XW>('hpke-xwing-kem.json');

  it('the key pair of the draft vector, and its encapsulation from eseed', async () => {
    assert.equal(HPKE_SUITES[HPKE_XWING_SUITE].kem, X.kem_id);
    const k = await EncryptionKey.fromSecret(h(X.sk), HPKE_XWING_SUITE);
    assert.equal(k.publicKey.toString('hex'), X.pk);
    const s = await setupBaseS(HPKE_XWING_SUITE, k.publicKey, Buffer.from('info'), h(X.eseed));
    assert.equal(s.enc.toString('hex'), X.ct);
    const r = await setupBaseR(HPKE_XWING_SUITE, k, s.enc, Buffer.from('info'));
    const ct = await s.seal(Buffer.from('aad'), Buffer.from('scope key'));
    assert.equal((await r.open(Buffer.from('aad'), ct)).toString(), 'scope key');
  });

  it('round trip; another X-Wing key or an X25519 key is refused', async () => {
    const k = await EncryptionKey.generate(HPKE_XWING_SUITE);
    assert.equal(k.publicKey.length, 1216);
    const { enc, ct } = await sealBase(HPKE_XWING_SUITE, k.publicKey, Buffer.from('i'), Buffer.alloc(0), Buffer.from('pt'));
    assert.equal(enc.length, 1120);
    assert.equal((await openBase(HPKE_XWING_SUITE, k, enc, Buffer.from('i'), Buffer.alloc(0), ct)).toString(), 'pt');
    const other = await EncryptionKey.generate(HPKE_XWING_SUITE);
    await assert.rejects(openBase(HPKE_XWING_SUITE, other, enc, Buffer.from('i'), Buffer.alloc(0), ct), (e: unknown) => isBotError(e, 'E_DECRYPT'));
    await assert.rejects(openBase(HPKE_XWING_SUITE, await EncryptionKey.generate(), enc, Buffer.from('i'), Buffer.alloc(0), ct), (e: unknown) =>
      isBotError(e, 'E_KEY'),
    );
    const again = await EncryptionKey.fromSecret(k.secret(), HPKE_XWING_SUITE);
    assert.ok(again.publicKey.equals(k.publicKey));
  });
});
