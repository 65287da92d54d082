/**
 * HPKE (RFC 9180) in base mode, for wrapping confidential scopes' keys to readers
 * (docs/design.md "Confidential entries").
 *
 * One suite for now, named in every wrapped key so a second (a post-quantum hybrid KEM) can be
 * added without a format break: DHKEM(X25519, HKDF-SHA256) (KEM id 0x0020, RFC 9180 §7.1),
 * HKDF-SHA256 (KDF id 0x0001, §7.2), AES-128-GCM (AEAD id 0x0001, §7.3). The primitives are
 * @hpke/core's, which runs on the platform's WebCrypto (Node's OpenSSL X25519, HKDF and
 * AES-GCM): no home-made construction. Checked against the RFC's test vectors
 * (test/vectors/hpke-rfc9180-a1.json, RFC 9180 Appendix A.1.1).
 *
 * An X25519 key here is a reader's own encryption key, never an Ed25519 key converted: the
 * reader publishes its public half signed by its Ed25519 identity (lib/confidential/keys.ts).
 */
import * as crypto from 'node:crypto';
import { Aes128Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';
import { FormatError, VerificationError } from '../errors';

/** The suite's name as written in wrapped keys and encryption-key envelopes. */
export const HPKE_X25519_SUITE = 'DHKEM-X25519-HKDF-SHA256/HKDF-SHA256/AES-128-GCM';
/** Suites this implementation knows, by name, with their RFC 9180 §7 identifiers. */
export const HPKE_SUITES = { [HPKE_X25519_SUITE]: { kem: 0x0020, kdf: 0x0001, aead: 0x0001 } } as const;
/** A suite name this implementation knows. */
export type HpkeSuiteName = keyof typeof HPKE_SUITES;

/** Bytes of an X25519 public key (Npk) and of an encapsulated key (Nenc), RFC 9180 §7.1. */
export const X25519_KEY_BYTES = 32;

let suiteInstance: CipherSuite | undefined;
function suite(): CipherSuite {
  suiteInstance ??= new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes128Gcm() });
  return suiteInstance;
}

/** Whether a value names a known suite. */
export function isHpkeSuite(v: unknown): v is HpkeSuiteName {
  return typeof v === 'string' && Object.prototype.hasOwnProperty.call(HPKE_SUITES, v);
}

/** E_KEY unless the suite is known (a wrapped key of an unknown suite is refused, not guessed). */
export function checkSuite(v: unknown): HpkeSuiteName {
  if (!isHpkeSuite(v))
    throw new FormatError('E_KEY', `unknown HPKE suite ${JSON.stringify(String(v)).slice(0, 80)} (known: ${Object.keys(HPKE_SUITES).join(', ')})`);
  return v;
}

const ab = (b: Uint8Array): ArrayBuffer => {
  const out = new ArrayBuffer(b.byteLength);
  new Uint8Array(out).set(b);
  return out;
};

/** An X25519 public key, E_KEY unless it is 32 bytes. */
function checkPublic(pk: Uint8Array): void {
  if (!(pk instanceof Uint8Array) || pk.length !== X25519_KEY_BYTES) throw new FormatError('E_KEY', `an X25519 public key is ${X25519_KEY_BYTES} bytes`);
}

/**
 * A reader's X25519 key pair (RFC 7748) for HPKE. The secret never leaves it except through
 * secret() (for the key file or credentials it is kept in); toJSON and inspection show only
 * the public half.
 */
export class EncryptionKey {
  readonly suite: HpkeSuiteName = HPKE_X25519_SUITE;
  readonly publicKey: Buffer;
  #secret: Buffer;
  #private: CryptoKey | undefined;

  private constructor(secret: Buffer, publicKey: Buffer) {
    this.#secret = secret;
    this.publicKey = publicKey;
  }

  /** A fresh random key pair (RFC 9180 §7.1.3 DeriveKeyPair of 32 random bytes). */
  static async generate(): Promise<EncryptionKey> {
    return EncryptionKey.derive(crypto.randomBytes(32));
  }

  /** The key pair DeriveKeyPair(ikm) gives (RFC 9180 §7.1.3); ikm at least 32 bytes. */
  static async derive(ikm: Uint8Array): Promise<EncryptionKey> {
    if (!(ikm instanceof Uint8Array) || ikm.length < 32) throw new FormatError('E_KEY', 'key material for an X25519 key is at least 32 bytes');
    const kp = await suite().kem.deriveKeyPair(ab(ikm));
    const sk = Buffer.from(await suite().kem.serializePrivateKey(kp.privateKey));
    const pk = Buffer.from(await suite().kem.serializePublicKey(kp.publicKey));
    const k = new EncryptionKey(sk, pk);
    k.#private = kp.privateKey;
    return k;
  }

