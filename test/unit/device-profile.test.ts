/**
 * Issue 14 part 2: the device profile of the envelope (docs/device-profile.md). The shared
 * vectors test/vectors/device-profile.json are produced here by the kernel (signEnvelope) and
 * checked against the file: every valid case verifies with the unchanged verifyEnvelope, and
 * the profile's rules alone (test/device-profile.ts, no JCS) give the same bytes; every
 * invalid case is refused by the rules with its code, and the kernel's own verdict is as stated.
 * `BOT_WRITE_VECTORS=1 npx mocha dist/test/unit/device-profile.test.js` rewrites the file.
 */
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { canonicalize, Identity, isBotError, signEnvelope, verifyEnvelope } from '../../lib';
import {
  type CaseInput,
  type DeviceProfileVectors,
  type Field,
  type InvalidCase,
  kernelInput,
  loadVectors,
  profileEnvelope,
  ProfileRefusal,
  sha256Hex,
  type ValidCase,
  VECTORS_FILE,
} from '../device-profile';

const seedOf = (i: number): string => crypto.createHash('sha256').update(`bot device-profile vector ${i}`).digest('hex');
/** RFC 8032 section 7.1, test 1. */
const RFC8032_SEED = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
const TS = '1767225600000'; // 2026-01-01T00:00:00Z
const MAX = '9007199254740991';
const OVER = '9007199254740992';

/** A binary payload of 48,000 bytes and a topic long enough for the envelope to be exactly 65535 bytes (plus `extra`). */
function largest(extra: number): Pick<CaseInput, 'topic' | 'payload' | 'seed' | 'seq' | 'ts'> {
  const base = { seed: seedOf(11), seq: '11', ts: TS, payload: { bytesFill: [0xab, 48000] as [number, number] } };
  const probe = signEnvelope(Identity.fromSeed(Buffer.from(base.seed, 'hex')), kernelInput({ ...base, name: '', topic: 'size/' })).bytes.length;
  return { ...base, topic: 'size/' + 'x'.repeat(65535 - probe + extra) };
}

const VALID: CaseInput[] = [
  { name: 'minimal: empty object payload, no topic, seq 0, ts 0', seed: RFC8032_SEED, seq: '0', ts: '0', payload: { fields: [] } },
  {
    name: 'a typical reading: every member type',
    seed: seedOf(1),
    seq: '1',
    ts: TS,
    topic: 'plant/line-1/temperature',
    payload: {
      fields: [
        ['centi_celsius', 'int', '2150'],
        ['ok', 'bool', true],
        ['samples', 'ints', ['2150', '2149', '-3']],
        ['status', 'null', null],
        ['unit', 'str', '°C'],
      ],
    },
  },
  {
    name: 'string escapes: controls, quote, backslash, short forms; DEL, non-ASCII, U+2028 and BOM literal',
    seed: seedOf(2),
    seq: '2',
    ts: TS,
    payload: {
      fields: [
        ['ctl', 'str', '\u0000\u0001\u000b\u001f'],
        ['del', 'str', '\u007f\u0080\u009f'],
        ['empty', 'str', ''],
        ['quote', 'str', 'a"b\\c/d'],
        ['short', 'str', '\b\t\n\f\r'],
        ['text', 'str', 'é€😀\u2028\u2029\ufeff'],
      ],
    },
  },
  {
    name: 'a non-ASCII topic with a quote and a backslash',
    seed: seedOf(3),
    seq: '3',
    ts: TS,
    topic: 'usine/café/"quoted"\\path/€/😀',
    payload: { fields: [['n', 'int', '1']] },
  },
  {
    name: 'large integers: seq, ts and payload at ±(2^53 − 1)',
    seed: seedOf(4),
    seq: MAX,
    ts: MAX,
    topic: 'big/ints',
    payload: {
      fields: [
        ['list', 'ints', [MAX, '-' + MAX, '0']],
        ['max', 'int', MAX],
        ['min', 'int', '-' + MAX],
        ['minus_one', 'int', '-1'],
        ['zero', 'int', '0'],
      ],
    },
  },
  { name: 'empty binary payload', seed: seedOf(5), seq: '5', ts: TS, topic: 'bin/empty', payload: { bytes: '' } },
  { name: 'binary payload of 1 byte (two = of padding)', seed: seedOf(6), seq: '6', ts: TS, payload: { bytes: 'ff' } },
  { name: 'binary payload of 2 bytes (one = of padding)', seed: seedOf(6), seq: '7', ts: TS, payload: { bytes: 'fffe' } },
  { name: 'binary payload of 3 bytes (+ and / of the standard alphabet)', seed: seedOf(6), seq: '8', ts: TS, payload: { bytes: 'fbff00' } },
  {
    name: 'empty list and empty string',
    seed: seedOf(7),
    seq: '9',
    ts: TS,
    payload: {
      fields: [
        ['a', 'ints', []],
        ['b', 'str', ''],
      ],
    },
  },
  {
    name: 'key order: by byte, a prefix first',
    seed: seedOf(8),
    seq: '10',
    ts: TS,
    payload: {
      fields: [
        ['!', 'int', '0'],
        ['-', 'int', '1'],
        ['A', 'int', '2'],
        ['Z', 'int', '3'],
        ['_', 'int', '4'],
        ['a', 'int', '5'],
        ['ab', 'int', '6'],
        ['b', 'int', '7'],
        ['~', 'int', '8'],
      ],
    },
  },
  { name: 'another kind, a $ topic', seed: seedOf(9), kind: 'status-v2_x', seq: '0', ts: TS, topic: '$dev/9', payload: { fields: [['up', 'bool', false]] } },
  { name: 'the largest envelope: exactly 65535 bytes', ...largest(0) },
];

