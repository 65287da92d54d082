/**
 * Partner access (DESIGN.md "Partner access"): a partner acts by sending an envelope of kind
 * `request`, signed with its own key, naming a grant of the owner's ledger:
 *
 *   payload {"op":"read","grant":<id>,"filter":{from,to,signer,topic,since,until,limit}}
 *   payload {"op":"append","grant":<id>,"entries":[<signed envelope>…]}
 *
 * The owner checks signature, freshness and replay, the grant (lib/grants.ts checkGrant),
 * and answers, whatever the channel (MQTT RPC or HTTP):
 *
 *   read    {"checkpoint":<note text>,"entries":[{"index","leaf":<envelope>,"proof":[base64…]}],"treeSize","next"?}
 *   append  {"receipts":[{"origin","index","leafHash","treeSize"}…]}
 *   refusal {"error":{"code","message"}}
 *
 * The partner side (makeRequest, verifyReadAnswer, verifyAppendAnswer) trusts nothing of the
 * answer but the owner's operator key (and the witnesses' keys when a quorum is required).
 */
import { fromBase64 } from './bytes';
import { BotError, FormatError, isBotErrorCode, LedgerError, VerificationError } from './errors';
import { DEFAULT_MAX_ENTRY_BYTES, Envelope, SignedEnvelope, signEnvelope, verifyEnvelope } from './envelope';
import { GrantIndex, GrantScope, inScope, AccessError } from './grants';
import { Identity, PublicKey } from './identity';
import type { JsonValue } from './jcs';
import { Ledger, Query, Receipt, StoredCheckpoint } from './ledger';
import { leafHash, verifyInclusion } from './merkle';
import { Checkpoint, openNote, parseCheckpoint, parseNote } from './note';
import { Confirmations, countConfirmations, logVerifier, QuorumPolicy } from './quorum';
import { proveEntries, ProvenEntry, queryFrom } from './answer';
import { serialized } from './mutex';
import { isExactTopic, topicMatches } from './topic';
import { signerId } from './layout';

/** Largest request envelope accepted (an append of many entries). */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
/** Most entries in one answer or one append request. */
export const MAX_PARTNER_ENTRIES = 1000;
/** Default clock skew allowed between a request's ts and the owner's clock. */
export const DEFAULT_SKEW_MS = 5 * 60 * 1000;
/** Most entries one read scans for its scope before it answers with `next`. */
const MAX_SCAN = 100_000;
const SCAN_PAGE = 1000;

/** What a partner asks. */
export type RequestPayload =
  | { op: 'read'; grant: string; filter?: Partial<Record<keyof Query, string | number>> }
  | { op: 'append'; grant: string; entries: JsonValue[] };

/** A read answer (proofs against `checkpoint`; `next` = index to continue from when cut short). */
export interface ReadAnswer { checkpoint: string | null; entries: ProvenEntry[]; treeSize: number; next?: number }
/** An append answer. */
export interface AppendAnswer { receipts: Receipt[] }
/** A refusal, as sent back on any channel. */
export interface Refusal { error: { code: string; message: string } }

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
  op: 'read' | 'append';
  grant: string;
  filter: Query;
  entries: JsonValue[];
}

/** Parse and verify a request envelope (object, JSON text or bytes); typed errors, nothing trusted. */
export function parseRequest(input: unknown): ParsedRequest {
  const env = verifyEnvelope(input, { maxBytes: MAX_REQUEST_BYTES, fresh: true });
  const e = env.envelope;
  if (e.kind !== 'request') throw new FormatError('E_ENVELOPE', `a partner request is an envelope of kind "request", not ${JSON.stringify(e.kind)}`);
  const p = e.payload;
  if (!isObject(p)) throw new FormatError('E_QUERY', 'request payload must be an object {op, grant, …}');
  if (p.op !== 'read' && p.op !== 'append') throw new FormatError('E_QUERY', 'request op must be "read" or "append"');
  if (typeof p.grant !== 'string') throw new AccessError('E_NO_GRANT', 'the request names no grant id');
  for (const k of Object.keys(p)) {
    if (!['op', 'grant', p.op === 'read' ? 'filter' : 'entries'].includes(k)) throw new FormatError('E_QUERY', `unknown request field "${k.slice(0, 40)}" for op ${p.op}`);
  }
  let filter: Query = {};
  let entries: JsonValue[] = [];
  if (p.op === 'read') {
    if (p.filter !== undefined && !isObject(p.filter)) throw new FormatError('E_QUERY', 'request filter must be an object');
    filter = queryFrom({}, p.filter);
    if (filter.limit !== undefined && (filter.limit < 1 || filter.limit > MAX_PARTNER_ENTRIES)) {
      throw new FormatError('E_QUERY', `filter.limit must be from 1 to ${MAX_PARTNER_ENTRIES}`);
    }
  } else {
    if (!Array.isArray(p.entries) || p.entries.length === 0 || p.entries.length > MAX_PARTNER_ENTRIES) {
      throw new FormatError('E_QUERY', `entries must be a list of 1 to ${MAX_PARTNER_ENTRIES} signed envelopes`);
    }
    entries = p.entries;
  }
  return { env, op: p.op, grant: p.grant, filter, entries };
}