  /** The key pair of a 32-byte X25519 secret (SerializePrivateKey form, RFC 9180 §7.1.2). */
  static async fromSecret(secret: Uint8Array): Promise<EncryptionKey> {
    if (!(secret instanceof Uint8Array) || secret.length !== X25519_KEY_BYTES)
      throw new FormatError('E_KEY', `an X25519 secret key is ${X25519_KEY_BYTES} bytes`);
    let priv: CryptoKey;
    try {
      priv = await suite().kem.importKey('raw', ab(secret), false);
    } catch {
      throw new FormatError('E_KEY', 'the X25519 secret key cannot be imported');
    }
    const sk = Buffer.from(secret);
    // The public half: X25519(sk, 9) (RFC 7748 §6.1), by Node's own X25519.
    const pk = crypto
      .createPublicKey(crypto.createPrivateKey({ key: Buffer.concat([PKCS8_X25519, sk]), format: 'der', type: 'pkcs8' }))
      .export({ format: 'der', type: 'spki' })
      .subarray(-X25519_KEY_BYTES);
    const k = new EncryptionKey(sk, Buffer.from(pk));
    k.#private = priv;
    return k;
  }

  /** The 32-byte secret, to be stored by the caller (never logged). */
  secret(): Buffer {
    return Buffer.from(this.#secret);
  }

  /** @internal the WebCrypto private key. */
  async privateKey(): Promise<CryptoKey> {
    this.#private ??= await suite().kem.importKey('raw', ab(this.#secret), false);
    return this.#private;
  }

  toJSON(): { suite: string; publicKey: string } {
    return { suite: this.suite, publicKey: this.publicKey.toString('base64') };
  }
}

/** PKCS#8 prefix of an X25519 private key (RFC 8410 §7): the raw 32 bytes follow. */
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** A sender's HPKE context (RFC 9180 §5.1.1 SetupBaseS): the encapsulated key and Seal / Export. */
export interface SenderContext {
  enc: Buffer;
  seal(aad: Uint8Array, pt: Uint8Array): Promise<Buffer>;
  export(exporterContext: Uint8Array, length: number): Promise<Buffer>;
}

/** A recipient's HPKE context (RFC 9180 §5.1.1 SetupBaseR): Open / Export. */
export interface RecipientContext {
  open(aad: Uint8Array, ct: Uint8Array): Promise<Buffer>;
  export(exporterContext: Uint8Array, length: number): Promise<Buffer>;
}

/**
 * SetupBaseS (RFC 9180 §5.1.1) to a recipient's public key with `info`. `ikmE` fixes the
 * ephemeral key (DeriveKeyPair(ikmE), §7.1.3): for the RFC's test vectors only.
 */
export async function setupBaseS(name: HpkeSuiteName, pkR: Uint8Array, info: Uint8Array, ikmE?: Uint8Array): Promise<SenderContext> {
  checkSuite(name);
  checkPublic(pkR);
  let recipientPublicKey: CryptoKey;
  try {
    recipientPublicKey = await suite().kem.importKey('raw', ab(pkR), true);
  } catch {
    throw new FormatError('E_KEY', 'the X25519 public key cannot be imported');
  }
  const ctx = await suite().createSenderContext({ recipientPublicKey, info: ab(info), ...(ikmE ? { ekm: ab(ikmE) } : {}) });
  return {
    enc: Buffer.from(ctx.enc),
    seal: async (aad, pt) => Buffer.from(await ctx.seal(ab(pt), ab(aad))),
    export: async (c, n) => Buffer.from(await ctx.export(ab(c), n)),
  };
}

/** SetupBaseR (RFC 9180 §5.1.1) with the recipient's key pair; E_DECRYPT when enc cannot be decapsulated. */
export async function setupBaseR(name: HpkeSuiteName, key: EncryptionKey, enc: Uint8Array, info: Uint8Array): Promise<RecipientContext> {
  checkSuite(name);
  if (key.suite !== name) throw new FormatError('E_KEY', `the key is for ${key.suite}, not ${name}`);
  if (!(enc instanceof Uint8Array) || enc.length !== X25519_KEY_BYTES)
    throw new VerificationError('E_DECRYPT', `an encapsulated key is ${X25519_KEY_BYTES} bytes`);
  let ctx: Awaited<ReturnType<CipherSuite['createRecipientContext']>>;
  try {
    ctx = await suite().createRecipientContext({ recipientKey: await key.privateKey(), enc: ab(enc), info: ab(info) });
  } catch {
    throw new VerificationError('E_DECRYPT', 'the encapsulated key does not decapsulate');
  }
  return {
    open: async (aad, ct) => {
      try {
        return Buffer.from(await ctx.open(ab(ct), ab(aad)));
      } catch {
        throw new VerificationError('E_DECRYPT', 'the HPKE ciphertext does not open with this key, info and associated data');
      }
    },
    export: async (c, n) => Buffer.from(await ctx.export(ab(c), n)),
  };
}

/** Single-shot SealBase (RFC 9180 §6.1): encrypt pt to pkR under info and aad; returns enc and ct. */
export async function sealBase(name: HpkeSuiteName, pkR: Uint8Array, info: Uint8Array, aad: Uint8Array, pt: Uint8Array): Promise<{ enc: Buffer; ct: Buffer }> {
  const s = await setupBaseS(name, pkR, info);
  return { enc: s.enc, ct: await s.seal(aad, pt) };
}

/** Single-shot OpenBase (RFC 9180 §6.1); E_DECRYPT when it does not open. */
export async function openBase(name: HpkeSuiteName, key: EncryptionKey, enc: Uint8Array, info: Uint8Array, aad: Uint8Array, ct: Uint8Array): Promise<Buffer> {
  return (await setupBaseR(name, key, enc, info)).open(aad, ct);
}
