/**
 * Generators for the fuzz layer (test/fuzz.test.ts): hostile values (special numbers, NaN-ish and
 * control-character strings, lone surrogates, U+0000, very long strings, deep nesting) and
 * structured mutations of valid inputs (a field replaced, removed, added or wrapped; a line of a
 * text format replaced, dropped, doubled; characters flipped or inserted), all from fast-check so
 * that a failure shrinks to a small reproducible case.
 */
import fc from 'fast-check';

/** A value as a peer's JSON (or an in-process msg, which may also carry undefined, NaN and -0) can hold it. */
export type Value = null | undefined | boolean | number | string | Value[] | { [k: string]: Value };

/** Arrays nested depth levels deep (built iteratively: no recursion in the generator). */
export function deepArray(depth: number): Value {
  let v: Value = [];
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

/** Objects nested depth levels deep under key k. */
export function deepObject(depth: number, k = 'a'): Value {
  let v: Value = {};
  for (let i = 0; i < depth; i++) v = { [k]: v };
  return v;
}

/** Numbers a strict parser must refuse or handle exactly: -0, NaN, infinities, beyond 2^53, fractions. */
export const specialNumber: fc.Arbitrary<number> = fc.constantFrom(
  -0,
  NaN,
  Infinity,
  -Infinity,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53),
  Number.MAX_SAFE_INTEGER,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  0.5,
  -1,
  -0.5,
  2 ** 31,
  2 ** 32,
  2 ** 64,
  1e21,
  1e-7,
);

/** Strings a strict parser must refuse or handle exactly. */
export const specialString: fc.Arbitrary<string> = fc.constantFrom(
  '',
  ' ',
  'NaN',
  '-0',
  'Infinity',
  '1e999',
  '0x10',
  ' 1',
  '01',
  '1.0',
  '-1',
  '9007199254740993',
  '\u0000',
  'a\u0000b',
  '\uD800',
  '\uDFFF',
  'a\uD800b',
  '\uDC00\uD800',
  '\u2028',
  '\u2029',
  '\uFEFF',
  '\u202E',
  '\r',
  '\r\n',
  '\t',
  '\n',
  '\n\n',
  '— ',
  '+',
  '#',
  '/',
  'a/#',
  '+/+',
  '#/a',
  'did:key:',
  'did:key:z',
  'did:key:z6Mk',
  '__proto__',
  'constructor',
  'toString',
  'old 0',
  'old -1',
  'old 01',
  '=',
  '==',
  '====',
  'AAAA',
  'AAE=',
  'AA==',
  '====AAAA',
);

/** Very long strings (peers decide the length). */
export const longString: fc.Arbitrary<string> = fc.constantFrom(
  'a'.repeat(70_000),
  'x'.repeat(1_100_000),
  '\u0000'.repeat(5000),
  '\uD800'.repeat(5000),
  '['.repeat(20_000),
  '1'.repeat(400),
  'z'.repeat(100),
  '\n'.repeat(20_000),
  '— a AAAA\n'.repeat(200),
);

/** JSON text nested deeper than any stack-recursive code could follow (balanced, so it parses). */
export const deepJsonText: fc.Arbitrary<string> = fc
  .tuple(fc.integer({ min: 65, max: 20_000 }), fc.boolean())
  .map(([n, arr]) => (arr ? '['.repeat(n) + ']'.repeat(n) : '{"a":'.repeat(n) + '1' + '}'.repeat(n)));

/** Any string, including lone surrogates and controls. */
export const anyString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 3, arbitrary: specialString },
  { weight: 1, arbitrary: longString },
  { weight: 1, arbitrary: deepJsonText },
);

/** A hostile value for any field. */
export const weirdValue: fc.Arbitrary<Value> = fc.oneof(
  { weight: 3, arbitrary: specialNumber },
  { weight: 3, arbitrary: anyString },
  { weight: 2, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.constantFrom<Value>(null, undefined, true, false, [], {}, [null], { '': null }) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Value> },
  // Deeper than JCS's limit (64); at most 600 so that fast-check can still print a counterexample.
  { weight: 1, arbitrary: fc.integer({ min: 65, max: 600 }).map((n) => (n % 2 === 0 ? deepArray(n) : deepObject(n))) },
);

