/**
 * Key epochs of confidential scopes (docs/design.md "Confidential entries"), all as signed
 * ledger entries, so that any copy of the ledger (the owner's, a mirror's, what a partner read)
 * tells which epochs exist and who holds which:
 *
 *   enckey   signed by a reader (its Ed25519 identity): {"suite":<HPKE suite>,"key":<base64 X25519 public key>}
 *   epoch    signed by the operator: {"ledger":<origin>,"scope":<id>,"epoch":<n>,"topics":[MQTT filters],
 *            "kid":<base64url SHA-256("bot-scope-key-v1\n" ‖ key)>,"readers":[did…],"revoked"?:[did…]}
 *   keywrap  signed by the operator, one per reader per epoch:
 *            {"ledger","scope","epoch","reader":<did>,"suite","recipient":<the reader's enckey envelope>,
 *             "enc":<base64>,"ct":<base64>}
 *
 * A keywrap is HPKE base mode (RFC 9180 §6.1 SealBase) of the 32-byte scope key to the
 * recipient's X25519 key with info = "bot-keywrap-v1\n" ‖ JCS({epoch, key:<recipient key>,
 * ledger, reader, scope, suite}) and empty aad. The rules KeyEpochs applies, entry by entry in
 * ledger order: only the operator's entries count; a scope's epochs are numbered 0, 1, 2… with
 * no gap (another is ignored); a keywrap counts only for an epoch already declared, not for a
 * reader that epoch revoked, carrying an enckey envelope that reader signed, and only the first
 * per (scope, epoch, reader). An epoch's `readers` are those it was declared for; a reader added
 * later (a new grant) holds an epoch by its keywrap alone. Malformed entries stay in the ledger as evidence and change nothing.
 */
import * as crypto from 'node:crypto';
import { fromBase64, toBase64, toBase64Url } from '../format/bytes';
import { BotError, FormatError, VerificationError } from '../errors';
import { type EnvelopeInput, SignedEnvelope, verifyEnvelope } from '../format/envelope';
import { type DidKey, PublicKey } from '../format/identity';
import { canonicalize, isPlainObject, type JsonValue } from '../format/jcs';
import { checkTopicFilter, topicMatches } from '../format/topic';
import { checkSuite, type EncryptionKey, HPKE_SUITES, type HpkeSuiteName, openBase, sealBase } from './hpke';
import { isScopeId, SCOPE_KEY_BYTES } from './seal';

/** Kind of a reader's encryption-key envelope. */
export const ENCKEY_KIND = 'enckey';
/** Kind of an epoch declaration. */
export const EPOCH_KIND = 'epoch';
/** Kind of a wrapped scope key. */
export const KEYWRAP_KIND = 'keywrap';
/** Domain separation of the HPKE info of a keywrap. */
export const KEYWRAP_DOMAIN = 'bot-keywrap-v1\n';
const KID_DOMAIN = 'bot-scope-key-v1\n';
const MAX_READERS = 1000;
const MAX_TOPICS = 256;

/** A reader's published encryption key, once its envelope verified. */
export interface ReaderKey {
  reader: DidKey;
  suite: HpkeSuiteName;
  key: Buffer;
  envelope: SignedEnvelope;
}

/** An epoch as the ledger declares it. */
export interface EpochRecord {
  scope: string;
  epoch: number;
  topics: string[];
  kid: string;
  readers: DidKey[];
  revoked: DidKey[];
  /** Ledger index and ts of the epoch entry. */
  index: number;
  ts: number;
}

/** A wrapped key as the ledger holds it. */
export interface KeywrapRecord {
  scope: string;
  epoch: number;
  reader: DidKey;
  suite: HpkeSuiteName;
  recipient: ReaderKey;
  enc: Buffer;
  ct: Buffer;
  index: number;
}

function bad(msg: string): FormatError {
  return new FormatError('E_KEY', msg);
}

function only(o: Record<string, unknown>, keys: string[], what: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw bad(`${what} has an unknown field ${JSON.stringify(k.slice(0, 40))}`);
}

function uint(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(`${what} must be a non-negative integer`);
  return v;
}

function dids(v: unknown, what: string, allowEmpty: boolean): DidKey[] {
  if (!Array.isArray(v) || (!allowEmpty && v.length === 0) || v.length > MAX_READERS) throw bad(`${what} must be a list of at most ${MAX_READERS} did:key`);
  const out = v.map((d) => {
    if (typeof d !== 'string') throw bad(`${what} must be did:key strings`);
    return PublicKey.fromDid(d).did;
  });
  if (new Set(out).size !== out.length) throw bad(`${what} lists a did:key twice`);
  return out;
}

/** The key id of a scope key: base64url SHA-256("bot-scope-key-v1\n" ‖ key), published in its epoch entry. */
export function scopeKeyId(key: Uint8Array): string {
  return toBase64Url(crypto.createHash('sha256').update(KID_DOMAIN).update(key).digest());
}

