/**
 * Signed notes and transparency-log checkpoints and cosignatures, after the C2SP specs
 * (pinned versions):
 *
 * - c2sp.org/signed-note@v1.0.0: the note format, key names, key IDs, verifier keys and the
 *   Ed25519 signature type 0x01;
 * - c2sp.org/tlog-checkpoint@v1.0.0: the checkpoint body (origin, tree size, root hash,
 *   extension lines);
 * - c2sp.org/tlog-cosignature@v1.0.1: timestamped Ed25519 witness cosignatures, type 0x04.
 *
 * Parsing is strict: anything the specs forbid is a FormatError('E_NOTE'); a signature from
 * a known key that does not verify is a VerificationError('E_SIGNATURE').
 */
import * as crypto from 'node:crypto';
import { fromBase64, toBase64, toHex } from './bytes';
import { FormatError, VerificationError } from '../errors';
import { Identity, PublicKey } from './identity';

/** Limits applied when parsing a note (signed-note "Format": verifiers SHOULD limit, MUST accept 16). */
export interface NoteLimits {
  /** Largest note accepted, in UTF-8 bytes. */
  maxBytes: number;
  /** Most signature lines accepted. */
  maxSignatures: number;
}

/** Default parsing limits: 1 MiB and 100 signature lines (signed-note "Format"). */
export const NOTE_LIMITS: Readonly<NoteLimits> = Object.freeze({ maxBytes: 1 << 20, maxSignatures: 100 });

/** Signature type 0x01, Ed25519 over the note text (signed-note "Ed25519 signatures"). */
export const SIG_ED25519 = 0x01;
/** Signature type 0x04, timestamped Ed25519 cosignature (tlog-cosignature "Format"). */
export const SIG_COSIGNATURE_V1 = 0x04;
/** A signature type this module implements. */
export type NoteKeyType = typeof SIG_ED25519 | typeof SIG_COSIGNATURE_V1;

/** One signature line of a note (signed-note "Signatures"). */
export interface NoteSignature {
  /** The key name. */
  name: string;
  /** The 4-byte key ID (big-endian uint32). */
  keyId: Buffer;
  /** The signature bytes after the key ID. */
  sig: Buffer;
  /** The whole line as it appeared, including its final newline. */
  line: string;
}

/** A note split into its text and signature lines, not yet verified (signed-note "Format"). */
export interface Note {
  /** The note text, including its final newline but not the separating blank line. */
  text: string;
  /** The signature lines, in order. */
  signatures: NoteSignature[];
}

const EM_DASH_SPACE = '\u2014 ';
const CONTROL = /[\x00-\x09\x0B-\x1F]/; // ASCII controls below U+0020 except newline
const LONE_SURROGATE = /\p{Cs}/u; // a string that cannot be encoded as UTF-8
const KEY_NAME = /^[^\p{White_Space}+\x00-\x1F]+$/u;
const HEX_ID = /^[0-9a-f]{8}$/;
const TREE_SIZE = /^(?:0|[1-9][0-9]*)$/;
const COSIG_HEADER = 'cosignature/v1\n';

function noteError(msg: string): FormatError {
  return new FormatError('E_NOTE', msg);
}

/** Reject text a signed note may not contain: invalid UTF-8 or ASCII controls other than \n (signed-note "Format"). */
function checkChars(s: string, what: string): void {
  if (LONE_SURROGATE.test(s)) throw noteError(`${what} is not valid UTF-8`);
  if (CONTROL.test(s)) throw noteError(`${what} contains an ASCII control character other than newline`);
}

/** Whether a key name is valid: non-empty, no Unicode spaces, no '+' (signed-note "Format"). */
export function isValidKeyName(name: string): boolean {
  return typeof name === 'string' && KEY_NAME.test(name) && !LONE_SURROGATE.test(name);
}

function checkKeyName(name: string): void {
  if (!isValidKeyName(name)) {
    throw noteError(`invalid key name ${JSON.stringify(String(name).slice(0, 80))}: it must be non-empty, with no spaces or '+'`);
  }
}

