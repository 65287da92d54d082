/**
 * The query index of a ledger (docs/design.md "Storage and durability"): postings by signer
 * (headed by the signer's last seq, the replay protection), by exact topic and by minute of
 * the entry's `ts`, that Ledger.query reads instead of scanning the log.
 *
 * - Postings are kept per segment of layout.SEGMENT entries. The open segment's postings
 *   live in memory; a group commit writes a segment's posting records (one per signer,
 *   topic and minute) in the same atomic batch as the entry that completes it, so an index
 *   key costs one write per segment rather than one per commit.
 * - A group commit indexes its entries on an IndexBatch, a copy of the committed open
 *   segment; the ledger commits it only once its batch is durable (a failed write leaves the
 *   index as it was).
 * - Opening rebuilds the open segment from its entries (at most SEGMENT − 1, read by the log).
 *
 * Keys and values are spelled by layout.ts; this module decides what is posted and how a
 * query reads the postings.
 */
import { type Level } from 'level';
import { FormatError, StoreError } from '../errors';
import { type Envelope, fromTrustedLeaf } from '../format/envelope';
import { isExactTopic } from '../format/topic';
import * as L from './layout';

/** One put of a group commit's atomic batch. */
export interface PutOp {
  type: 'put';
  key: string;
  value: Buffer;
}

/** The criteria of a query that postings can answer (Ledger.query validates them first). */
export interface IndexCriteria {
  /** Signer did:key. */
  signer?: string;
  /** MQTT topic filter; only an exact topic has postings. */
  topic?: string;
  /** Earliest and latest `ts` (ms, inclusive). */
  since?: number;
  until?: number;
}

/** The open segment as committed: never changed in place once committed (a batch works on a copy). */
interface OpenSegment {
  /** Entries indexed (the committed tree size). */
  size: number;
  /** Postings keyed by their full LevelDB key (layout.ts): offsets within the segment. */
  postings: Map<string, number[]>;
  /** Last seq of each signer (by signer id) in the segment. */
  seq: Map<string, number>;
}

/** Most indices a time-range query collects before it is refused as too wide. */
const MAX_TIME_CANDIDATES = 1_000_000;

/** The minute bucket of an entry time (ms), as minute postings are keyed. */
function minuteOf(ts: number): number {
  return Math.floor(ts / 60000);
}

/**
 * The index writes of one group commit: built on a copy of the committed open segment, entry
 * by entry in log order; QueryIndex.commit swaps it in once the batch is durable.
 */
export class IndexBatch {
  readonly #next: OpenSegment;
  /** Posting lists already copied from the committed segment (so they may be appended to in place). */
  readonly #copied = new Set<string>();

  /** Start a batch on the committed open segment (see QueryIndex.batch). */
  constructor(base: Readonly<OpenSegment>) {
    this.#next = { size: base.size, postings: new Map(base.postings), seq: new Map(base.seq) };
  }

  /** Entries indexed once this batch is committed. */
  get size(): number {
    return this.#next.size;
  }

  /** The open segment this batch leads to (QueryIndex.commit takes it). */
  get next(): Readonly<OpenSegment> {
    return this.#next;
  }

  /**
   * Index the next entry (index = size) of signer id sid; when it completes its segment, push
   * the segment's posting records onto ops and start the next segment empty.
   */
  add(sid: string, env: Pick<Envelope, 'seq' | 'ts' | 'topic'>, ops: PutOp[]): void {
    const next = this.#next;
    const index = next.size;
    const segment = Math.floor(index / L.SEGMENT);
    const inSegment = index % L.SEGMENT;
    this.#post(L.signerPostingKey(sid, segment), inSegment);
    if (env.topic !== undefined) this.#post(L.topicPostingKey(env.topic, segment), inSegment);
    this.#post(L.timePostingKey(minuteOf(env.ts), segment), inSegment);
    next.seq.set(sid, env.seq);
    next.size = index + 1;
    if (inSegment === L.SEGMENT - 1) this.#flushSegment(ops);
  }

  #post(key: string, offset: number): void {
    const postings = this.#next.postings;
    const list = postings.get(key);
    if (!list) postings.set(key, [offset]);
    else if (this.#copied.has(key)) list.push(offset);
    else postings.set(key, list.concat(offset));
    this.#copied.add(key);
  }

  /** The completed segment's records (signer postings headed by the signer's last seq); the next segment starts empty. */
  #flushSegment(ops: PutOp[]): void {
    const next = this.#next;
    for (const [k, offsets] of next.postings) {
      ops.push({ type: 'put', key: k, value: L.encodePostings(offsets, L.isSignerPostingKey(k) ? next.seq.get(L.signerIdOfPostingKey(k)) : undefined) });
    }
    next.postings = new Map();
    next.seq = new Map();
    this.#copied.clear();
  }
}

/** The postings of one ledger's LevelDB: the committed open segment in memory, the completed segments in the store. */
export class QueryIndex {
  readonly #db: Level<string, Buffer>;
  #open: Readonly<OpenSegment>;

  private constructor(db: Level<string, Buffer>, open: OpenSegment) {
    this.#db = db;
    this.#open = open;
  }

