/**
 * Ed25519 identities (RFC 8032): key generation and import, did:key encoding, signing and
 * verification.
 *
 * Verification rule, the same everywhere (partners must agree on what is valid): strict
 * RFC 8032 §5.1.7, cofactorless ([S]B = R + [k]A), S < L, canonical encodings of A and R
 * (y < p, no x = -0), and neither A nor R of small order — the rule of libsodium ≥ 1.0.16 and
 * ed25519-dalek `verify_strict`. A small-order key (the identity, the all-zero key, the points
 * of order 2, 4 and 8, or any other encoding of them) lets anyone make signatures without a
 * secret, so such keys are refused when they are decoded (PublicKey.fromBytes / fromDid: signers,
 * witnesses, grant subjects, operators), with E_KEY / E_DID.
 *
 * Signing and verification go through Node's `crypto` (OpenSSL: cofactorless, S < L, R compared
 * canonically, several times faster) after the R and S checks OpenSSL leaves out (small-order R;
 * A was checked when decoded); `verifyPortable` implements the whole rule on `@noble/ed25519`'s
 * point arithmetic, for runtimes without Ed25519 and as the cross-check in tests. The browser
 * verifier (plugins/bot-ledger-verify.js) implements the same rule; test/vectors.test.ts holds
 * all three to the published edge-case vectors ("Taming the many EdDSAs", C2SP/CCTV).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { base58Decode, base58Encode } from './base58';
import { fromBase64, fromBase64Url, fromHex } from './bytes';
import { FormatError } from '../errors';

ed.hashes.sha512 = sha512;

/** A did:key string for an Ed25519 key (`did:key:z6Mk…`). */
export type DidKey = string & { readonly __brand: 'DidKey' };

const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex'); // RFC 8410 §7
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex'); // RFC 8410 §4
const ED25519_MULTICODEC = Buffer.from([0xed, 0x01]); // varint(0xed)
const P = (1n << 255n) - 19n;
/** Order of the prime-order subgroup (RFC 8032 §5.1). */
const L = (1n << 252n) + 27742317777372353535851937790883648493n;
const Y_MASK = (1n << 255n) - 1n;
/**
 * Every encoding of the 8 points of small order, canonical or not (C2SP/CCTV ed25519 README,
 * "Low-order edwards25519 point encodings"; libsodium's ge25519_has_small_order blocklist).
 */
const SMALL_ORDER = new Set([
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0000000000000000000000000000000000000000000000000000000000000080',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000080',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
]);
const SMALL_ORDER_FIRST_BYTES = new Set([0x00, 0x01, 0x26, 0xc7, 0xec, 0xed, 0xee]);

/** A little-endian unsigned integer (RFC 8032 §5.1.2 encodings). */
function leInt(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]);
  return n;
}

/** Whether 32 bytes are one of the encodings of a small-order point (a cheap filter, then the list). */
function isSmallOrderEncoding(b: Uint8Array): boolean {
  return SMALL_ORDER_FIRST_BYTES.has(b[0]) && SMALL_ORDER.has(Buffer.from(b.buffer, b.byteOffset, 32).toString('hex'));
}

/** Whether the 32-byte little-endian S of a signature is below L (RFC 8032 §5.1.7 step 1), without bigints. */
function scalarBelowL(s: Uint8Array): boolean {
  // L = 2^252 + 0x14def9dea2f79cd65812631a5cf5d3ed, big-endian 0x10 00 … 00 14 de f9 … d3 ed.
  for (let i = 31; i >= 0; i--) {
    if (s[i] !== L_BYTES[i]) return s[i] < L_BYTES[i];
  }
  return false;
}
const L_BYTES = Buffer.from(L.toString(16).padStart(64, '0'), 'hex').reverse();

/**
 * Why 32 bytes are not an acceptable Ed25519 public key or R under the strict rule, or
 * undefined with the decoded point: RFC 8032 §5.1.3 decoding with y < p and no x = -0, on the
 * curve, and not of small order.
 */
