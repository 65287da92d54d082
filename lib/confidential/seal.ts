/**
 * Sealed entries (docs/design.md "Confidential entries"): an entry of a confidential scope is
 * stored as an envelope of kind `sealed`, signed by the gateway that sealed it, whose payload
 * is the device's original signed envelope encrypted under the scope's key of one epoch:
 *
 *   {"v":1,"kind":"sealed","signer":<sealer>,"seq","ts","topic"?:<the inner envelope's topic>,
 *    "payload":{"scope":<id>,"epoch":<n>,"alg":"A256GCM","nonce":<base64, 12 bytes>,
 *               "ct":<base64: AES-256-GCM ciphertext ‖ 16-byte tag>},"sig"}
 *
 * AEAD: AES-256-GCM (NIST SP 800-38D, RFC 5116 AEAD_AES_256_GCM) from node:crypto, a random
 * 96-bit nonce per entry. Plaintext: the JCS leaf bytes of the inner envelope. Associated data:
 * "bot-sealed-v1\n" ‖ JCS({alg, epoch, kind, ledger:<origin>, scope, seq, signer, topic?, ts})
 * — the ledger's origin, the scope and epoch, and every field of the outer envelope but its
 * payload's ciphertext and its signature — so a sealed payload moved to another entry (other
 * signer or seq), ledger, scope, epoch or topic no longer opens. The outer envelope is an
 * ordinary signed envelope: leaf hashes, proofs, checkpoints and audits need no key.
 */
import * as crypto from 'node:crypto';
import { fromBase64, toBase64 } from '../format/bytes';
import { FormatError, VerificationError } from '../errors';
import { type EnvelopeInput, type EnvelopeLimits, type SignedEnvelope, signEnvelope, verifyEnvelope } from '../format/envelope';
import type { Identity } from '../format/identity';
import { canonicalize, isPlainObject, type JsonValue } from '../format/jcs';

/** Kind of a sealed entry. */
export const SEALED_KIND = 'sealed';
/** The content AEAD (RFC 5116 AEAD_AES_256_GCM; JOSE name, RFC 7518 §5.3). */
export const CONTENT_ALG = 'A256GCM';
/** Domain separation of the associated data. */
export const SEALED_DOMAIN = 'bot-sealed-v1\n';
/** Bytes of a scope key (AES-256). */
export const SCOPE_KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const SCOPE_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** The payload of a sealed envelope. */
export interface SealedPayload {
  scope: string;
  epoch: number;
  alg: typeof CONTENT_ALG;
  nonce: string;
  ct: string;
}

/** Whether a value is a well-formed scope id: 1-64 characters of A-Z a-z 0-9 . _ - */
export function isScopeId(v: unknown): v is string {
  return typeof v === 'string' && SCOPE_ID.test(v);
}

function bad(msg: string): FormatError {
  return new FormatError('E_ENVELOPE', `sealed entry: ${msg}`);
}

/** Parse a sealed envelope's payload strictly (E_ENVELOPE naming the field). */
export function parseSealedPayload(v: unknown): SealedPayload {
  if (!isPlainObject(v)) throw bad('payload must be an object {scope, epoch, alg, nonce, ct}');
  for (const k of Object.keys(v)) if (!['scope', 'epoch', 'alg', 'nonce', 'ct'].includes(k)) throw bad(`unknown field ${JSON.stringify(k.slice(0, 40))}`);
  if (!isScopeId(v.scope)) throw bad('scope must be 1-64 characters of A-Z a-z 0-9 . _ -');
  if (typeof v.epoch !== 'number' || !Number.isSafeInteger(v.epoch) || v.epoch < 0) throw bad('epoch must be a non-negative integer');
  if (v.alg !== CONTENT_ALG) throw bad(`alg must be "${CONTENT_ALG}"`);
  if (typeof v.nonce !== 'string' || fromBase64(v.nonce, 'nonce').length !== NONCE_BYTES) throw bad(`nonce must be ${NONCE_BYTES} bytes of base64`);
  if (typeof v.ct !== 'string' || fromBase64(v.ct, 'ct').length < TAG_BYTES) throw bad('ct must be base64 of the ciphertext and its tag');
  return { scope: v.scope, epoch: v.epoch, alg: CONTENT_ALG, nonce: v.nonce, ct: v.ct };
}

/** The outer envelope's fields the associated data binds (all but payload.nonce/ct and sig). */
export interface SealedHeader {
  kind: string;
  signer: string;
  seq: number;
  ts: number;
  topic?: string;
}

/** The associated data of a sealed payload (see the file comment): binds origin, scope, epoch and the outer envelope's fields. */
export function sealedAad(origin: string, outer: SealedHeader, scope: string, epoch: number): Buffer {
  const ad: Record<string, JsonValue> = {
    alg: CONTENT_ALG,
    epoch,
    kind: outer.kind,
    ledger: origin,
    scope,
    seq: outer.seq,
    signer: outer.signer,
    ts: outer.ts,
  };
  if (outer.topic !== undefined) ad.topic = outer.topic;
  return Buffer.from(SEALED_DOMAIN + canonicalize(ad), 'utf8');
}

