/**
 * Values from another realm (issue 11, defect 1): Node-RED runs `function` nodes in their own
 * vm context, so the objects and arrays they build have that context's prototypes. JCS and
 * envelope parsing accept every plain JSON-like value whatever realm made it, and refuse only
 * what is not JSON, with a message naming where it is and what it is.
 */
import { strict as assert } from 'node:assert';
import * as vm from 'node:vm';
import { canonicalize, Identity, signEnvelope, verifyEnvelope } from '../../lib';
import { isPlainObject } from '../../lib/format/jcs';
import { Ledger } from '../../lib/store/ledger';
import { tmpDir } from '../helpers';

const id = Identity.generate();
/** Evaluate JavaScript in a fresh realm, as a Node-RED function node does. */
const foreign = <T>(code: string, sandbox: Record<string, unknown> = {}): T => vm.runInNewContext(code, sandbox) as T;

describe('values from another realm (vm contexts, Node-RED function nodes)', () => {
  it('canonicalizes plain objects and arrays built in another realm exactly like local ones', () => {
    const v = foreign<unknown>('({ celsius: 21.5, tags: ["a", { b: [1, 2, null] }], nested: { ok: true, none: null } })');
    assert.notEqual(Object.getPrototypeOf(v), Object.prototype, 'the test value really is from another realm');
    const local = { celsius: 21.5, tags: ['a', { b: [1, 2, null] }], nested: { ok: true, none: null } };
    assert.equal(canonicalize(v), canonicalize(local));
    assert.equal(canonicalize(foreign('JSON.parse(\'{"z":1,"a":[{"q":"x"}]}\')')), '{"a":[{"q":"x"}],"z":1}');
    assert.equal(canonicalize(foreign('Object.assign(Object.create(null), { a: 1 })')), '{"a":1}');
    assert.ok(isPlainObject(foreign('({})')));
    assert.ok(!isPlainObject(foreign('new Map()')));
    assert.ok(!isPlainObject(foreign('[]')));
  });

  it('signs a payload from another realm; the envelope verifies and is appended by a real ledger', async () => {
    const t = tmpDir();
    try {
      const payload = foreign<unknown>('({ celsius: 21.5, at: [2024, 1] })');
      const s = signEnvelope(id, { kind: 'reading', seq: 1, ts: Date.now(), payload: payload as never });
      // The envelope as a function node would hold it after JSON.parse in its own realm.
      const reparsed = foreign<unknown>(`JSON.parse(${JSON.stringify(s.bytes.toString())})`);
      assert.deepEqual(verifyEnvelope(reparsed).bytes, s.bytes);
      // Tampered in the other realm: a bad signature, not "malformed".
      const tampered = foreign<unknown>(`(() => { const e = JSON.parse(${JSON.stringify(s.bytes.toString())}); e.payload.celsius = 99; return e; })()`);
      assert.throws(() => verifyEnvelope(tampered), { code: 'E_SIGNATURE' });
      const l = await Ledger.open({ dir: t.dir, origin: 'test.example/realm', identity: id });
      try {
        const r = await l.append(foreign<unknown>(`JSON.parse(${JSON.stringify(s.bytes.toString())})`));
        assert.equal(r.index, 0);
      } finally {
        await l.close();
      }
    } finally {
      t.cleanup();
    }
  });

  it('takes bytes from another realm as bytes (a Uint8Array payload, an envelope as UTF-8 bytes)', () => {
    const bytes = foreign<Uint8Array>('new Uint8Array([0, 1, 254, 255])');
    const s = signEnvelope(id, { kind: 'reading', seq: 2, ts: Date.now(), payload: bytes });
    assert.equal(s.envelope.enc, 'base64');
    assert.equal(s.envelope.payload, 'AAH+/w==');
    const text = s.bytes.toString();
    const asBytes = foreign<Uint8Array>(`new TextEncoder().encode(${JSON.stringify(text)})`, { TextEncoder });
    assert.deepEqual(verifyEnvelope(asBytes).bytes, s.bytes);
  });

  it('refuses what is not JSON, naming where it is and what it is, from either realm', () => {
    class Reading {
      c = 1;
    }
    const cases: [unknown, RegExp][] = [
      [{ a: { b: new Map() } }, /^msg\.payload\.a\.b is a Map, not a JSON value$/],
      [foreign('({ a: { b: new Map() } })'), /^msg\.payload\.a\.b is a Map, not a JSON value$/],
      [foreign('({ list: [1, new Set([1])] })'), /^msg\.payload\.list\[1\] is a Set/],
      [{ when: new Date(0) }, /^msg\.payload\.when is a Date/],
      [foreign('({ when: new Date(0) })'), /^msg\.payload\.when is a Date/],
      [{ raw: Buffer.from('x') }, /^msg\.payload\.raw is a Buffer/],
      [{ raw: foreign('new Uint8Array(2)') }, /^msg\.payload\.raw is a Uint8Array/],
      [{ r: new Reading() }, /^msg\.payload\.r is an instance of class Reading/],
      [foreign('({ r: new (class Sample { })() })'), /^msg\.payload\.r is an instance of class Sample/],
      [{ f: () => 1 }, /^msg\.payload\.f is a function/],
      [foreign('({ f() {} })'), /^msg\.payload\.f is a function/],
      [{ s: Symbol('x') }, /^msg\.payload\.s is a symbol/],
      [{ n: 10n }, /^msg\.payload\.n is a bigint/],
      [{ x: Number.NaN }, /^msg\.payload\.x is NaN/],
      [{ u: undefined }, /^msg\.payload\.u is undefined/],
      [{ 'odd key': [{ m: new WeakMap() }] }, /^msg\.payload\["odd key"\]\[0\]\.m is a WeakMap/],
      [new Map(), /^msg\.payload is a Map/],
      [undefined, /^msg\.payload is missing/],
    ];
    for (const [v, re] of cases) {
      assert.throws(
        () => canonicalize(v, 'msg.payload'),
        (e: Error & { code?: string }) => e.code === 'E_JSON' && re.test(e.message),
        String(re),
      );
    }
  });

  it('says "circular" for a cycle (not "nested too deep"), and "deeper than 64" for deep nesting', () => {
    const a: Record<string, unknown> = { x: { y: {} } };
    (a.x as { y: Record<string, unknown> }).y.back = a;
    assert.throws(() => canonicalize(a, 'msg.payload'), /^FormatError: msg\.payload\.x\.y\.back is circular \(it refers back to msg\.payload\)$/);
    const f = foreign<unknown>('(() => { const o = { list: [] }; o.list.push(o); return o; })()');
    assert.throws(() => canonicalize(f, 'msg.payload'), /msg\.payload\.list\[0\] is circular \(it refers back to msg\.payload\)/);
    let deep: unknown = 1;
    for (let i = 0; i < 80; i++) deep = [deep];
    assert.throws(() => canonicalize(deep), /nests deeper than 64 levels/);
    let ok: unknown = 1;
    for (let i = 0; i < 64; i++) ok = { a: ok };
    assert.ok(canonicalize(ok).startsWith('{"a":'));
  });

  it('names the envelope field in errors of signEnvelope and verifyEnvelope', () => {
    assert.throws(() => signEnvelope(id, { kind: 'reading', seq: 3, ts: 1, payload: { m: new Map() } as never }), /payload\.m is a Map/);
    assert.throws(() => verifyEnvelope(new Map()), /envelope must be a JSON object, got a Map/);
    assert.throws(() => verifyEnvelope(undefined), /envelope must be a JSON object, got nothing \(it is missing\)/);
  });
});