/** A fresh random scope key (32 bytes, AES-256). */
export function newScopeKey(): Buffer {
  return crypto.randomBytes(SCOPE_KEY_BYTES);
}

// ------------------------------------------------------------------ enckey

/** The envelope fields of a reader's encryption-key publication (sign it with the reader's Ed25519 identity). */
export function encryptionKeyInput(key: EncryptionKey, seq: number, ts: number): EnvelopeInput {
  return { kind: ENCKEY_KIND, seq, ts, payload: { suite: key.suite, key: toBase64(key.publicKey) } };
}

/** Verify a reader's encryption-key envelope (object, text or bytes): signed by its reader, a known suite, a 32-byte key; E_KEY otherwise. */
export function readerKey(input: unknown): ReaderKey {
  const env = input instanceof SignedEnvelope ? input : verifyEnvelope(input, { maxBytes: 4096 });
  const e = env.envelope;
  if (e.kind !== ENCKEY_KIND) throw bad(`an encryption key is an envelope of kind "${ENCKEY_KIND}", not ${JSON.stringify(e.kind)}`);
  const p = e.payload;
  if (!isPlainObject(p)) throw bad('an encryption key payload is {suite, key}');
  only(p, ['suite', 'key'], 'an encryption key');
  const suite = checkSuite(p.suite);
  if (typeof p.key !== 'string') throw bad('encryption key: key must be base64');
  const key = fromBase64(p.key, 'encryption key');
  const n = HPKE_SUITES[suite].publicKeyBytes;
  if (key.length !== n) throw bad(`encryption key: a key of ${suite} is ${n} bytes`);
  return { reader: e.signer, suite, key, envelope: env };
}

// ------------------------------------------------------------------ epoch and keywrap entries

/** The terms of an epoch entry. */
export interface EpochTerms {
  ledger: string;
  scope: string;
  epoch: number;
  topics: string[];
  kid: string;
  readers: DidKey[];
  revoked?: DidKey[];
}

/** Parse an epoch payload strictly (E_KEY naming the field). */
export function parseEpochTerms(v: unknown): EpochTerms {
  if (!isPlainObject(v)) throw bad('an epoch payload must be an object');
  only(v, ['ledger', 'scope', 'epoch', 'topics', 'kid', 'readers', 'revoked'], 'an epoch');
  if (typeof v.ledger !== 'string' || v.ledger === '') throw bad('epoch ledger must be the origin');
  if (!isScopeId(v.scope)) throw bad('epoch scope must be a scope id');
  const epoch = uint(v.epoch, 'epoch');
  if (!Array.isArray(v.topics) || v.topics.length === 0 || v.topics.length > MAX_TOPICS)
    throw bad(`epoch topics must be 1 to ${MAX_TOPICS} MQTT topic filters`);
  const topics = v.topics.map((t) => {
    if (typeof t !== 'string') throw bad('epoch topics must be MQTT topic filters');
    try {
      checkTopicFilter(t);
    } catch {
      throw bad('epoch topics must be MQTT topic filters (MQTT 3.1.1 §4.7.1)');
    }
    return t;
  });
  if (typeof v.kid !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(v.kid)) throw bad('epoch kid must be a base64url SHA-256');
  const readers = dids(v.readers, 'epoch readers', false);
  const t: EpochTerms = { ledger: v.ledger, scope: v.scope, epoch, topics, kid: v.kid, readers };
  if (v.revoked !== undefined) t.revoked = dids(v.revoked, 'epoch revoked', true);
  return t;
}

/** The envelope fields of an epoch declaration (sign it with the operator's key). */
export function epochInput(t: EpochTerms, seq: number, ts: number): EnvelopeInput {
  return { kind: EPOCH_KIND, seq, ts, payload: parseEpochTerms(t) as unknown as JsonValue };
}

/** The HPKE info of a keywrap: binds ledger, scope, epoch, reader, suite and the recipient key. */
export function keywrapInfo(ledger: string, scope: string, epoch: number, reader: string, suite: HpkeSuiteName, recipientKey: Uint8Array): Buffer {
  return Buffer.from(KEYWRAP_DOMAIN + canonicalize({ epoch, key: toBase64(recipientKey), ledger, reader, scope, suite }), 'utf8');
}

