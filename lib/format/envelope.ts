/**
 * Envelopes: the signed unit of everything the ledger stores (docs/design.md "Envelope").
 *
 *   {"v":1,"kind","signer","seq","ts","topic"?,"payload","enc"?,"sig"}
 *
 * `sig` is Ed25519 (RFC 8032) over "bot-envelope-v1\n" ‖ JCS(envelope without sig)
 * (RFC 8785); the Merkle leaf is JCS(envelope with sig). Parsing is strict: an envelope is
 * either exactly well-formed or refused with a FormatError naming the field.
 */
import * as crypto from 'node:crypto';
import { types } from 'node:util';
import { fromBase64, fromBase64Url, toBase64, toBase64Url } from './bytes';
import { FormatError, VerificationError } from '../errors';
import { type DidKey, type Identity, PublicKey } from './identity';
import { canonicalize, describeNonJson, isPlainObject, type JsonValue } from './jcs';
import { topicNameProblem } from './topic';

/** Domain separation prefix of envelope signatures. */
export const ENVELOPE_DOMAIN = 'bot-envelope-v1\n';
/**
 * Default maximum size of one envelope's canonical bytes (the ledger's entry limit): 65535, the
 * largest entry a tlog-tiles entry bundle can carry (its length is a big-endian uint16, tlog-tiles
 * "Log entries"), so a ledger with the defaults can serve every entry as tiles.
 */
export const DEFAULT_MAX_ENTRY_BYTES = 65535;

const KIND = /^[a-z][a-z0-9_-]{0,31}$/;
const FIELDS = new Set(['v', 'kind', 'signer', 'seq', 'ts', 'topic', 'payload', 'enc', 'sig']);
const MAX_TOPIC = 4096;

/** The fields of an envelope, as a JSON object. */
export interface Envelope {
  v: 1;
  kind: string;
  signer: DidKey;
  seq: number;
  ts: number;
  topic?: string;
  payload: JsonValue;
  enc?: 'base64';
  sig: string;
}

/** What a signer supplies; `payload` may be a Buffer, carried as base64 with `enc`. */
export interface EnvelopeInput {
  kind: string;
  seq: number;
  ts: number;
  topic?: string;
  payload: JsonValue | Uint8Array;
}

/** Limits applied while parsing untrusted envelopes. */
export interface EnvelopeLimits {
  maxBytes?: number;
  /** Always verify the signature, even of a leaf this process checked before (the audit). */
  fresh?: boolean;
}

/**
 * An envelope whose signature has been checked (or that was just signed here), with its
 * canonical leaf bytes. Only signEnvelope, verifyEnvelope and trusted storage reads make
 * one, so holding a SignedEnvelope means "valid", and appending it needs no second check.
 */
export class SignedEnvelope {
  readonly envelope: Readonly<Envelope>;
  /** JCS of the whole envelope: the Merkle leaf (docs/design.md "Leaf"). */
  readonly bytes: Buffer;
  readonly signer: PublicKey;

  /** @internal construct through signEnvelope / verifyEnvelope / fromTrustedLeaf. */
  constructor(envelope: Envelope, bytes: Buffer, signer: PublicKey, token: symbol) {
    if (token !== INTERNAL) throw new TypeError('use signEnvelope or verifyEnvelope');
    this.envelope = Object.freeze(envelope);
    this.bytes = bytes;
    this.signer = signer;
  }

  /** The payload as the signer meant it: a Buffer when `enc` is base64, else the JSON value. */
  decodedPayload(): JsonValue | Buffer {
    return this.envelope.enc === 'base64' ? fromBase64(this.envelope.payload as string, 'payload') : this.envelope.payload;
  }

  toJSON(): Envelope {
    return this.envelope;
  }
}

const INTERNAL = Symbol('SignedEnvelope');

/**
 * Leaves this process signed or verified recently, by signature. A flow hands envelopes
 * from node to node as plain objects (bot-sign → bot-append, bot-verify → bot-append);
 * when the canonical bytes of one equal a leaf already checked here, its signature is
 * known to be valid and need not be verified twice. Bounded, oldest forgotten first.
 */
// Two generations of at most RECENT_MAX / 2 each, the older dropped whole: deleting a Map's
// first key one at a time costs a scan over the entries deleted before it (V8 keeps them until
// it rehashes), 10-15 µs per signature once full.
let recentlyChecked = new Map<string, string>();
let olderChecked = new Map<string, string>();
const RECENT_MAX = 32768; // about 5 MiB: a sig prefix and a SHA-256 per entry
const recentKey = (sig: string): string => sig.slice(0, 24);
const recentDigest = (sig: string): string | undefined => recentlyChecked.get(recentKey(sig)) ?? olderChecked.get(recentKey(sig));
const digest = (leaf: Buffer): string => crypto.createHash('sha256').update(leaf).digest('base64');
function remember(sig: string, leaf: Buffer): void {
  if (recentlyChecked.size >= RECENT_MAX / 2) {
    olderChecked = recentlyChecked;
    recentlyChecked = new Map();
  }
  recentlyChecked.set(recentKey(sig), digest(leaf));
}