function decodeStrict(b: Uint8Array): { point: ed.Point; problem?: undefined } | { point?: undefined; problem: string } {
  const y = leInt(b) & Y_MASK;
  if (y >= P) return { problem: 'non-canonical encoding (y ≥ p, RFC 8032 §5.1.3)' };
  if (isSmallOrderEncoding(b)) {
    return {
      problem:
        (b[31] & 0x80) !== 0 && (y === 1n || y === P - 1n)
          ? 'non-canonical encoding (x = -0) of a point of small order'
          : 'a point of small order (a weak key: signatures under it need no secret)',
    };
  }
  let point: ed.Point;
  try {
    point = ed.Point.fromBytes(b, false);
  } catch {
    return { problem: 'not a point on the curve (RFC 8032 §5.1.3)' };
  }
  if (point.isSmallOrder()) return { problem: 'a point of small order (a weak key: signatures under it need no secret)' };
  return { point };
}

/** The checks of R and S that OpenSSL leaves out or does differently: S < L, R canonical and not of small order. */
function signatureShapeOk(sig: Uint8Array): boolean {
  const r = sig.subarray(0, 32);
  if ((r[31] & 0x7f) === 0x7f && r[0] >= 0xed && r.subarray(1, 31).every((x) => x === 0xff)) return false; // y ≥ p
  return scalarBelowL(sig.subarray(32, 64)) && !isSmallOrderEncoding(r);
}

/** Whether this runtime's OpenSSL signs and verifies Ed25519 (checked once at load). */
export const nativeEd25519: boolean = (() => {
  try {
    const k = crypto.createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, Buffer.alloc(32, 1)]), format: 'der', type: 'pkcs8' });
    const sig = crypto.sign(null, Buffer.alloc(1), k);
    return crypto.verify(null, Buffer.alloc(1), crypto.createPublicKey(k), sig);
  } catch {
    return false;
  }
})();

/** An Ed25519 public key, with its did:key. Immutable; safe to share and log. */
export class PublicKey {
  readonly bytes: Buffer;
  readonly did: DidKey;
  #keyObject: crypto.KeyObject | undefined;
  readonly #point: ed.Point;

  private constructor(bytes: Buffer, point: ed.Point) {
    this.bytes = bytes;
    this.#point = point;
    this.did = ('did:key:z' + base58Encode(Buffer.concat([ED25519_MULTICODEC, bytes]))) as DidKey;
  }

  /**
   * A public key from its 32-byte RFC 8032 encoding. Refuses (E_KEY) non-canonical encodings
   * (y ≥ p, x = -0), bytes that are not a curve point, and points of small order (weak keys).
   */
  static fromBytes(bytes: Uint8Array): PublicKey {
    if (!(bytes instanceof Uint8Array) || bytes.length !== 32) {
      throw new FormatError('E_KEY', `an Ed25519 public key is 32 bytes, got ${bytes?.length ?? 'none'}`);
    }
    const b = Buffer.from(bytes);
    const d = decodeStrict(b);
    if (d.problem !== undefined) throw new FormatError('E_KEY', `not a usable Ed25519 public key: ${d.problem}`);
    return new PublicKey(b, d.point);
  }

  /** A public key from a did:key (multicodec 0xed01, multibase base58btc `z`). Cached. */
  static fromDid(did: string): PublicKey {
    const hit = didCache.get(did);
    if (hit) return hit;
    if (typeof did !== 'string')
      throw new FormatError('E_DID', `not an Ed25519 did:key: a ${did === null ? 'null' : Array.isArray(did) ? 'list' : typeof did}, not a string`);
    if (!did.startsWith('did:key:z') || did.length > 80) {
      throw new FormatError('E_DID', `not an Ed25519 did:key: ${JSON.stringify(did.slice(0, 80))}`);
    }
    let raw: Uint8Array;
    try {
      raw = base58Decode(did.slice('did:key:z'.length));
    } catch {
      throw new FormatError('E_DID', 'did:key is not valid base58btc');
    }
    if (raw.length !== 34 || raw[0] !== 0xed || raw[1] !== 0x01) {
      throw new FormatError('E_DID', 'did:key is not an Ed25519 key (multicodec 0xed01, 32 bytes)');
    }
    let pk: PublicKey;
    try {
      pk = PublicKey.fromBytes(raw.subarray(2));
    } catch (err) {
      throw new FormatError('E_DID', `did:key holds an invalid key: ${(err as Error).message}`);
    }
    if (pk.did !== did) throw new FormatError('E_DID', 'did:key is not in canonical form');
    if (didCache.size >= 4096) didCache.delete(didCache.keys().next().value as string);
    didCache.set(did, pk);
    return pk;
  }

