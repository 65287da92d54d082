/**
 * Access requests (README "Partner access › One paste to connect a partner"): a partner that has
 * no grant yet asks the owner for one with a `request` envelope signed by its own key,
 *
 *   payload {"op":"access","actions":["read"],"scope":{"signers":"*","topics":["plant/+/temp"]},"days":30,"note"?:"…"}
 *   payload {"op":"access-status","id":"<request id>"}
 *
 * sent like every partner request (lib/access/access.ts answerRequest: total rate limit, signature,
 * freshness, the requester's rate limit). The owner keeps the requests it has not decided yet
 * in a bounded store, one per requester, and its operator approves (issueGrant, with terms the
 * operator may narrow, never widen) or declines each. The id of a request is
 * base64url(SHA-256(leaf bytes of the request envelope))[:16 bytes] — the partner can compute it
 * — and the grant an approval issues carries that id, so the partner knows its grant id as soon
 * as it has asked.
 *
 * Bounds: at most MAX_PENDING requests (a new requester beyond it pushes out the oldest), one
 * per requester (a later request replaces the earlier; the same request again is answered as
 * before and changes nothing; an older one is E_REPLAY), MAX_ACCESS_REQUEST_BYTES a request,
 * MAX_NOTE characters of note. Pending requests are kept in the ledger's aux records (at most
 * MAX_PENDING of them, so a restart keeps them); decisions and the replay guard are kept in
 * memory, bounded. Nothing of a refused request is stored.
 */
import * as crypto from 'node:crypto';
import { toBase64Url } from '../format/bytes';
import { BotError, FormatError, LedgerError } from '../errors';
import { type SignedEnvelope, verifyEnvelope } from '../format/envelope';
import { AccessError, GRANT_ACTIONS, type GrantAction, GrantIndex, type GrantScope, type GrantTerms, issueGrant, type Issued, parseScope } from './grants';
import type { Identity } from '../format/identity';
import type { JsonValue } from '../format/jcs';
import type { Ledger } from '../store/ledger';
import { serialized } from '../store/mutex';
import { escapeUnprintable, printable } from '../format/topic';
import { signerId } from '../store/layout';
import { readerKey } from '../confidential/keys';

/** Largest access request envelope accepted (its scope lists included). */
export const MAX_ACCESS_REQUEST_BYTES = 8 * 1024;
/** Most pending requests an owner keeps per ledger; a new requester beyond it pushes out the oldest. */
export const MAX_PENDING = 100;
/** Longest note (characters) a request may carry. */
export const MAX_NOTE = 280;
/** Most days of access a request may ask for (and an approval may give). */
export const MAX_DAYS = 36500;
/** Days asked when a request does not say. */
export const DEFAULT_DAYS = 30;
/** Decisions (declined, approved) remembered in memory for status answers. */
const MAX_DECIDED = 1000;
/** Requesters whose last access request seq is remembered (replay guard within the freshness window). */
const MAX_SEQS = 4096;
const DAY = 86_400_000;
const AUX_PREFIX = 'access/p/';

/** The partner ops this module answers. */
export const ACCESS_OPS = ['access', 'access-status'] as const;

/** What a partner asks for. */
export interface AccessAsk {
  actions: GrantAction[];
  scope: GrantScope;
  /** Days of access asked, from the approval. */
  days: number;
  note?: string;
  /**
   * The requester's encryption-key envelope (kind `enckey`, signed by the requester,
   * lib/confidential/keys.ts), so that an approval can wrap confidential scopes' keys to it
   * (docs/design.md "Confidential entries").
   */
  enckey?: JsonValue;
}

/** A pending request as the owner shows it (sidebar, bot-grant, the partner's answer). */
export interface AccessView extends AccessAsk {
  /** The request id, which becomes the grant id on approval. */
  id: string;
  status: 'pending';
  /** The partner's did:key (the request's verified signer). */
  requester: string;
  /** The request's `ts` (partner's clock, ms). */
  ts: number;
  /** When the owner received it (owner's clock, ms). */
  received: number;
}

/** An access-status answer: a request's state; `grant` (the operator-signed grant envelope) once approved. */
export interface AccessStatus {
  id: string;
  status: 'pending' | 'approved' | 'declined' | 'unknown';
  grant?: JsonValue;
}