/** What sealing needs: the ledger, the scope and epoch, and that epoch's key. */
export interface SealKey {
  origin: string;
  scope: string;
  epoch: number;
  key: Buffer;
}

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== SCOPE_KEY_BYTES) throw new FormatError('E_KEY', `a scope key is ${SCOPE_KEY_BYTES} bytes`);
}

/**
 * The fields of a sealed envelope, before its signature: the inner envelope's leaf bytes
 * encrypted under the epoch's key (AES-256-GCM, random nonce, associated data sealedAad) for
 * the sealer `sealerDid` at `seq` and `ts`. Sign them with the sealer's key (signEnvelope, or a
 * SignPool off the event loop): the same envelope sealEnvelope makes.
 */
export function sealedInput(sealerDid: string, inner: SignedEnvelope, k: SealKey, seq: number, ts: number): EnvelopeInput {
  checkKey(k.key);
  if (!isScopeId(k.scope)) throw bad('scope must be 1-64 characters of A-Z a-z 0-9 . _ -');
  const topic = inner.envelope.topic;
  const header: SealedHeader = { kind: SEALED_KIND, signer: sealerDid, seq, ts, ...(topic !== undefined ? { topic } : {}) };
  const nonce = crypto.randomBytes(NONCE_BYTES);
  const c = crypto.createCipheriv('aes-256-gcm', k.key, nonce, { authTagLength: TAG_BYTES });
  c.setAAD(sealedAad(k.origin, header, k.scope, k.epoch));
  const ct = Buffer.concat([c.update(inner.bytes), c.final(), c.getAuthTag()]);
  const payload: SealedPayload = { scope: k.scope, epoch: k.epoch, alg: CONTENT_ALG, nonce: toBase64(nonce), ct: toBase64(ct) };
  return { kind: SEALED_KIND, seq, ts, ...(topic !== undefined ? { topic } : {}), payload: payload as unknown as JsonValue };
}

/**
 * Seal a verified envelope for a confidential scope: a `sealed` envelope signed by `sealer`
 * (seq from its persistent counter), carrying the inner envelope's topic, its leaf bytes
 * encrypted under the epoch's key (AES-256-GCM, random nonce, associated data sealedAad).
 */
export function sealEnvelope(sealer: Identity, inner: SignedEnvelope, k: SealKey, seq: number, ts: number, limits: EnvelopeLimits = {}): SignedEnvelope {
  return signEnvelope(sealer, sealedInput(sealer.did, inner, k, seq, ts), limits);
}

/** Whether an envelope is a sealed entry (by its kind; its payload is checked when opened). */
export function isSealed(env: SignedEnvelope | { kind: string }): boolean {
  return ('envelope' in env ? env.envelope.kind : env.kind) === SEALED_KIND;
}

/** The scope and epoch a sealed envelope names (E_ENVELOPE when malformed): which key opens it. */
export function sealedScope(outer: SignedEnvelope): { scope: string; epoch: number } {
  if (!isSealed(outer)) throw bad(`an envelope of kind ${JSON.stringify(outer.envelope.kind)} is not sealed`);
  const p = parseSealedPayload(outer.envelope.payload);
  return { scope: p.scope, epoch: p.epoch };
}

/**
 * Open a sealed envelope of ledger `origin` with its epoch's key and verify what it carries:
 * E_DECRYPT when the ciphertext does not open (wrong key, tampered, or moved to another
 * entry, ledger, scope or epoch) or the inner topic differs from the outer; the inner
 * envelope's own signature is verified (E_SIGNATURE), so a reader checks the device too.
 */
export function openSealed(outer: SignedEnvelope, origin: string, key: Uint8Array, limits: EnvelopeLimits = {}): SignedEnvelope {
  checkKey(key);
  const p = parseSealedPayload(outer.envelope.payload);
  const e = outer.envelope;
  const all = fromBase64(p.ct, 'ct');
  let pt: Buffer;
  try {
    const d = crypto.createDecipheriv('aes-256-gcm', key, fromBase64(p.nonce, 'nonce'), { authTagLength: TAG_BYTES });
    d.setAAD(sealedAad(origin, e, p.scope, p.epoch));
    d.setAuthTag(all.subarray(all.length - TAG_BYTES));
    pt = Buffer.concat([d.update(all.subarray(0, all.length - TAG_BYTES)), d.final()]);
  } catch {
    throw new VerificationError(
      'E_DECRYPT',
      `sealed entry of ${e.signer} seq ${e.seq} does not open with the key of scope ${p.scope} epoch ${p.epoch} of ${origin} (another key, tampered, or moved)`,
    );
  }
  const inner = verifyEnvelope(pt, { maxBytes: limits.maxBytes ?? Math.max(pt.length, 1), fresh: true });
  if (inner.envelope.topic !== e.topic) {
    throw new VerificationError('E_DECRYPT', `sealed entry of ${e.signer} seq ${e.seq}: the sealed envelope's topic is not the entry's topic`);
  }
  return inner;
}