  /** Verify an Ed25519 signature with the strict rule stated above (A was checked when decoded). */
  verify(message: Uint8Array, signature: Uint8Array): boolean {
    if (!(signature instanceof Uint8Array) || signature.length !== 64 || !signatureShapeOk(signature)) return false;
    if (nativeEd25519) {
      this.#keyObject ??= crypto.createPublicKey({ key: Buffer.concat([SPKI_PREFIX, this.bytes]), format: 'der', type: 'spki' });
      return crypto.verify(null, message, this.#keyObject, signature);
    }
    return cofactorlessEquation(message, signature, this.bytes, this.#point);
  }

  /** The did:key; used by JSON.stringify and template strings. */
  toJSON(): string {
    return this.did;
  }
  toString(): string {
    return this.did;
  }
}

const didCache = new Map<string, PublicKey>();

/**
 * Verify with the strict rule stated above on @noble/ed25519's point arithmetic, from raw key
 * bytes (the fallback where OpenSSL has no Ed25519, and the cross-check): never throws.
 */
export function verifyPortable(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
  if (!(message instanceof Uint8Array) || !(signature instanceof Uint8Array) || !(publicKey instanceof Uint8Array)) return false;
  if (signature.length !== 64 || publicKey.length !== 32 || !signatureShapeOk(signature)) return false;
  const a = decodeStrict(publicKey);
  if (a.problem !== undefined) return false;
  return cofactorlessEquation(message, signature, publicKey, a.point);
}

/**
 * RFC 8032 §5.1.7 steps 2-3, cofactorless: k = SHA-512(R ‖ A ‖ M) mod L, and the canonical
 * encoding of [S]B - [k]A must equal R's bytes (so a non-canonical or off-curve R never matches).
 * S < L and R's shape were checked by the caller.
 */
function cofactorlessEquation(message: Uint8Array, signature: Uint8Array, aBytes: Uint8Array, a: ed.Point): boolean {
  const r = signature.subarray(0, 32);
  const s = leInt(signature.subarray(32, 64));
  const k = leInt(sha512(Buffer.concat([r, aBytes, message]))) % L;
  const check = ed.Point.BASE.multiply(s, false).subtract(a.multiply(k, false)).toBytes();
  return Buffer.from(check).equals(Buffer.from(r));
}

/**
 * An Ed25519 key pair. The secret seed sits in a private field: it never appears in
 * JSON.stringify, util.inspect, error messages or toString.
 */
export class Identity {
  readonly publicKey: PublicKey;
  #seed: Buffer;
  #keyObject: crypto.KeyObject | undefined;

  private constructor(seed: Buffer) {
    this.#seed = seed;
    const pub = nativeEd25519
      ? crypto.createPublicKey(this.keyObject()).export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length)
      : Buffer.from(ed.getPublicKey(seed));
    this.publicKey = PublicKey.fromBytes(pub);
  }

  /** A fresh random key pair. */
  static generate(): Identity {
    return new Identity(crypto.randomBytes(32));
  }

  /** A key pair from its 32-byte RFC 8032 secret seed. */
  static fromSeed(seed: Uint8Array): Identity {
    if (!(seed instanceof Uint8Array) || seed.length !== 32) {
      throw new FormatError('E_KEY', `an Ed25519 secret key is a 32-byte seed, got ${seed?.length ?? 'none'} bytes`);
    }
    return new Identity(Buffer.from(seed));
  }

  /**
   * Import a secret key from text: the 32-byte seed as hex, base64 or base64url; a PKCS#8
   * PEM (RFC 8410, as `openssl genpkey -algorithm ed25519` writes); or a C2SP/Go note
   * signer key `PRIVATE+KEY+name+id+base64`. Error messages never echo the text.
   */
  static import(text: string): Identity {
    if (typeof text !== 'string') throw new FormatError('E_KEY', 'secret key must be text');
    const t = text.trim();
    if (t.startsWith('-----BEGIN')) {
      let k: crypto.KeyObject;
      try {
        k = crypto.createPrivateKey({ key: t, format: 'pem' });
      } catch {
        throw new FormatError('E_KEY', 'the PEM is not a readable private key');
      }
      if (k.asymmetricKeyType !== 'ed25519') throw new FormatError('E_KEY', `the PEM holds a ${k.asymmetricKeyType} key, not Ed25519`);
      const der = k.export({ format: 'der', type: 'pkcs8' });
      return new Identity(Buffer.from(der.subarray(der.length - 32)));
    }
    if (t.startsWith('PRIVATE+KEY+')) {
      // PRIVATE+KEY+<name>+<hexid>+<base64>; base64 may itself contain '+'.
      const parts = t.split('+');
      if (parts.length < 5) throw new FormatError('E_KEY', 'note signer key must be PRIVATE+KEY+<name>+<hexid>+<base64>');
      let raw: Buffer;
      try {
        raw = fromBase64(parts.slice(4).join('+'));
      } catch {
        throw new FormatError('E_KEY', 'note signer key is not valid base64');
      }
      if (raw.length !== 33 || raw[0] !== 0x01) throw new FormatError('E_KEY', 'note signer key is not an Ed25519 (type 0x01) key');
      return new Identity(raw.subarray(1));
    }
    let seed: Buffer | undefined;
    if (/^[0-9a-fA-F]{64}$/.test(t)) seed = fromHex(t);
    else if (/^[A-Za-z0-9+/]{43}=$/.test(t)) seed = tryDecode(() => fromBase64(t));
    else if (/^[A-Za-z0-9_-]{43}$/.test(t)) seed = tryDecode(() => fromBase64Url(t));
    if (!seed || seed.length !== 32) {
      throw new FormatError(
        'E_KEY',
        'secret key must be a 32-byte seed (64 hex characters or 43 base64/base64url characters), a PKCS#8 PEM, or a PRIVATE+KEY note key',
      );
    }
    return new Identity(seed);
  }

  /** Read a key file, refusing one that others can read (as ssh does): secrets stay 0600. */
  static fromFile(file: string): Identity {
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch {
      throw new FormatError('E_KEY', `cannot read key file ${file}`);
    }
    if (!st.isFile()) throw new FormatError('E_KEY', `key file ${file} is not a file`);
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new FormatError('E_KEY', `key file ${file} is accessible by others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 on it`);
    }
    return Identity.import(fs.readFileSync(file, 'utf8'));
  }