const field = (f: Field): { fields: Field[] } => ({ fields: [f] });
const INVALID: (Omit<InvalidCase, 'seed' | 'seq' | 'ts'> & Partial<Pick<InvalidCase, 'seq' | 'ts'>>)[] = [
  {
    name: 'payload integer 2^53',
    payload: field(['n', 'int', OVER]),
    code: 'range',
    kernel: 'accepts',
    reason: 'not exactly representable by every JSON reader',
  },
  { name: 'payload integer -2^53', payload: field(['n', 'int', '-' + OVER]), code: 'range', kernel: 'accepts', reason: 'below -(2^53 - 1)' },
  { name: 'list integer 2^53', payload: field(['n', 'ints', ['1', OVER]]), code: 'range', kernel: 'accepts', reason: 'above 2^53 - 1' },
  { name: 'seq 2^53', seq: OVER, payload: { fields: [] }, code: 'range', kernel: 'refuses', kernelCode: 'E_ENVELOPE', reason: 'seq above 2^53 - 1' },
  { name: 'ts 2^53', ts: OVER, payload: { fields: [] }, code: 'range', kernel: 'refuses', kernelCode: 'E_ENVELOPE', reason: 'ts above 2^53 - 1' },
  {
    name: 'keys out of order',
    payload: {
      fields: [
        ['b', 'int', '1'],
        ['a', 'int', '2'],
      ],
    },
    code: 'order',
    kernel: 'accepts',
    reason: 'the kernel sorts; a device must write them sorted',
  },
  {
    name: 'duplicate key',
    payload: {
      fields: [
        ['a', 'int', '1'],
        ['a', 'int', '2'],
      ],
    },
    code: 'order',
    kernel: 'not applicable',
    reason: 'RFC 8785 needs unique keys (I-JSON)',
  },
  { name: 'empty key', payload: field(['', 'int', '1']), code: 'key', kernel: 'accepts', reason: 'keys are 1-64 characters' },
  { name: 'non-ASCII key', payload: field(['é', 'int', '1']), code: 'key', kernel: 'accepts', reason: 'UTF-16 and UTF-8 orders differ beyond ASCII' },
  { name: 'key with a quote', payload: field(['a"b', 'int', '1']), code: 'key', kernel: 'accepts', reason: 'keys are written without escapes' },
  { name: 'key of 65 characters', payload: field(['k'.repeat(65), 'int', '1']), code: 'key', kernel: 'accepts', reason: 'keys are 1-64 characters' },
  {
    name: 'lone surrogate in a string',
    payload: field(['s', 'str', '\ud800']),
    code: 'utf8',
    kernel: 'refuses',
    kernelCode: 'E_JSON',
    reason: 'not I-JSON (RFC 8785 section 3.2.2.2)',
  },
  { name: 'ill-formed UTF-8 (FF)', payload: field(['s', 'strhex', 'ff']), code: 'utf8', kernel: 'not applicable', reason: 'not UTF-8 at all' },
  { name: 'overlong UTF-8 (C0 AF)', payload: field(['s', 'strhex', 'c0af']), code: 'utf8', kernel: 'not applicable', reason: 'overlong form of /' },
  { name: 'UTF-8 of a surrogate (ED A0 80)', payload: field(['s', 'strhex', 'eda080']), code: 'utf8', kernel: 'not applicable', reason: 'CESU-8, not UTF-8' },
  { name: 'topic with +', topic: 'a/+/b', payload: { fields: [] }, code: 'topic', kernel: 'refuses', kernelCode: 'E_ENVELOPE', reason: 'a wildcard' },
  { name: 'topic with #', topic: 'a/#', payload: { fields: [] }, code: 'topic', kernel: 'refuses', kernelCode: 'E_ENVELOPE', reason: 'a wildcard' },
  { name: 'topic with BEL', topic: 'a\u0007b', payload: { fields: [] }, code: 'topic', kernel: 'refuses', kernelCode: 'E_ENVELOPE', reason: 'a control' },
  { name: 'topic with U+0085', topic: 'a\u0085b', payload: { fields: [] }, code: 'topic', kernel: 'refuses', kernelCode: 'E_ENVELOPE', reason: 'a C1 control' },
  {
    name: 'topic with U+FFFF',
    topic: 'a\uffffb',
    payload: { fields: [] },
    code: 'topic',
    kernel: 'refuses',
    kernelCode: 'E_ENVELOPE',
    reason: 'a non-character',
  },
  { name: 'empty topic', topic: '', payload: { fields: [] }, code: 'topic', kernel: 'refuses', kernelCode: 'E_ENVELOPE', reason: 'MQTT 3.1.1 section 4.7.3' },
  {
    name: 'topic of 4098 bytes (2049 characters)',
    topic: 'é'.repeat(2049),
    payload: { fields: [] },
    code: 'topic',
    kernel: 'accepts',
    reason: 'the profile counts bytes (at most 4096), the kernel UTF-16 units',
  },
  {
    name: 'kind in upper case',
    kind: 'Reading',
    payload: { fields: [] },
    code: 'kind',
    kernel: 'refuses',
    kernelCode: 'E_ENVELOPE',
    reason: '[a-z][a-z0-9_-]{0,31}',
  },
  {
    name: 'kind of 33 characters',
    kind: 'k'.repeat(33),
    payload: { fields: [] },
    code: 'kind',
    kernel: 'refuses',
    kernelCode: 'E_ENVELOPE',
    reason: 'at most 32',
  },
  { name: 'empty kind', kind: '', payload: { fields: [] }, code: 'kind', kernel: 'refuses', kernelCode: 'E_ENVELOPE', reason: 'at least 1' },
];

