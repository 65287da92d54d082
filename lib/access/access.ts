/**
 * Partner access (docs/design.md "Partner access"): a partner acts by sending an envelope of kind
 * `request`, signed with its own key, naming a grant of the owner's ledger:
 *
 *   payload {"op":"read","grant":<id>,"filter":{from,to,signer,topic,since,until,limit}}
 *   payload {"op":"append","grant":<id>,"entries":[<signed envelope>…]}
 *
 *   payload {"op":"keys","grant":<id>,"from"?:<index>}  (confidential scopes: the epoch entries and the
 *           keywraps to the requester, docs/design.md "Confidential entries"; answered like a read)
 *
 * or, with no grant yet, asks for one (lib/access/access-requests.ts, README "One paste to connect a
 * partner"): {"op":"access",actions,scope,days,note} → {"access":<pending request>} and
 * {"op":"access-status","id"} → {"access":{id,status,grant?}}, through the same rate limits,
 * signature and freshness checks.
 *
 * The owner checks signature, freshness and replay, the grant (lib/access/grants.ts checkGrant),
 * and answers, whatever the channel (MQTT RPC or HTTP):
 *
 *   read    {"checkpoint":<note text>,"entries":[{"index","leaf":<envelope>,"proof":[base64…]}],"treeSize","next"?}
 *   append  {"checkpoint":<note text>,"receipts":[{"origin","index","leafHash","treeSize","proof":[base64…]}…]}
 *   refusal {"error":{"code","message"}}
 *
 * Answers are evidence: a read's entries and an append's receipts each carry an RFC 9162
 * §2.1.3 inclusion proof against a C2SP checkpoint (signed-note + tlog-checkpoint) signed by
 * the operator; a read answer is paged (`next`) so that it fits one MQTT message. A refusal
 * is not signed (a forged refusal can deny service, not forge storage).
 *
 * The owner's order of checks spends little on requests it will refuse: the total rate limit
 * (lib/access/rate-limit.ts) before parsing; the grant named, for the signer claimed (an index
 * lookup), before the signature is checked; then signature, freshness, the grant again for
 * the verified signer. Only a grant's subject gets a per-partner bucket and a stored request
 * seq, so requests from keys without a grant leave no state.
 * A supply request is atomic: its entries are checked and appended under one lock per ledger,
 * with Ledger.appendAll (all or none).
 *
 * The partner side (makeRequest, verifyReadAnswer, verifyAppendAnswer) trusts nothing of the
 * answer but the owner's operator key (and the witnesses' keys when a quorum is required).
 */
import { fromBase64, toBase64 } from '../format/bytes';
import { BotError, FormatError, isBotErrorCode, LedgerError, VerificationError } from '../errors';
import { DEFAULT_MAX_ENTRY_BYTES, type Envelope, type SignedEnvelope, signEnvelope, verifyEnvelope } from '../format/envelope';
import { GrantIndex, type GrantScope, inScope, AccessError } from './grants';
import { type Identity, PublicKey } from '../format/identity';
import type { JsonValue } from '../format/jcs';
import { type Ledger, type Query, type Receipt, type StoredCheckpoint } from '../store/ledger';
import { leafHash, verifyInclusion } from '../format/merkle';
import { type Checkpoint, openNote, parseCheckpoint, parseNote } from '../format/note';
import { type Confirmations, countConfirmations, logVerifier, type QuorumPolicy } from '../consortium/quorum';
import { proveEntries, type ProvenEntry, queryFrom } from './answer';
import { MAX_ANSWER_BYTES } from '../consortium/mqtt-link';
import { serialized } from '../store/mutex';
import type { RateLimiter } from './rate-limit';
import { checkTopicFilter, escapeUnprintable, isExactTopic, printable, topicMatches } from '../format/topic';
import { signerId } from '../store/layout';
import { AccessRequests, ACCESS_OPS, MAX_ACCESS_REQUEST_BYTES } from './access-requests';
import type { AccessStatus, AccessView } from './access-requests';
import { keyEpochsOf } from '../confidential/owner';
import { SEALED_KIND } from '../confidential/seal';

/** Largest request envelope accepted (an append of many entries). */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
/** Most entries in one answer or one append request. */
export const MAX_PARTNER_ENTRIES = 1000;
/** Default clock skew allowed between a request's ts and the owner's clock. */
export const DEFAULT_SKEW_MS = 5 * 60 * 1000;
/** Most entries one read scans for its scope before it answers with `next`. */
const MAX_SCAN = 100_000;
const SCAN_PAGE = 1000;
/** Room kept in an answer for its checkpoint note (with witnesses' cosignatures) and the wrapper. */
const NOTE_BUDGET = 16 * 1024;
/** JSON bytes of one base64 hash in a proof list: 44 characters, quotes, comma. */
const PROOF_HASH_BYTES = 47;
/** Signers whose last request seq the replay guard keeps in memory (the rest are read back from the store). */
const REPLAY_CACHE = 4096;