/** What an approval may change: narrower actions, scope or days than asked (never wider). */
export interface Narrowing {
  actions?: unknown;
  scope?: unknown;
  days?: unknown;
}

/** A change of the pending set. */
export interface AccessChange {
  type: 'added' | 'removed';
  request: AccessView;
  why?: 'replaced' | 'dropped' | 'approved' | 'declined';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function query(msg: string): FormatError {
  return new FormatError('E_QUERY', msg);
}

/** The id of an access request: base64url of the first 16 bytes of SHA-256 over its leaf bytes (a valid grant id). */
export function accessRequestId(env: SignedEnvelope): string {
  return toBase64Url(crypto.createHash('sha256').update(env.bytes).digest().subarray(0, 16));
}

/** Check a list of actions: 1 to 3 distinct grant actions (E_QUERY otherwise). */
function parseActions(v: unknown, what: string): GrantAction[] {
  if (!Array.isArray(v) || v.length === 0) throw query(`${what} must be a non-empty list of ${GRANT_ACTIONS.join(', ')}`);
  const out = [...new Set(v)].map((a) => {
    if (!(GRANT_ACTIONS as readonly unknown[]).includes(a))
      throw query(`${what}: unknown action ${printable(String(a), 40)} (use ${GRANT_ACTIONS.join(', ')})`);
    return a as GrantAction;
  });
  return out;
}

function parseDays(v: unknown, what: string): number {
  if (v === undefined) return DEFAULT_DAYS;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > MAX_DAYS) throw query(`${what} must be a whole number of days from 1 to ${MAX_DAYS}`);
  return v;
}

function scopeOf(v: unknown, what: string): GrantScope {
  if (v === undefined) return { signers: '*' };
  try {
    return parseScope(v);
  } catch (err) {
    if (err instanceof BotError) throw query(`${what}: ${err.message}`);
    throw err;
  }
}

/**
 * Parse the payload of an access request strictly: {op:"access", actions, scope?, days?, note?}.
 * Scope as a grant's (lib/access/grants.ts parseScope; default any signer, any topic); days 1 to
 * MAX_DAYS (default 30); note at most MAX_NOTE printable characters. Throws E_QUERY.
 */
export function parseAccessAsk(p: unknown): AccessAsk {
  if (!isObject(p) || p.op !== 'access') throw query('an access request payload is {op:"access", actions, scope, days, note}');
  for (const k of Object.keys(p))
    if (!['op', 'actions', 'scope', 'days', 'note', 'enckey'].includes(k)) throw query(`unknown access request field ${printable(k, 40)}`);
  const ask: AccessAsk = { actions: parseActions(p.actions, 'actions'), scope: scopeOf(p.scope, 'scope'), days: parseDays(p.days, 'days') };
  if (p.note !== undefined && p.note !== '') {
    if (typeof p.note !== 'string' || p.note.length > MAX_NOTE) throw query(`note must be text of at most ${MAX_NOTE} characters`);
    if (escapeUnprintable(p.note) !== p.note) throw query('note must be one line of printable text (no control or invisible characters)');
    ask.note = p.note;
  }
  if (p.enckey !== undefined) {
    try {
      ask.enckey = readerKey(p.enckey).envelope.toJSON() as unknown as JsonValue;
    } catch (err) {
      throw query(`enckey is not an encryption-key envelope: ${err instanceof Error ? printable(err.message, 200) : 'unreadable'}`);
    }
  }
  return ask;
}

/**
 * Whether MQTT topic filter `outer` matches every topic `inner` matches (MQTT 3.1.1 §4.7:
 * "+" one level, "#" the parent and any levels below; wildcards first never match `$` topics).
 */
export function filterCovers(outer: string, inner: string): boolean {
  const o = outer.split('/');
  const i = inner.split('/');
  if ((o[0] === '+' || o[0] === '#') && i[0].startsWith('$')) return false;
  for (let k = 0; k < o.length; k++) {
    if (o[k] === '#') return true;
    if (k >= i.length) return false;
    if (i[k] === '#') return false;
    if (o[k] === '+') continue;
    if (i[k] === '+' || o[k] !== i[k]) return false;
  }
  // `a/#` (inner) also matches `a`, which `a` (outer) alone covers but not its sub-levels.
  return o.length === i.length;
}