function checkText(text: string): void {
  if (typeof text !== 'string' || !text.endsWith('\n')) throw noteError('note text must end with a newline');
  checkChars(text, 'note text');
}

/** Split a note into text and signature lines, checking structure only, no verification (signed-note "Format"). */
export function parseNote(note: string | Uint8Array, limits: NoteLimits = NOTE_LIMITS): Note {
  let s: string;
  if (typeof note === 'string') {
    if (note.length > limits.maxBytes || Buffer.byteLength(note, 'utf8') > limits.maxBytes) {
      throw new FormatError('E_TOO_LARGE', `note is larger than ${limits.maxBytes} bytes`);
    }
    s = note;
  } else if (note instanceof Uint8Array) {
    if (note.length > limits.maxBytes) throw new FormatError('E_TOO_LARGE', `note is larger than ${limits.maxBytes} bytes`);
    const b = Buffer.from(note.buffer, note.byteOffset, note.byteLength);
    s = b.toString('utf8'); // keeps a BOM; invalid sequences become U+FFFD and fail the round trip
    if (!Buffer.from(s, 'utf8').equals(b)) throw noteError('note is not valid UTF-8');
  } else {
    throw noteError('note must be text or bytes');
  }
  checkChars(s, 'note');
  if (!s.endsWith('\n')) throw noteError('note must end with a newline');
  const split = s.lastIndexOf('\n\n');
  if (split < 0) throw noteError('note has no blank line before its signatures');
  const text = s.slice(0, split + 1);
  const lines = s.slice(split + 2).split('\n');
  lines.pop(); // the empty string after the final newline
  if (lines.length === 0) throw noteError('note has no signature lines');
  if (lines.length > limits.maxSignatures) throw noteError(`note has more than ${limits.maxSignatures} signature lines`);
  const signatures = lines.map((l) => parseSignatureLine(l));
  return { text, signatures };
}

/** Parse one signature line `— <name> <base64(keyID || sig)>`, without its newline (signed-note "Signatures"). */
function parseSignatureLine(l: string): NoteSignature {
  if (!l.startsWith(EM_DASH_SPACE)) throw noteError('signature line does not start with an em dash and a space');
  const rest = l.slice(EM_DASH_SPACE.length);
  const sp = rest.indexOf(' ');
  if (sp < 0) throw noteError('signature line has no space between key name and signature');
  const name = rest.slice(0, sp);
  checkKeyName(name);
  let raw: Buffer;
  try {
    raw = fromBase64(rest.slice(sp + 1));
  } catch {
    throw noteError(`signature of key ${JSON.stringify(name)} is not valid base64`);
  }
  if (raw.length < 5) throw noteError(`signature of key ${JSON.stringify(name)} is shorter than a key ID and one byte`);
  return { name, keyId: raw.subarray(0, 4), sig: raw.subarray(4), line: l + '\n' };
}

/** Assemble a signed note: text, a blank line, then the signature lines (signed-note "Format"). */
export function formatNote(text: string, sigLines: string[]): string {
  checkText(text);
  const note = text + '\n' + sigLines.map((l) => (l.endsWith('\n') ? l : l + '\n')).join('');
  const parsed = parseNote(note);
  if (parsed.text !== text || parsed.signatures.length !== sigLines.length) {
    throw noteError('signature lines must be single lines');
  }
  return note;
}

/** Key ID = SHA-256(name || 0x0A || type || public key)[:4] (signed-note "Signatures"; tlog-cosignature "Format"). */
export function noteKeyId(name: string, type: NoteKeyType, pub: Uint8Array): Buffer {
  checkKeyName(name);
  const h = crypto.createHash('sha256');
  h.update(Buffer.from(name, 'utf8'));
  h.update(Buffer.from([0x0a, type]));
  h.update(pub);
  return h.digest().subarray(0, 4);
}

