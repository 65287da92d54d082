// Browser-side verification of a ledger entry, for the editor's Ledger sidebar: everything is
// recomputed here, in the browser, from the exact bytes the runtime sent, so "verified" does not
// take the runtime's word for it. An ES module, served by the sidebar plugin with the two
// libraries it imports (pure ESM, the package's own dependencies):
//   - RFC 8785 (JCS) canonical JSON of the envelope without `sig`;
//   - Ed25519 (RFC 8032) of "bot-envelope-v1\n" ‖ JCS(envelope without sig), under the runtime's strict rule
//     (lib/format/identity.ts): cofactorless, S < L, canonical A and R, neither of small order;
//   - RFC 6962 leaf hash SHA-256(0x00 ‖ leaf) and node hash SHA-256(0x01 ‖ l ‖ r);
//   - RFC 9162 §2.1.3.2 inclusion proof verification against the checkpoint's root;
//   - C2SP signed-note: the operator's Ed25519 signature (key ID = SHA-256(origin ‖ "\n" ‖ 0x01 ‖ key)[:4])
//     over the C2SP tlog-checkpoint body.
import { sha256, sha512 } from '../vendor/hashes/sha2.js';
import * as ed from '../vendor/ed25519/index.js';

ed.hashes.sha512 = sha512; // synchronous verify, also where WebCrypto is unavailable (plain http)

const enc = new TextEncoder();
const ENVELOPE_DOMAIN = 'bot-envelope-v1\n';
const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** Canonical JSON text of a JSON value (RFC 8785: keys sorted by UTF-16 code units, ES number and string serialization). */
export function canonicalize(v) {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean': return v ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(v)) throw new Error('NaN and Infinity are not JSON numbers');
      return Object.is(v, -0) ? '0' : String(v);
    case 'string': return JSON.stringify(v);
    case 'object':
      if (Array.isArray(v)) return '[' + v.map(canonicalize).join(',') + ']';
      return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + canonicalize(v[k])).join(',') + '}';
    default: throw new Error(`a ${typeof v} is not a JSON value`);
  }
}

/** Standard base64 (with padding) → bytes. */
export function fromBase64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Bytes → standard base64. */
export function toBase64(b) {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return btoa(s);
}