/** Whether `inner` allows nothing that `outer` does not (signers, topics, time range). */
export function scopeWithin(outer: GrantScope, inner: GrantScope): boolean {
  if (outer.signers !== '*' && (inner.signers === '*' || !inner.signers.every((s) => (outer.signers as string[]).includes(s)))) return false;
  if (outer.topics !== undefined && (inner.topics === undefined || !inner.topics.every((t) => outer.topics!.some((f) => filterCovers(f, t))))) return false;
  if (outer.from !== undefined && (inner.from === undefined || inner.from < outer.from)) return false;
  if (outer.until !== undefined && (inner.until === undefined || inner.until > outer.until)) return false;
  return true;
}

/**
 * The terms an approval gives: the request's, or narrower ones the operator chose (actions a
 * subset, scope within the asked scope, days at most those asked). E_SCOPE when wider.
 */
export function narrowAsk(ask: AccessAsk, n: Narrowing = {}): AccessAsk {
  const out: AccessAsk = { ...ask };
  if (n.actions !== undefined) {
    out.actions = parseActions(n.actions, 'actions');
    const extra = out.actions.filter((a) => !ask.actions.includes(a));
    if (extra.length > 0) throw new AccessError('E_SCOPE', `the request did not ask for ${extra.join(', ')}`);
  }
  if (n.scope !== undefined) {
    out.scope = scopeOf(n.scope, 'scope');
    if (!scopeWithin(ask.scope, out.scope)) throw new AccessError('E_SCOPE', 'the scope approved is wider than the scope asked');
  }
  if (n.days !== undefined) {
    out.days = parseDays(n.days, 'days');
    if (out.days > ask.days) throw new AccessError('E_SCOPE', `the request asked for ${ask.days} days, not ${out.days}`);
  }
  return out;
}

interface Pending {
  env: SignedEnvelope;
  view: AccessView;
}

const stores = new WeakMap<Ledger, AccessRequests>();

/** The pending access requests of one ledger (one store per open Ledger; see the file comment). */
export class AccessRequests {
  readonly ledger: Ledger;
  /** By requester did, oldest first (a replacement moves to the end). */
  #pending = new Map<string, Pending>();
  #byId = new Map<string, string>();
  #decided = new Map<string, { requester: string; status: 'approved' | 'declined' }>();
  #seqs = new Map<string, { seq: number; ts: number }>();
  #loaded: Promise<void> | undefined;
  #listeners = new Set<(c: AccessChange) => void>();

  private constructor(ledger: Ledger) {
    this.ledger = ledger;
  }

  /** The store of a ledger. */
  static of(ledger: Ledger): AccessRequests {
    let s = stores.get(ledger);
    if (!s) {
      s = new AccessRequests(ledger);
      stores.set(ledger, s);
    }
    return s;
  }

  /** Call fn on every change of the pending set; returns an unsubscribe. */
  onChange(fn: (c: AccessChange) => void): () => void {
    this.#listeners.add(fn);
    return () => {
      this.#listeners.delete(fn);
    };
  }

