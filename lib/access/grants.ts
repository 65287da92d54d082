/**
 * Grants: what a ledger's operator lets a partner do, as signed, revocable ledger entries
 * (docs/design.md "Partner access").
 *
 *   grant   envelope kind "grant", signed by the operator, payload
 *           {"id","subject":<did:key>,"ledger":<origin>,"actions":["read"|"append"|"witness"…],
 *            "scope":{"signers":[did…]|"*","topics":[MQTT filters]?,"from"?,"until"?},
 *            "notBefore"?,"expires"}
 *   revoke  envelope kind "revoke", signed by the operator, payload {"grant":<id>,"ledger":<origin>}
 *
 * Both are appended to the ledger they are about, so they replicate to mirrors and are
 * audited like every entry. `checkGrant` is the one rule every channel applies; GrantIndex
 * finds the grants and revocations of a ledger (its own or a mirror) from its entries.
 */
import * as crypto from 'node:crypto';
import { toBase64Url } from '../format/bytes';
import { BotError, FormatError } from '../errors';
import { type EnvelopeInput, fromTrustedLeaf, type SignedEnvelope, signEnvelope } from '../format/envelope';
import { type DidKey, type Identity, PublicKey } from '../format/identity';
import { isPlainObject, type JsonValue } from '../format/jcs';
import { lines, timeValue } from '../format/lines';
import type { Ledger, Receipt } from '../store/ledger';
import { serialized } from '../store/mutex';
import { checkTopicFilter, printable, topicMatches } from '../format/topic';

/** What a grant can allow. */
export const GRANT_ACTIONS = ['read', 'append', 'witness'] as const;
/** One action a grant can allow. */
export type GrantAction = (typeof GRANT_ACTIONS)[number];

/** A refused access: no grant, invalid grant, expired, revoked or out of scope (codes in lib/errors.ts). */
export class AccessError extends BotError {}

/** Which entries a grant covers: every criterion must hold. */
export interface GrantScope {
  /** Entry signers allowed, or "*" for any. */
  signers: DidKey[] | '*';
  /** MQTT topic filters (MQTT 3.1.1 §4.7); absent = any topic, including none. */
  topics?: string[];
  /** Earliest entry `ts` (ms, inclusive). */
  from?: number;
  /** Latest entry `ts` (ms, inclusive). */
  until?: number;
}

/** The payload of a grant envelope. */
export interface GrantTerms {
  id: string;
  subject: DidKey;
  /** The origin of the ledger the grant is for. */
  ledger: string;
  actions: GrantAction[];
  scope: GrantScope;
  /** Not valid before (ms since the epoch). */
  notBefore?: number;
  /** Not valid after (ms since the epoch). */
  expires: number;
}

/** The payload of a revoke envelope. */
export interface RevokeTerms {
  grant: string;
  ledger: string;
}

/** One entry as a grant's scope sees it. */
export interface ScopeTarget {
  signer: string;
  topic?: string;
  ts: number;
}

const ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Whether a value is a well-formed grant id: 1-64 characters of A-Z a-z 0-9 . _ - (as newGrantId makes). */
export function isGrantId(v: unknown): v is string {
  return typeof v === 'string' && ID.test(v);
}
const MAX_LIST = 256;