/** What a partner asks. */
export type RequestPayload =
  | { op: 'read'; grant: string; filter?: Partial<Record<keyof Query, string | number>> }
  | { op: 'append'; grant: string; entries: JsonValue[] }
  | { op: 'keys'; grant: string; from?: number }
  | { op: 'access'; actions: string[]; scope?: JsonValue; days?: number; note?: string }
  | { op: 'access-status'; id: string };

/** A read answer (proofs against `checkpoint`; `next` = index to continue from when cut short). */
export interface ReadAnswer {
  checkpoint: string | null;
  entries: ProvenEntry[];
  treeSize: number;
  next?: number;
}
/** A receipt with its RFC 9162 §2.1.3 inclusion proof (standard base64 hashes) against the answer's checkpoint. */
export interface ProvenReceipt extends Receipt {
  proof: string[];
}
/** An append answer: the operator's checkpoint and, per entry, its receipt proven against it. */
export interface AppendAnswer {
  checkpoint: string;
  receipts: ProvenReceipt[];
}
/** An access request's answer: the pending request as the owner keeps it, or its status. */
export interface AccessAnswer {
  access: AccessView | AccessStatus;
}
/** Any answer of answerRequest. */
export type RequestAnswer = ReadAnswer | AppendAnswer | AccessAnswer;
/** A refusal, as sent back on any channel. */
export interface Refusal {
  error: { code: string; message: string };
}

/**
 * Words that may be a peer's (an owner's refusal message, a kernel message quoting a peer's
 * value), for one line of an error or a log: unprintable characters escaped (lib/format/topic.ts
 * escapeUnprintable), then cut to at most max characters.
 */