  /**
   * The index of a store holding size entries, rebuilding the open segment's postings from
   * its entries: `chunks` are the leaves of each chunk from the segment's first chunk up to
   * the tail chunk (at most SEGMENT − 1 entries in all). E_CORRUPT for an unreadable entry.
   */
  static rebuild(db: Level<string, Buffer>, size: number, chunks: readonly (readonly Buffer[])[]): QueryIndex {
    const segment = Math.floor(size / L.SEGMENT);
    const firstChunk = (segment * L.SEGMENT) / L.CHUNK;
    const open: OpenSegment = { size, postings: new Map(), seq: new Map() };
    const add = (k: string, o: number): void => {
      const l = open.postings.get(k);
      if (l) l.push(o);
      else open.postings.set(k, [o]);
    };
    chunks.forEach((leaves, n) => {
      leaves.forEach((leaf, offset) => {
        const index = (firstChunk + n) * L.CHUNK + offset;
        let env: Envelope;
        try {
          env = fromTrustedLeaf(leaf).envelope;
        } catch (err) {
          throw new StoreError('E_CORRUPT', `entry ${index} is unreadable: ${(err as Error).message}`, { cause: { index } });
        }
        const sid = L.signerId(env.signer);
        const o = index % L.SEGMENT;
        add(L.signerPostingKey(sid, segment), o);
        if (env.topic !== undefined) add(L.topicPostingKey(env.topic, segment), o);
        add(L.timePostingKey(minuteOf(env.ts), segment), o);
        open.seq.set(sid, env.seq);
      });
    });
    return new QueryIndex(db, open);
  }

  /** Entries indexed (the committed tree size). */
  get size(): number {
    return this.#open.size;
  }

  /** A batch of index writes on the committed open segment, for the next group commit. */
  batch(): IndexBatch {
    return new IndexBatch(this.#open);
  }

  /** Make a batch's index the committed one, once its group commit is durable. */
  commit(batch: IndexBatch): void {
    this.#open = batch.next;
  }

  /** A signer's last seq (by signer id): from the open segment, else from its latest stored postings; -1 if none. */
  async lastSeq(sid: string): Promise<number> {
    const inSegment = this.#open.seq.get(sid);
    if (inSegment !== undefined) return inSegment;
    for await (const v of this.#db.values({ gte: L.signerPostingPrefix(sid), lt: L.signerPostingEnd(sid), reverse: true, limit: 1 })) return L.postingSeq(v);
    return -1;
  }

  /**
   * The query plan: candidate indices in [from, to), in index order, from the postings of the
   * most selective criterion (signer, then exact topic, then time range); undefined when no
   * criterion has postings (a wildcard topic or none), so the caller scans the range. The
   * caller still checks every criterion on each candidate.
   */
  candidates(q: IndexCriteria, from: number, to: number): AsyncIterable<number> | undefined {
    if (q.signer !== undefined) return this.#postings(L.signerPostingPrefix(L.signerId(q.signer)), from, to);
    if (q.topic !== undefined && isExactTopic(q.topic)) return this.#postings(L.topicPostingPrefix(q.topic), from, to);
    if (q.since !== undefined || q.until !== undefined) return this.#timePostings(q.since ?? 0, q.until ?? Number.MAX_SAFE_INTEGER, from, to);
    return undefined;
  }

  /**
   * Indices from the postings under a key prefix for [from, to), in order: the stored
   * segments, then the open segment's postings held in memory.
   */
  async *#postings(prefix: string, from: number, to: number): AsyncGenerator<number> {
    if (from >= to) return;
    const first = Math.floor(from / L.SEGMENT),
      last = Math.floor((to - 1) / L.SEGMENT);
    const withSeq = L.isSignerPostingKey(prefix);
    const open = Math.floor(this.size / L.SEGMENT);
    const openList = this.#open.postings.get(prefix + L.segmentHex(open));
    for await (const [k, v] of this.#db.iterator({ gte: prefix + L.segmentHex(first), lte: prefix + L.segmentHex(Math.min(last, open - 1)) })) {
      for (const i of L.decodePostings(v, L.chunkOfKey(k), withSeq)) if (i >= from && i < to) yield i;
    }
    if (openList && open >= first && open <= last) {
      for (const o of openList) {
        const i = open * L.SEGMENT + o;
        if (i >= from && i < to) yield i;
      }
    }
  }

  /** Indices of entries whose minute bucket lies in [since, until], sorted. Bounded scan. */
  async *#timePostings(since: number, until: number, from: number, to: number): AsyncGenerator<number> {
    const lo = minuteOf(Math.max(0, since)),
      hi = minuteOf(Math.min(until, 2 ** 52));
    const [loKey, hiKey] = L.timePostingRange(lo, hi);
    const found: number[] = [];
    const add = (i: number): void => {
      if (i >= from && i < to) found.push(i);
      if (found.length > MAX_TIME_CANDIDATES) throw new FormatError('E_QUERY', 'time range too wide: narrow it or add an index range');
    };
    const open = Math.floor(this.size / L.SEGMENT);
    for (const [k, offsets] of this.#open.postings) if (k >= loKey && k <= hiKey) for (const o of offsets) add(open * L.SEGMENT + o);
    for await (const [k, v] of this.#db.iterator({ gte: loKey, lte: hiKey })) for (const i of L.decodePostings(v, L.chunkOfKey(k), false)) add(i);
    found.sort((a, b) => a - b);
    yield* found;
  }
}
