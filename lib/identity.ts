/**
 * Ed25519 identities (RFC 8032): key generation and import, did:key encoding, signing and
 * verification.
 *
 * Verification rule, the same everywhere (partners must agree on what is valid): strict
 * RFC 8032 §5.1.7, cofactorless, S < L required, canonical encodings of A and R required.
 * Signing and verification go through Node's `crypto` (OpenSSL, which implements exactly
 * this rule and is several times faster); `@noble/ed25519` with `zip215: false` (the same
 * rule) is the fallback where the runtime refuses Ed25519, and the cross-check in tests.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { base58Decode, base58Encode } from './base58';
import { fromBase64, fromBase64Url, fromHex, toHex } from './bytes';
import { FormatError } from './errors';

ed.hashes.sha512 = sha512;

/** A did:key string for an Ed25519 key (`did:key:z6Mk…`). */
export type DidKey = string & { readonly __brand: 'DidKey' };

const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex'); // RFC 8410 §7
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');           // RFC 8410 §4
const ED25519_MULTICODEC = Buffer.from([0xed, 0x01]);                        // varint(0xed)
const P = (1n << 255n) - 19n;

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

  private constructor(bytes: Buffer) {
    this.bytes = bytes;
    this.did = ('did:key:z' + base58Encode(Buffer.concat([ED25519_MULTICODEC, bytes]))) as DidKey;
  }

  /** A public key from its 32-byte RFC 8032 encoding; rejects non-canonical encodings (y ≥ p). */
  static fromBytes(bytes: Uint8Array): PublicKey {
    if (!(bytes instanceof Uint8Array) || bytes.length !== 32) {
      throw new FormatError('E_KEY', `an Ed25519 public key is 32 bytes, got ${bytes?.length ?? 'none'}`);
    }
    const b = Buffer.from(bytes);
    const y = BigInt('0x' + toHex(Buffer.from(b).reverse())) & ((1n << 255n) - 1n);
    if (y >= P) throw new FormatError('E_KEY', 'non-canonical Ed25519 public key encoding (RFC 8032 §5.1.3)');
    return new PublicKey(b);
  }

  /** A public key from a did:key (multicodec 0xed01, multibase base58btc `z`). Cached. */
  static fromDid(did: string): PublicKey {
    const hit = didCache.get(did);
    if (hit) return hit;
    if (typeof did !== 'string' || !did.startsWith('did:key:z') || did.length > 80) {
      throw new FormatError('E_DID', `not an Ed25519 did:key: ${JSON.stringify(String(did).slice(0, 80))}`);
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

  /** Verify an Ed25519 signature with the strict RFC 8032 rule stated above. */
  verify(message: Uint8Array, signature: Uint8Array): boolean {
    if (signature.length !== 64) return false;
    if (nativeEd25519) {
      this.#keyObject ??= crypto.createPublicKey({ key: Buffer.concat([SPKI_PREFIX, this.bytes]), format: 'der', type: 'spki' });
      return crypto.verify(null, message, this.#keyObject, signature);
    }
    return verifyPortable(message, signature, this.bytes);
  }

  /** The did:key; used by JSON.stringify and template strings. */
  toJSON(): string { return this.did; }
  toString(): string { return this.did; }
}

const didCache = new Map<string, PublicKey>();

/** Verify with @noble/ed25519 in strict RFC 8032 mode (the fallback and the cross-check). */
export function verifyPortable(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    return ed.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
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
      try { raw = fromBase64(parts.slice(4).join('+')); } catch { throw new FormatError('E_KEY', 'note signer key is not valid base64'); }
      if (raw.length !== 33 || raw[0] !== 0x01) throw new FormatError('E_KEY', 'note signer key is not an Ed25519 (type 0x01) key');
      return new Identity(raw.subarray(1));
    }
    let seed: Buffer | undefined;
    if (/^[0-9a-fA-F]{64}$/.test(t)) seed = fromHex(t);
    else if (/^[A-Za-z0-9+/]{43}=$/.test(t)) seed = tryDecode(() => fromBase64(t));
    else if (/^[A-Za-z0-9_-]{43}$/.test(t)) seed = tryDecode(() => fromBase64Url(t));
    if (!seed || seed.length !== 32) {
      throw new FormatError('E_KEY', 'secret key must be a 32-byte seed (64 hex characters or 43 base64/base64url characters), a PKCS#8 PEM, or a PRIVATE+KEY note key');
    }
    return new Identity(seed);
  }

  /** Read a key file, refusing one that others can read (as ssh does): secrets stay 0600. */
  static fromFile(file: string): Identity {
    let st: fs.Stats;
    try { st = fs.statSync(file); } catch { throw new FormatError('E_KEY', `cannot read key file ${file}`); }
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
    return crypto.createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, this.#seed]), format: 'der', type: 'pkcs8' })
      .export({ format: 'pem', type: 'pkcs8' }).toString();
  }

  /** The 32-byte seed, for callers that must persist it (Node-RED credentials, key files). */
  exportSeed(): Buffer {
    return Buffer.from(this.#seed);
  }

  /** Write a new key file with mode 0600, refusing to overwrite an existing file. */
  writeKeyFile(file: string): void {
    fs.writeFileSync(file, this.exportPkcs8Pem(), { mode: 0o600, flag: 'wx' });
  }

  get did(): DidKey { return this.publicKey.did; }
  toJSON(): { did: DidKey } { return { did: this.did }; }
  toString(): string { return `Identity(${this.did})`; }
  [Symbol.for('nodejs.util.inspect.custom')](): string { return this.toString(); }

  private keyObject(): crypto.KeyObject {
    this.#keyObject ??= crypto.createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, this.#seed]), format: 'der', type: 'pkcs8' });
    return this.#keyObject;
  }
}

function tryDecode(f: () => Buffer): Buffer | undefined {
  try { return f(); } catch { return undefined; }
}