/** Wrap a scope key to a reader (HPKE SealBase, RFC 9180 §6.1): the envelope fields of its keywrap entry. */
export async function keywrapInput(
  ledger: string,
  scope: string,
  epoch: number,
  key: Uint8Array,
  recipient: ReaderKey,
  seq: number,
  ts: number,
): Promise<EnvelopeInput> {
  if (key.length !== SCOPE_KEY_BYTES) throw bad(`a scope key is ${SCOPE_KEY_BYTES} bytes`);
  const info = keywrapInfo(ledger, scope, epoch, recipient.reader, recipient.suite, recipient.key);
  const { enc, ct } = await sealBase(recipient.suite, recipient.key, info, Buffer.alloc(0), key);
  const payload = {
    ledger,
    scope,
    epoch,
    reader: recipient.reader,
    suite: recipient.suite,
    recipient: recipient.envelope.toJSON() as unknown as JsonValue,
    enc: toBase64(enc),
    ct: toBase64(ct),
  };
  return { kind: KEYWRAP_KIND, seq, ts, payload };
}

function parseKeywrap(v: unknown, index: number): { ledger: string } & KeywrapRecord {
  if (!isPlainObject(v)) throw bad('a keywrap payload must be an object');
  only(v, ['ledger', 'scope', 'epoch', 'reader', 'suite', 'recipient', 'enc', 'ct'], 'a keywrap');
  if (typeof v.ledger !== 'string' || v.ledger === '') throw bad('keywrap ledger must be the origin');
  if (!isScopeId(v.scope)) throw bad('keywrap scope must be a scope id');
  const epoch = uint(v.epoch, 'keywrap epoch');
  if (typeof v.reader !== 'string') throw bad('keywrap reader must be a did:key');
  const reader = PublicKey.fromDid(v.reader).did;
  const suite = checkSuite(v.suite);
  const recipient = readerKey(v.recipient);
  if (recipient.reader !== reader) throw bad("the keywrap's recipient key is not signed by its reader");
  if (recipient.suite !== suite) throw bad("the keywrap's suite is not its recipient key's");
  if (typeof v.enc !== 'string' || typeof v.ct !== 'string') throw bad('keywrap enc and ct must be base64');
  return { ledger: v.ledger, scope: v.scope, epoch, reader, suite, recipient, enc: fromBase64(v.enc, 'enc'), ct: fromBase64(v.ct, 'ct'), index };
}

/** Unwrap a scope key with the reader's own key (HPKE OpenBase, RFC 9180 §6.1) and check it against its epoch's kid; E_DECRYPT otherwise. */
export async function unwrapScopeKey(origin: string, w: KeywrapRecord, kid: string, key: EncryptionKey): Promise<Buffer> {
  if (!key.publicKey.equals(w.recipient.key))
    throw new VerificationError('E_NO_KEY', `scope ${w.scope} epoch ${w.epoch} is wrapped to another encryption key of ${w.reader}`);
  const info = keywrapInfo(origin, w.scope, w.epoch, w.reader, w.suite, w.recipient.key);
  const sk = await openBase(w.suite, key, w.enc, info, Buffer.alloc(0), w.ct);
  if (sk.length !== SCOPE_KEY_BYTES || scopeKeyId(sk) !== kid) {
    throw new VerificationError('E_DECRYPT', `the key wrapped for scope ${w.scope} epoch ${w.epoch} is not the key its epoch entry names`);
  }
  return sk;
}

// ------------------------------------------------------------------ the state machine

/** One scope as the ledger shows it. */
export interface ScopeView {
  scope: string;
  topics: string[];
  epochs: (EpochRecord & { holders: DidKey[] })[];
}

/**
 * Which epochs of which confidential scopes exist, and who holds a wrapped key of each,
 * rebuilt from a ledger's entries alone (apply each in index order): the owner's ledger, a
 * mirror's copy or entries a partner read with proofs give the same state.
 */
export class KeyEpochs {
  readonly origin: string;
  readonly operator: DidKey;
  #epochs = new Map<string, EpochRecord[]>();
  #wraps = new Map<string, KeywrapRecord>();
  #holders = new Map<string, DidKey[]>();
  #last = -1;

  constructor(origin: string, operator: string) {
    this.origin = origin;
    this.operator = PublicKey.fromDid(operator).did;
  }

  /** Index of the last entry applied (-1 when none). */
  get lastIndex(): number {
    return this.#last;
  }

