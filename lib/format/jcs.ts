/**
 * RFC 8785 JSON Canonicalization Scheme (JCS). Signatures are computed over these bytes,
 * so every partner must produce exactly the same ones for the same value.
 *
 * What counts as a JSON value (the policy; README "Formats"):
 * - null, booleans, finite numbers, well-formed strings, arrays and plain objects, made in
 *   ANY realm. Node-RED runs `function` nodes (and JSONata, some context stores) in their own
 *   vm context, whose objects have that context's Object.prototype: a plain object is one
 *   whose prototype is null or is some realm's Object.prototype (a prototype whose own
 *   prototype is null and whose own `constructor` is a function named "Object" with it as
 *   `prototype`), and an array is what Array.isArray says (realm-independent).
 * - Refused with FormatError E_JSON naming where the value is and what was found
 *   ("msg.payload.a.b is a Map"): undefined, functions, symbols, bigints, NaN and ±Infinity,
 *   cycles ("circular"), nesting deeper than 64, lone surrogates (RFC 8785 §3.2.2.2), and
 *   every other object: Map, Set, Date, RegExp, Error, Promise, boxed primitives, class
 *   instances, and Buffer / typed arrays / ArrayBuffer inside a value. A Date or Buffer is
 *   never converted silently (JSON.stringify's toJSON would change its type between what a
 *   flow held and what was signed): convert it first (`d.toISOString()`, `d.getTime()`,
 *   `buf.toString('base64')`). A Buffer or Uint8Array as the whole payload is signed as
 *   base64 with `enc` (lib/format/envelope.ts), from any realm.
 */
import { types } from 'node:util';
import { FormatError } from '../errors';

/** A JSON value as RFC 8259 / I-JSON (RFC 7493) allows it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Deepest nesting of arrays and objects accepted (a bound on recursion for untrusted input). */
export const MAX_JSON_DEPTH = 64;

// Lone surrogates are not I-JSON (RFC 7493 §2.1), which RFC 8785 §3.2.2.2 requires.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** String.prototype.isWellFormed (ES2024, Node ≥ 20): no lone surrogate, checked natively. */
const wellFormed: (s: string) => boolean =
  typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === 'function'
    ? (s) => (s as unknown as { isWellFormed(): boolean }).isWellFormed()
    : (s) => !LONE_SURROGATE.test(s);

const objectToString = Object.prototype.toString;

/**
 * True when proto is the Object.prototype of some realm (this one, a vm context's, an
 * iframe's): its own prototype is null and its own `constructor` is a function named
 * "Object" whose `prototype` is proto. Read through descriptors, so no getter runs.
 */
function isObjectPrototype(proto: object): boolean {
  if (Object.getPrototypeOf(proto) !== null) return false;
  const ctor: unknown = Object.getOwnPropertyDescriptor(proto, 'constructor')?.value;
  if (typeof ctor !== 'function') return false;
  const name: unknown = Object.getOwnPropertyDescriptor(ctor, 'name')?.value;
  const prototype: unknown = Object.getOwnPropertyDescriptor(ctor, 'prototype')?.value;
  return name === 'Object' && prototype === proto;
}

/** True for a plain object of any realm (prototype null or that realm's Object.prototype); arrays are not. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto: object | null = Object.getPrototypeOf(v);
  if (proto === null || proto === Object.prototype) return true; // this realm: the hot path
  return isObjectPrototype(proto);
}

/** What a non-JSON value is, for messages: "a Map", "a Buffer", "an instance of class Reading", "a function". */
export function describeNonJson(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'number') return Number.isNaN(v) ? 'NaN, not a JSON number' : `${v}, not a JSON number`;
  if (typeof v !== 'object' || v === null) return `a ${v === null ? 'null' : typeof v}`;
  if (Buffer.isBuffer(v)) return 'a Buffer';
  const tag = objectToString.call(v).slice(8, -1);
  if (tag !== 'Object') return `a${/^[AEIO]/.test(tag) ? 'n' : ''} ${tag}`;
  let proto: object | null = null;
  try {
    proto = Object.getPrototypeOf(v) as object | null;
  } catch {
    /* a revoked Proxy: no prototype to name */
  }
  const ctor: unknown = proto === null ? undefined : Object.getOwnPropertyDescriptor(proto, 'constructor')?.value;
  const name: unknown = typeof ctor === 'function' ? Object.getOwnPropertyDescriptor(ctor, 'name')?.value : undefined;
  return typeof name === 'string' && name !== '' ? `an instance of class ${name.slice(0, 40)}` : 'an object with a non-plain prototype';
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** A path in JavaScript accessor syntax: root.a.b[3]["odd key"] (long keys cut short). */
function pathText(root: string, keys: readonly (string | number)[]): string {
  let s = root;
  for (const k of keys) {
    if (typeof k === 'number') s += `[${k}]`;
    else if (IDENT.test(k) && k.length <= 40) s += `.${k}`;
    else s += `[${JSON.stringify(k.length > 40 ? k.slice(0, 40) + '…' : k)}]`;
  }
  return s;
}