  /** Sign a message (RFC 8032 Ed25519, deterministic). */
  sign(message: Uint8Array): Buffer {
    if (nativeEd25519) return crypto.sign(null, message, this.keyObject());
    return Buffer.from(ed.sign(message, this.#seed));
  }

  /** The secret key as PKCS#8 PEM, for a key file written with mode 0600. */
  exportPkcs8Pem(): string {
    return crypto
      .createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, this.#seed]), format: 'der', type: 'pkcs8' })
      .export({ format: 'pem', type: 'pkcs8' })
      .toString();
  }

  /** The 32-byte seed, for callers that must persist it (Node-RED credentials, key files). */
  exportSeed(): Buffer {
    return Buffer.from(this.#seed);
  }

  /** Write a new key file with mode 0600, refusing to overwrite an existing file. */
  writeKeyFile(file: string): void {
    fs.writeFileSync(file, this.exportPkcs8Pem(), { mode: 0o600, flag: 'wx' });
  }

  get did(): DidKey {
    return this.publicKey.did;
  }
  toJSON(): { did: DidKey } {
    return { did: this.did };
  }
  toString(): string {
    return `Identity(${this.did})`;
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  private keyObject(): crypto.KeyObject {
    this.#keyObject ??= crypto.createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, this.#seed]), format: 'der', type: 'pkcs8' });
    return this.#keyObject;
  }
}

function tryDecode(f: () => Buffer): Buffer | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}