  /**
   * Take one verified entry into account (entries of other kinds or signers are ignored);
   * returns true when it changed the state. Entries must come in index order; one at or below
   * the last applied is ignored, so feeding overlapping pages is harmless.
   */
  apply(env: SignedEnvelope, index: number): boolean {
    if (index <= this.#last) return false;
    this.#last = index;
    const e = env.envelope;
    if (e.signer !== this.operator || (e.kind !== EPOCH_KIND && e.kind !== KEYWRAP_KIND)) return false;
    try {
      if (e.kind === EPOCH_KIND) {
        const t = parseEpochTerms(e.payload);
        if (t.ledger !== this.origin) return false;
        const list = this.#epochs.get(t.scope) ?? [];
        if (t.epoch !== list.length) return false; // epochs are numbered without a gap
        list.push({ scope: t.scope, epoch: t.epoch, topics: t.topics, kid: t.kid, readers: t.readers, revoked: t.revoked ?? [], index, ts: e.ts });
        this.#epochs.set(t.scope, list);
        return true;
      }
      const w = parseKeywrap(e.payload, index);
      if (w.ledger !== this.origin) return false;
      const ep = this.#epochs.get(w.scope)?.[w.epoch];
      if (!ep || ep.revoked.includes(w.reader)) return false;
      const k = wrapKey(w.scope, w.epoch, w.reader);
      if (this.#wraps.has(k)) return false;
      this.#wraps.set(k, w);
      const h = `${w.scope}\n${w.epoch}`;
      this.#holders.set(h, [...(this.#holders.get(h) ?? []), w.reader]);
      return true;
    } catch (err) {
      if (err instanceof BotError) return false; // malformed: evidence, no effect
      throw err;
    }
  }

  /** The epochs of a scope, oldest first (empty when the scope is not declared). */
  epochs(scope: string): readonly EpochRecord[] {
    return this.#epochs.get(scope) ?? [];
  }

  /** The newest epoch of a scope. */
  current(scope: string): EpochRecord | undefined {
    const l = this.#epochs.get(scope);
    return l?.[l.length - 1];
  }

  /** The keywrap of a scope's epoch for a reader, when the ledger holds one. */
  wrap(scope: string, epoch: number, reader: string): KeywrapRecord | undefined {
    return this.#wraps.get(wrapKey(scope, epoch, reader));
  }

  /** The confidential scope whose current topics match a topic (the first declared), if any. */
  scopeOf(topic: string | undefined): string | undefined {
    if (topic === undefined) return undefined;
    for (const [scope, list] of this.#epochs) if (list[list.length - 1].topics.some((f) => topicMatches(f, topic))) return scope;
    return undefined;
  }

  /** Every scope with its epochs and who holds each (a keywrap in the ledger). */
  view(): ScopeView[] {
    return [...this.#epochs.entries()].map(([scope, list]) => ({
      scope,
      topics: list[list.length - 1].topics,
      epochs: list.map((ep) => ({ ...ep, holders: [...(this.#holders.get(`${scope}\n${ep.epoch}`) ?? [])] })),
    }));
  }

  /** Ledger indexes of the entries a reader needs: every epoch entry, and the keywraps to it. */
  entriesFor(reader: string): number[] {
    const out: number[] = [];
    for (const list of this.#epochs.values()) for (const ep of list) out.push(ep.index);
    for (const w of this.#wraps.values()) if (w.reader === reader) out.push(w.index);
    return out.sort((a, b) => a - b);
  }
}

function wrapKey(scope: string, epoch: number, reader: string): string {
  return `${scope}\n${epoch}\n${reader}`;
}

/**
 * A reader's keys: its own X25519 key and the key epochs it has seen; unwraps a scope key
 * once (HPKE, then checked against the epoch's kid) and keeps it in memory. Used by partners
 * and by the owner (which wraps every epoch to its own key too, so its ledger alone, plus its
 * one X25519 secret, restores every scope key).
 */
export class Keyring {
  readonly epochs: KeyEpochs;
  readonly key: EncryptionKey;
  readonly reader: DidKey;
  #keys = new Map<string, Buffer>();

  constructor(epochs: KeyEpochs, reader: string, key: EncryptionKey) {
    this.epochs = epochs;
    this.reader = PublicKey.fromDid(reader).did;
    this.key = key;
  }

  /** Whether a key of this scope and epoch is wrapped to this reader in the entries seen. */
  holds(scope: string, epoch: number): boolean {
    return this.#keys.has(`${scope}\n${epoch}`) || this.epochs.wrap(scope, epoch, this.reader) !== undefined;
  }

  /** The key of a scope's epoch: E_NO_KEY when none is wrapped to this reader (never granted, or sealed after a revocation). */
  async keyOf(scope: string, epoch: number): Promise<Buffer> {
    const id = `${scope}\n${epoch}`;
    const known = this.#keys.get(id);
    if (known) return known;
    const ep = this.epochs.epochs(scope)[epoch];
    const w = this.epochs.wrap(scope, epoch, this.reader);
    if (!ep || !w) throw new VerificationError('E_NO_KEY', `no key of scope ${scope} epoch ${epoch} of ${this.epochs.origin} is wrapped to ${this.reader}`);
    const k = await unwrapScopeKey(this.epochs.origin, w, ep.kid, this.key);
    this.#keys.set(id, k);
    return k;
  }

  /** @internal remember a key this process made (the owner, before its keywrap is appended). */
  remember(scope: string, epoch: number, key: Buffer): void {
    this.#keys.set(`${scope}\n${epoch}`, key);
  }
}