/** One canonicalization pass: the objects and keys on the way to the value being written, for messages. */
class Writer {
  private readonly objs: object[] = [];
  private readonly keys: (string | number)[] = [];
  constructor(private readonly root: string) {}

  private fail(what: string, extraKey?: string | number): never {
    const keys = extraKey === undefined ? this.keys : [...this.keys, extraKey];
    throw new FormatError('E_JSON', `${pathText(this.root, keys)} ${what}`);
  }

  private str(s: string): string {
    if (!wellFormed(s)) this.fail('contains a lone surrogate (not I-JSON, RFC 8785 §3.2.2.2)');
    // JSON.stringify escapes exactly as RFC 8785 §3.2.2.2 requires: \b \t \n \f \r, \" \\,
    // other controls as \u00xx (lower-case hex), everything else literal.
    return JSON.stringify(s);
  }

  /** Enter an object: past MAX_JSON_DEPTH, the error says "circular" when an object repeats on the way here. */
  private enter(v: object): void {
    this.objs.push(v);
    if (this.objs.length <= MAX_JSON_DEPTH + 1) return;
    // A cycle shorter than the depth limit repeats an object within it: name the first repetition.
    for (let j = 1; j < this.objs.length; j++) {
      const i = this.objs.indexOf(this.objs[j]);
      if (i < j) {
        throw new FormatError(
          'E_JSON',
          `${pathText(this.root, this.keys.slice(0, j))} is circular (it refers back to ${pathText(this.root, this.keys.slice(0, i))})`,
        );
      }
    }
    this.fail(`nests deeper than ${MAX_JSON_DEPTH} levels of arrays and objects`);
  }

  write(v: unknown): string {
    if (v === null) return 'null';
    switch (typeof v) {
      case 'boolean':
        return v ? 'true' : 'false';
      case 'number':
        // RFC 8785 §3.2.2.3: the ECMAScript Number serialization, which is what String() does.
        if (!Number.isFinite(v)) this.fail(`is ${describeNonJson(v)}`);
        return Object.is(v, -0) ? '0' : String(v);
      case 'string':
        return this.str(v);
      case 'object': {
        if (Array.isArray(v)) {
          this.enter(v);
          let out = '[';
          for (let i = 0; i < v.length; i++) {
            this.keys.push(i);
            out += (i === 0 ? '' : ',') + this.write(v[i]);
            this.keys.pop();
          }
          this.objs.pop();
          return out + ']';
        }
        if (!isPlainObject(v)) this.fail(`is ${describeNonJson(v)}, not a JSON value`);
        this.enter(v);
        // RFC 8785 §3.2.3: sort keys by their UTF-16 code units, which is JS's default order.
        const keys = Object.keys(v).sort();
        let out = '{';
        for (let i = 0; i < keys.length; i++) {
          const k = keys[i];
          const x = v[k];
          if (x === undefined) this.fail('is undefined (not a JSON value: delete the property or use null)', k);
          if (!wellFormed(k)) this.fail(`has a key with a lone surrogate (not I-JSON, RFC 8785 §3.2.2.2)`);
          this.keys.push(k);
          out += (i === 0 ? '' : ',') + JSON.stringify(k) + ':' + this.write(x);
          this.keys.pop();
        }
        this.objs.pop();
        return out + '}';
      }
      default:
        return this.fail(`is ${describeNonJson(v)}, not a JSON value`);
    }
  }
}

/**
 * Canonical JSON text of a value (RFC 8785). Throws FormatError E_JSON for non-JSON values,
 * naming where: `root` (default "the value") and the path below it, e.g. "msg.payload.a.b is a Map".
 */
export function canonicalize(value: unknown, root = 'the value'): string {
  if (value === undefined) throw new FormatError('E_JSON', `${root} is missing (undefined is not a JSON value)`);
  return new Writer(root).write(value);
}

/** Canonical UTF-8 bytes of a value (RFC 8785 §3.2.4); `root` names it in error messages. */
export function canonicalBytes(value: unknown, root?: string): Buffer {
  return Buffer.from(canonicalize(value, root), 'utf8');
}

/**
 * The FormatError canonicalize(value, root) would throw, or undefined when value is JSON
 * (bytes count as JSON here: a whole payload of bytes is signed as base64). For nodes: after
 * a signing or verification failed with E_JSON, name the offending value where the flow has it.
 */
export function jsonProblem(value: unknown, root: string): FormatError | undefined {
  if (types.isUint8Array(value)) return undefined;
  try {
    canonicalize(value, root);
    return undefined;
  } catch (err) {
    return err instanceof FormatError ? err : undefined;
  }
}