const replayGuards = new WeakMap<Ledger, ReplayGuard>();

/**
 * Refuses replayed requests: a request's ts must be within the allowed skew of the owner's
 * clock, and its seq above the last request seq accepted from its signer on this ledger
 * (kept in the ledger's aux records, so a restart does not reopen old requests).
 */
export class ReplayGuard {
  #ledger: Ledger;
  #last = new Map<string, number>();

  private constructor(ledger: Ledger) { this.#ledger = ledger; }

  /** The guard of a ledger (one per open Ledger). */
  static of(ledger: Ledger): ReplayGuard {
    let g = replayGuards.get(ledger);
    if (!g) { g = new ReplayGuard(ledger); replayGuards.set(ledger, g); }
    return g;
  }

  /** Accept the request once (E_REPLAY otherwise); it is consumed even if later refused. */
  async admit(env: SignedEnvelope, now: number, skewMs = DEFAULT_SKEW_MS): Promise<void> {
    const { signer, seq, ts } = env.envelope;
    if (Math.abs(ts - now) > skewMs) {
      throw new LedgerError('E_REPLAY', `request ts ${ts} is more than ${Math.round(skewMs / 1000)} s from the owner's clock ${now} (stale, replayed, or clocks apart)`);
    }
    const sid = signerId(signer);
    await serialized(this, sid, async () => {
      let last = this.#last.get(sid);
      if (last === undefined) {
        const stored = await this.#ledger.aux.get('requests/' + sid);
        last = stored ? Number(stored.toString()) : -1;
      }
      if (seq <= last) throw new LedgerError('E_REPLAY', `request seq ${seq} of ${signer} is not above its last request seq ${last}`);
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
  /** Allowed clock skew of request ts (default 5 minutes). */
  skewMs?: number;
  /** The clock (tests). */
  now?: () => number;
}

/**
 * Answer a partner's request: verify it, refuse replays, decide with the ledger's grants,
 * then read (only entries inside the grant's scope, with inclusion proofs) or append (each
 * supplied entry inside the scope). Throws typed errors for every refusal; a refused request
 * changes nothing in the ledger.
 */
export async function answerRequest(opts: AccessServerOptions, input: unknown): Promise<ReadAnswer | AppendAnswer> {
  const { ledger } = opts;
  const now = (opts.now ?? Date.now)();
  const req = parseRequest(input);
  await ReplayGuard.of(ledger).admit(req.env, now, opts.skewMs);
  const grants = GrantIndex.of(ledger);
  const requester = req.env.envelope.signer;
  if (req.op === 'read') {
    const rec = await grants.check(req.grant, requester, 'read', now);
    return readInScope(ledger, req.filter, rec.terms.scope, await opts.checkpoint());
  }
  await grants.check(req.grant, requester, 'append', now);
  const envs = req.entries.map((e, i) => {
    try {
      return verifyEnvelope(e, { maxBytes: ledger.maxEntryBytes });
    } catch (err) {
      throw err instanceof BotError ? new (err.constructor as typeof BotError)(err.code, `entries[${i}]: ${err.message}`) : err;
    }
  });
  const nextSeq = new Map<string, number>();
  for (const [i, env] of envs.entries()) {
    const { signer, topic, ts, seq } = env.envelope;
    await grants.check(req.grant, requester, 'append', now, { signer, topic, ts });
    const last = nextSeq.get(signer) ?? await ledger.lastSeq(signer);
    if (seq <= last) throw new LedgerError('E_REPLAY', `entries[${i}]: seq ${seq} of ${signer} is not above its last seq ${last}`);
    nextSeq.set(signer, seq);
  }
  return { receipts: await Promise.all(envs.map((env) => ledger.append(env))) };
}

/** Refuse a read whose explicit filter lies outside the scope (rather than answer nothing). */
function checkFilterInScope(q: Query, scope: GrantScope): void {
  if (q.signer !== undefined && scope.signers !== '*' && !scope.signers.includes(PublicKey.fromDid(q.signer).did)) {
    throw new AccessError('E_SCOPE', `signer ${q.signer} is outside the grant's scope`);
  }
  if (q.topic !== undefined && isExactTopic(q.topic) && scope.topics && !scope.topics.some((f) => topicMatches(f, q.topic as string))) {
    throw new AccessError('E_SCOPE', `topic ${q.topic} is outside the grant's scope`);
  }
  if ((q.until !== undefined && scope.from !== undefined && q.until < scope.from)
    || (q.since !== undefined && scope.until !== undefined && q.since > scope.until)) {
    throw new AccessError('E_SCOPE', 'the time range asked is outside the grant\'s scope');
  }
}

/** Entries matching the filter and inside the scope, up to the checkpoint, each proven against it. */
export async function readInScope(ledger: Ledger, q: Query, scope: GrantScope, cp: StoredCheckpoint | undefined): Promise<ReadAnswer> {
  checkFilterInScope(q, scope);
  if (!cp) return { checkpoint: null, entries: [], treeSize: 0 };
  const limit = Math.min(q.limit ?? 100, MAX_PARTNER_ENTRIES);
  const narrowed: Query = { ...q };
  if (narrowed.signer === undefined && scope.signers !== '*' && scope.signers.length === 1) narrowed.signer = scope.signers[0];
  if (scope.from !== undefined) narrowed.since = Math.max(narrowed.since ?? 0, scope.from);
  if (scope.until !== undefined) narrowed.until = Math.min(narrowed.until ?? Number.MAX_SAFE_INTEGER, scope.until);
  const end = Math.min(q.to ?? cp.size, cp.size);
  let cursor = q.from ?? 0;
  let scanned = 0;
  const picked: Awaited<ReturnType<Ledger['query']>> = [];
  let next: number | undefined;
  while (cursor < end && picked.length < limit) {
    if (scanned >= MAX_SCAN) { next = cursor; break; }
    // Pages sized to what is still missing (twice, as the scope may drop some), so a small read stays small.
    const page = Math.min(SCAN_PAGE, Math.max(32, 2 * (limit - picked.length)));
    const rows = await ledger.query({ ...narrowed, from: cursor, to: end, limit: page });
    for (const r of rows) {
      scanned++;
      const e = r.envelope.envelope;
      if (inScope(scope, { signer: e.signer, topic: e.topic, ts: e.ts })) picked.push(r);
      if (picked.length >= limit) { if (r.index + 1 < end) next = r.index + 1; break; }
    }
    if (rows.length < page) break;
    cursor = rows[rows.length - 1].index + 1;
  }
  const answer: ReadAnswer = { checkpoint: cp.note, entries: await proveEntries(ledger, picked, cp.size), treeSize: cp.size };
  if (next !== undefined) answer.next = next;
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
 * 403 for an access decision, 409 for a replay, 503 when the ledger is unavailable, else 400
 * (a malformed or unverifiable request).
 */
export function refusalStatus(code: string): number {
  if (ACCESS_CODES.includes(code)) return 403;
  if (code === 'E_REPLAY') return 409;
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
export interface VerifiedEntry { index: number; leaf: Envelope; leafHash: string }

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
    if (owner.policy.origin !== owner.origin || owner.policy.operatorDid !== owner.operator) throw new FormatError('E_NOTE', 'the quorum policy is not the owner\'s ledger');
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
    throw new AccessError(code, `refused by the owner: ${String(answer.error.message ?? code).slice(0, 300)}`);
  }
}

function answerError(msg: string): FormatError {
  return new FormatError('E_QUERY', `malformed answer: ${msg}`);
}

/** Whether an entry matches what the partner asked (so an owner cannot slip other entries in). */
function matchesFilter(q: Query, index: number, e: Envelope): boolean {
  return (q.from === undefined || index >= q.from) && (q.to === undefined || index < q.to)
    && (q.signer === undefined || e.signer === q.signer)
    && (q.topic === undefined || (e.topic !== undefined && topicMatches(q.topic, e.topic)))
    && (q.since === undefined || e.ts >= q.since) && (q.until === undefined || e.ts <= q.until);
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

/** Check an append answer: one receipt per entry sent, for this ledger, with each entry's leaf hash. */
export function verifyAppendAnswer(answer: unknown, owner: OwnerRef, sent: readonly SignedEnvelope[]): Receipt[] {
  throwIfRefused(answer);
  if (!isObject(answer) || !Array.isArray(answer.receipts) || answer.receipts.length !== sent.length) {
    throw answerError(`expected {receipts} with ${sent.length} receipt(s)`);
  }
  return answer.receipts.map((r, i) => {
    if (!isObject(r) || r.origin !== owner.origin || !Number.isSafeInteger(r.index) || typeof r.leafHash !== 'string' || !Number.isSafeInteger(r.treeSize)) {
      throw answerError(`receipt ${i} is not a receipt of ${owner.origin}`);
    }
    if (r.leafHash !== leafHash(sent[i].bytes).toString('base64')) throw new VerificationError('E_PROOF', `receipt ${i} has another leaf hash than the entry sent`);
    return r as unknown as Receipt;
  });
}