type Path = (string | number)[];

/** Every path into a value (the root is []), depth-first; stops descending below maxDepth. */
function paths(v: Value, maxDepth = 40, at: Path = [], out: Path[] = []): Path[] {
  out.push(at);
  if (at.length >= maxDepth || v === null || typeof v !== 'object') return out;
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, maxDepth, [...at, i], out));
  else for (const k of Object.keys(v)) paths(v[k], maxDepth, [...at, k], out);
  return out;
}

/** A copy of a value (JSON-like; keeps undefined, NaN and -0), without recursion limits worth worrying about at our depths. */
function clone(v: Value): Value {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(clone);
  const o: { [k: string]: Value } = {};
  for (const k of Object.keys(v)) o[k] = clone(v[k]);
  return o;
}

/** The JSON text of a valid value with the value at one path (not the root) replaced by JSON nested depth levels deep. */
export function spliceDeep(valid: Value, at: number, depth: number, arrays: boolean): string {
  const all = paths(valid).filter((p) => p.length > 0);
  const p = all[at % all.length];
  const root = clone(valid);
  const parent = p.slice(0, -1).reduce<Value>((v, k) => (v as Record<string | number, Value>)[k], root) as Record<string | number, Value>;
  parent[p[p.length - 1]] = '\u0000DEEP\u0000';
  const deep = arrays ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
  return (JSON.stringify(root) as string).replace('"\\u0000DEEP\\u0000"', deep);
}

/** spliceDeep at a random path, 65 to 20 000 levels (8 KB to 80 KB of text: under the size limits that matter). */
export function deepSplices(valid: Value): fc.Arbitrary<string> {
  return fc.tuple(fc.nat(), fc.integer({ min: 65, max: 20_000 }), fc.boolean()).map(([at, depth, arrays]) => spliceDeep(valid, at, depth, arrays));
}

/** One structured mutation: where (an index into the value's paths), what to do, and the value or key used. */
export interface Mutation {
  at: number;
  op: 'replace' | 'delete' | 'add' | 'wrap-array' | 'wrap-object' | 'to-string' | 'to-number';
  value: Value;
  key: string;
}

/** Mutations to apply to a valid value, 1 to 3 of them. */
export const mutations: fc.Arbitrary<Mutation[]> = fc.array(
  fc.record({
    at: fc.nat(),
    op: fc.constantFrom<Mutation['op']>('replace', 'replace', 'replace', 'delete', 'add', 'wrap-array', 'wrap-object', 'to-string', 'to-number'),
    value: weirdValue,
    key: fc.oneof(anyString, fc.constantFrom('v', 'kind', 'signer', 'seq', 'ts', 'topic', 'payload', 'enc', 'sig', 'op', 'grant', 'filter', 'entries')),
  }),
  { minLength: 1, maxLength: 3 },
);

/** Apply mutations to a copy of a valid value. */
export function mutate(valid: Value, ms: readonly Mutation[]): Value {
  let root = clone(valid);
  for (const m of ms) {
    // A fresh copy each time: fast-check hands out constants ([] and {}) shared between runs.
    const value = clone(m.value);
    const all = paths(root);
    const p = all[m.at % all.length];
    const get = (): Value => p.reduce<Value>((v, k) => (v as Record<string | number, Value>)[k], root);
    const cur = get();
    let next: Value | typeof DELETE;
    switch (m.op) {
      case 'replace':
        next = value;
        break;
      case 'delete':
        next = DELETE;
        break;
      case 'add':
        if (Array.isArray(cur)) {
          cur.push(value);
          continue;
        }
        if (cur !== null && typeof cur === 'object') {
          cur[m.key] = value;
          continue;
        }
        next = value;
        break;
      case 'wrap-array':
        next = [cur];
        break;
      case 'wrap-object':
        next = { [m.key]: cur };
        break;
      case 'to-string':
        next = typeof cur === 'string' ? cur + cur : (JSON.stringify(cur) ?? 'undefined');
        break;
      case 'to-number':
        next = typeof cur === 'number' ? -cur - 0.5 : typeof cur === 'string' ? Number(cur) : cur === null ? 0 : NaN;
        break;
    }
    if (p.length === 0) {
      root = next === DELETE ? undefined : next;
      continue;
    }
    const parent = p.slice(0, -1).reduce<Value>((v, k) => (v as Record<string | number, Value>)[k], root) as Record<string | number, Value> | Value[];
    const last = p[p.length - 1];
    if (next === DELETE) {
      if (Array.isArray(parent)) parent.splice(last as number, 1);
      else delete (parent as Record<string, Value>)[last as string];
    } else (parent as Record<string | number, Value>)[last] = next;
  }
  return root;
}
const DELETE = Symbol('delete');

