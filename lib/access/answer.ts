/**
 * Query answers a reader can check alone: every entry with an RFC 9162 inclusion proof
 * against one signed checkpoint (docs/design.md "Partner access": answers carry inclusion proofs).
 * Shape: `{"checkpoint": <note text>, "entries": [{"index", "leaf": <envelope>, "proof": [base64…]}], "treeSize"}`.
 */
import { toBase64 } from '../format/bytes';
import { FormatError } from '../errors';
import type { JsonValue } from '../format/jcs';
import { type Entry, type Ledger, type Query, type StoredCheckpoint } from '../store/ledger';

/** One entry of an answer, with its inclusion proof (standard base64 hashes). */
export interface ProvenEntry {
  index: number;
  leaf: JsonValue;
  proof: string[];
}

/** A query answer proven against one checkpoint. */
export interface ProvenAnswer {
  checkpoint: string;
  entries: ProvenEntry[];
  treeSize: number;
}

type QueryField = keyof Query;
const FIELDS: QueryField[] = ['from', 'to', 'signer', 'topic', 'since', 'until', 'limit'];
const NUMERIC = new Set<QueryField>(['from', 'to', 'limit']);
const TIMES = new Set<QueryField>(['since', 'until']);

/**
 * A query field as people write it: '' / null = unset; numbers from numeric text; times also
 * as dates. Index fields (from, to, limit) are whole numbers from 0, times integers, both at
 * most 2^53 − 1 in size (safe integers): 1.5 or 1e300 is E_QUERY, not a silently empty answer.
 */
function field(name: QueryField, v: unknown): string | number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (NUMERIC.has(name) || TIMES.has(name)) {
    let n: number;
    if (typeof v === 'number') n = v;
    else if (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v)) n = Number(v);
    else if (TIMES.has(name) && typeof v === 'string' && !Number.isNaN(Date.parse(v))) n = Date.parse(v);
    else throw new FormatError('E_QUERY', `${name} must be an integer${TIMES.has(name) ? ' (ms since the epoch) or a date' : ''}`);
    if (!Number.isSafeInteger(n) || (NUMERIC.has(name) && n < 0)) {
      throw new FormatError(
        'E_QUERY',
        `${name} must be ${NUMERIC.has(name) ? 'a whole number from 0' : 'an integer (ms since the epoch)'} up to ${Number.MAX_SAFE_INTEGER}`,
      );
    }
    return n;
  }
  if (typeof v !== 'string') throw new FormatError('E_QUERY', `${name} must be a string`);
  return v;
}

/**
 * A Query from defaults overridden by an untrusted object (a msg.payload, an HTTP query
 * string): numeric text accepted, anything else typed-checked later by Ledger.query.
 */
export function queryFrom(defaults: Partial<Record<QueryField, unknown>>, over?: unknown): Query {
  const q: Record<string, string | number> = {};
  const o = over !== null && typeof over === 'object' && !Array.isArray(over) && !(over instanceof Uint8Array) ? (over as Record<string, unknown>) : {};
  for (const f of FIELDS) {
    const v = field(f, f in o ? o[f] : defaults[f]);
    if (v !== undefined) q[f] = v;
  }
  return q as Query;
}

/** Entries matching the query up to the checkpoint's size, each proven against it. */
export async function provenQuery(ledger: Ledger, q: Query, cp: StoredCheckpoint): Promise<ProvenAnswer> {
  const rows = await ledger.query({ ...q, to: Math.min(q.to ?? cp.size, cp.size) });
  return { checkpoint: cp.note, entries: await proveEntries(ledger, rows, cp.size), treeSize: cp.size };
}

/** Entries (below size) with their RFC 9162 §2.1.3 inclusion proofs for a tree of that size. */
export async function proveEntries(ledger: Ledger, rows: readonly Entry[], size: number): Promise<ProvenEntry[]> {
  const entries: ProvenEntry[] = [];
  for (const r of rows) {
    const proof = await ledger.inclusionProof(r.index, size);
    entries.push({ index: r.index, leaf: JSON.parse(r.leaf.toString('utf8')) as JsonValue, proof: proof.map(toBase64) });
  }
  return entries;
}

// ------------------------------------------------------------------ latest first
// `order: "desc"` (issue 11): the newest `limit` entries that match a filter, newest first,
// each proven like any answer. Ledger.query reads forward only, so index windows are read
// backward from the end of the range (each window's matches are all found: a window is never
// larger than a query's limit) until `limit` entries are found or the range is exhausted.

/** The order of a query's answer: oldest first (the default) or newest first. */
export type QueryOrder = 'asc' | 'desc';

/** Widest index window read at once (at most the ledger's largest query limit, 10000). */
export const MAX_WINDOW = 4096;

/** The `order` of an untrusted query object (msg.payload, an HTTP query string): "asc" (default) or "desc"; else E_QUERY. */
export function queryOrder(over: unknown): QueryOrder {
  const o = over !== null && typeof over === 'object' && !Array.isArray(over) ? (over as { order?: unknown }).order : undefined;
  if (o === undefined || o === null || o === '' || o === 'asc') return 'asc';
  if (o === 'desc') return 'desc';
  throw new FormatError('E_QUERY', 'order must be "asc" (oldest first, the default) or "desc" (newest first)');
}

/**
 * The newest `q.limit` (default 100) entries matching q below the checkpoint's size, newest
 * first, each proven against cp. `window` (tests) bounds the first index window read.
 */
export async function provenQueryLatest(ledger: Ledger, q: Query, cp: StoredCheckpoint, window = 256): Promise<ProvenAnswer> {
  await ledger.query({ ...q, from: 0, to: 0 }); // checks every field (limit, signer, topic, times) as a forward query does
  const limit = q.limit ?? 100;
  const lo = q.from ?? 0;
  let hi = Math.min(q.to ?? cp.size, cp.size);
  let w = Math.min(MAX_WINDOW, Math.max(window, limit));
  const picked: Entry[] = [];
  while (hi > lo && picked.length < limit) {
    const start = Math.max(lo, hi - w);
    const rows = await ledger.query({ ...q, from: start, to: hi, limit: hi - start });
    for (let i = rows.length - 1; i >= 0 && picked.length < limit; i--) picked.push(rows[i]);
    hi = start;
    w = Math.min(MAX_WINDOW, w * 2); // sparse matches: read further back in wider steps
  }
  return { checkpoint: cp.note, entries: await proveEntries(ledger, picked, cp.size), treeSize: cp.size };
}