function bad(msg: string): AccessError {
  return new AccessError('E_GRANT', msg);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function time(v: unknown, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(`${what} must be a time in ms since the epoch`);
  return v;
}

function only(o: Record<string, unknown>, keys: string[], what: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw bad(`${what} has an unknown field ${printable(k, 40)}`);
}

/** A fresh grant id: 128 random bits, base64url (unguessable, so ids never collide by accident). */
export function newGrantId(): string {
  return toBase64Url(crypto.randomBytes(16));
}

/** Check and normalise a scope (signers as did:key, topic filters well-formed, from ≤ until). */
export function parseScope(v: unknown): GrantScope {
  if (!isObject(v)) throw bad('scope must be an object');
  only(v, ['signers', 'topics', 'from', 'until'], 'scope');
  let signers: DidKey[] | '*';
  if (v.signers === '*') signers = '*';
  else if (Array.isArray(v.signers) && v.signers.length > 0 && v.signers.length <= MAX_LIST) {
    signers = v.signers.map((s) => {
      if (typeof s !== 'string') throw bad('scope.signers must be did:key strings or "*"');
      return PublicKey.fromDid(s).did;
    });
  } else throw bad(`scope.signers must be "*" or a list of 1 to ${MAX_LIST} did:key`);
  const scope: GrantScope = { signers };
  if (v.topics !== undefined) {
    if (!Array.isArray(v.topics) || v.topics.length === 0 || v.topics.length > MAX_LIST)
      throw bad(`scope.topics must be a list of 1 to ${MAX_LIST} MQTT topic filters`);
    scope.topics = v.topics.map((t) => {
      if (typeof t !== 'string') throw bad('scope.topics must be MQTT topic filters');
      try {
        checkTopicFilter(t);
      } catch {
        throw bad(`scope.topics: ${printable(t, 60)} is not an MQTT topic filter (MQTT 3.1.1 §4.7.1)`);
      }
      return t;
    });
  }
  const from = time(v.from, 'scope.from');
  const until = time(v.until, 'scope.until');
  if (from !== undefined && until !== undefined && from > until) throw bad('scope.from is after scope.until');
  if (from !== undefined) scope.from = from;
  if (until !== undefined) scope.until = until;
  return scope;
}

/** Parse a grant payload strictly; throws AccessError E_GRANT naming the field. */
export function parseGrantTerms(v: unknown): GrantTerms {
  if (!isObject(v)) throw bad('a grant payload must be an object');
  only(v, ['id', 'subject', 'ledger', 'actions', 'scope', 'notBefore', 'expires'], 'grant');
  if (!isGrantId(v.id)) throw bad('grant id must be 1-64 characters of A-Z a-z 0-9 . _ -');
  if (typeof v.subject !== 'string') throw bad("grant subject must be the partner's did:key");
  const subject = PublicKey.fromDid(v.subject).did;
  if (typeof v.ledger !== 'string' || v.ledger === '') throw bad('grant ledger must be the origin of the ledger');
  if (!Array.isArray(v.actions) || v.actions.length === 0) throw bad(`grant actions must be a non-empty list of ${GRANT_ACTIONS.join(', ')}`);
  const actions = [...new Set(v.actions)].map((a) => {
    if (!(GRANT_ACTIONS as readonly unknown[]).includes(a))
      throw bad(
        `unknown grant action ${typeof a === 'string' ? printable(a, 40) : `of type ${a === null ? 'null' : Array.isArray(a) ? 'array' : typeof a}`} (use ${GRANT_ACTIONS.join(', ')})`,
      );
    return a as GrantAction;
  });
  const scope = parseScope(v.scope);
  const expires = time(v.expires, 'grant expires');
  if (expires === undefined) throw bad('a grant needs expires (ms since the epoch)');
  const notBefore = time(v.notBefore, 'grant notBefore');
  if (notBefore !== undefined && notBefore > expires) throw bad('grant notBefore is after expires');
  const terms: GrantTerms = { id: v.id, subject, ledger: v.ledger, actions, scope, expires };
  if (notBefore !== undefined) terms.notBefore = notBefore;
  return terms;
}

/** Parse a revoke payload strictly. */
export function parseRevokeTerms(v: unknown): RevokeTerms {
  if (!isObject(v)) throw bad('a revoke payload must be an object');
  only(v, ['grant', 'ledger'], 'revoke');
  if (!isGrantId(v.grant)) throw bad('revoke.grant must be a grant id');
  if (typeof v.ledger !== 'string' || v.ledger === '') throw bad('revoke.ledger must be the origin of the ledger');
  return { grant: v.grant, ledger: v.ledger };
}

/** A grant node's settings: the terms a grant gets where the request does not say. */
export interface GrantDefaults {
  /** The partner's did:key. */
  subject?: string;
  /** Actions, lines or comma-separated (default "read"). */
  actions?: string;
  /** Signers' did:keys, lines or comma-separated; none or "*" = every signer. */
  signers?: string;
  /** MQTT topic filters, lines or comma-separated; none = every topic. */
  topics?: string;
  /** Days until the grant expires when the request gives no `expires`. */
  validDays: number;
}

const DAY = 86_400_000;

/** Items of a setting or a request field: a list, or lines / comma-separated text. */
function items(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String);
  return typeof v === 'string' ? lines(v, true) : [];
}