/**
 * Canonical text of the envelope without `sig` (what is signed), and a function giving the
 * leaf (with `sig`) from the same JCS pass: fields are sorted once and "sig" is spliced in
 * at its sorted place.
 */
function canonicalForms(env: Omit<Envelope, 'sig'>): { body: string; leaf: (sig: string) => string } {
  const parts: string[] = [];
  let sigAt = -1;
  for (const k of Object.keys(env).sort()) {
    const v = (env as unknown as Record<string, unknown>)[k];
    if (v === undefined) continue;
    if (sigAt < 0 && k > 'sig') sigAt = parts.length;
    parts.push(`"${k}":${canonicalize(v, k)}`);
  }
  if (sigAt < 0) sigAt = parts.length;
  return {
    body: '{' + parts.join(',') + '}',
    leaf: (sig) => '{' + [...parts.slice(0, sigAt), `"sig":${JSON.stringify(sig)}`, ...parts.slice(sigAt)].join(',') + '}',
  };
}

/** Sign a payload as an envelope with the given identity. */
export function signEnvelope(id: Identity, input: EnvelopeInput, limits: EnvelopeLimits = {}): SignedEnvelope {
  const p = prepareEnvelope(id.publicKey, input, limits);
  return p.finish(id.sign(p.message));
}

/** An envelope checked and canonicalized, waiting for its Ed25519 signature (lib/format/sign-pool.ts signs elsewhere). */
export interface PreparedEnvelope {
  /** The exact bytes to sign: "bot-envelope-v1\n" ‖ JCS(envelope without sig) (RFC 8785, RFC 8032). */
  readonly message: Buffer;
  /** The SignedEnvelope from the 64-byte signature of `message` by the signer's key. */
  finish(signature: Uint8Array): SignedEnvelope;
}

/** Length of `,"sig":"<86 base64url characters>"` in a leaf: its size is known before signing. */
const SIG_FIELD_BYTES = 95;

/**
 * Check and canonicalize an envelope for `signer` (what signEnvelope does before and after
 * its one signature), so the signature can be made on another thread: the same bytes, the
 * same envelope. Throws what signEnvelope throws (E_ENVELOPE, E_JSON, E_TOO_LARGE).
 */
export function prepareEnvelope(signer: PublicKey, input: EnvelopeInput, limits: EnvelopeLimits = {}): PreparedEnvelope {
  const env: Omit<Envelope, 'sig'> & { sig?: string } = {
    v: 1,
    kind: input.kind,
    signer: signer.did,
    seq: input.seq,
    ts: input.ts,
    // types.isUint8Array, not instanceof: a Buffer or Uint8Array from another realm (a
    // Node-RED function node's vm context) is bytes too.
    payload: types.isUint8Array(input.payload) ? toBase64(input.payload) : input.payload,
  };
  if (input.topic !== undefined) env.topic = input.topic;
  if (types.isUint8Array(input.payload)) env.enc = 'base64';
  checkFields(env, false, true);
  const forms = canonicalForms(env);
  const message = Buffer.from(ENVELOPE_DOMAIN + forms.body, 'utf8');
  checkSize(message.length - ENVELOPE_DOMAIN.length + SIG_FIELD_BYTES, limits);
  return {
    message,
    finish(signature: Uint8Array): SignedEnvelope {
      const sig = toBase64Url(signature);
      const bytes = Buffer.from(forms.leaf(sig), 'utf8');
      checkSize(bytes.length, limits);
      env.sig = sig;
      remember(sig, bytes);
      return new SignedEnvelope(env as Envelope, bytes, signer, INTERNAL);
    },
  };
}

/**
 * Parse an untrusted envelope (object, JSON text or bytes) strictly and verify its
 * signature. Throws FormatError (E_ENVELOPE, E_JSON, E_DID, E_TOO_LARGE) or
 * VerificationError (E_SIGNATURE).
 */
export function verifyEnvelope(input: unknown, limits: EnvelopeLimits = {}): SignedEnvelope {
  const env = parseEnvelope(input, limits);
  const signer = PublicKey.fromDid(env.signer);
  const sigBytes = fromBase64Url(env.sig, 'sig');
  const { sig, ...rest } = env;
  const { body, leaf } = canonicalForms(rest);
  const bytes = Buffer.from(leaf(sig), 'utf8');
  checkSize(bytes.length, limits);
  if (limits.fresh || recentDigest(sig) !== digest(bytes)) {
    if (!signer.verify(Buffer.from(ENVELOPE_DOMAIN + body, 'utf8'), sigBytes)) {
      throw new VerificationError('E_SIGNATURE', `envelope signature does not verify for signer ${env.signer} seq ${env.seq}`);
    }
    remember(sig, bytes);
  }
  return new SignedEnvelope(env, bytes, signer, INTERNAL);
}

