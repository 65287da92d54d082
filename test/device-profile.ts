/**
 * The device profile of the envelope (docs/device-profile.md) for the tests: the shape of
 * test/vectors/device-profile.json, a literal TypeScript transcription of the profile's rules
 * (profileEnvelope: string concatenation, no JCS, no JSON.stringify), and the cases' inputs
 * as the kernel (signEnvelope) and the C test driver take them.
 */
import { createHash } from 'node:crypto';
import { ENVELOPE_DOMAIN, type EnvelopeInput, Identity, type JsonValue } from '../lib';
import { vector } from './helpers';

/** A payload member: [key, type, value]; ints as decimal strings, strhex as hex of raw bytes (possibly ill-formed UTF-8). */
export type Field =
  | [string, 'int', string]
  | [string, 'ints', string[]]
  | [string, 'str', string]
  | [string, 'strhex', string]
  | [string, 'bool', boolean]
  | [string, 'null', null];

/** The payload of a case: an object's members in the order given, bytes as hex, or count copies of one byte. */
export type CasePayload = { fields: Field[] } | { bytes: string } | { bytesFill: [number, number] };

/** What a signer is given. */
export interface CaseInput {
  name: string;
  seed: string;
  kind?: string;
  seq: string;
  ts: string;
  topic?: string;
  payload: CasePayload;
}

/** Why a profile signer refuses (the Python ProfileError code; the C BOT_E_* of the same name). */
export type ProfileCode = 'key' | 'order' | 'utf8' | 'range' | 'topic' | 'kind' | 'size';

/** A case every profile signer must sign to exactly these bytes. */
export interface ValidCase extends CaseInput {
  did: string;
  /** The canonical envelope without sig, as text (UTF-8 on the wire); absent for large cases. */
  body?: string;
  sig: string;
  /** The whole envelope (the bytes a device publishes and the ledger's leaf), as text; absent for large cases. */
  envelope?: string;
  envelopeBytes: number;
  envelopeSha256: string;
}

/** A case every profile signer must refuse; `kernel` tells what verifyEnvelope does with the same fields. */
export interface InvalidCase extends CaseInput {
  reason: string;
  code: ProfileCode;
  kernel: 'refuses' | 'accepts' | 'not applicable';
  kernelCode?: string;
}

export interface DeviceProfileVectors {
  source: string;
  profile: string;
  domain: string;
  valid: ValidCase[];
  invalid: InvalidCase[];
}

/** C's BOT_E_* codes by name (devices/c/bot_device.h). */
export const C_CODES: Record<ProfileCode, number> = { key: -3, order: -2, utf8: -4, range: -5, topic: -6, kind: -7, size: -10 };

export const VECTORS_FILE = 'device-profile.json';

/** The vectors as stored. */
export function loadVectors(): DeviceProfileVectors {
  return vector<DeviceProfileVectors>(VECTORS_FILE);
}

export const sha256Hex = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');

/** Bytes of a string as UTF-8, lone surrogates written as the 3-byte form a naive encoder makes (WTF-8): what a device might send. */
export function wtf8(s: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const cp = s.codePointAt(i) as number;
    if (cp > 0xffff) i++;
    if (cp < 0x80) out.push(cp);
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 63));
    else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
    else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
  }
  return Buffer.from(out);
}

/** The payload's bytes (binary cases) or undefined. */
export function payloadBytes(p: CasePayload): Buffer | undefined {
  if ('bytes' in p) return Buffer.from(p.bytes, 'hex');
  if ('bytesFill' in p) return Buffer.alloc(p.bytesFill[1], p.bytesFill[0]);
  return undefined;
}

/** What the kernel's signEnvelope takes for a case (strhex members as their UTF-8 decoding). */
export function kernelInput(c: CaseInput): EnvelopeInput {
  const bytes = payloadBytes(c.payload);
  let payload: JsonValue | Uint8Array;
  if (bytes !== undefined) payload = bytes;
  else {
    const obj: Record<string, JsonValue> = {};
    for (const [k, type, v] of (c.payload as { fields: Field[] }).fields) {
      obj[k] =
        type === 'int'
          ? Number(v)
          : type === 'ints'
            ? (v as string[]).map(Number)
            : type === 'strhex'
              ? Buffer.from(v as string, 'hex').toString('utf8')
              : (v as JsonValue);
    }
    payload = obj;
  }
  return { kind: c.kind ?? 'reading', seq: Number(c.seq), ts: Number(c.ts), ...(c.topic !== undefined ? { topic: c.topic } : {}), payload };
}

/** A case as lines for devices/c/test_vectors (its stdin protocol). */
export function cDriverLines(c: CaseInput): string {
  const x = (b: Buffer | string): string => 'x' + (typeof b === 'string' ? wtf8(b) : b).toString('hex');
  const lines = [`case ${c.name.replace(/[^A-Za-z0-9_.-]/g, '_')}`, `seed x${c.seed}`, `seq ${c.seq}`, `ts ${c.ts}`];
  if (c.kind !== undefined) lines.push(`kind ${x(c.kind)}`);
  if (c.topic !== undefined) lines.push(`topic ${x(c.topic)}`);
  const bytes = payloadBytes(c.payload);
  if (bytes !== undefined) lines.push(`bytes ${x(bytes)}`);
  else
    for (const [k, type, v] of (c.payload as { fields: Field[] }).fields) {
      if (type === 'int') lines.push(`int ${x(k)} ${v}`);
      else if (type === 'ints') lines.push(`ints ${x(k)} ${v.join(' ')}`.trimEnd());
      else if (type === 'str') lines.push(`str ${x(k)} ${x(v)}`);
      else if (type === 'strhex') lines.push(`str ${x(k)} x${v}`);
      else if (type === 'bool') lines.push(`bool ${x(k)} ${v ? 1 : 0}`);
      else lines.push(`null ${x(k)}`);
    }
  lines.push('end');
  return lines.join('\n') + '\n';
}

