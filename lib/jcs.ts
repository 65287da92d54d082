/**
 * RFC 8785 JSON Canonicalization Scheme (JCS). Signatures are computed over these bytes,
 * so every partner must produce exactly the same ones for the same value.
 */
import { FormatError } from './errors';

/** A JSON value as RFC 8259 / I-JSON (RFC 7493) allows it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

// Lone surrogates are not I-JSON (RFC 7493 §2.1), which RFC 8785 §3.2.2.2 requires.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** String.prototype.isWellFormed (ES2024, Node ≥ 20): no lone surrogate, checked natively. */
const wellFormed: (s: string) => boolean = typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === 'function'
  ? (s) => (s as unknown as { isWellFormed(): boolean }).isWellFormed()
  : (s) => !LONE_SURROGATE.test(s);

function str(s: string): string {
  if (!wellFormed(s)) throw new FormatError('E_JSON', 'string contains a lone surrogate (not I-JSON, RFC 8785 §3.2.2.2)');
  // JSON.stringify escapes exactly as RFC 8785 §3.2.2.2 requires: \b \t \n \f \r, \" \\,
  // other controls as \u00xx (lower-case hex), everything else literal.
  return JSON.stringify(s);
}

function write(v: unknown, depth: number): string {
  if (depth > 64) throw new FormatError('E_JSON', 'JSON nesting deeper than 64 levels');
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean': return v ? 'true' : 'false';
    case 'number':
      // RFC 8785 §3.2.2.3: the ECMAScript Number serialization, which is what String() does.
      if (!Number.isFinite(v)) throw new FormatError('E_JSON', 'NaN and Infinity are not JSON numbers');
      return Object.is(v, -0) ? '0' : String(v);
    case 'string': return str(v);
    case 'object': {
      if (Array.isArray(v)) return '[' + v.map((x) => write(x, depth + 1)).join(',') + ']';
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) {
        throw new FormatError('E_JSON', `a ${proto?.constructor?.name ?? 'non-plain'} object is not a JSON value`);
      }
      // RFC 8785 §3.2.3: sort keys by their UTF-16 code units, which is JS's default order.
      const keys = Object.keys(v).sort();
      const parts: string[] = [];
      for (const k of keys) {
        const x = (v as Record<string, unknown>)[k];
        if (x === undefined) throw new FormatError('E_JSON', `property "${k}" is undefined`);
        parts.push(str(k) + ':' + write(x, depth + 1));
      }
      return '{' + parts.join(',') + '}';
    }
    default:
      throw new FormatError('E_JSON', `a ${typeof v} is not a JSON value`);
  }
}

/** Canonical JSON text of a value (RFC 8785). Throws FormatError E_JSON for non-JSON values. */
export function canonicalize(value: unknown): string {
  return write(value, 0);
}

/** Canonical UTF-8 bytes of a value (RFC 8785 §3.2.4). */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalize(value), 'utf8');
}
