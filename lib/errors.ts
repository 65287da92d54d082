/**
 * Typed errors of the kernel. Every error carries a stable `code` that nodes, the CLI and
 * tests check; messages are for people and never contain secret material.
 */

/** Every error code the kernel raises, with what it means. */
export const BOT_ERROR_CODES = [
  'E_ENCODING', // bad hex / base64 / base58 text
  'E_KEY', // a key that cannot be imported or has the wrong length
  'E_DID', // a did:key that is not an Ed25519 did:key
  'E_JSON', // a value JCS (RFC 8785) cannot canonicalize, or unparsable JSON
  'E_ENVELOPE', // a malformed envelope
  'E_SIGNATURE', // a signature that does not verify
  'E_TOO_LARGE', // an entry, payload or note above its limit
  'E_REPLAY', // seq not above the signer's last seq
  'E_PROOF', // a Merkle proof that does not verify or cannot be built
  'E_RANGE', // an index or size outside the tree
  'E_NOTE', // a malformed signed note / checkpoint / cosignature
  'E_CHECKPOINT', // a checkpoint that would be inconsistent with an earlier one
  'E_STORE', // the database cannot be opened or written
  'E_LOCKED', // the database is held by another process
  'E_CLOSED', // the ledger was closed
  'E_NOT_FOUND', // no ledger at that place, or no such entry
  'E_QUERY', // a query or topic filter that is not well-formed
  'E_CORRUPT', // stored data does not match what was written
  'E_CONFLICT', // two signed checkpoints of one ledger that cannot both hold (equivocation)
  'E_TIMEOUT', // a partner did not answer in time
  'E_NO_GRANT', // a partner request names no grant of the requester on this ledger
  'E_GRANT', // a grant that is not valid for this ledger (signer, ledger, format)
  'E_EXPIRED', // a grant used before notBefore or after expires
  'E_REVOKED', // a grant that the ledger's operator has revoked
  'E_SCOPE', // an action or entry that the grant does not cover
  'E_NO_WITNESS', // confirmation asked of a ledger with no witnesses: the operator alone never confirms
  'E_RATE', // too many requests from one signer, or in total: try again later
  'E_INVITATION', // not an invitation, a damaged one, or one that does not match the settings it came with
  'E_DECRYPT', // a sealed payload or wrapped key that does not open (wrong key, tampered, or moved to another entry, scope or ledger)
  'E_NO_KEY', // no key held for a sealed entry's scope and epoch (not granted, or sealed after a revocation)
  'E_DEVICE', // a device enrolment, retirement or rotation that is not valid for this ledger, or a device the ledger does not hold
  'E_WORKER', // a worker thread (e.g. of the signing pool) died or failed: the jobs it held are lost, the pool recovers
] as const;

/** An error code of the kernel. */
export type BotErrorCode = (typeof BOT_ERROR_CODES)[number];

/** True when c is one of the kernel's error codes (e.g. read from a peer's answer). */
export function isBotErrorCode(c: unknown): c is BotErrorCode {
  return typeof c === 'string' && (BOT_ERROR_CODES as readonly string[]).includes(c);
}

/** Base class of all kernel errors. */
export class BotError extends Error {
  readonly code: BotErrorCode;
  constructor(code: BotErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Input that does not follow a format (encoding, key, envelope, note, JSON). */
export class FormatError extends BotError {}
/** A cryptographic check that failed: signature or proof. */
export class VerificationError extends BotError {}
/** An operation refused by the ledger's rules (replay, size, range, consistency). */
export class LedgerError extends BotError {}
/** Storage failures: open, lock, write, corruption. */
export class StoreError extends BotError {}

/** True when err is a BotError with the given code. */
export function isBotError(err: unknown, code?: BotErrorCode): err is BotError {
  return err instanceof BotError && (code === undefined || err.code === code);
}