/** The vectors as the kernel produces them from the inputs above. */
function produce(): DeviceProfileVectors {
  const valid: ValidCase[] = VALID.map((c) => {
    const signed = signEnvelope(Identity.fromSeed(Buffer.from(c.seed, 'hex')), kernelInput(c));
    const { sig, ...rest } = signed.envelope;
    const envelope = signed.bytes.toString('utf8');
    const large = signed.bytes.length > 4096;
    return {
      ...c,
      did: signed.envelope.signer,
      ...(large ? {} : { body: canonicalize(rest) }),
      sig,
      ...(large ? {} : { envelope }),
      envelopeBytes: signed.bytes.length,
      envelopeSha256: sha256Hex(signed.bytes),
    };
  });
  const over = { ...largest(1), name: 'envelope of 65536 bytes', code: 'size' as const, kernel: 'refuses' as const, kernelCode: 'E_TOO_LARGE' };
  const invalid: InvalidCase[] = [
    ...INVALID.map((c, i) => ({ seed: seedOf(100 + i), seq: '1', ts: TS, ...c })),
    { ...over, reason: 'above the ledger entry limit (65535 bytes)' },
  ];
  return {
    source:
      'Self-generated by the TypeScript kernel (signEnvelope, lib/format/envelope.ts) from the inputs in test/unit/device-profile.test.ts; ' +
      'the C (devices/c) and Python (devices/python) reference signers must give the same bytes and signatures and refuse the invalid cases with the same code.',
    profile: 'docs/device-profile.md',
    domain: 'bot-envelope-v1\n',
    valid,
    invalid,
  };
}