/** Unpadded base64url → bytes (strict: the canonical encoding only). */
export function fromBase64Url(s) {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new Error('not base64url');
  const b = fromBase64(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
  if (toBase64(b).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_') !== s) throw new Error('not canonical base64url');
  return b;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/** The 32-byte Ed25519 public key of a did:key (multibase base58btc `z`, multicodec 0xed01); refuses weak keys as the runtime does. */
export function didPublicKey(did) {
  if (typeof did !== 'string' || !did.startsWith('did:key:z')) throw new Error('not a did:key');
  const s = did.slice('did:key:z'.length);
  let n = 0n;
  for (const c of s) {
    const d = B58.indexOf(c);
    if (d < 0) throw new Error('not base58btc');
    n = n * 58n + BigInt(d);
  }
  const bytes = [];
  while (n > 0n) { bytes.unshift(Number(n & 0xffn)); n >>= 8n; }
  for (const c of s) { if (c !== '1') break; bytes.unshift(0); }
  if (bytes.length !== 34 || bytes[0] !== 0xed || bytes[1] !== 0x01) throw new Error('did:key is not an Ed25519 key');
  const pub = Uint8Array.from(bytes.slice(2));
  const problem = pointProblem(pub);
  if (problem) throw new Error(`did:key holds an invalid key: ${problem}`);
  return pub;
}

const P = (1n << 255n) - 19n;
const L = (1n << 252n) + 27742317777372353535851937790883648493n;

function leInt(b) {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]);
  return n;
}

/**
 * Why 32 bytes are not a point the strict rule accepts as A or R (RFC 8032 §5.1.3 decoding with y < p and
 * no x = -0, on the curve, not of small order), or null; with the decoded point in out.point.
 */
function pointProblem(b, out = {}) {
  if (b.length !== 32) return 'not 32 bytes';
  if ((leInt(b) & ((1n << 255n) - 1n)) >= P) return 'non-canonical encoding (y >= p)';
  let point;
  try { point = ed.Point.fromBytes(b, false); } catch { return 'not a canonical encoding of a curve point'; }
  if (point.isSmallOrder()) return 'a point of small order (a weak key)';
  out.point = point;
  return null;
}

/** RFC 6962 §2.1 leaf hash: SHA-256(0x00 ‖ leaf). */
export function leafHash(leaf) { return sha256(concat(Uint8Array.of(0), leaf)); }

/** RFC 6962 §2.1 interior node hash: SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(l, r) { return sha256(concat(Uint8Array.of(1), l, r)); }

/** RFC 9162 §2.1.3.2: whether proof shows the leaf hash at index in a tree of size with this root. */
export function verifyInclusion(index, size, hash, proof, root) {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) return false;
  let fn = index;
  let sn = size - 1;
  let r = hash;
  for (const p of proof) {
    if (p.length !== 32 || sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(r, root);
}

/** Split a C2SP signed note into its text (ending in a newline) and signature lines {name, keyId, sig}. */
export function parseNote(note) {
  if (!note.endsWith('\n')) throw new Error('a note ends with a newline');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new Error('a note has a blank line before its signatures');
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2).split('\n');
  lines.pop();
  const signatures = lines.map((l) => {
    const m = /^\u2014 (\S+) (\S+)$/.exec(l);
    if (!m) throw new Error('malformed signature line');
    const raw = fromBase64(m[2]);
    return { name: m[1], keyId: raw.slice(0, 4), sig: raw.slice(4) };
  });
  return { text, signatures };
}

/** C2SP tlog-checkpoint body: origin, size, root (the first three lines). */
export function parseCheckpoint(text) {
  const lines = text.split('\n');
  if (lines.length < 4 || !/^(0|[1-9][0-9]*)$/.test(lines[1])) throw new Error('malformed checkpoint');
  const root = fromBase64(lines[2]);
  if (root.length !== 32) throw new Error('checkpoint root is not 32 bytes');
  return { origin: lines[0], size: Number(lines[1]), root };
}

/** C2SP signed-note key ID of an Ed25519 (type 0x01) key: SHA-256(name ‖ "\n" ‖ 0x01 ‖ key)[:4]. */
export function noteKeyId(name, pub) { return sha256(concat(enc.encode(name), Uint8Array.of(0x0a, 0x01), pub)).slice(0, 4); }

/**
 * Ed25519 verification under the runtime's strict rule (lib/format/identity.ts): RFC 8032 §5.1.7 with S < L,
 * canonical A and R, neither of small order, and the cofactorless equation: the encoding of [S]B - [k]A
 * must be R's bytes. (noble's own `zip215: false` is cofactored and would accept what OpenSSL refuses.)
 */
export function verifyEd25519(sig, msg, pub) {
  if (!(sig instanceof Uint8Array) || !(msg instanceof Uint8Array) || !(pub instanceof Uint8Array)) return false;
  if (sig.length !== 64 || pub.length !== 32) return false;
  const a = {};
  const r = sig.subarray(0, 32);
  const s = leInt(sig.subarray(32));
  if (s >= L || pointProblem(pub, a) !== null || pointProblem(r) !== null) return false;
  const k = leInt(sha512(concat(r, pub, msg))) % L;
  return equal(ed.Point.BASE.multiply(s, false).subtract(a.point.multiply(k, false)).toBytes(), r);
}

/** Verify a C2SP signed note's Ed25519 (type 0x01) signature by key name and public key; returns the note text. */
export function verifyNoteSignature(note, name, pub) {
  const { text, signatures } = parseNote(note);
  const id = noteKeyId(name, pub);
  const sig = signatures.find((s) => s.name === name && equal(s.keyId, id));
  if (!sig) throw new Error(`no signature line of key ${name}`);
  if (!verifyEd25519(sig.sig, enc.encode(text), pub)) throw new Error(`the signature of ${name} does not verify`);
  return text;
}

/** Verify the operator's signature on a checkpoint note (key name = origin); returns the parsed checkpoint. */
export function verifyCheckpoint(note, origin, pub) {
  const cp = parseCheckpoint(verifyNoteSignature(note, origin, pub));
  if (cp.origin !== origin) throw new Error(`checkpoint origin ${cp.origin} is not ${origin}`);
  return cp;
}

/** Verify an envelope's Ed25519 signature over "bot-envelope-v1\n" ‖ JCS(envelope without sig). */
export function verifyEnvelopeSignature(env) {
  if (!env || typeof env !== 'object' || typeof env.sig !== 'string') throw new Error('no sig');
  const { sig, ...body } = env;
  const s = fromBase64Url(sig);
  if (s.length !== 64) throw new Error('a signature is 64 bytes');
  const pub = didPublicKey(env.signer);
  if (!verifyEd25519(s, enc.encode(ENVELOPE_DOMAIN + canonicalize(body)), pub)) throw new Error('the signature does not verify');
}

function check(f) {
  try { const value = f(); return { ok: true, value }; } catch (err) { return { ok: false, reason: err.message }; }
}

/**
 * Check an entry as the sidebar's entry endpoint sends it ({index, leaf (base64), leafHash,
 * checkpoint: {size, note} | null, proof, operator, origin}). Each part: {ok, reason?}.
 */
export function verifyEntry(d) {
  const leaf = fromBase64(d.leaf);
  let envelope = null;
  const envelopeCheck = check(() => {
    envelope = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(leaf));
    if (canonicalize(envelope) !== new TextDecoder().decode(leaf)) throw new Error('the leaf is not the canonical JSON of its envelope');
    return envelope;
  });
  const signature = envelopeCheck.ok ? check(() => verifyEnvelopeSignature(envelope)) : { ok: false, reason: envelopeCheck.reason };
  const hash = leafHash(leaf);
  const leafCheck = check(() => { if (toBase64(hash) !== d.leafHash) throw new Error('the leaf hash sent does not match the leaf'); return toBase64(hash); });
  let checkpoint;
  let inclusion;
  if (!d.checkpoint) {
    checkpoint = { ok: false, reason: 'no signed checkpoint covers this entry yet (pending)' };
    inclusion = { ok: false, reason: 'pending' };
  } else {
    checkpoint = check(() => verifyCheckpoint(d.checkpoint.note, d.origin, didPublicKey(d.operator)));
    inclusion = checkpoint.ok
      ? check(() => {
        if (checkpoint.value.size !== d.checkpoint.size) throw new Error('checkpoint size mismatch');
        if (!verifyInclusion(d.index, checkpoint.value.size, hash, d.proof.map(fromBase64), checkpoint.value.root)) throw new Error('the inclusion proof does not reproduce the checkpoint root');
        return true;
      })
      : { ok: false, reason: 'the checkpoint is not verified' };
  }
  return { envelope, envelopeCheck, signature, leaf: leafCheck, checkpoint, inclusion, verified: envelopeCheck.ok && signature.ok && leafCheck.ok && checkpoint.ok && inclusion.ok };
}
