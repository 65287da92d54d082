/**
 * Rate limits for partner requests (README "Partner access › Limits"): token buckets (one
 * token per request, refilled at `rate` per second up to a burst of one second's worth), one
 * for all requests a ledger answers and one per requester, in a bounded map.
 *
 * Where they apply (lib/access/access.ts answerRequest):
 *   1. the total bucket, before any parsing or signature check: it bounds the work anyone
 *      who can reach the owner can make it do, whoever they claim to be;
 *   2. the claimed signer's bucket is only *looked at* before the signature check (never
 *      created, never drawn from): a request claiming a signer already over its limit is
 *      refused without the verification work, but a forged claim cannot spend anyone's tokens;
 *   3. the signer's bucket is drawn from once the signature verified and the named grant is
 *      that signer's (or, for an access request, once its signature verified: lib/access/access.ts
 *      answerAccess), so only grant subjects and verified requesters get a bucket, and never
 *      more than maxSigners (idle ones are forgotten first).
 * A refusal is LedgerError E_RATE (HTTP 429), with the wait in its message.
 */
import { performance } from 'node:perf_hooks';
import { LedgerError } from '../errors';

/** Requests per second allowed; 0 means no limit. */
export interface RateLimits {
  /** Per requester (a partner's key). */
  perSigner: number;
  /** All requests a ledger answers, over every channel. */
  total: number;
}

/** The limits a bot-ledger applies unless set otherwise: 20 requests/s per partner, 200/s in total. */
export const DEFAULT_RATE_LIMITS: Readonly<RateLimits> = Object.freeze({ perSigner: 20, total: 200 });

/** Most per-requester buckets held; beyond it idle (full) buckets go first, then the least recently used. */
export const MAX_SIGNER_BUCKETS = 4096;

/** A token bucket: `rate` tokens per second, at most `burst` held; a request takes one. */
export class TokenBucket {
  readonly rate: number;
  readonly burst: number;
  #tokens: number;
  #at: number;

  constructor(rate: number, burst: number, now: number) {
    this.rate = rate;
    this.burst = burst;
    this.#tokens = burst;
    this.#at = now;
  }

  #refill(now: number): void {
    if (now > this.#at) {
      this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) * this.rate) / 1000);
      this.#at = now;
    }
  }

  /** Take one token if there is one (true), else leave the bucket as it is (false). */
  take(now: number): boolean {
    this.#refill(now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Whether a token is there, without taking it. */
  has(now: number): boolean {
    this.#refill(now);
    return this.#tokens >= 1;
  }

  /** Whether the bucket is full (an idle requester: forgetting it changes nothing). */
  full(now: number): boolean {
    this.#refill(now);
    return this.#tokens >= this.burst;
  }

  /** Milliseconds until the next token. */
  waitMs(now: number): number {
    this.#refill(now);
    return this.#tokens >= 1 ? 0 : Math.ceil(((1 - this.#tokens) * 1000) / this.rate);
  }
}

/** Check a limit setting: a whole number of requests per second, 0 = no limit. */
function checkRate(v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v < 0 || v > 1_000_000)
    throw new LedgerError('E_RANGE', `${what} must be a whole number of requests per second from 0 (no limit) to 1000000`);
  return v;
}

/** The rate limits of one ledger's partner requests (see the file comment for where each applies). */
export class RateLimiter {
  readonly limits: Readonly<RateLimits>;
  #clock: () => number;
  #total: TokenBucket | undefined;
  #signers = new Map<string, TokenBucket>();
  #maxSigners: number;

  constructor(limits: Partial<RateLimits> = {}, opts: { maxSigners?: number; clock?: () => number } = {}) {
    this.limits = Object.freeze({
      perSigner: checkRate(limits.perSigner ?? DEFAULT_RATE_LIMITS.perSigner, 'the rate limit per partner'),
      total: checkRate(limits.total ?? DEFAULT_RATE_LIMITS.total, 'the total rate limit'),
    });
    this.#clock = opts.clock ?? (() => performance.now());
    this.#maxSigners = opts.maxSigners ?? MAX_SIGNER_BUCKETS;
    if (this.limits.total > 0) this.#total = new TokenBucket(this.limits.total, this.limits.total, this.#clock());
  }

  /** Requesters with a bucket now (at most maxSigners). */
  get trackedSigners(): number {
    return this.#signers.size;
  }

  /** Count one request against the total; E_RATE when the ledger is answering all it may. */
  admitTotal(): void {
    const t = this.#total;
    if (!t) return;
    const now = this.#clock();
    if (!t.take(now)) throw refused(`the owner answers at most ${this.limits.total} requests per second in total`, t.waitMs(now));
  }

  /** Before the signature check: E_RATE if this (claimed) signer is already over its limit; creates and takes nothing. */
  checkSigner(did: string): void {
    const b = this.#signers.get(did);
    if (!b) return;
    const now = this.#clock();
    if (!b.has(now)) throw refused(`at most ${this.limits.perSigner} requests per second are answered per partner`, b.waitMs(now));
  }

  /** After the signature check and grant lookup: count one request of a verified requester; E_RATE over its limit. */
  admitSigner(did: string): void {
    if (this.limits.perSigner === 0) return;
    const now = this.#clock();
    let b = this.#signers.get(did);
    if (b) {
      this.#signers.delete(did); // re-inserted below: the map's order is least recently used first
    } else {
      if (this.#signers.size >= this.#maxSigners) this.#evict(now);
      b = new TokenBucket(this.limits.perSigner, this.limits.perSigner, now);
    }
    this.#signers.set(did, b);
    if (!b.take(now)) throw refused(`at most ${this.limits.perSigner} requests per second are answered per partner`, b.waitMs(now));
  }

  /** Make room for one bucket: drop the idle (full) ones, else the least recently used. */
  #evict(now: number): void {
    for (const [k, b] of this.#signers) if (b.full(now)) this.#signers.delete(k);
    if (this.#signers.size >= this.#maxSigners) this.#signers.delete(this.#signers.keys().next().value as string);
  }
}

function refused(why: string, waitMs: number): LedgerError {
  return new LedgerError('E_RATE', `${why}: try again in ${Math.max(1, waitMs)} ms`);
}