/** A time given as ms, numeric text or a date. */
function timeOf(v: unknown, what: string): number | undefined {
  const t = timeValue(v);
  if (t === null) throw new FormatError('E_GRANT', `${what} must be ms since the epoch or a date`);
  return t;
}

/**
 * The terms of a grant on ledger `origin` from a request's fields `p` (subject, actions, scope
 * {signers, topics, from, until}, notBefore, expires, id) over the node's `defaults`, checked by
 * parseGrantTerms; signers "*", ["*"] or none mean every signer. Throws AccessError E_GRANT.
 */
export function grantTermsFrom(defaults: GrantDefaults, p: Record<string, unknown>, origin: string, now: number): GrantTerms {
  const scopeIn = isPlainObject(p.scope) ? p.scope : {};
  const signers = 'signers' in scopeIn ? scopeIn.signers : items(defaults.signers);
  const topics = 'topics' in scopeIn ? scopeIn.topics : items(defaults.topics);
  const everySigner = signers === '*' || (Array.isArray(signers) && (signers.length === 0 || (signers.length === 1 && signers[0] === '*')));
  const scope: Record<string, unknown> = { signers: everySigner ? '*' : signers };
  if (Array.isArray(topics) ? topics.length > 0 : topics !== undefined) scope.topics = topics;
  const from = timeOf(scopeIn.from, 'scope.from');
  const until = timeOf(scopeIn.until, 'scope.until');
  if (from !== undefined) scope.from = from;
  if (until !== undefined) scope.until = until;
  const t: Record<string, unknown> = {
    id: p.id ?? newGrantId(),
    subject: p.subject ?? (defaults.subject ?? '').trim(),
    ledger: origin,
    actions: p.actions !== undefined ? (Array.isArray(p.actions) ? p.actions : items(p.actions)) : items(defaults.actions ?? 'read'),
    scope,
    expires: timeOf(p.expires, 'expires') ?? now + defaults.validDays * DAY,
  };
  const nb = timeOf(p.notBefore, 'notBefore');
  if (nb !== undefined) t.notBefore = nb;
  if (t.subject === '') throw new FormatError('E_GRANT', "a grant needs the partner's did:key (subject)");
  return parseGrantTerms(t);
}

/** The envelope fields of a grant (sign it with the operator's key). */
export function grantInput(terms: GrantTerms, seq: number, ts: number): EnvelopeInput {
  const checked = parseGrantTerms(terms);
  return { kind: 'grant', seq, ts, payload: checked as unknown as JsonValue };
}

/** The envelope fields of a revocation (sign it with the operator's key). */
export function revokeInput(terms: RevokeTerms, seq: number, ts: number): EnvelopeInput {
  return { kind: 'revoke', seq, ts, payload: parseRevokeTerms(terms) as unknown as JsonValue };
}

/** Whether an entry is inside a scope: signer listed, topic matched by a filter, ts in range. */
export function inScope(scope: GrantScope, t: ScopeTarget): boolean {
  if (scope.signers !== '*' && !scope.signers.includes(t.signer as DidKey)) return false;
  if (scope.topics !== undefined && (t.topic === undefined || !scope.topics.some((f) => topicMatches(f, t.topic as string)))) return false;
  if (scope.from !== undefined && t.ts < scope.from) return false;
  if (scope.until !== undefined && t.ts > scope.until) return false;
  return true;
}