describe('device profile (issue 14: devices outside Node-RED)', () => {
  const produced = produce();
  if (process.env.BOT_WRITE_VECTORS === '1') {
    fs.writeFileSync(path.resolve(__dirname, '../../../test/vectors', VECTORS_FILE), JSON.stringify(produced, null, 1) + '\n');
  }

  it('the vectors file is what the kernel produces from the inputs (BOT_WRITE_VECTORS=1 rewrites it)', () => {
    assert.deepEqual(loadVectors(), produced);
    assert.ok(produced.valid.some((c) => c.envelopeBytes === 65535));
  });

  for (const c of loadVectors().valid) {
    it(`valid: ${c.name}: verifyEnvelope accepts the bytes unchanged, and the profile's rules alone give them`, () => {
      const text = c.envelope ?? profileEnvelope(c).envelope;
      const env = verifyEnvelope(text, { fresh: true });
      assert.equal(env.bytes.toString('utf8'), text, 'canonical: the leaf is the bytes as sent');
      assert.equal(sha256Hex(env.bytes), c.envelopeSha256);
      assert.equal(env.bytes.length, c.envelopeBytes);
      assert.equal(env.envelope.signer, c.did);
      assert.equal(env.envelope.sig, c.sig);
      const byRules = profileEnvelope(c);
      assert.equal(byRules.envelope, text);
      assert.equal(byRules.sig, c.sig);
      if (c.body !== undefined) assert.equal(byRules.body, c.body);
      assert.ok(
        Identity.fromSeed(Buffer.from(c.seed, 'hex')).publicKey.verify(Buffer.from('bot-envelope-v1\n' + byRules.body), Buffer.from(c.sig, 'base64url')),
      );
    });
  }

  for (const c of loadVectors().invalid) {
    it(`invalid: ${c.name}: the profile refuses (${c.code}); the kernel ${c.kernel}`, () => {
      assert.throws(
        () => profileEnvelope(c),
        (e: unknown) => e instanceof ProfileRefusal && e.code === c.code,
      );
      if (c.kernel === 'not applicable') return;
      const sign = (): unknown => signEnvelope(Identity.fromSeed(Buffer.from(c.seed, 'hex')), kernelInput(c));
      if (c.kernel === 'accepts') assert.doesNotThrow(sign);
      else assert.throws(sign, (e: unknown) => isBotError(e) && e.code === c.kernelCode);
    });
  }

  it('arbitrary profile envelopes (fast-check): the rules give the kernel canonical bytes, which verifyEnvelope accepts unchanged', () => {
    const key = fc.stringMatching(/^[\x21\x23-\x5b\x5d-\x7e]{1,8}$/);
    const int = fc.bigInt(-9007199254740991n, 9007199254740991n).map(String);
    const value = fc.oneof(
      int.map((v): [Field[1], Field[2]] => ['int', v]),
      fc.array(int, { maxLength: 4 }).map((v): [Field[1], Field[2]] => ['ints', v]),
      fc.string({ unit: 'binary', maxLength: 12 }).map((v): [Field[1], Field[2]] => ['str', v]),
      fc.boolean().map((v): [Field[1], Field[2]] => ['bool', v]),
      fc.constant<[Field[1], Field[2]]>(['null', null]),
    );
    const fields = fc
      .uniqueArray(fc.tuple(key, value), { selector: (t) => t[0], maxLength: 6 })
      .map((ms) => ms.sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0]))).map(([k, [t, v]]) => [k, t, v] as Field));
    const payload = fc.oneof(
      fields.map((f) => ({ fields: f })),
      fc.uint8Array({ maxLength: 20 }).map((b) => ({ bytes: Buffer.from(b).toString('hex') })),
    );
    const topicChar = fc.oneof(fc.constantFrom('/', 'a', 'é', '€', '😀', '"', '\\', '$', ' '), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }));
    const topic = fc.option(
      fc.array(topicChar, { minLength: 1, maxLength: 10 }).map((a) => a.join('')),
      { nil: undefined },
    );
    const seq = fc.bigInt(0n, 9007199254740991n).map(String);
    fc.assert(
      fc.property(payload, topic, seq, seq, fc.constantFrom('reading', 'r', 'status-1_a'), (p, t, s, ts, kind) => {
        const c: CaseInput = { name: 'p', seed: RFC8032_SEED, seq: s, ts, kind, payload: p, ...(t !== undefined ? { topic: t } : {}) };
        let byRules: string;
        try {
          byRules = profileEnvelope(c).envelope;
        } catch (e) {
          // Only a topic the profile refuses (controls, wildcards, non-characters) may fail here, and the kernel refuses it too.
          assert.ok(e instanceof ProfileRefusal && e.code === 'topic', String(e));
          assert.throws(() => signEnvelope(Identity.fromSeed(Buffer.from(c.seed, 'hex')), kernelInput(c)));
          return;
        }
        const kernel = signEnvelope(Identity.fromSeed(Buffer.from(c.seed, 'hex')), kernelInput(c)).bytes.toString('utf8');
        assert.equal(byRules, kernel);
        assert.equal(verifyEnvelope(byRules, { fresh: true }).bytes.toString('utf8'), byRules);
      }),
      { numRuns: 300 },
    );
  });
});