/** The message an Ed25519 cosigner signs: header, time line, checkpoint body (tlog-cosignature "Ed25519 signed message"). */
export function cosignatureMessage(checkpointText: string, timeSec: number): Buffer {
  return Buffer.from(`${COSIG_HEADER}time ${timeSec}\n${checkpointText}`, 'utf8');
}

/** A key that can check note signatures of type 0x01 or 0x04 (signed-note "Verifier keys"). */
export class NoteVerifier {
  readonly name: string;
  readonly keyId: Buffer;
  readonly type: NoteKeyType;
  readonly publicKey: PublicKey;

  private constructor(name: string, type: NoteKeyType, publicKey: PublicKey) {
    this.name = name;
    this.type = type;
    this.publicKey = publicKey;
    this.keyId = noteKeyId(name, type, publicKey.bytes);
  }

  /** Parse a vkey `<name>+<hex key ID>+<base64(type || public key)>`, checking the key ID (signed-note "Verifier keys"). */
  static parse(vkey: string): NoteVerifier {
    if (typeof vkey !== 'string') throw noteError('verifier key must be text');
    const p1 = vkey.indexOf('+');
    const p2 = p1 < 0 ? -1 : vkey.indexOf('+', p1 + 1);
    if (p2 < 0) throw noteError('verifier key must be <name>+<hex key ID>+<base64 key>');
    const name = vkey.slice(0, p1);
    const hexId = vkey.slice(p1 + 1, p2);
    checkKeyName(name);
    if (!HEX_ID.test(hexId)) throw noteError('verifier key ID must be 8 lowercase hex digits');
    let raw: Buffer;
    try {
      raw = fromBase64(vkey.slice(p2 + 1));
    } catch {
      throw noteError('verifier key is not valid base64');
    }
    if (raw.length !== 33 || (raw[0] !== SIG_ED25519 && raw[0] !== SIG_COSIGNATURE_V1)) {
      throw noteError('verifier key is not an Ed25519 (type 0x01) or cosignature (type 0x04) key');
    }
    let pk: PublicKey;
    try {
      pk = PublicKey.fromBytes(raw.subarray(1));
    } catch {
      throw noteError('verifier key holds an invalid Ed25519 public key');
    }
    const v = new NoteVerifier(name, raw[0] as NoteKeyType, pk);
    if (toHex(v.keyId) !== hexId) throw noteError(`verifier key ID ${hexId} does not match its name and key`);
    return v;
  }

  /** An Ed25519 note verifier, type 0x01 (signed-note "Ed25519 signatures"). */
  static ed25519(name: string, pk: PublicKey): NoteVerifier {
    return new NoteVerifier(name, SIG_ED25519, pk);
  }

  /** An Ed25519 cosigner verifier, type 0x04 (tlog-cosignature "Format"). */
  static cosigner(name: string, pk: PublicKey): NoteVerifier {
    return new NoteVerifier(name, SIG_COSIGNATURE_V1, pk);
  }

  /** The vkey text `<name>+<hex key ID>+<base64(type || public key)>` (signed-note "Verifier keys"). */
  toString(): string {
    return `${this.name}+${toHex(this.keyId)}+${toBase64(Buffer.concat([Buffer.from([this.type]), this.publicKey.bytes]))}`;
  }

  /**
   * Check one signature line over a note text: for 0x01 an Ed25519 signature over the text
   * (signed-note "Ed25519 signatures"); for 0x04 a u64 timestamp then an Ed25519 signature over
   * the cosigned message (tlog-cosignature "Format", "Ed25519 signed message"). The timestamp
   * is returned when the cosignature verifies.
   */
  verifyLine(text: string, s: NoteSignature): { ok: boolean; timestamp?: number } {
    if (s.name !== this.name || !s.keyId.equals(this.keyId)) return { ok: false };
    if (this.type === SIG_ED25519) {
      return { ok: this.publicKey.verify(Buffer.from(text, 'utf8'), s.sig) };
    }
    if (s.sig.length !== 8 + 64) return { ok: false };
    const ts = s.sig.readBigUInt64BE(0);
    // The spec caps timestamps at 2^63-1 and lets verifiers reject future ones; we also
    // refuse any beyond 2^53-1 (some 285 million years ahead) so the number is exact.
    if (ts > BigInt(Number.MAX_SAFE_INTEGER)) return { ok: false };
    const timestamp = Number(ts);
    const ok = this.publicKey.verify(cosignatureMessage(text, timestamp), s.sig.subarray(8));
    return ok ? { ok, timestamp } : { ok };
  }
}

