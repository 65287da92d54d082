/**
 * "Latest first" for bot-query (issue 11): `order: "desc"` in msg.payload (`?order=desc` behind
 * `http in`) answers with the newest `limit` entries that match the filter, newest first, each
 * with its inclusion proof against the checkpoint, like any answer (lib/answer.ts). Ledger.query
 * reads forward only, so this node glue reads index windows backward from the end of the range
 * (each window's matches are all found: a window is never larger than a query's limit) until
 * `limit` entries are found or the range is exhausted. Not a node: no .html, not in node-red.nodes.
 */
import { proveEntries, type ProvenAnswer } from '../lib/answer';
import { FormatError } from '../lib/errors';
import type { Entry, Ledger, Query, StoredCheckpoint } from '../lib/ledger';

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