/** Everything one access decision depends on. */
export interface GrantCheck {
  /** The grant envelope (its signature already verified: a SignedEnvelope). */
  grant: SignedEnvelope;
  /** The ledger the request is about: its origin and operator. */
  ledger: { origin: string; operator: string };
  /** Who asks (the request's verified signer). */
  requester: string;
  action: GrantAction;
  /** When the request is decided (ms). */
  at: number;
  /** Whether the ledger holds a revocation of this grant id. */
  revoked: boolean;
  /** The entry acted on, for append (each supplied entry) or a single read. */
  target?: ScopeTarget;
}

/**
 * The one grant rule (docs/design.md "Partner access"): signed by the ledger's operator, for this
 * ledger, subject = requester, not revoked, notBefore ≤ at ≤ expires, action allowed, target
 * inside scope. Returns the terms; throws AccessError with E_GRANT (not a valid grant of this
 * ledger), E_NO_GRANT (not the requester's), E_REVOKED, E_EXPIRED or E_SCOPE.
 */
export function checkGrant(c: GrantCheck): GrantTerms {
  const e = c.grant.envelope;
  if (e.kind !== 'grant') throw bad(`entry of kind ${JSON.stringify(e.kind)} is not a grant`);
  if (e.signer !== c.ledger.operator) throw bad(`the grant is signed by ${e.signer}, not by the ledger's operator ${c.ledger.operator}`);
  const terms = parseGrantTerms(e.payload);
  if (terms.ledger !== c.ledger.origin) throw bad(`grant ${terms.id} is for ledger ${terms.ledger}, not ${c.ledger.origin}`);
  if (terms.subject !== c.requester) throw new AccessError('E_NO_GRANT', `grant ${terms.id} is not for ${c.requester}`);
  if (c.revoked) throw new AccessError('E_REVOKED', `grant ${terms.id} has been revoked`);
  if (terms.notBefore !== undefined && c.at < terms.notBefore) {
    throw new AccessError('E_EXPIRED', `grant ${terms.id} is not valid before ${new Date(terms.notBefore).toISOString()}`);
  }
  if (c.at > terms.expires) throw new AccessError('E_EXPIRED', `grant ${terms.id} expired at ${new Date(terms.expires).toISOString()}`);
  if (!terms.actions.includes(c.action)) throw new AccessError('E_SCOPE', `grant ${terms.id} does not allow ${c.action}`);
  if (c.target && !inScope(terms.scope, c.target)) {
    throw new AccessError(
      'E_SCOPE',
      `an entry of ${c.target.signer}${c.target.topic !== undefined ? ` on topic ${printable(c.target.topic, 80)}` : ''} at ${c.target.ts} is outside grant ${terms.id}`,
    );
  }
  return terms;
}

/** A grant as a list shows it. */
export interface GrantView extends GrantTerms {
  /** Ledger index of the grant entry. */
  index: number;
  /** `ts` of the grant envelope. */
  ts: number;
  status: 'active' | 'pending' | 'expired' | 'revoked';
  /** Ledger index of the first revocation, when revoked. */
  revokedIndex?: number;
}

/** A grant found in a ledger. */
export interface GrantRecord {
  grant: SignedEnvelope;
  terms: GrantTerms;
  index: number;
  revokedIndex?: number;
}

const HWM_KEY = 'grants/hwm';
const GRANT_KEY = 'grants/g/';
const REVOKE_KEY = 'grants/r/';
const SCAN_PAGE = 10000;
const PERSIST_EVERY = 4096;
const indexes = new WeakMap<Ledger, GrantIndex>();

/**
 * The grants and revocations of one ledger, found among the operator's entries and kept
 * in the ledger's aux records (a high-water mark and one record per grant and revocation),
 * so a reopen scans only what was appended since. The first grant with an id counts (a
 * later one cannot replace it); a revocation is permanent for its id, whatever the order.
 */