/** The signer key text `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>`, as Go's note package writes it. */
export function formatSignerKey(name: string, identity: Identity): string {
  const id = noteKeyId(name, SIG_ED25519, identity.publicKey.bytes);
  return `PRIVATE+KEY+${name}+${toHex(id)}+${toBase64(Buffer.concat([Buffer.from([SIG_ED25519]), identity.exportSeed()]))}`;
}

/**
 * Parse a signer key `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>`, checking the
 * key ID against the name and derived public key (the form Go's note package writes).
 */
export function parseSignerKey(skey: string): { name: string; identity: Identity } {
  const parts = typeof skey === 'string' ? skey.trim().split('+') : [];
  if (parts.length < 5 || parts[0] !== 'PRIVATE' || parts[1] !== 'KEY') {
    throw noteError('signer key must be PRIVATE+KEY+<name>+<hex key ID>+<base64 key>');
  }
  const [, , name, hexId] = parts;
  checkKeyName(name);
  if (!HEX_ID.test(hexId)) throw noteError('signer key ID must be 8 lowercase hex digits');
  let raw: Buffer;
  try {
    raw = fromBase64(parts.slice(4).join('+'));
  } catch {
    throw noteError('signer key is not valid base64');
  } // base64 may hold '+'
  if (raw.length !== 33 || raw[0] !== SIG_ED25519) throw noteError('signer key is not an Ed25519 (type 0x01) key');
  const identity = Identity.fromSeed(raw.subarray(1));
  if (toHex(noteKeyId(name, SIG_ED25519, identity.publicKey.bytes)) !== hexId) {
    throw noteError('signer key ID does not match its name and key');
  }
  return { name, identity };
}

function sigLine(name: string, payload: Buffer): string {
  return `${EM_DASH_SPACE}${name} ${toBase64(payload)}\n`;
}

/** Sign a note text with Ed25519 (type 0x01); returns `— <name> <base64>\n` (signed-note "Ed25519 signatures"). */
export function signNoteLine(text: string, name: string, id: Identity): string {
  checkText(text);
  const keyId = noteKeyId(name, SIG_ED25519, id.publicKey.bytes);
  return sigLine(name, Buffer.concat([keyId, id.sign(Buffer.from(text, 'utf8'))]));
}

/** Cosign a checkpoint body at a time (type 0x04); returns `— <name> <base64>\n` (tlog-cosignature "Format"). */
export function cosignLine(checkpointText: string, name: string, id: Identity, timeSec: number): string {
  parseCheckpoint(checkpointText);
  if (!Number.isSafeInteger(timeSec) || timeSec < 0) throw noteError('cosignature time must be a non-negative integer number of seconds');
  const keyId = noteKeyId(name, SIG_COSIGNATURE_V1, id.publicKey.bytes);
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64BE(BigInt(timeSec));
  const sig = id.sign(cosignatureMessage(checkpointText, timeSec));
  return sigLine(name, Buffer.concat([keyId, ts, sig]));
}

/** A note whose signatures were checked (signed-note "Signatures"). */
export interface VerifiedNote {
  /** The note text; trust it only because at least one known key verified it. */
  text: string;
  /** One entry per known key that signed (the first of any repeated lines), in note order. */
  verified: { verifier: NoteVerifier; timestamp?: number }[];
  /** Signature lines of unknown keys, ignored (identical repeats dropped). */
  unknown: NoteSignature[];
}

/**
 * Parse and verify a note (signed-note "Signatures"): signatures from unknown keys (name and
 * key ID not both matching) are ignored; every signature from a known key must verify, else
 * the whole note is rejected; at least one known key must have signed.
 */