export function peerWords(text: unknown, max = 300): string {
  const s = escapeUnprintable(String(text).slice(0, 6 * max));
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Sign a request envelope with the partner's key (seq from its persistent counter). */
export function makeRequest(id: Identity, seq: number, payload: RequestPayload, ts = Date.now()): SignedEnvelope {
  return signEnvelope(id, { kind: 'request', seq, ts, payload: payload as unknown as JsonValue }, { maxBytes: MAX_REQUEST_BYTES });
}

/** A parsed, signature-checked request. */
export interface ParsedRequest {
  env: SignedEnvelope;
  op: 'read' | 'append' | 'keys';
  grant: string;
  /** For read: the filter; for keys: `from` only. */
  filter: Query;
  entries: JsonValue[];
}

/** Parse and verify a request envelope (object, JSON text or bytes); typed errors, nothing trusted. */
export function parseRequest(input: unknown): ParsedRequest {
  const env = verifyEnvelope(input, { maxBytes: MAX_REQUEST_BYTES, fresh: true });
  const e = env.envelope;
  if (e.kind !== 'request') throw new FormatError('E_ENVELOPE', `a partner request is an envelope of kind "request", not ${printable(e.kind, 40)}`);
  const p = e.payload;
  if (!isObject(p)) throw new FormatError('E_QUERY', 'request payload must be an object {op, grant, …}');
  if (p.op !== 'read' && p.op !== 'append' && p.op !== 'keys')
    throw new FormatError('E_QUERY', 'request op must be "read", "append", "keys", "access" or "access-status"');
  if (typeof p.grant !== 'string') throw new AccessError('E_NO_GRANT', 'the request names no grant id');
  for (const k of Object.keys(p)) {
    if (!['op', 'grant', p.op === 'read' ? 'filter' : p.op === 'keys' ? 'from' : 'entries'].includes(k))
      throw new FormatError('E_QUERY', `unknown request field ${printable(k, 40)} for op ${p.op}`);
  }
  let filter: Query = {};
  let entries: JsonValue[] = [];
  if (p.op === 'keys') {
    filter = queryFrom({}, { from: p.from });
  } else if (p.op === 'read') {
    if (p.filter !== undefined && !isObject(p.filter)) throw new FormatError('E_QUERY', 'request filter must be an object');
    filter = queryFrom({}, p.filter);
    if (filter.limit !== undefined && (filter.limit < 1 || filter.limit > MAX_PARTNER_ENTRIES)) {
      throw new FormatError('E_QUERY', `filter.limit must be from 1 to ${MAX_PARTNER_ENTRIES}`);
    }
    if (filter.topic !== undefined) {
      try {
        checkTopicFilter(filter.topic);
      } catch {
        throw new FormatError('E_QUERY', `filter.topic ${printable(filter.topic, 60)} is not an MQTT topic filter (MQTT 3.1.1 §4.7.1)`);
      }
    }
    if (filter.signer !== undefined) PublicKey.fromDid(filter.signer);
  } else {
    if (!Array.isArray(p.entries) || p.entries.length === 0 || p.entries.length > MAX_PARTNER_ENTRIES) {
      throw new FormatError('E_QUERY', `entries must be a list of 1 to ${MAX_PARTNER_ENTRIES} signed envelopes`);
    }
    entries = p.entries;
  }
  return { env, op: p.op, grant: p.grant, filter, entries };
}

const replayGuards = new WeakMap<Ledger, ReplayGuard>();

/** E_REPLAY unless a request's ts is within the allowed skew of the owner's clock (no state). */
export function checkFresh(env: SignedEnvelope, now: number, skewMs = DEFAULT_SKEW_MS): void {
  const { ts } = env.envelope;
  if (Math.abs(ts - now) > skewMs) {
    throw new LedgerError(
      'E_REPLAY',
      `request ts ${ts} is more than ${Math.round(skewMs / 1000)} s from the owner's clock ${now} (stale, replayed, or clocks apart)`,
    );
  }
}

/**
 * Refuses replayed requests: a request's ts must be within the allowed skew of the owner's
 * clock, and its seq above the last request seq accepted from its signer on this ledger
 * (kept in the ledger's aux records, so a restart does not reopen old requests). answerRequest
 * admits only requests naming a grant of their signer, so records exist only for grant
 * subjects; the in-memory copy is bounded (REPLAY_CACHE signers, the rest read back).
 */
export class ReplayGuard {
  #ledger: Ledger;
  #last = new Map<string, number>();

  private constructor(ledger: Ledger) {
    this.#ledger = ledger;
  }

  /** The guard of a ledger (one per open Ledger). */
  static of(ledger: Ledger): ReplayGuard {
    let g = replayGuards.get(ledger);
    if (!g) {
      g = new ReplayGuard(ledger);
      replayGuards.set(ledger, g);
    }
    return g;
  }

  /** Signers whose last request seq is held in memory now (at most REPLAY_CACHE). */
  get cached(): number {
    return this.#last.size;
  }

  /** Accept the request once (E_REPLAY otherwise); it is consumed even if later refused. */
  async admit(env: SignedEnvelope, now: number, skewMs = DEFAULT_SKEW_MS): Promise<void> {
    const { signer, seq } = env.envelope;
    checkFresh(env, now, skewMs);
    const sid = signerId(signer);
    await serialized(this, sid, async () => {
      let last = this.#last.get(sid);
      if (last === undefined) {
        const stored = await this.#ledger.aux.get('requests/' + sid);
        last = stored ? Number(stored.toString()) : -1;
      }
      if (seq <= last) throw new LedgerError('E_REPLAY', `request seq ${seq} of ${signer} is not above its last request seq ${last}`);
      this.#last.delete(sid); // most recent last: the oldest is forgotten first
      if (this.#last.size >= REPLAY_CACHE) this.#last.delete(this.#last.keys().next().value as string);
      this.#last.set(sid, seq);
      // Not synced: a process crash keeps it; after an OS crash the ts window still bounds replays.
      await this.#ledger.aux.batch([{ key: 'requests/' + sid, value: Buffer.from(String(seq)) }], { sync: false });
    });
  }
}

/** How an owner answers requests about one ledger. */
export interface AccessServerOptions {
  ledger: Ledger;
  /** The checkpoint read answers are proven against: the quorum-confirmed one when there is a quorum. */
  checkpoint: () => Promise<StoredCheckpoint | undefined>;
  /**
   * Signs (or reuses) an operator checkpoint covering the ledger's current size: called right
   * after a supply request's entries are appended, and their receipts are proven against it.
   * Without it (an owner without the operator key) supply requests are refused with E_KEY
   * before anything is appended.
   */
  receiptCheckpoint?: () => Promise<StoredCheckpoint | undefined>;
  /** Rate limits per partner and in total (lib/access/rate-limit.ts); none when absent. */
  rateLimiter?: RateLimiter;
  /** Allowed clock skew of request ts (default 5 minutes). */
  skewMs?: number;
  /** The clock (tests). */
  now?: () => number;
}

/** The signer and grant a request (as an object) claims, read without trusting them: to refuse early, never to accept. */
function claimOf(input: unknown): { signer: string; grant: unknown } | undefined {
  if (!isObject(input) || typeof input.signer !== 'string' || input.signer.length > 80 || !isObject(input.payload)) return undefined;
  return { signer: input.signer, grant: input.payload.grant };
}

/**
 * Answer a partner's request: within the rate limits, find the grant it names for the signer
 * it claims (else E_NO_GRANT before any signature work), verify it, refuse replays (nothing is
 * stored for a request refused until then), decide with the ledger's grants, then read (only
 * entries inside the grant's scope, with inclusion proofs) or append (each supplied entry
 * inside the scope; all or none). Throws typed errors for every refusal; a refused request
 * changes nothing in the ledger.
 */
export async function answerRequest(opts: AccessServerOptions, input: unknown): Promise<RequestAnswer> {
  const { ledger, rateLimiter: limiter } = opts;
  limiter?.admitTotal();
  if ((ACCESS_OPS as readonly unknown[]).includes(claimedOp(input))) return answerAccess(opts, input);
  const grants = GrantIndex.of(ledger);
  const claim = claimOf(input);
  // The requests of one signer are admitted (seq above its last) in the order they arrived: the
  // look-ups before admission may take different times, and a partner keeping several requests
  // in flight must not see a later one admitted first and the earlier refused as a replay.
  const admitted = async (): Promise<{ req: ParsedRequest; requester: string; now: number }> => {
    if (claim) {
      // Unverified, so only ever a reason to refuse: over its rate, or naming no grant of that signer.
      limiter?.checkSigner(claim.signer);
      await grants.ofRequester(claim.grant, claim.signer);
    }
    const now = (opts.now ?? Date.now)();
    const req = parseRequest(input);
    checkFresh(req.env, now, opts.skewMs);
    const requester = req.env.envelope.signer;
    await grants.ofRequester(req.grant, requester);
    limiter?.admitSigner(requester);
    if (req.op === 'append' && !opts.receiptCheckpoint) {
      throw new FormatError('E_KEY', 'this owner cannot sign receipts (its ledger has no operator key here): it accepts no supplied entries');
    }
    await ReplayGuard.of(ledger).admit(req.env, now, opts.skewMs);
    return { req, requester, now };
  };
  const { req, requester, now } = claim ? await serialized(ledger, `request-order ${claim.signer}`, admitted) : await admitted();
  if (req.op === 'read') {
    const rec = await grants.check(req.grant, requester, 'read', now);
    return readInScope(ledger, req.filter, rec.terms.scope, await opts.checkpoint());
  }
  if (req.op === 'keys') {
    await grants.check(req.grant, requester, 'read', now);
    return readKeys(ledger, requester, req.filter.from ?? 0, await opts.checkpoint());
  }
  const envs = req.entries.map((e, i) => {
    try {
      return verifyEnvelope(e, { maxBytes: ledger.maxEntryBytes });
    } catch (err) {
      throw err instanceof BotError ? new (err.constructor as typeof BotError)(err.code, `entries[${i}]: ${peerWords(err.message)}`) : err;
    }
  });
  // Check and append under one lock per ledger, all or none (Ledger.appendAll): two
  // overlapping requests cannot both pass the checks, and a refused one leaves nothing.
  const receipts = await serialized(ledger, 'partner-supply', async () => {
    await grants.check(req.grant, requester, 'append', now);
    for (const env of envs) {
      const { signer, topic, ts } = env.envelope;
      await grants.check(req.grant, requester, 'append', now, { signer, topic, ts });
    }
    checkReceiptsFit(ledger, envs.length);
    // Confidential scopes are stored sealed (docs/design.md "Confidential entries"): a supplied
    // entry on one of their topics would be stored in plaintext, and its receipt could not
    // prove a sealed leaf to its supplier, so it is refused.
    const keys = await keyEpochsOf(ledger);
    for (const [i, env] of envs.entries()) {
      const scope = env.envelope.kind === SEALED_KIND ? undefined : keys.scopeOf(env.envelope.topic);
      if (scope !== undefined) {
        throw new AccessError(
          'E_SCOPE',
          `entries[${i}]: topic ${printable(env.envelope.topic ?? '', 80)} is in confidential scope ${scope}: it cannot be supplied in plaintext`,
        );
      }
    }
    // appendAll refuses the whole list (E_REPLAY, naming entries[i]) when a seq is not above
    // its signer's last in the ledger or earlier in the list: not checked twice here.
    return ledger.appendAll(envs);
  });
  return proveReceipts(ledger, receipts, opts.receiptCheckpoint as () => Promise<StoredCheckpoint | undefined>);
}

/** The op a request claims (objects, and text or bytes small enough to be an access request), read without trusting it: only to route. */
function claimedOp(input: unknown): unknown {
  let v = input;
  if ((typeof v === 'string' || v instanceof Uint8Array) && v.length <= MAX_ACCESS_REQUEST_BYTES) {
    try {
      v = JSON.parse(typeof v === 'string' ? v : Buffer.from(v).toString('utf8'));
    } catch {
      return undefined;
    }
  }
  return isObject(v) && isObject(v.payload) ? v.payload.op : undefined;
}

/**
 * Answer an access request or an access-status question (lib/access/access-requests.ts): after the
 * total rate limit (answerRequest), the claimed signer's limit is looked at, then the envelope
 * (at most MAX_ACCESS_REQUEST_BYTES) is verified and must be fresh, then the requester's limit
 * is drawn from. An owner that cannot sign grants here (no operator key) refuses requests with
 * E_KEY. A refused request stores nothing.
 */
async function answerAccess(opts: AccessServerOptions, input: unknown): Promise<AccessAnswer> {
  const limiter = opts.rateLimiter;
  const claim = claimOf(input);
  if (claim) limiter?.checkSigner(claim.signer);
  const env = verifyEnvelope(input, { maxBytes: MAX_ACCESS_REQUEST_BYTES, fresh: true });
  const e = env.envelope;
  if (e.kind !== 'request') throw new FormatError('E_ENVELOPE', `a partner request is an envelope of kind "request", not ${printable(e.kind, 40)}`);
  const now = (opts.now ?? Date.now)();
  checkFresh(env, now, opts.skewMs);
  limiter?.admitSigner(e.signer);
  const store = AccessRequests.of(opts.ledger);
  const p = e.payload as Record<string, unknown>;
  if (p.op === 'access-status') {
    for (const k of Object.keys(p)) if (k !== 'op' && k !== 'id') throw new FormatError('E_QUERY', `unknown access-status field ${printable(k, 40)}`);
    return { access: await store.status(p.id, e.signer) };
  }
  if (!opts.receiptCheckpoint)
    throw new FormatError('E_KEY', 'this owner cannot sign grants here (its ledger has no operator key): it takes no access requests');
  return { access: await store.submit(env, now) };
}

/** E_TOO_LARGE, before anything is appended, when the receipts of n entries could not fit one answer (MAX_ANSWER_BYTES). */
function checkReceiptsFit(ledger: Ledger, n: number): void {
  // A receipt: {"origin","index","leafHash","treeSize","proof":[…]}; a proof has at most ⌈log2 size⌉ hashes (one spare for appends meanwhile).
  const perReceipt = 120 + Buffer.byteLength(ledger.origin) + (Math.ceil(Math.log2(ledger.size + n + 1)) + 1) * PROOF_HASH_BYTES;
  const most = Math.floor((MAX_ANSWER_BYTES - NOTE_BUDGET) / perReceipt);
  if (n > most) {
    throw new FormatError(
      'E_TOO_LARGE',
      `the receipts of ${n} entries would not fit one answer of ${MAX_ANSWER_BYTES} bytes: send at most ${most} entries per request`,
    );
  }
}

/** The receipts of appended entries, each with its inclusion proof against an operator checkpoint covering them all. */
async function proveReceipts(ledger: Ledger, receipts: Receipt[], seal: () => Promise<StoredCheckpoint | undefined>): Promise<AppendAnswer> {
  const need = Math.max(...receipts.map((r) => r.index)) + 1;
  let cp = await seal();
  if (!cp || cp.size < need) cp = await seal(); // one signed meanwhile may predate the append
  if (!cp || cp.size < need) {
    throw new LedgerError(
      'E_CHECKPOINT',
      `the entries were appended (from #${need - receipts.length}) but no checkpoint covers them yet: read them back for their proofs`,
    );
  }
  const size = cp.size;
  const proven: ProvenReceipt[] = [];
  for (const r of receipts) proven.push({ ...r, proof: (await ledger.inclusionProof(r.index, size)).map(toBase64) });
  return { checkpoint: cp.note, receipts: proven };
}

/** Refuse a read whose explicit filter lies outside the scope (rather than answer nothing). */
function checkFilterInScope(q: Query, scope: GrantScope): void {
  if (q.signer !== undefined && scope.signers !== '*' && !scope.signers.includes(PublicKey.fromDid(q.signer).did)) {
    throw new AccessError('E_SCOPE', `signer ${q.signer} is outside the grant's scope`);
  }
  if (q.topic !== undefined && isExactTopic(q.topic) && scope.topics && !scope.topics.some((f) => topicMatches(f, q.topic as string))) {
    throw new AccessError('E_SCOPE', `topic ${printable(q.topic, 80)} is outside the grant's scope`);
  }
  if (
    (q.until !== undefined && scope.from !== undefined && q.until < scope.from) ||
    (q.since !== undefined && scope.until !== undefined && q.since > scope.until)
  ) {
    throw new AccessError('E_SCOPE', "the time range asked is outside the grant's scope");
  }
}

/**
 * Entries matching the filter and inside the scope, up to the checkpoint, each proven against
 * it. Paged by count (filter.limit, at most MAX_PARTNER_ENTRIES) and by size: the answer stays
 * within MAX_ANSWER_BYTES, so that it fits one MQTT message; `next` is where to continue.
 * (An entry too large alone is still answered, alone: over HTTP it arrives.)
 */
export async function readInScope(ledger: Ledger, q: Query, scope: GrantScope, cp: StoredCheckpoint | undefined): Promise<ReadAnswer> {
  checkFilterInScope(q, scope);
  if (!cp) return { checkpoint: null, entries: [], treeSize: 0 };
  const limit = Math.min(q.limit ?? 100, MAX_PARTNER_ENTRIES);
  const narrowed: Query = { ...q };
  if (narrowed.signer === undefined && scope.signers !== '*' && scope.signers.length === 1) narrowed.signer = scope.signers[0];
  if (scope.from !== undefined) narrowed.since = Math.max(narrowed.since ?? 0, scope.from);
  if (scope.until !== undefined) narrowed.until = Math.min(narrowed.until ?? Number.MAX_SAFE_INTEGER, scope.until);
  const end = Math.min(q.to ?? cp.size, cp.size);
  // Bytes of one answered entry beside its leaf: {"index":…,"leaf":…,"proof":[…]} with at most ⌈log2 size⌉ hashes.
  const perEntry = 64 + Math.ceil(Math.log2(Math.max(2, cp.size))) * PROOF_HASH_BYTES;
  const budget = MAX_ANSWER_BYTES - NOTE_BUDGET - Buffer.byteLength(cp.note);
  let bytes = 0;
  let cursor = q.from ?? 0;
  let scanned = 0;
  let full = false;
  const picked: Awaited<ReturnType<Ledger['query']>> = [];
  let next: number | undefined;
  while (cursor < end && !full) {
    if (scanned >= MAX_SCAN) {
      next = cursor;
      break;
    }
    // Pages sized to what is still missing (twice, as the scope may drop some), so a small read stays small.
    const page = Math.min(SCAN_PAGE, Math.max(32, 2 * (limit - picked.length)));
    const rows = await ledger.query({ ...narrowed, from: cursor, to: end, limit: page });
    for (const r of rows) {
      scanned++;
      const e = r.envelope.envelope;
      if (!inScope(scope, { signer: e.signer, topic: e.topic, ts: e.ts })) continue;
      const cost = r.leaf.length + perEntry;
      if (picked.length > 0 && bytes + cost > budget) {
        next = r.index;
        full = true;
        break;
      }
      bytes += cost;
      picked.push(r);
      if (picked.length >= limit) {
        if (r.index + 1 < end) next = r.index + 1;
        full = true;
        break;
      }
    }
    if (full || rows.length < page) break;
    cursor = rows[rows.length - 1].index + 1;
  }
  const answer: ReadAnswer = { checkpoint: cp.note, entries: await proveEntries(ledger, picked, cp.size), treeSize: cp.size };
  if (next !== undefined) answer.next = next;
  return answer;
}

/** Most key entries in one `keys` answer (each about 1.5 KB: an epoch, or a keywrap with its enckey envelope). */
const MAX_KEY_ENTRIES = 200;

/**
 * The key entries of confidential scopes a reader needs (docs/design.md "Confidential entries"):
 * every epoch entry and every keywrap to the requester, from index `from`, below the
 * checkpoint, each proven against it like a read's entries; paged (`next`). Whatever the
 * grant's topics: the keys are useless without the sealed entries the grant lets it read, and
 * a keywrap opens only with the reader's own X25519 key.
 */
export async function readKeys(ledger: Ledger, reader: string, from: number, cp: StoredCheckpoint | undefined): Promise<ReadAnswer> {
  if (!cp) return { checkpoint: null, entries: [], treeSize: 0 };
  const all = (await keyEpochsOf(ledger)).entriesFor(reader).filter((i) => i >= from && i < cp.size);
  const picked = all.slice(0, MAX_KEY_ENTRIES);
  const rows = await Promise.all(picked.map((i) => ledger.get(i)));
  const answer: ReadAnswer = { checkpoint: cp.note, entries: await proveEntries(ledger, rows, cp.size), treeSize: cp.size };
  if (all.length > picked.length) answer.next = all[picked.length];
  return answer;
}

/** The refusal body for an error (its code when it is a kernel error; never a stack). */
export function refusal(err: unknown): Refusal {
  if (err instanceof BotError) return { error: { code: err.code, message: err.message } };
  return { error: { code: 'E_STORE', message: 'the request could not be answered' } };
}

const ACCESS_CODES: readonly string[] = ['E_NO_GRANT', 'E_GRANT', 'E_EXPIRED', 'E_REVOKED', 'E_SCOPE'];
const UNAVAILABLE_CODES: readonly string[] = ['E_STORE', 'E_CLOSED', 'E_CORRUPT', 'E_LOCKED'];

/**
 * The HTTP status of a refusal, part of the HTTP channel's contract (README "Partner access"):
 * 403 for an access decision, 409 for a replay, 429 over a rate limit (RFC 6585 §4), 503 when
 * the ledger is unavailable, else 400 (a malformed or unverifiable request).
 */
export function refusalStatus(code: string): number {
  if (ACCESS_CODES.includes(code)) return 403;
  if (code === 'E_REPLAY') return 409;
  if (code === 'E_RATE') return 429;
  if (UNAVAILABLE_CODES.includes(code)) return 503;
  return 400;
}

/** The owner's ledger as a partner knows it. */
export interface OwnerRef {
  origin: string;
  /** The operator's did:key. */
  operator: string;
  /** When set, the answer's checkpoint must be confirmed by this quorum policy. */
  policy?: QuorumPolicy;
}

/** One verified entry. */
export interface VerifiedEntry {
  index: number;
  leaf: Envelope;
  leafHash: string;
}

/** A read answer after every check passed. */
export interface VerifiedRead {
  checkpoint: { origin: string; size: number; root: string; note: string };
  confirmations?: Confirmations;
  entries: VerifiedEntry[];
  next?: number;
}

/** Checkpoints already verified for an owner (key: owner, policy, note): a partner polling sees the same one often. */
const checkedCheckpoints = new Map<string, { cp: Checkpoint; confirmations?: Confirmations }>();
const CHECKED_MAX = 64;

/** The checkpoint of an answer, signed by the owner's operator (and confirmed by the policy's quorum when given). */
function checkCheckpoint(note: string, owner: OwnerRef): { cp: Checkpoint; confirmations?: Confirmations } {
  const key = `${owner.origin}\n${owner.operator}\n${owner.policy ? JSON.stringify(owner.policy.toJSON()) : ''}\n${note}`;
  const known = checkedCheckpoints.get(key);
  if (known) return known;
  let confirmations: Confirmations | undefined;
  if (owner.policy) {
    if (owner.policy.origin !== owner.origin || owner.policy.operatorDid !== owner.operator)
      throw new FormatError('E_NOTE', "the quorum policy is not the owner's ledger");
    confirmations = countConfirmations(note, owner.policy);
    if (!confirmations.confirmed) {
      throw new VerificationError('E_CHECKPOINT', `the checkpoint has ${confirmations.count} of the ${confirmations.quorum} confirmations required`);
    }
  } else {
    openNote(note, [logVerifier(owner.origin, owner.operator)]);
  }
  const cp = parseCheckpoint(parseNote(note).text);
  if (cp.origin !== owner.origin) throw new VerificationError('E_CHECKPOINT', `the checkpoint is of ${cp.origin}, not ${owner.origin}`);
  const out = confirmations ? { cp, confirmations } : { cp };
  if (checkedCheckpoints.size >= CHECKED_MAX) checkedCheckpoints.delete(checkedCheckpoints.keys().next().value as string);
  checkedCheckpoints.set(key, out);
  return out;
}

/** Throw the owner's refusal as a typed error, when the answer is one. */
export function throwIfRefused(answer: unknown): void {
  if (isObject(answer) && isObject(answer.error)) {
    const code = isBotErrorCode(answer.error.code) ? answer.error.code : 'E_QUERY';
    throw new AccessError(code, `refused by the owner: ${peerWords(answer.error.message ?? code)}`);
  }
}

function answerError(msg: string): FormatError {
  return new FormatError('E_QUERY', `malformed answer: ${msg}`);
}

/** Whether an entry matches what the partner asked (so an owner cannot slip other entries in). */
function matchesFilter(q: Query, index: number, e: Envelope): boolean {
  return (
    (q.from === undefined || index >= q.from) &&
    (q.to === undefined || index < q.to) &&
    (q.signer === undefined || e.signer === q.signer) &&
    (q.topic === undefined || (e.topic !== undefined && topicMatches(q.topic, e.topic))) &&
    (q.since === undefined || e.ts >= q.since) &&
    (q.until === undefined || e.ts <= q.until)
  );
}

/**
 * Verify a read answer without trusting its sender: the checkpoint is signed by the operator
 * (and confirmed by the quorum when a policy is given), each leaf's signature verifies, each
 * inclusion proof leads to the checkpoint's root (RFC 9162 §2.1.3.2), and each entry matches
 * the filter asked. Throws a typed error naming the first entry that fails.
 */
export function verifyReadAnswer(answer: unknown, owner: OwnerRef, asked: Query = {}): VerifiedRead {
  throwIfRefused(answer);
  if (!isObject(answer) || !Array.isArray(answer.entries)) throw answerError('expected {checkpoint, entries}');
  if (answer.checkpoint === null) {
    if (answer.entries.length > 0) throw answerError('entries without a checkpoint');
    return { checkpoint: { origin: owner.origin, size: 0, root: '', note: '' }, entries: [] };
  }
  if (typeof answer.checkpoint !== 'string') throw answerError('checkpoint must be a signed note');
  const { cp, confirmations } = checkCheckpoint(answer.checkpoint, owner);
  const entries: VerifiedEntry[] = [];
  for (const [i, raw] of answer.entries.entries()) {
    const at = (msg: string): string => `entry ${isObject(raw) && Number.isSafeInteger(raw.index) ? `#${String(raw.index)}` : `[${i}]`}: ${msg}`;
    if (!isObject(raw) || !Number.isSafeInteger(raw.index) || !Array.isArray(raw.proof)) throw answerError(at('expected {index, leaf, proof}'));
    const index = raw.index as number;
    if (index < 0 || index >= cp.size) throw new VerificationError('E_PROOF', at(`index outside the checkpoint's tree of size ${cp.size}`));
    let env: SignedEnvelope;
    let proof: Buffer[];
    try {
      env = verifyEnvelope(raw.leaf, { fresh: true, maxBytes: DEFAULT_MAX_ENTRY_BYTES * 16 });
      proof = raw.proof.map((h) => {
        if (typeof h !== 'string') throw new FormatError('E_ENCODING', 'proof hashes must be base64 strings');
        return fromBase64(h, 'proof hash');
      });
      const lh = leafHash(env.bytes);
      verifyInclusion(index, cp.size, lh, proof, cp.root);
      if (!matchesFilter(asked, index, env.envelope)) throw new AccessError('E_SCOPE', 'the entry does not match the request');
      entries.push({ index, leaf: env.envelope as Envelope, leafHash: lh.toString('base64') });
    } catch (err) {
      if (err instanceof BotError) throw new (err.constructor as typeof BotError)(err.code, at(err.message));
      throw err;
    }
  }
  const out: VerifiedRead = { checkpoint: { origin: cp.origin, size: cp.size, root: cp.root.toString('base64'), note: answer.checkpoint }, entries };
  if (confirmations) out.confirmations = confirmations;
  if (Number.isSafeInteger(answer.next)) out.next = answer.next as number;
  return out;
}

/** A receipt after every check passed: with its proof and the operator checkpoint it leads to (evidence to keep). */
export interface VerifiedReceipt extends Receipt {
  /** Inclusion proof (RFC 9162 §2.1.3) of the entry in the checkpoint's tree, standard base64 hashes. */
  proof: string[];
  /** The checkpoint signed by the owner's operator, at a size covering the entry. */
  checkpoint: { origin: string; size: number; root: string; note: string };
}

/**
 * Verify an append answer without trusting its sender: its checkpoint is a C2SP signed note
 * of the owner's origin signed by the operator key (signed-note, tlog-checkpoint), and it has
 * one receipt per entry sent, in order, of this ledger, with that entry's leaf hash and an
 * inclusion proof (RFC 9162 §2.1.3.2) from its index to the checkpoint's root. Anyone who saw
 * the request can compute origin and leaf hashes; only the owner can sign the checkpoint.
 */
export function verifyAppendAnswer(answer: unknown, owner: OwnerRef, sent: readonly SignedEnvelope[]): VerifiedReceipt[] {
  throwIfRefused(answer);
  if (!isObject(answer) || !Array.isArray(answer.receipts) || answer.receipts.length !== sent.length) {
    throw answerError(`expected {checkpoint, receipts} with ${sent.length} receipt(s)`);
  }
  if (typeof answer.checkpoint !== 'string') throw new VerificationError('E_CHECKPOINT', 'the receipts carry no signed checkpoint');
  // The operator's signature alone: a receipt is the owner's word that it stored the entries (no quorum needed).
  const { cp } = checkCheckpoint(answer.checkpoint, { origin: owner.origin, operator: owner.operator });
  const checkpoint = { origin: cp.origin, size: cp.size, root: cp.root.toString('base64'), note: answer.checkpoint };
  const seen = new Set<number>();
  return answer.receipts.map((r, i) => {
    if (
      !isObject(r) ||
      r.origin !== owner.origin ||
      !Number.isSafeInteger(r.index) ||
      typeof r.leafHash !== 'string' ||
      !Number.isSafeInteger(r.treeSize) ||
      !Array.isArray(r.proof)
    ) {
      throw answerError(`receipt ${i} is not a receipt of ${owner.origin} with a proof`);
    }
    const index = r.index as number;
    const lh = leafHash(sent[i].bytes);
    if (r.leafHash !== lh.toString('base64')) throw new VerificationError('E_PROOF', `receipt ${i} has another leaf hash than the entry sent`);
    if (index < 0 || index >= cp.size || seen.has(index))
      throw new VerificationError('E_PROOF', `receipt ${i}: index ${index} is not a distinct entry of the checkpoint's tree of size ${cp.size}`);
    seen.add(index);
    const proof = r.proof.map((h) => {
      if (typeof h !== 'string') throw answerError(`receipt ${i}: proof hashes must be base64 strings`);
      return fromBase64(h, 'proof hash');
    });
    try {
      verifyInclusion(index, cp.size, lh, proof, cp.root);
    } catch (err) {
      if (err instanceof BotError) throw new (err.constructor as typeof BotError)(err.code, `receipt ${i}: ${err.message}`);
      throw err;
    }
    return { origin: owner.origin, index, leafHash: r.leafHash, treeSize: r.treeSize as number, proof: r.proof as string[], checkpoint };
  });
}
