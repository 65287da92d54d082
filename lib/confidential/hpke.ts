/**
 * HPKE (RFC 9180) in base mode, for wrapping confidential scopes' keys to readers
 * (docs/design.md "Confidential entries").
 *
 * Two suites, each named in every wrapped key and key publication (so more can come without a
 * format break), both with HKDF-SHA256 (KDF id 0x0001, §7.2) and AES-128-GCM (AEAD id 0x0001,
 * §7.3):
 *
 * - DHKEM(X25519, HKDF-SHA256) (KEM id 0x0020, RFC 9180 §7.1), the default: @hpke/core on the
 *   platform's WebCrypto (Node's OpenSSL X25519, HKDF and AES-GCM). Checked against the RFC's
 *   test vectors (test/vectors/hpke-rfc9180-a1.json, RFC 9180 Appendix A.1.1).
 * - X-Wing (KEM id 0x647a; ML-KEM-768 + X25519, draft-connolly-cfrg-xwing-kem), a post-quantum
 *   hybrid against "harvest now, decrypt later": @hpke/hybridkem-x-wing. Its KEM is checked
 *   against the draft's vector (test/vectors/hpke-xwing-kem.json).
 *
 * No home-made construction: key pairs, encapsulation and the key schedule are the libraries'.
 * An encryption key here is a reader's own, never an Ed25519 key converted: the reader
 * publishes its public half signed by its Ed25519 identity (lib/confidential/keys.ts).
 */
import * as crypto from 'node:crypto';
import { Aes128Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256, type KemInterface } from '@hpke/core';
import { XWing } from '@hpke/hybridkem-x-wing';
import { FormatError, VerificationError } from '../errors';

/** The default suite's name as written in wrapped keys and encryption-key envelopes. */
export const HPKE_X25519_SUITE = 'DHKEM-X25519-HKDF-SHA256/HKDF-SHA256/AES-128-GCM';
/** The post-quantum hybrid suite's name (X-Wing: ML-KEM-768 + X25519). */
export const HPKE_XWING_SUITE = 'X-Wing/HKDF-SHA256/AES-128-GCM';

/** What a suite is: its RFC 9180 §7 identifiers and sizes (Npk, Nenc, Nsk). */
export interface HpkeSuiteInfo {
  kem: number;
  kdf: number;
  aead: number;
  publicKeyBytes: number;
  encBytes: number;
  secretBytes: number;
}

/** A suite name this implementation knows. */
export type HpkeSuiteName = typeof HPKE_X25519_SUITE | typeof HPKE_XWING_SUITE;

/** Suites this implementation knows, by name. */
export const HPKE_SUITES: Readonly<Record<HpkeSuiteName, HpkeSuiteInfo>> = {
  [HPKE_X25519_SUITE]: { kem: 0x0020, kdf: 0x0001, aead: 0x0001, publicKeyBytes: 32, encBytes: 32, secretBytes: 32 },
  [HPKE_XWING_SUITE]: { kem: 0x647a, kdf: 0x0001, aead: 0x0001, publicKeyBytes: 1216, encBytes: 1120, secretBytes: 32 },
};

/** Bytes of an X25519 public key (Npk) and of its encapsulated key (Nenc), RFC 9180 §7.1. */
export const X25519_KEY_BYTES = 32;