// ---- the profile's rules, transcribed literally (docs/device-profile.md) -------------------

/** A refusal by the profile, with its code. */
export class ProfileRefusal extends Error {
  constructor(
    readonly code: ProfileCode,
    message: string,
  ) {
    super(message);
  }
}

const MAX_SAFE = 9007199254740991n;
const SHORT: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\t': '\\t', '\n': '\\n', '\f': '\\f', '\r': '\\r' };

/** Rule "Strings": well-formed UTF-8; `"` `\` and U+0000–U+001F escaped, nothing else. */
function str(s: string | Buffer): string {
  const b = typeof s === 'string' ? wtf8(s) : s;
  const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let decoded: string;
  try {
    decoded = text.decode(b);
  } catch {
    throw new ProfileRefusal('utf8', 'not well-formed UTF-8');
  }
  let out = '"';
  for (const ch of decoded) {
    const c = ch.codePointAt(0) as number;
    out += SHORT[ch] ?? (c < 0x20 ? '\\u' + c.toString(16).padStart(4, '0') : ch);
  }
  return out + '"';
}

/** Rule "Integers": decimal, no leading zero, no plus, no exponent, |n| ≤ 2^53 − 1 (seq and ts ≥ 0). */
function int(v: string, min: bigint): string {
  const n = BigInt(v);
  if (n < min || n > MAX_SAFE) throw new ProfileRefusal('range', `${v} is out of range`);
  return n.toString();
}

/** Rule "Keys": 1–64 printable ASCII characters other than `"` and `\`, strictly ascending by byte. */
function keys(fields: Field[]): void {
  let last: string | undefined;
  for (const [k] of fields) {
    if (!/^[\x21\x23-\x5b\x5d-\x7e]{1,64}$/.test(k)) throw new ProfileRefusal('key', `bad key ${JSON.stringify(k)}`);
    if (last !== undefined && Buffer.compare(Buffer.from(k, 'ascii'), Buffer.from(last, 'ascii')) <= 0)
      throw new ProfileRefusal('order', `key ${k} is not above ${last}`);
    last = k;
  }
}

/** Rule "Topic". */
function topic(t: string): string {
  const b = wtf8(t);
  if (b.length === 0 || b.length > 4096) throw new ProfileRefusal('topic', 'topic must be 1-4096 bytes');
  const s = str(b); // refuses ill-formed UTF-8 first
  for (const ch of t) {
    const c = ch.codePointAt(0) as number;
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || ch === '+' || ch === '#' || (c >= 0xfdd0 && c <= 0xfdef) || (c & 0xfffe) === 0xfffe)
      throw new ProfileRefusal('topic', `topic must not contain U+${c.toString(16)}`);
  }
  return s;
}

/** The profile's envelope for a case, built by the rules alone; throws ProfileRefusal. */
export function profileEnvelope(c: CaseInput): { body: string; envelope: string; did: string; sig: string } {
  const id = Identity.fromSeed(Buffer.from(c.seed, 'hex'));
  const kind = c.kind ?? 'reading';
  if (!/^[a-z][a-z0-9_-]{0,31}$/.test(kind)) throw new ProfileRefusal('kind', 'bad kind');
  const seq = int(c.seq, 0n);
  const ts = int(c.ts, 0n);
  const bytes = payloadBytes(c.payload);
  let payload: string;
  if (bytes !== undefined) payload = '"' + bytes.toString('base64') + '"';
  else {
    const fields = (c.payload as { fields: Field[] }).fields;
    keys(fields);
    payload =
      '{' +
      fields
        .map(([k, type, v]) => {
          const value =
            type === 'int'
              ? int(v, -MAX_SAFE)
              : type === 'ints'
                ? '[' + v.map((x) => int(x, -MAX_SAFE)).join(',') + ']'
                : type === 'str'
                  ? str(v)
                  : type === 'strhex'
                    ? str(Buffer.from(v, 'hex'))
                    : type === 'bool'
                      ? String(v)
                      : 'null';
          return `"${k}":${value}`;
        })
        .join(',') +
      '}';
  }
  const head = (bytes !== undefined ? '"enc":"base64",' : '') + `"kind":"${kind}","payload":${payload},"seq":${seq},`;
  const tail = `"signer":"${id.did}"` + (c.topic !== undefined ? `,"topic":${topic(c.topic)}` : '') + `,"ts":${ts},"v":1}`;
  const body = '{' + head + tail;
  const sig = id.sign(Buffer.from(ENVELOPE_DOMAIN + body, 'utf8')).toString('base64url');
  const envelope = '{' + head + `"sig":"${sig}",` + tail;
  if (Buffer.byteLength(envelope) > 65535) throw new ProfileRefusal('size', 'envelope above 65535 bytes');
  return { body, envelope, did: id.did, sig };
}
