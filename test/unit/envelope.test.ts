/** Envelopes: signing, strict parsing, verification. */
import { strict as assert } from 'node:assert';
import { canonicalize, ENVELOPE_DOMAIN, fromBase64Url, fromHex, Identity, parseEnvelope, signEnvelope, verifyEnvelope } from '../../lib';

const id = Identity.fromSeed(fromHex('4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb'));
const other = Identity.generate();
const base = { kind: 'reading', seq: 7, ts: 1700000000000, topic: 'plant/1/temp', payload: { c: 21.5, ok: true } };

describe('envelope', () => {
  it('signs "bot-envelope-v1\\n" ‖ JCS(envelope without sig); the leaf is JCS with sig', () => {
    const s = signEnvelope(id, base);
    const { sig, ...body } = s.envelope;
    assert.deepEqual(Object.keys(s.envelope).sort(), ['kind', 'payload', 'seq', 'sig', 'signer', 'topic', 'ts', 'v']);
    assert.ok(id.publicKey.verify(Buffer.from(ENVELOPE_DOMAIN + canonicalize(body)), fromBase64Url(sig)));
    assert.equal(s.bytes.toString(), canonicalize(s.envelope));
    assert.equal(verifyEnvelope(s.bytes.toString()).bytes.toString(), s.bytes.toString());
    assert.equal(verifyEnvelope(JSON.parse(s.bytes.toString())).envelope.seq, 7);
    assert.equal(verifyEnvelope(s.bytes).signer.did, id.did);
  });

  it('carries binary payloads as base64 with enc', () => {
    const s = signEnvelope(id, { ...base, payload: Buffer.from([0, 1, 254, 255]) });
    assert.equal(s.envelope.enc, 'base64');
    assert.deepEqual(verifyEnvelope(s.bytes).decodedPayload(), Buffer.from([0, 1, 254, 255]));
  });

  it('accepts key order and whitespace differences (the signature covers the canonical form)', () => {
    const s = signEnvelope(id, base);
    const reordered = JSON.stringify(Object.fromEntries(Object.entries(s.envelope).reverse()), null, 2);
    assert.deepEqual(verifyEnvelope(reordered).bytes, s.bytes);
  });

  it('rejects tampering with any field', () => {
    const e = { ...signEnvelope(id, base).envelope };
    for (const change of [{ seq: 8 }, { ts: 1 }, { topic: 'plant/2/temp' }, { payload: { c: 22, ok: true } }, { kind: 'grant' }, { signer: other.did }]) {
      assert.throws(() => verifyEnvelope({ ...e, ...change }), { code: 'E_SIGNATURE' }, JSON.stringify(change));
    }
    const { topic, ...noTopic } = e;
    assert.ok(topic);
    assert.throws(() => verifyEnvelope(noTopic), { code: 'E_SIGNATURE' });
  });

  it('rejects malformed envelopes with a typed error naming the problem', () => {
    const e = signEnvelope(id, base).envelope as unknown as Record<string, unknown>;
    const cases: [unknown, string, RegExp][] = [
      ['{', 'E_ENVELOPE', /JSON/],
      [[], 'E_ENVELOPE', /object/],
      [null, 'E_ENVELOPE', /object/],
      [{ ...e, v: 2 }, 'E_ENVELOPE', /version/],
      [{ ...e, extra: 1 }, 'E_ENVELOPE', /unknown field/],
      [{ ...e, kind: 'Reading!' }, 'E_ENVELOPE', /kind/],
      [{ ...e, seq: 1.5 }, 'E_ENVELOPE', /seq/],
      [{ ...e, seq: -1 }, 'E_ENVELOPE', /seq/],
      [{ ...e, seq: '7' }, 'E_ENVELOPE', /seq/],
      [{ ...e, ts: 2 ** 53 }, 'E_ENVELOPE', /ts/],
      [{ ...e, topic: 'a/#' }, 'E_ENVELOPE', /wildcard/],
      [{ ...e, topic: 5 }, 'E_ENVELOPE', /topic/],
      [{ ...e, payload: undefined }, 'E_ENVELOPE', /payload/],
      [{ ...e, enc: 'hex' }, 'E_ENVELOPE', /enc/],
      [{ ...e, enc: 'base64' }, 'E_ENVELOPE', /base64/],
      [{ ...e, sig: (e.sig as string) + '=' }, 'E_ENVELOPE', /sig/],
      [{ ...e, sig: (e.sig as string).slice(0, 40) }, 'E_ENVELOPE', /sig/],
      [{ ...e, sig: undefined }, 'E_ENVELOPE', /sig/],
      [{ ...e, signer: 'did:key:z6Mkbad' }, 'E_DID', /did:key/],
      [{ ...e, signer: 42 }, 'E_ENVELOPE', /signer/],
      [JSON.stringify({ ...e, payload: 'x'.repeat(70000) }), 'E_TOO_LARGE', /limit/],
    ];
    for (const [input, code, msg] of cases) {
      assert.throws(
        () => verifyEnvelope(input),
        (err: Error & { code: string }) => err.code === code && msg.test(err.message),
        JSON.stringify(input)?.slice(0, 80),
      );
    }
    assert.throws(() => signEnvelope(id, { ...base, payload: { big: 'x'.repeat(100) } }, { maxBytes: 100 }), { code: 'E_TOO_LARGE' });
    assert.throws(() => signEnvelope(id, { ...base, payload: { d: new Date(0) } as never }), { code: 'E_JSON' });
    assert.throws(() => parseEnvelope({ ...e, v: '1' }), { code: 'E_ENVELOPE' });
  });
});