const suites = new Map<HpkeSuiteName, CipherSuite>();
function suite(name: HpkeSuiteName): CipherSuite {
  let s = suites.get(name);
  if (!s) {
    const kem: KemInterface = name === HPKE_XWING_SUITE ? new XWing() : new DhkemX25519HkdfSha256();
    s = new CipherSuite({ kem, kdf: new HkdfSha256(), aead: new Aes128Gcm() });
    suites.set(name, s);
  }
  return s;
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

/** A public key of the suite, E_KEY unless it has the suite's size. */
function checkPublic(name: HpkeSuiteName, pk: Uint8Array): void {
  const n = HPKE_SUITES[name].publicKeyBytes;
  if (!(pk instanceof Uint8Array) || pk.length !== n) throw new FormatError('E_KEY', `a public key of ${name} is ${n} bytes`);
}

/** PKCS#8 prefix of an X25519 private key (RFC 8410 §7): the raw 32 bytes follow. */
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');

/**
 * A reader's encryption key pair for HPKE (X25519, RFC 7748, or X-Wing). The secret never
 * leaves it except through secret() (for the key file or credentials it is kept in); toJSON
 * and inspection show only the public half.
 */
export class EncryptionKey {
  readonly suite: HpkeSuiteName;
  readonly publicKey: Buffer;
  #secret: Buffer;
  #private: CryptoKey | undefined;

  private constructor(name: HpkeSuiteName, secret: Buffer, publicKey: Buffer) {
    this.suite = name;
    this.#secret = secret;
    this.publicKey = publicKey;
  }

  /** A fresh random key pair of a suite (default X25519): DeriveKeyPair of 32 random bytes (RFC 9180 §7.1.3). */
  static async generate(name: HpkeSuiteName = HPKE_X25519_SUITE): Promise<EncryptionKey> {
    return EncryptionKey.derive(crypto.randomBytes(32), name);
  }

  /** The key pair DeriveKeyPair(ikm) gives (RFC 9180 §7.1.3); ikm at least 32 bytes. */
  static async derive(ikm: Uint8Array, name: HpkeSuiteName = HPKE_X25519_SUITE): Promise<EncryptionKey> {
    checkSuite(name);
    if (!(ikm instanceof Uint8Array) || ikm.length < 32) throw new FormatError('E_KEY', 'key material for an encryption key is at least 32 bytes');
    const kem = suite(name).kem;
    const kp = await kem.deriveKeyPair(ab(ikm));
    const sk = Buffer.from(await kem.serializePrivateKey(kp.privateKey));
    const pk = Buffer.from(await kem.serializePublicKey(kp.publicKey));
    const k = new EncryptionKey(name, sk, pk);
    k.#private = kp.privateKey;
    return k;
  }

  /**
   * The key pair of a secret in the suite's SerializePrivateKey form (RFC 9180 §7.1.2): the
   * 32-byte X25519 scalar; for X-Wing its 32-byte seed.
   */
  static async fromSecret(secret: Uint8Array, name: HpkeSuiteName = HPKE_X25519_SUITE): Promise<EncryptionKey> {
    checkSuite(name);
    const n = HPKE_SUITES[name].secretBytes;
    if (!(secret instanceof Uint8Array) || secret.length !== n) throw new FormatError('E_KEY', `a secret key of ${name} is ${n} bytes`);
    const sk = Buffer.from(secret);
    let priv: CryptoKey;
    let pk: Buffer;
    try {
      if (name === HPKE_XWING_SUITE) {
        const kem = suite(name).kem as XWing;
        const kp = await kem.generateKeyPairDerand(new Uint8Array(sk));
        priv = kp.privateKey;
        pk = Buffer.from(await kem.serializePublicKey(kp.publicKey));
      } else {
        priv = await suite(name).kem.importKey('raw', ab(sk), false);
        // The public half: X25519(sk, 9) (RFC 7748 §6.1), by Node's own X25519.
        pk = Buffer.from(
          crypto
            .createPublicKey(crypto.createPrivateKey({ key: Buffer.concat([PKCS8_X25519, sk]), format: 'der', type: 'pkcs8' }))
            .export({ format: 'der', type: 'spki' })
            .subarray(-X25519_KEY_BYTES),
        );
      }
    } catch {
      throw new FormatError('E_KEY', `the secret key of ${name} cannot be imported`);
    }
    const k = new EncryptionKey(name, sk, pk);
    k.#private = priv;
    return k;
  }

  /** The secret (SerializePrivateKey form), to be stored by the caller (never logged). */
  secret(): Buffer {
    return Buffer.from(this.#secret);
  }

  /** @internal the private key as the suite's KEM takes it. */
  async privateKey(): Promise<CryptoKey> {
    this.#private ??= await suite(this.suite).kem.importKey('raw', ab(this.#secret), false);
    return this.#private;
  }

  toJSON(): { suite: string; publicKey: string } {
    return { suite: this.suite, publicKey: this.publicKey.toString('base64') };
  }
}

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
 * ephemeral key (DeriveKeyPair(ikmE), §7.1.3; X-Wing's 64-byte eseed): for test vectors only.
 */
export async function setupBaseS(name: HpkeSuiteName, pkR: Uint8Array, info: Uint8Array, ikmE?: Uint8Array): Promise<SenderContext> {
  checkSuite(name);
  checkPublic(name, pkR);
  let recipientPublicKey: CryptoKey;
  try {
    recipientPublicKey = await suite(name).kem.importKey('raw', ab(pkR), true);
  } catch {
    throw new FormatError('E_KEY', `the public key of ${name} cannot be imported`);
  }
  const ctx = await suite(name).createSenderContext({ recipientPublicKey, info: ab(info), ...(ikmE ? { ekm: ab(ikmE) } : {}) });
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
  const nEnc = HPKE_SUITES[name].encBytes;
  if (!(enc instanceof Uint8Array) || enc.length !== nEnc) throw new VerificationError('E_DECRYPT', `an encapsulated key of ${name} is ${nEnc} bytes`);
  let ctx: Awaited<ReturnType<CipherSuite['createRecipientContext']>>;
  try {
    ctx = await suite(name).createRecipientContext({ recipientKey: await key.privateKey(), enc: ab(enc), info: ab(info) });
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