export function openNote(note: string | Uint8Array, verifiers: NoteVerifier[], limits: NoteLimits = NOTE_LIMITS): VerifiedNote {
  const known = new Map<string, NoteVerifier>();
  for (const v of verifiers) {
    const k = `${v.name}+${toHex(v.keyId)}`;
    const prev = known.get(k);
    if (prev && (prev.type !== v.type || !prev.publicKey.bytes.equals(v.publicKey.bytes))) {
      throw noteError(`two different verifiers share the name and key ID ${k}`);
    }
    known.set(k, v);
  }
  const { text, signatures } = parseNote(note, limits);
  const verified: VerifiedNote['verified'] = [];
  const seen = new Set<NoteVerifier>();
  const unknown: NoteSignature[] = [];
  const unknownLines = new Set<string>();
  for (const s of signatures) {
    const v = known.get(`${s.name}+${toHex(s.keyId)}`);
    if (!v) {
      if (!unknownLines.has(s.line)) unknown.push(s);
      unknownLines.add(s.line);
      continue;
    }
    const r = v.verifyLine(text, s);
    if (!r.ok) throw new VerificationError('E_SIGNATURE', `signature of known key ${s.name}+${toHex(s.keyId)} does not verify`);
    if (seen.has(v)) continue;
    seen.add(v);
    verified.push(r.timestamp === undefined ? { verifier: v } : { verifier: v, timestamp: r.timestamp });
  }
  if (verified.length === 0) throw new VerificationError('E_SIGNATURE', 'no signature from a known key');
  return { text, verified, unknown };
}

/** A parsed checkpoint body (tlog-checkpoint "Note text"). */
export interface Checkpoint {
  /** Line 1, the log's origin. */
  origin: string;
  /** Line 2, the tree size. */
  size: number;
  /** Line 3, the 32-byte RFC 6962 root hash. */
  root: Buffer;
  /** Lines 4 onward, opaque extension lines (each non-empty). */
  extensions: string[];
  /** The body text these fields were parsed from. */
  text: string;
}

/** The checkpoint body `<origin>\n<size>\n<base64 root>\n`, no extension lines (tlog-checkpoint "Note text"). */
export function formatCheckpoint(origin: string, size: number, root: Uint8Array): string {
  if (typeof origin !== 'string' || origin === '' || origin.includes('\n')) throw noteError('checkpoint origin must be one non-empty line');
  checkChars(origin, 'checkpoint origin');
  if (!Number.isSafeInteger(size) || size < 0) throw noteError('checkpoint tree size must be a non-negative safe integer');
  if (!(root instanceof Uint8Array) || root.length !== 32) throw noteError('checkpoint root hash must be 32 bytes');
  return `${origin}\n${size}\n${toBase64(root)}\n`;
}

/** Parse a checkpoint body: origin, decimal size, base64 32-byte root, extension lines (tlog-checkpoint "Note text"). */
export function parseCheckpoint(text: string): Checkpoint {
  checkText(text);
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw noteError('checkpoint has fewer than three lines');
  if (lines.some((l) => l === '')) throw noteError('checkpoint has an empty line');
  const [origin, sizeText, rootText, ...extensions] = lines;
  if (!TREE_SIZE.test(sizeText)) throw noteError('checkpoint tree size is not a decimal without leading zeros');
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) throw noteError('checkpoint tree size is above 2^53-1');
  let root: Buffer;
  try {
    root = fromBase64(rootText);
  } catch {
    throw noteError('checkpoint root hash is not valid base64');
  }
  if (root.length !== 32) throw noteError(`checkpoint root hash is ${root.length} bytes, not 32`);
  return { origin, size, root, extensions, text };
}

/** A checkpoint signed by the log with Ed25519, key name = origin (tlog-checkpoint "Signatures"). */
export function signCheckpoint(origin: string, size: number, root: Uint8Array, id: Identity): string {
  const body = formatCheckpoint(origin, size, root);
  return formatNote(body, [signNoteLine(body, origin, id)]);
}