export class GrantIndex {
  readonly ledger: Ledger;
  #grants = new Map<string, GrantRecord>();
  #revoked = new Map<string, number>();
  #scanned = -1;
  #persisted = -1;

  private constructor(ledger: Ledger) {
    this.ledger = ledger;
  }

  /** The index of a ledger (one per open Ledger). */
  static of(ledger: Ledger): GrantIndex {
    let i = indexes.get(ledger);
    if (!i) {
      i = new GrantIndex(ledger);
      indexes.set(ledger, i);
    }
    return i;
  }

  /** Catch up with the entries appended since the last call. */
  async sync(): Promise<void> {
    if (this.#scanned === this.ledger.size) return;
    await serialized(this, 'sync', () => this.#sync());
  }

  async #sync(): Promise<void> {
    const l = this.ledger;
    const aux = l.aux;
    if (this.#scanned < 0) await this.#load();
    const size = l.size;
    if (this.#scanned >= size) return;
    const ops: { key: string; value: Buffer }[] = [];
    let from = this.#scanned;
    for (;;) {
      const rows = await l.query({ signer: l.operator.did, from, to: size, limit: SCAN_PAGE });
      for (const r of rows) {
        const e = r.envelope.envelope;
        try {
          if (e.kind === 'grant') {
            const terms = parseGrantTerms(e.payload);
            if (!this.#grants.has(terms.id) && terms.ledger === l.origin) {
              this.#grants.set(terms.id, { grant: r.envelope, terms, index: r.index });
              ops.push({ key: GRANT_KEY + terms.id, value: Buffer.from(String(r.index)) });
            }
          } else if (e.kind === 'revoke') {
            const terms = parseRevokeTerms(e.payload);
            if (!this.#revoked.has(terms.grant) && terms.ledger === l.origin) {
              this.#revoked.set(terms.grant, r.index);
              ops.push({ key: REVOKE_KEY + terms.grant, value: Buffer.from(String(r.index)) });
            }
          }
        } catch (err) {
          if (!(err instanceof BotError)) throw err; // a malformed grant is no grant; it stays in the ledger as evidence
        }
      }
      if (rows.length < SCAN_PAGE) break;
      from = rows[rows.length - 1].index + 1;
    }
    this.#scanned = size;
    if (ops.length > 0 || size - this.#persisted >= PERSIST_EVERY) {
      ops.push({ key: HWM_KEY, value: Buffer.from(String(size)) });
      await aux.batch(ops);
      this.#persisted = size;
    }
  }

  async #load(): Promise<void> {
    const l = this.ledger;
    const hwm = await l.aux.get(HWM_KEY);
    const scanned = hwm ? Number(hwm.toString()) : 0;
    for await (const [k, v] of l.aux.iterator(REVOKE_KEY)) this.#revoked.set(k.slice(REVOKE_KEY.length), Number(v.toString()));
    for await (const [k, v] of l.aux.iterator(GRANT_KEY)) {
      const index = Number(v.toString());
      const grant = fromTrustedLeaf((await l.get(index)).leaf);
      this.#grants.set(k.slice(GRANT_KEY.length), { grant, terms: parseGrantTerms(grant.envelope.payload), index });
    }
    this.#scanned = Number.isSafeInteger(scanned) && scanned <= l.size ? scanned : 0;
    this.#persisted = this.#scanned;
  }

  /** The grant with this id and its revocation, as of now; undefined when the ledger has none. */
  async get(id: string): Promise<GrantRecord | undefined> {
    await this.sync();
    const g = this.#grants.get(id);
    if (!g) return undefined;
    const r = this.#revoked.get(id);
    return r === undefined ? g : { ...g, revokedIndex: r };
  }

  /**
   * The grant a request names, when it is the requester's (E_NO_GRANT otherwise): a lookup in
   * the index, nothing stored, so a request from a key without a grant costs no state.
   */
  async ofRequester(grantId: unknown, requester: string): Promise<GrantRecord> {
    if (!isGrantId(grantId)) throw new AccessError('E_NO_GRANT', 'the request names no grant id');
    const rec = await this.get(grantId);
    if (!rec) throw new AccessError('E_NO_GRANT', `ledger ${this.ledger.origin} holds no grant ${grantId}`);
    if (rec.terms.subject !== requester) throw new AccessError('E_NO_GRANT', `grant ${grantId} is not for ${printable(requester, 80)}`);
    return rec;
  }

  /**
   * Decide a request with checkGrant against the grants and revocations in the ledger now,
   * so a revocation appended before the request is decided always applies.
   */
  async check(grantId: unknown, requester: string, action: GrantAction, at: number, target?: ScopeTarget): Promise<GrantRecord> {
    const rec = await this.ofRequester(grantId, requester);
    checkGrant({
      grant: rec.grant,
      ledger: { origin: this.ledger.origin, operator: this.ledger.operator.did },
      requester,
      action,
      at,
      revoked: rec.revokedIndex !== undefined,
      target,
    });
    return rec;
  }

  /** Every grant of the ledger with its status at `now`, newest first. */
  async list(now = Date.now()): Promise<GrantView[]> {
    await this.sync();
    const out: GrantView[] = [];
    for (const g of this.#grants.values()) {
      const revokedIndex = this.#revoked.get(g.terms.id);
      const status: GrantView['status'] =
        revokedIndex !== undefined
          ? 'revoked'
          : now > g.terms.expires
            ? 'expired'
            : g.terms.notBefore !== undefined && now < g.terms.notBefore
              ? 'pending'
              : 'active';
      const v: GrantView = { ...g.terms, index: g.index, ts: g.grant.envelope.ts, status };
      if (revokedIndex !== undefined) v.revokedIndex = revokedIndex;
      out.push(v);
    }
    return out.sort((a, b) => b.index - a.index);
  }
}

/** A grant or revocation once appended: the envelope (what the partner keeps) and its receipt. */
export interface Issued {
  envelope: SignedEnvelope;
  receipt: Receipt;
}

/**
 * Issue a grant: signed with the operator's key and appended to its ledger. Refuses an id the
 * ledger already holds (E_GRANT), as only the first grant of an id counts. `nextSeq` gives
 * the operator's next envelope seq (its persistent counter), taken only when signing.
 */
export async function issueGrant(ledger: Ledger, operator: Identity, nextSeq: () => number, terms: GrantTerms, ts = Date.now()): Promise<Issued> {
  const checked = parseGrantTerms(terms);
  if (checked.ledger !== ledger.origin) throw bad(`the grant is for ${checked.ledger}, not ${ledger.origin}`);
  const index = GrantIndex.of(ledger);
  return serialized(index, 'issue', async () => {
    if (await index.get(checked.id)) throw bad(`the ledger already holds a grant ${checked.id}`);
    const envelope = signEnvelope(operator, grantInput(checked, nextSeq(), ts), { maxBytes: ledger.maxEntryBytes });
    return { envelope, receipt: await ledger.append(envelope) };
  });
}

/** Revoke a grant the ledger holds (E_NO_GRANT otherwise): a revoke envelope signed by the operator, appended. */
export async function revokeGrant(ledger: Ledger, operator: Identity, nextSeq: () => number, id: string, ts = Date.now()): Promise<Issued> {
  const index = GrantIndex.of(ledger);
  return serialized(index, 'issue', async () => {
    if (typeof id !== 'string' || !(await index.get(id))) {
      throw new AccessError('E_NO_GRANT', `the ledger holds no grant ${printable(String(id), 64)}`);
    }
    const envelope = signEnvelope(operator, revokeInput({ grant: id, ledger: ledger.origin }, nextSeq(), ts), { maxBytes: ledger.maxEntryBytes });
    return { envelope, receipt: await ledger.append(envelope) };
  });
}