/** One mutation of a text format, line- or character-wise. */
export interface TextMutation {
  at: number;
  op: 'replace-line' | 'delete-line' | 'dup-line' | 'insert-line' | 'flip-char' | 'insert' | 'truncate' | 'append' | 'swap-lines';
  text: string;
}

/** 1 to 3 text mutations. */
export const textMutations: fc.Arbitrary<TextMutation[]> = fc.array(
  fc.record({
    at: fc.nat(),
    op: fc.constantFrom<TextMutation['op']>(
      'replace-line',
      'delete-line',
      'dup-line',
      'insert-line',
      'flip-char',
      'flip-char',
      'insert',
      'truncate',
      'append',
      'swap-lines',
    ),
    text: anyString,
  }),
  { minLength: 1, maxLength: 3 },
);

/** Apply text mutations to a valid text. */
export function mutateText(valid: string, ms: readonly TextMutation[]): string {
  let s = valid;
  for (const m of ms) {
    const lines = s.split('\n');
    const li = m.at % lines.length;
    const ci = s.length === 0 ? 0 : m.at % s.length;
    switch (m.op) {
      case 'replace-line':
        lines[li] = m.text;
        s = lines.join('\n');
        break;
      case 'delete-line':
        lines.splice(li, 1);
        s = lines.join('\n');
        break;
      case 'dup-line':
        lines.splice(li, 0, lines[li]);
        s = lines.join('\n');
        break;
      case 'insert-line':
        lines.splice(li, 0, m.text);
        s = lines.join('\n');
        break;
      case 'swap-lines': {
        const j = (li + 1) % lines.length;
        [lines[li], lines[j]] = [lines[j], lines[li]];
        s = lines.join('\n');
        break;
      }
      case 'flip-char':
        s = s.slice(0, ci) + String.fromCharCode(s.charCodeAt(ci) ^ (1 << (m.at % 7))) + s.slice(ci + 1);
        break;
      case 'insert':
        s = s.slice(0, ci) + m.text + s.slice(ci);
        break;
      case 'truncate':
        s = s.slice(0, ci);
        break;
      case 'append':
        s += m.text;
        break;
    }
  }
  return s;
}

/** Bytes: random, or a valid text's UTF-8 with bytes changed (invalid UTF-8, NULs, 0xff). */
export function bytesAround(valid: string): fc.Arbitrary<Uint8Array> {
  const base = Buffer.from(valid, 'utf8');
  return fc.oneof(
    fc.uint8Array({ maxLength: 512 }),
    fc.array(fc.tuple(fc.nat(), fc.constantFrom(0x00, 0xff, 0xc0, 0x80, 0xed, 0x0a, 0x22, 0x5c), fc.boolean()), { minLength: 1, maxLength: 4 }).map((edits) => {
      let b = Buffer.from(base);
      for (const [at, byte, insert] of edits) {
        const i = b.length === 0 ? 0 : at % b.length;
        b = insert ? Buffer.concat([b.subarray(0, i), Buffer.from([byte]), b.subarray(i)]) : Buffer.from(b.map((x, j) => (j === i ? byte : x)));
      }
      return new Uint8Array(b);
    }),
  );
}