  #emit(c: AccessChange): void {
    for (const fn of this.#listeners) {
      try {
        fn(c);
      } catch {
        /* a listener's failure is its own */
      }
    }
  }

  /** Read the persisted pending requests once (each re-verified; a bad record is dropped). */
  #load(): Promise<void> {
    this.#loaded ??= (async () => {
      const rows: Pending[] = [];
      const bad: string[] = [];
      for await (const [k, v] of this.ledger.aux.iterator(AUX_PREFIX)) {
        try {
          const rec = JSON.parse(v.toString('utf8')) as { received: number; leaf: string };
          const env = verifyEnvelope(rec.leaf, { maxBytes: MAX_ACCESS_REQUEST_BYTES });
          rows.push({ env, view: viewOf(env, rec.received) });
        } catch {
          bad.push(k);
        }
      }
      rows.sort((a, b) => a.view.received - b.view.received);
      for (const r of rows) this.#put(r);
      const extra = rows.slice(0, Math.max(0, rows.length - MAX_PENDING));
      for (const r of extra) this.#remove(r.view.requester);
      const drop = [...bad, ...extra.map((r) => AUX_PREFIX + signerId(r.view.requester))];
      if (drop.length > 0) await this.ledger.aux.batch(drop.map((key) => ({ key })));
    })();
    this.#loaded.catch(() => {
      this.#loaded = undefined;
    });
    return this.#loaded;
  }

  #put(p: Pending): void {
    this.#pending.set(p.view.requester, p);
    this.#byId.set(p.view.id, p.view.requester);
  }

  #remove(requester: string): Pending | undefined {
    const p = this.#pending.get(requester);
    if (!p) return undefined;
    this.#pending.delete(requester);
    this.#byId.delete(p.view.id);
    return p;
  }

  #decide(view: AccessView, status: 'approved' | 'declined'): void {
    this.#decided.delete(view.id);
    if (this.#decided.size >= MAX_DECIDED) this.#decided.delete(this.#decided.keys().next().value as string);
    this.#decided.set(view.id, { requester: view.requester, status });
  }

  /** The pending requests, newest first. */
  async list(): Promise<AccessView[]> {
    await this.#load();
    return [...this.#pending.values()].map((p) => p.view).reverse();
  }

  /** Number of pending requests (after load). */
  get size(): number {
    return this.#pending.size;
  }

  /** A pending request by id. */
  async get(id: string): Promise<AccessView | undefined> {
    await this.#load();
    const r = this.#byId.get(id);
    return r === undefined ? undefined : this.#pending.get(r)?.view;
  }

  /**
   * Keep a verified, fresh access request (lib/access/access.ts has checked signature, freshness and
   * rate): the same request again is answered as before and changes nothing; a request whose
   * seq is not above the requester's last one is E_REPLAY; a newer one replaces the
   * requester's pending request; a new requester beyond MAX_PENDING pushes out the oldest.
   * The record is written before memory changes, so a failed write changes nothing.
   */
  async submit(env: SignedEnvelope, now: number): Promise<AccessView> {
    if (env.bytes.length > MAX_ACCESS_REQUEST_BYTES) throw new FormatError('E_TOO_LARGE', `an access request is at most ${MAX_ACCESS_REQUEST_BYTES} bytes`);
    const view = viewOf(env, now);
    if (view.requester === this.ledger.operator.did) throw query("the ledger's operator needs no grant of its own ledger");
    await this.#load();
    return serialized(this, 'change', async () => {
      const { requester } = view;
      const { seq, ts } = env.envelope;
      const old = this.#pending.get(requester);
      if (old && old.view.id === view.id) return old.view;
      const last = this.#seqs.get(requester) ?? (old ? { seq: old.env.envelope.seq, ts: old.view.ts } : undefined);
      if (last && seq <= last.seq)
        throw new LedgerError('E_REPLAY', `access request seq ${seq} of ${requester} is not above its last access request seq ${last.seq}`);
      const dropped = !old && this.#pending.size >= MAX_PENDING ? (this.#pending.values().next().value as Pending) : undefined;
      const ops: { key: string; value?: Buffer }[] = [
        { key: AUX_PREFIX + signerId(requester), value: Buffer.from(JSON.stringify({ received: now, leaf: env.bytes.toString('utf8') })) },
      ];
      if (dropped) ops.push({ key: AUX_PREFIX + signerId(dropped.view.requester) });
      await this.ledger.aux.batch(ops);
      if (old) {
        this.#remove(requester);
        this.#emit({ type: 'removed', request: old.view, why: 'replaced' });
      }
      if (dropped) {
        this.#remove(dropped.view.requester);
        this.#emit({ type: 'removed', request: dropped.view, why: 'dropped' });
      }
      this.#put({ env, view });
      this.#seqs.delete(requester);
      if (this.#seqs.size >= MAX_SEQS) this.#forgetSeqs(now);
      this.#seqs.set(requester, { seq, ts });
      this.#emit({ type: 'added', request: view });
      return view;
    });
  }

  /** Make room in the replay guard: requests older than the freshness window first (they are refused as stale anyway), then the oldest. */
  #forgetSeqs(now: number): void {
    for (const [k, v] of this.#seqs) if (v.ts < now - 10 * 60_000) this.#seqs.delete(k);
    if (this.#seqs.size >= MAX_SEQS) this.#seqs.delete(this.#seqs.keys().next().value as string);
  }

  /**
   * Approve a pending request: issue its grant (lib/access/grants.ts issueGrant; id = the request id,
   * subject = the requester, expires = now + days) with the asked terms or narrower ones, and
   * remove the request. E_NOT_FOUND when no such request is pending; E_SCOPE when the terms are
   * wider than asked.
   */
  async approve(
    id: string,
    operator: Identity,
    nextSeq: () => number,
    narrowing: Narrowing = {},
    now = Date.now(),
  ): Promise<Issued & { terms: GrantTerms; enckey?: JsonValue }> {
    await this.#load();
    return serialized(this, 'change', async () => {
      const p = this.#pendingById(id);
      const ask = narrowAsk(p.view, narrowing);
      const terms: GrantTerms = {
        id: p.view.id,
        subject: p.view.requester as GrantTerms['subject'],
        ledger: this.ledger.origin,
        actions: ask.actions,
        scope: ask.scope,
        expires: now + ask.days * DAY,
      };
      const issued = await issueGrant(this.ledger, operator, nextSeq, terms, now);
      await this.ledger.aux.batch([{ key: AUX_PREFIX + signerId(p.view.requester) }]);
      this.#remove(p.view.requester);
      this.#decide(p.view, 'approved');
      this.#emit({ type: 'removed', request: p.view, why: 'approved' });
      // The requester's encryption key, when it sent one: the caller wraps confidential scopes' keys to it (ConfidentialOwner.addReader).
      return { ...issued, terms, ...(p.view.enckey !== undefined ? { enckey: p.view.enckey } : {}) };
    });
  }

  /** Decline a pending request (E_NOT_FOUND when none is pending with that id): it is removed, and its status says so. */
  async decline(id: string): Promise<AccessView> {
    await this.#load();
    return serialized(this, 'change', async () => {
      const p = this.#pendingById(id);
      await this.ledger.aux.batch([{ key: AUX_PREFIX + signerId(p.view.requester) }]);
      this.#remove(p.view.requester);
      this.#decide(p.view, 'declined');
      this.#emit({ type: 'removed', request: p.view, why: 'declined' });
      return p.view;
    });
  }

  #pendingById(id: unknown): Pending {
    const r = typeof id === 'string' ? this.#byId.get(id) : undefined;
    const p = r === undefined ? undefined : this.#pending.get(r);
    if (!p) throw new BotError('E_NOT_FOUND', `no pending access request ${printable(String(id), 64)}`);
    return p;
  }

  /**
   * A request's status as its requester may see it: pending, approved (with the grant envelope
   * the operator signed, found in the ledger: it survives restarts), declined (remembered in
   * memory, bounded) or unknown — also for anyone but the requester, so nothing leaks.
   */
  async status(id: unknown, requester: string): Promise<AccessStatus> {
    if (typeof id !== 'string' || !/^[A-Za-z0-9_-]{22}$/.test(id)) throw query('access-status needs the request id (22 characters of base64url)');
    await this.#load();
    const p = this.#pending.get(requester);
    if (p && p.view.id === id) return { id, status: 'pending' };
    const g = await GrantIndex.of(this.ledger).get(id);
    if (g && g.terms.subject === requester) return { id, status: 'approved', grant: g.grant.toJSON() as unknown as JsonValue };
    const d = this.#decided.get(id);
    if (d && d.requester === requester && d.status === 'declined') return { id, status: 'declined' };
    return { id, status: 'unknown' };
  }
}

/** The view of a verified access request envelope (parses its ask: E_QUERY). */
function viewOf(env: SignedEnvelope, received: number): AccessView {
  const e = env.envelope;
  if (e.kind !== 'request') throw new FormatError('E_ENVELOPE', `an access request is an envelope of kind "request", not ${printable(e.kind, 40)}`);
  const ask = parseAccessAsk(e.payload);
  if (ask.enckey !== undefined && readerKey(ask.enckey).reader !== e.signer) throw query('the enckey envelope is not signed by the requester');
  return { id: accessRequestId(env), status: 'pending', requester: e.signer, ...ask, ts: e.ts, received };
}