/**
 * Rebuild a SignedEnvelope from leaf bytes read back from our own store without checking
 * the signature again (the audit checks it). The bytes must be canonical.
 */
export function fromTrustedLeaf(bytes: Buffer): SignedEnvelope {
  const env = parseWith(bytes, { maxBytes: Infinity }, false);
  return new SignedEnvelope(env, bytes, PublicKey.fromDid(env.signer), INTERNAL);
}

/** Parse an envelope's structure strictly, without verifying its signature. */
export function parseEnvelope(input: unknown, limits: EnvelopeLimits = {}): Envelope {
  return parseWith(input, limits, true);
}

/** parseEnvelope; strictTopic false only for leaves already stored (written under the older, laxer topic rule). */
function parseWith(input: unknown, limits: EnvelopeLimits, strictTopic: boolean): Envelope {
  let obj: unknown = input;
  if (typeof input === 'string' || types.isUint8Array(input)) {
    const len = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
    checkSize(len, limits);
    try {
      obj = JSON.parse(typeof input === 'string' ? input : Buffer.from(input).toString('utf8'));
    } catch {
      throw new FormatError('E_ENVELOPE', 'envelope is not valid JSON');
    }
  }
  // isPlainObject, not a prototype comparison: an envelope parsed or built in another realm
  // (a Node-RED function node's vm context) is a JSON object too.
  if (!isPlainObject(obj)) {
    const what =
      obj === undefined
        ? 'nothing (it is missing)'
        : obj === null
          ? 'null'
          : Array.isArray(obj)
            ? 'an array'
            : typeof obj === 'object'
              ? describeNonJson(obj)
              : `a ${typeof obj}`;
    throw new FormatError('E_ENVELOPE', `envelope must be a JSON object, got ${what}`);
  }
  // A caller's object is copied, never frozen or kept: its msg stays its own.
  const e = obj === input ? { ...(obj as Record<string, unknown>) } : (obj as Record<string, unknown>);
  checkFields(e, true, false, strictTopic);
  return e as unknown as Envelope;
}

function checkSize(n: number, limits: EnvelopeLimits): void {
  const max = limits.maxBytes ?? DEFAULT_MAX_ENTRY_BYTES;
  if (n > max) throw new FormatError('E_TOO_LARGE', `envelope is ${n} bytes, above the limit of ${max}`);
}

function fail(msg: string): never {
  throw new FormatError('E_ENVELOPE', msg);
}

function isUint(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

function checkFields(e: Record<string, unknown>, withSig: boolean, ownSigner = false, strictTopic = true): void {
  for (const k of Object.keys(e)) if (!FIELDS.has(k) && e[k] !== undefined) fail(`unknown field "${k.slice(0, 40)}"`);
  // Described, never serialized: a peer's value may be nested thousands deep (RangeError).
  if (e.v !== 1)
    fail(
      `unsupported envelope version ${typeof e.v === 'number' ? String(e.v) : `of type ${e.v === null ? 'null' : Array.isArray(e.v) ? 'array' : typeof e.v}`} (expected 1)`,
    );
  if (typeof e.kind !== 'string' || !KIND.test(e.kind)) fail('kind must match [a-z][a-z0-9_-]{0,31}');
  if (typeof e.signer !== 'string') fail('signer must be a did:key string');
  if (!ownSigner) PublicKey.fromDid(e.signer);
  if (!isUint(e.seq)) fail('seq must be a non-negative integer');
  if (!isUint(e.ts)) fail('ts must be a non-negative integer (milliseconds since the epoch)');
  if (e.topic !== undefined) {
    if (typeof e.topic !== 'string' || e.topic.length === 0 || e.topic.length > MAX_TOPIC)
      fail(`topic must be a non-empty string of at most ${MAX_TOPIC} characters`);
    if (/[+#\u0000]/.test(e.topic)) fail('topic must not contain MQTT wildcards (+, #) or NUL');
    // A legal MQTT topic name (MQTT 3.1.1 §1.5.3): it is matched against topic filters, ends up
    // in index keys (lib/store/layout.ts) and may be published to.
    const problem = strictTopic ? topicNameProblem(e.topic) : undefined;
    if (problem !== undefined) fail(`topic is not a legal MQTT topic name: ${problem}`);
  }
  if (!('payload' in e) || e.payload === undefined) fail('payload is missing');
  if (e.enc !== undefined) {
    if (e.enc !== 'base64') fail('enc must be "base64" when present');
    if (typeof e.payload !== 'string') fail('a payload with enc "base64" must be a base64 string');
    try {
      fromBase64(e.payload, 'payload');
    } catch {
      fail('payload is not canonical base64');
    }
  }
  if (withSig) {
    if (typeof e.sig !== 'string') fail('sig is missing');
    let sig: Buffer;
    try {
      sig = fromBase64Url(e.sig, 'sig');
    } catch {
      fail('sig is not canonical unpadded base64url');
    }
    if (sig.length !== 64) fail(`sig must be 64 bytes, got ${sig.length}`);
  }
}
