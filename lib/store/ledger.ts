/**
 * A ledger: one single-writer, append-only RFC 6962 Merkle log of signed envelopes in its
 * own LevelDB (docs/design.md "Storage and durability").
 *
 * - An append resolves only after the atomic batch holding the entry, its tree nodes, the
 *   postings of any index segment it completes (the query index, lib/store/query-index.ts),
 *   and the new head has been written with `sync`.
 * - Appends that arrive while a batch is being written go into the next batch (group
 *   commit), so callers that each await one append still get batch throughput.
 * - Opening reads `head`, the unfinished tail chunk, the tree tiles being filled and the
 *   entries of the open index segment (at most SEGMENT − 1, for the query index to rebuild its
 *   postings): bounded, never a replay of the log. A ledger written before the upper tree was
 *   stored as tiles gets them built once, at its first open (tree-tiles.ts buildTiles).
 * - Proofs read the leaf's hash chunk and about one tile per 8 tree levels above it (fetched
 *   synchronously: no thread-pool trip), and take the right edge of their tree size from a cache
 *   of the last sizes proved against; caches are bounded, so memory does not grow with the ledger.
 * - Fail-stop: every LevelDB write (group commit, checkpoint, stored checkpoint, aux batch)
 *   goes through one queue, one at a time, and the first one that fails puts the ledger in a
 *   failed state: every later write is refused with StoreError E_STORE until reopen(). After
 *   a failed write LevelDB's log may end in a torn record; writes that "succeed" behind it are
 *   dropped when the log is replayed, so carrying on would acknowledge entries (and sign
 *   checkpoints) that a restart loses. Reopening replays the log: every acknowledged write is
 *   there, the failed one may or may not be.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Level } from 'level';
import { fromBase64, toBase64 } from '../format/bytes';
import { BotError, FormatError, LedgerError, StoreError } from '../errors';
import { createFolder } from './folders';
import { DEFAULT_MAX_ENTRY_BYTES, fromTrustedLeaf, SignedEnvelope, verifyEnvelope } from '../format/envelope';
import { type DidKey, type Identity, PublicKey } from '../format/identity';
import * as L from './layout';
import {
  asHash,
  consistencyProof,
  Frontier,
  type Hash,
  inclusionProof,
  leafHash,
  type NewNode,
  type NodeReader,
  nodePosition,
  RightEdgeCache,
  rootAt,
} from '../format/merkle';
import { isValidKeyName, NoteVerifier, openNote, parseCheckpoint, signCheckpoint } from '../format/note';
import { checkTopicFilter, topicMatches } from '../format/topic';
import { type IndexBatch, type PutOp, QueryIndex } from './query-index';
import { buildTiles, fullTileHash, locate, readTails, type Tile, TileBatch, tileHash } from './tree-tiles';

/** What an append returns once the entry is durable. */
export interface Receipt {
  origin: string;
  index: number;
  /** Leaf hash, standard base64 as in C2SP notes. */
  leafHash: string;
  /** Tree size right after the batch that made the entry durable. */
  treeSize: number;
}

/** A stored entry. */
export interface Entry {
  index: number;
  /** The leaf: the envelope's canonical bytes. */
  leaf: Buffer;
  leafHash: Hash;
}

/** One durable group commit: the leaves of entries [from, size). */
export interface Commit {
  from: number;
  leaves: Buffer[];
  size: number;
}

/** A signed checkpoint of this ledger. */
export interface StoredCheckpoint {
  size: number;
  /** The full C2SP signed note text. */
  note: string;
}

/** Options for Ledger.open. */
export interface LedgerOptions {
  /** LevelDB directory. */
  dir: string;
  /** Checkpoint origin (the C2SP note key name); required when the ledger is created. */
  origin?: string;
  /** The operator key: signs checkpoints. Optional for a reader or auditor. */
  identity?: Identity;
  /**
   * The operator's did:key, for creating a read-only copy (a mirror) without the operator's
   * secret: checkpoints then come only through storeCheckpoint. Must match identity if both
   * are given, and the stored operator when the ledger exists.
   */
  operator?: string;
  /** Create the ledger when the directory holds none (default true). */
  create?: boolean;
  /** Origin to create the ledger with when `origin` is not given (ignored for an existing ledger). */
  defaultOrigin?: string;
  /** Largest accepted entry (canonical envelope bytes); default 64 KiB. */
  maxEntryBytes?: number;
  /** Most entries in one group commit (default 4096). */
  maxBatch?: number;
}

/** A query over entries; every given criterion must hold. */
export interface Query {
  /** First index (inclusive, default 0). */
  from?: number;
  /** End index (exclusive, default the tree size). */
  to?: number;
  /** Signer did:key. */
  signer?: string;
  /** MQTT topic filter (`+` and `#` wildcards). */
  topic?: string;
  /** Earliest `ts` (ms, inclusive). */
  since?: number;
  /** Latest `ts` (ms, inclusive). */
  until?: number;
  /** Most entries returned (default 100, at most 10000). */
  limit?: number;
}

/** Durable auxiliary records of a ledger (see Ledger.aux). */
export interface AuxStore {
  get(key: string): Promise<Buffer | undefined>;
  /**
   * Put (value given) or delete (value undefined) several records in one atomic batch,
   * synced to disk unless opts.sync is false (then it survives a process crash, not an OS crash).
   */
  batch(ops: { key: string; value?: Buffer }[], opts?: { sync?: boolean }): Promise<void>;
  /** Records whose key starts with prefix, in key order. */
  iterator(prefix: string): AsyncIterable<[string, Buffer]>;
}

/** A consistent raw view of the store (see Ledger.snapshotView). */
export interface RawView {
  head(): Promise<Buffer | undefined>;
  /** Key-ordered iteration over the keys that start with prefix. */
  iterator(prefix: string): AsyncIterable<[string, Buffer]>;
  close(): Promise<void>;
}

interface Pending {
  env: SignedEnvelope;
  sid: string;
  resolve: (r: Receipt) => void;
  reject: (e: Error) => void;
  /** The members of an appendAll group (this one included): admitted and written together, or refused together. */
  group?: Pending[];
}

/** The mutable committed state; a batch builds on a copy and swaps it in once durable. */
interface State {
  frontier: Frontier;
  /** Leaves of the unfinished tail chunk. */
  tailLeaves: Buffer[];
  /** Hash stream of the tail chunk. */
  tailHashes: Buffer;
  /** The upper-tree tiles being filled, by tile level (tree-tiles.ts). */
  tiles: Tile[];
}

/** What a write of the ledger stores, for the E_STORE message of a failed one. */
type WriteKind = 'entries' | 'a checkpoint' | 'a stored checkpoint' | 'auxiliary records';

/** A group commit ready to be written: its ops, the state and index it leads to, its receipts. */
interface Prepared {
  ops: PutOp[];
  next: State;
  index: IndexBatch;
  receipts: Receipt[];
}

const MAX_QUERY_LIMIT = 10000;
const HASH_CACHE_CHUNKS = 256;
/** Full tiles of tile level 0 cached (192 bytes each: levels 6–7 of 262,144 leaves). */
const LOW_TILE_CACHE = 1024;
/**
 * Full tiles of tile levels ≥ 1 cached (16 KiB each, at most 4 MiB): all of them up to 16M
 * leaves (156 at 10M), so a proof there reads no upper tile. Caching every level-0 tile too
 * (12 MiB at 10M) would save one 192-byte read per proof (about 10% at 10M); LevelDB's
 * defaults are kept (its 8 MiB block cache is bypassed by the tables it memory-maps; more
 * open tables keep more of them mapped): README "Storage at scale" has the measurements.
 */
const HIGH_TILE_CACHE = 256;
const SIGNER_CACHE = 8192;
/** Check a checkpoint origin: a C2SP note key name (signed-note: no spaces, no '+'), 255 characters at most. */
export function checkOrigin(origin: string): void {
  if (!isValidKeyName(origin) || origin.length > 255) {
    throw new FormatError('E_NOTE', 'origin must be 1-255 characters without spaces or "+" (a C2SP key name, e.g. example.com/ledger)');
  }
}

/** A bounded map that forgets its oldest key (insertion order). */
class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly max: number) {
    super();
  }
  override set(k: K, v: V): this {
    if (!this.has(k) && this.size >= this.max) this.delete(this.keys().next().value as K);
    return super.set(k, v);
  }
}

/** An open ledger. Create with Ledger.open; close with close(). */
export class Ledger implements NodeReader {
  readonly dir: string;
  readonly origin: string;
  readonly operator: PublicKey;
  readonly maxEntryBytes: number;
  #db: Level<string, Buffer>;
  #identity: Identity | undefined;
  #state: State;
  /** The query index (postings by signer, topic, minute): committed together with #state. */
  #index: QueryIndex;
  #queue: Pending[] = [];
  #admitting: Pending[] = [];
  #admission: Promise<void> | undefined;
  #pendingSeq = new Map<string, number>();
  #seqCache = new BoundedMap<string, number>(SIGNER_CACHE);
  #seqLoads = new Map<string, Promise<number>>();
  #hashCache = new BoundedMap<number, Buffer>(HASH_CACHE_CHUNKS);
  #lowTiles = new BoundedMap<number, Buffer>(LOW_TILE_CACHE);
  #highTiles = new BoundedMap<number, Buffer>(HIGH_TILE_CACHE);
  /** The right-edge hashes of the last few tree sizes proved against (merkle.ts RightEdgeCache). */
  #rightEdges = new RightEdgeCache();
  #writing: Promise<void> | undefined;
  #closed = false;
  #maxBatch: number;
  #latest: StoredCheckpoint | undefined;
  #checkpointing: Promise<StoredCheckpoint | undefined> | undefined;
  #stats = { commits: 0, appended: 0 };
  #aux: AuxStore | undefined;
  #commitListeners = new Set<(c: Commit) => void>();
  #checkpointListeners = new Set<(c: StoredCheckpoint) => void>();
  #failureListeners = new Set<(f: StoreError | undefined) => void>();
  /** The first failed write since open or the last reopen: every write is refused while set. */
  #failure: StoreError | undefined;
  /** Set while the LevelDB handle is closed by reopen(): reads are refused with it too. */
  #offline: StoreError | undefined;
  #reopening: Promise<void> | undefined;
  /** Tail of the write queue: LevelDB writes run one at a time (see #write). */
  #writeTail: Promise<void> = Promise.resolve();

  private constructor(
    db: Level<string, Buffer>,
    dir: string,
    origin: string,
    operator: PublicKey,
    state: State,
    index: QueryIndex,
    latest: StoredCheckpoint | undefined,
    opts: LedgerOptions,
  ) {
    this.#db = db;
    this.dir = dir;
    this.origin = origin;
    this.operator = operator;
    this.#identity = opts.identity;
    this.#state = state;
    this.#index = index;
    this.#latest = latest;
    this.maxEntryBytes = opts.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES;
    this.#maxBatch = opts.maxBatch ?? 4096;
  }

  /** Open (or create) the ledger in opts.dir. */
  static async open(opts: LedgerOptions): Promise<Ledger> {
    const dir = path.resolve(opts.dir);
    const exists = fs.existsSync(path.join(dir, 'CURRENT'));
    if (!exists && opts.create === false) throw new StoreError('E_NOT_FOUND', `no ledger in ${dir}`);
    const origin = opts.origin ?? opts.defaultOrigin;
    /** The checks before creating a ledger (also for a store whose creation failed: it is empty). */
    const checkCreate = (): string => {
      if (origin === undefined) throw new FormatError('E_NOTE', 'an origin is needed to create a ledger');
      checkOrigin(origin);
      if (!opts.identity && opts.operator === undefined)
        throw new FormatError('E_KEY', 'the operator identity (or, for a read-only copy, its did:key) is needed to create a ledger');
      return origin;
    };
    if (!exists) {
      checkCreate();
      createFolder(dir, 'a ledger');
    }
    const db = new Level<string, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
    try {
      await db.open({ createIfMissing: !exists });
    } catch (err) {
      throw openError(err, dir);
    }
    try {
      let metaBuf = await db.get(L.KEY_META);
      // A store without meta that holds nothing at all is a creation that failed (e.g. the disk
      // was full): create it now. Anything else without meta is not a ledger.
      if (!metaBuf && exists) {
        if ((await firstKey(db)) !== undefined) throw new StoreError('E_CORRUPT', `${dir} is a LevelDB but not a ledger (no meta record)`);
        if (opts.create === false) throw new StoreError('E_NOT_FOUND', `no ledger in ${dir} (an empty store: its creation did not finish)`);
      }
      if (!metaBuf) {
        const createOrigin = checkCreate();
        const did = opts.identity?.did ?? PublicKey.fromDid(opts.operator as string).did;
        if (opts.operator !== undefined && opts.operator !== did) throw new FormatError('E_KEY', 'the operator did:key given is not the identity given');
        const meta = { format: L.FORMAT, origin: createOrigin, operator: did };
        metaBuf = Buffer.from(JSON.stringify(meta));
        try {
          await db.batch(
            [
              { type: 'put', key: L.KEY_META, value: metaBuf },
              { type: 'put', key: L.KEY_HEAD, value: Buffer.from(JSON.stringify({ size: 0, frontier: [] })) },
            ],
            { sync: true },
          );
        } catch (err) {
          throw new StoreError('E_STORE', `creating the ledger in ${dir} failed: ${(err as Error).message}; reopen it once the store can be written`, {
            cause: err,
          });
        }
      }
      const meta = JSON.parse(metaBuf.toString()) as { format: number; origin: string; operator: DidKey };
      if (meta.format !== L.FORMAT) throw new StoreError('E_CORRUPT', `unsupported ledger format ${meta.format}`);
      if (opts.origin !== undefined && opts.origin !== meta.origin) {
        throw new LedgerError('E_NOTE', `the ledger in ${dir} has origin ${meta.origin}, not ${opts.origin}`);
      }
      const operator = PublicKey.fromDid(meta.operator);
      if (opts.identity && opts.identity.did !== operator.did) {
        throw new FormatError('E_KEY', `the key given is not the operator key of this ledger (${operator.did})`);
      }
      if (opts.operator !== undefined && opts.operator !== operator.did) {
        throw new FormatError('E_KEY', `the ledger in ${dir} is operated by ${operator.did}, not ${opts.operator}`);
      }
      const { state, index } = await readState(db);
      const latest = await readLatest(db);
      return new Ledger(db, dir, meta.origin, operator, state, index, latest, opts);
    } catch (err) {
      await db.close().catch(() => undefined);
      if (err instanceof BotError) throw err;
      throw new StoreError('E_CORRUPT', `cannot read the ledger in ${dir}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Committed tree size. */
  get size(): number {
    return this.#state.frontier.size;
  }

  /** Root hash of the committed tree. */
  root(): Hash {
    return this.#state.frontier.root();
  }

  /** A copy of the committed right edge, e.g. to compute the root after leaves not yet appended. */
  frontierCopy(): Frontier {
    return this.#state.frontier.clone();
  }

  /** Group commits written and entries appended since open (for status and monitoring). */
  get stats(): { readonly commits: number; readonly appended: number } {
    return { ...this.#stats };
  }

  /** Call fn after each durable group commit (for live mirrors); returns an unsubscribe. */
  onCommit(fn: (c: Commit) => void): () => void {
    this.#commitListeners.add(fn);
    return () => {
      this.#commitListeners.delete(fn);
    };
  }

  /** Call fn after each new signed checkpoint; returns an unsubscribe. */
  onCheckpoint(fn: (c: StoredCheckpoint) => void): () => void {
    this.#checkpointListeners.add(fn);
    return () => {
      this.#checkpointListeners.delete(fn);
    };
  }

  /**
   * Call fn when a write fails (with the E_STORE error every write is refused with from then
   * on) and with undefined once reopen() has recovered; returns an unsubscribe.
   */
  onFailure(fn: (failure: StoreError | undefined) => void): () => void {
    this.#failureListeners.add(fn);
    return () => {
      this.#failureListeners.delete(fn);
    };
  }

  /** The store failure that makes this ledger refuse writes until reopen(), if any. */
  get failure(): StoreError | undefined {
    return this.#failure;
  }

  /** A listener's failure must not fail the append or checkpoint that triggered it. */
  #emit<T>(listeners: Set<(v: T) => void>, v: T): void {
    for (const fn of listeners) {
      try {
        fn(v);
      } catch {
        /* listeners handle their own errors */
      }
    }
  }

  /** Whether close() has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The latest signed checkpoint, if any. */
  latestCheckpoint(): StoredCheckpoint | undefined {
    return this.#latest;
  }

  /**
   * Append an envelope; resolves with its receipt once durable. A SignedEnvelope is taken as
   * valid; anything else is parsed and verified first. Rejects with a typed error (and
   * writes nothing) for a malformed or badly signed envelope, an oversized one, or a replay;
   * with StoreError E_STORE when the write fails or the ledger has failed (see reopen()).
   */
  async append(input: SignedEnvelope | unknown): Promise<Receipt> {
    this.#checkWritable();
    const env = input instanceof SignedEnvelope ? input : verifyEnvelope(input, { maxBytes: this.maxEntryBytes });
    if (env.bytes.length > this.maxEntryBytes) {
      throw new FormatError('E_TOO_LARGE', `envelope is ${env.bytes.length} bytes, above the ledger's limit of ${this.maxEntryBytes}`);
    }
    const sid = L.signerId(env.envelope.signer);
    return new Promise<Receipt>((resolve, reject) => {
      this.#admitting.push({ env, sid, resolve, reject });
      // Started from a microtask so that #admit's finally never runs before this assignment.
      if (!this.#admission) this.#admission = Promise.resolve().then(() => this.#admit());
    });
  }

  /**
   * Append several envelopes all or nothing (a partner's supply request): each is checked as
   * append() checks it, against its signer's last seq and the list's earlier entries, and all
   * are written in one atomic batch, in list order. If any is refused, none is appended.
   */
  async appendAll(inputs: readonly (SignedEnvelope | unknown)[]): Promise<Receipt[]> {
    this.#checkWritable();
    if (inputs.length === 0) return [];
    if (inputs.length > this.#maxBatch) throw new LedgerError('E_TOO_LARGE', `at most ${this.#maxBatch} entries can be appended together`);
    const envs = inputs.map((input, i) => {
      const env = input instanceof SignedEnvelope ? input : verifyEnvelope(input, { maxBytes: this.maxEntryBytes });
      if (env.bytes.length > this.maxEntryBytes) {
        throw new FormatError('E_TOO_LARGE', `entries[${i}]: envelope is ${env.bytes.length} bytes, above the ledger's limit of ${this.maxEntryBytes}`);
      }
      return env;
    });
    const group: Pending[] = [];
    const receipts = envs.map(
      (env) =>
        new Promise<Receipt>((resolve, reject) => {
          group.push({ env, sid: L.signerId(env.envelope.signer), resolve, reject, group });
        }),
    );
    this.#admitting.push(group[0]);
    if (!this.#admission) this.#admission = Promise.resolve().then(() => this.#admit());
    return Promise.all(receipts);
  }

  /**
   * Admit appends strictly in call order: check each against its signer's last seq (read
   * from the store when not cached, holding back the appends behind it) and queue it for
   * the next group commit. Runs synchronously while every signer is cached.
   */
  async #admit(): Promise<void> {
    // Admitted ones are cut off at the end (or every 4096), not shifted one by one: shift() copies a long array (a burst).
    let head = 0;
    try {
      while (head < this.#admitting.length) {
        const p = this.#admitting[head];
        // An appendAll group is admitted whole or refused whole (each member also above the group's earlier ones).
        const members = p.group ?? [p];
        const inGroup = new Map<string, number>();
        let refusal: Error | undefined;
        for (const [i, m] of members.entries()) {
          const committed = this.#seqCache.get(m.sid) ?? (await this.#loadSeq(m.sid).catch((err: Error) => err));
          if (committed instanceof Error) {
            refusal = new StoreError('E_STORE', `reading the ledger failed: ${committed.message}`, { cause: committed });
            break;
          }
          const { signer, seq } = m.env.envelope;
          const last = Math.max(committed, this.#pendingSeq.get(m.sid) ?? -1, inGroup.get(m.sid) ?? -1);
          if (seq <= last) {
            refusal = new LedgerError('E_REPLAY', `${p.group ? `entries[${i}]: ` : ''}seq ${seq} of ${signer} is not above its last seq ${last}`);
            break;
          }
          inGroup.set(m.sid, seq);
        }
        head++;
        // A run that keeps going (new signers' seqs read while appends keep arriving) drops what it admitted now and then.
        if (head >= 4096) {
          this.#admitting.splice(0, head);
          head = 0;
        }
        if (refusal) {
          for (const m of members) m.reject(refusal);
          continue;
        }
        for (const m of members) {
          this.#pendingSeq.set(m.sid, m.env.envelope.seq);
          this.#queue.push(m);
        }
        if (!this.#writing) this.#writing = this.#flushLoop();
      }
    } finally {
      this.#admitting.splice(0, head);
      this.#admission = undefined;
    }
  }

  /** Last seq this ledger accepted from a signer, or -1. */
  async lastSeq(did: string): Promise<number> {
    this.#checkOpen();
    const sid = L.signerId(did);
    return this.#seqCache.get(sid) ?? this.#loadSeq(sid);
  }

  /** A signer's last seq, read from the query index's signer postings (cached). */
  #loadSeq(sid: string): Promise<number> {
    let p = this.#seqLoads.get(sid);
    if (!p) {
      p = this.#index
        .lastSeq(sid)
        .then((seq) => {
          if (!this.#seqCache.has(sid)) this.#seqCache.set(sid, seq);
          return this.#seqCache.get(sid) as number;
        })
        .finally(() => this.#seqLoads.delete(sid));
      this.#seqLoads.set(sid, p);
    }
    return p;
  }

  async #flushLoop(): Promise<void> {
    try {
      for (;;) {
        // Group commit: let every append already under way (callers woken by the previous
        // commit, admissions in flight) join this batch before it is cut.
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (this.#queue.length === 0) break;
        if (this.#failure) {
          this.#rejectQueued(this.#failure);
          break;
        }
        // An appendAll group goes into one batch: never cut through one (a group is at most maxBatch long).
        let n = Math.min(this.#queue.length, this.#maxBatch);
        const g = this.#queue[n]?.group;
        if (g && this.#queue[n - 1]?.group === g) n = this.#queue.indexOf(g[0]);
        const batch = this.#queue.splice(0, n);
        let prepared: Prepared;
        try {
          prepared = this.#prepare(batch);
          // Synced: an entry is acknowledged only once on disk, so any checkpoint signed over
          // the committed tree covers durable entries only.
          await this.#write('entries', (db) => db.batch(prepared.ops, { sync: true }));
        } catch (err) {
          const e = err instanceof BotError ? err : new StoreError('E_STORE', `writing to the ledger failed: ${(err as Error).message}`, { cause: err });
          batch.forEach((p) => p.reject(e));
          this.#resetPendingSeq();
          continue;
        }
        const { next, index, receipts } = prepared;
        this.#commit(batch, next, index);
        this.#stats.commits++;
        this.#stats.appended += batch.length;
        this.#emit(this.#commitListeners, { from: next.frontier.size - batch.length, leaves: batch.map((p) => p.env.bytes), size: next.frontier.size });
        batch.forEach((p, i) => p.resolve(receipts[i]));
      }
    } finally {
      this.#writing = undefined;
    }
  }

  /**
   * Run one LevelDB write after every earlier one has finished, unless the ledger has failed.
   * One at a time: a write queued behind one that fails must not reach LevelDB, whose log
   * replay would drop it although it reported success. A failed write fails the ledger.
   */
  #write(kind: WriteKind, op: (db: Level<string, Buffer>) => Promise<void>): Promise<void> {
    const run = this.#writeTail.then(async () => {
      if (this.#failure) throw this.#failure;
      try {
        await op(this.#db);
      } catch (err) {
        throw this.#fail(kind, err);
      }
    });
    this.#writeTail = run.catch(() => undefined);
    return run;
  }

  /** Enter the failed state (once): refuse the queued appends, tell the listeners. */
  #fail(kind: WriteKind, err: unknown): StoreError {
    if (this.#failure) return this.#failure;
    const reason = err instanceof Error ? err.message : String(err);
    const failure = new StoreError('E_STORE', `store failed writing ${kind}: ${reason}; the ledger refuses writes until it is reopened`, { cause: err });
    this.#failure = failure;
    this.#rejectQueued(failure);
    this.#emit(this.#failureListeners, failure);
    return failure;
  }

  #rejectQueued(err: StoreError): void {
    for (const p of this.#queue.splice(0)) p.reject(err);
    this.#resetPendingSeq();
  }

  /** Writes are refused once closed, and while the ledger is failed. */
  #checkWritable(): void {
    if (this.#closed) throw new LedgerError('E_CLOSED', 'the ledger is closed');
    if (this.#failure) throw this.#failure;
  }

  /** Build the write batch and the state and index it lead to, from a copy of the committed ones. */
  #prepare(batch: Pending[]): Prepared {
    const cur = this.#state;
    const next: State = {
      frontier: cur.frontier.clone(),
      tailLeaves: cur.tailLeaves.slice(),
      tailHashes: cur.tailHashes,
      tiles: cur.tiles,
    };
    const tiles = new TileBatch(cur.tiles);
    const index = this.#index.batch();
    const ops: PutOp[] = [];
    const receipts: Receipt[] = [];
    const nodes: NewNode[] = [];
    const newHashes: Buffer[] = [next.tailHashes];
    const flushChunk = (chunk: number): void => {
      ops.push({ type: 'put', key: L.entryKey(chunk), value: L.encodeLeaves(next.tailLeaves) });
      ops.push({ type: 'put', key: L.hashKey(chunk), value: Buffer.concat(newHashes) });
    };
    for (const p of batch) {
      const i = next.frontier.size;
      const offset = i % L.CHUNK;
      const lh = leafHash(p.env.bytes);
      nodes.length = 0;
      next.frontier.append(lh, nodes);
      for (const n of nodes) {
        newHashes.push(n.hash);
        tiles.add(n, ops);
      }
      next.tailLeaves.push(p.env.bytes);
      receipts.push({ origin: this.origin, index: i, leafHash: toBase64(lh), treeSize: 0 });
      if (offset === L.CHUNK - 1) {
        flushChunk(Math.floor(i / L.CHUNK));
        next.tailLeaves = [];
        newHashes.length = 0;
      }
      index.add(p.sid, p.env.envelope, ops);
    }
    const size = next.frontier.size;
    if (size % L.CHUNK !== 0) flushChunk(Math.floor(size / L.CHUNK));
    next.tailHashes = size % L.CHUNK !== 0 ? Buffer.concat(newHashes) : Buffer.alloc(0);
    next.tiles = tiles.finish(ops);
    ops.push({ type: 'put', key: L.KEY_HEAD, value: encodeHead(next.frontier) });
    for (const r of receipts) r.treeSize = size;
    return { ops, next, index, receipts };
  }

  #commit(batch: Pending[], next: State, index: IndexBatch): void {
    const oldChunk = Math.floor(this.#state.frontier.size / L.CHUNK);
    this.#state = next;
    this.#index.commit(index);
    // Chunks that were the tail may be cached with fewer hashes than they now hold.
    for (let c = oldChunk; c <= Math.floor(next.frontier.size / L.CHUNK); c++) this.#hashCache.delete(c);
    for (const p of batch) {
      const seq = p.env.envelope.seq;
      this.#seqCache.set(p.sid, seq);
      if (this.#pendingSeq.get(p.sid) === seq) this.#pendingSeq.delete(p.sid);
    }
  }

  /** After a failed write, pending seqs are those of appends still queued. */
  #resetPendingSeq(): void {
    this.#pendingSeq.clear();
    for (const p of this.#queue) this.#pendingSeq.set(p.sid, Math.max(p.env.envelope.seq, this.#pendingSeq.get(p.sid) ?? -1));
  }

  /**
   * The stored perfect-subtree hash (level, index) of the committed tree (NodeReader): levels
   * below a chunk from the chunk's hashes, the others from the upper-tree tiles
   * (tree-tiles.ts), so a proof reads its leaf's chunk and about one tile per 8 levels.
   */
  async node(level: number, index: number): Promise<Hash> {
    this.#checkOpen();
    const leaf = (index + 1) * 2 ** level - 1;
    if (leaf >= this.size) throw new LedgerError('E_RANGE', `node (${level}, ${index}) is beyond tree size ${this.size}`);
    let h: Buffer | undefined;
    if (level < L.CHUNK_LEVELS) {
      const chunk = Math.floor(leaf / L.CHUNK);
      const buf = chunk === Math.floor(this.size / L.CHUNK) ? this.#state.tailHashes : this.#hashChunk(chunk);
      h = L.hashAt(buf, chunk, nodePosition(level, index));
    } else {
      const { t, n, k, j } = locate(level, index);
      const tail = this.#state.tiles[t];
      if (tail && tail.index === n) h = tileHash(tail, k, j);
      else if (tail && n < tail.index) h = fullTileHash(t, this.#fullTile(t, n), k, j);
    }
    if (!h) throw new StoreError('E_CORRUPT', `tree node (${level}, ${index}) is missing from the store`, { cause: { index: leaf } });
    return asHash(Buffer.from(h));
  }

  #hashChunk(chunk: number): Buffer {
    let buf = this.#hashCache.get(chunk);
    if (!buf) {
      buf = this.#read(L.hashKey(chunk));
      if (!buf) throw new StoreError('E_CORRUPT', `tree hashes of chunk ${chunk} are missing`, { cause: { index: chunk * L.CHUNK } });
      this.#hashCache.set(chunk, buf);
    }
    return buf;
  }

  /** A full upper-tree tile (immutable: cached, boundedly). */
  #fullTile(t: number, n: number): Buffer {
    const key = n * 64 + t;
    let buf = t === 0 ? this.#lowTiles.get(n) : this.#highTiles.get(key);
    if (!buf) {
      buf = this.#read(L.tileKey(t, n));
      if (!buf) throw new StoreError('E_CORRUPT', `tree tile ${t}/${n} is missing`, { cause: { index: n * 256 ** (t + 1) } });
      if (t === 0) this.#lowTiles.set(n, buf);
      else this.#highTiles.set(key, buf);
    }
    return buf;
  }

  /**
   * Read a tree record (a hash chunk or a tile, at most 16 KiB) synchronously: no trip to
   * LevelDB's thread pool, whose wait under load would dominate a proof (a few such reads).
   */
  #read(key: string): Buffer | undefined {
    return this.#db.getSync(key);
  }

  /** Reads after close(), and while reopen() has the store closed, are refused with a typed error, not LevelDB's. */
  #checkOpen(): void {
    if (this.#closed) throw new LedgerError('E_CLOSED', 'the ledger is closed');
    if (this.#offline) throw this.#offline;
  }

  #checkIndex(index: number, size = this.size): void {
    if (!Number.isSafeInteger(index) || index < 0 || index >= size) throw new LedgerError('E_RANGE', `no entry ${index} in a tree of size ${size}`);
  }

  async #leafChunk(chunk: number): Promise<Buffer[]> {
    if (chunk === Math.floor(this.size / L.CHUNK)) return this.#state.tailLeaves;
    const buf = await this.#db.get(L.entryKey(chunk));
    if (!buf) throw new StoreError('E_CORRUPT', `entries of chunk ${chunk} are missing`, { cause: { index: chunk * L.CHUNK } });
    return L.decodeLeaves(buf, chunk);
  }

  /** The entry at an index. */
  async get(index: number): Promise<Entry> {
    this.#checkOpen();
    this.#checkIndex(index);
    const leaves = await this.#leafChunk(Math.floor(index / L.CHUNK));
    const leaf = leaves[index % L.CHUNK];
    if (!leaf) throw new StoreError('E_CORRUPT', `entry ${index} is missing`, { cause: { index } });
    return { index, leaf, leafHash: leafHash(leaf) };
  }

  /** Entries in [from, to), in order, read a chunk at a time. */
  async *entries(from = 0, to = this.size): AsyncGenerator<Entry> {
    this.#checkOpen();
    const end = Math.min(to, this.size);
    for (let i = Math.max(0, from); i < end;) {
      const chunk = Math.floor(i / L.CHUNK);
      const leaves = await this.#leafChunk(chunk);
      for (; i < end && Math.floor(i / L.CHUNK) === chunk; i++) {
        const leaf = leaves[i % L.CHUNK];
        if (!leaf) throw new StoreError('E_CORRUPT', `entry ${i} is missing`, { cause: { index: i } });
        yield { index: i, leaf, leafHash: leafHash(leaf) };
      }
    }
  }

  /**
   * Entries matching a query, in index order. Signer and exact-topic criteria read their
   * index postings; time ranges read the minute postings; wildcard topics filter a scan
   * (QueryIndex.candidates plans it).
   */
  async query(q: Query): Promise<(Entry & { envelope: SignedEnvelope })[]> {
    this.#checkOpen();
    const from = q.from ?? 0;
    const to = Math.min(q.to ?? this.size, this.size);
    const limit = q.limit ?? 100;
    if (!Number.isSafeInteger(from) || from < 0 || !Number.isSafeInteger(to) || to < 0)
      throw new FormatError('E_QUERY', 'from and to must be non-negative integers');
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_QUERY_LIMIT)
      throw new FormatError('E_QUERY', `limit must be an integer from 1 to ${MAX_QUERY_LIMIT}`);
    if (q.signer !== undefined) PublicKey.fromDid(q.signer);
    if (q.topic !== undefined) checkTopicFilter(q.topic);
    for (const t of [q.since, q.until])
      if (t !== undefined && !Number.isSafeInteger(t)) throw new FormatError('E_QUERY', 'since and until must be integers (ms since the epoch)');

    const match = (env: SignedEnvelope): boolean => {
      const e = env.envelope;
      return (
        (q.signer === undefined || e.signer === q.signer) &&
        (q.topic === undefined || (e.topic !== undefined && topicMatches(q.topic, e.topic))) &&
        (q.since === undefined || e.ts >= q.since) &&
        (q.until === undefined || e.ts <= q.until)
      );
    };
    const candidates = this.#index.candidates(q, from, to);

    const out: (Entry & { envelope: SignedEnvelope })[] = [];
    if (candidates) {
      let chunkNo = -1;
      let leaves: Buffer[] = [];
      for await (const i of candidates) {
        const c = Math.floor(i / L.CHUNK);
        if (c !== chunkNo) {
          leaves = await this.#leafChunk(c);
          chunkNo = c;
        }
        const leaf = leaves[i % L.CHUNK];
        if (!leaf) throw new StoreError('E_CORRUPT', `entry ${i} is missing`, { cause: { index: i } });
        const env = fromTrustedLeaf(leaf);
        if (match(env)) out.push({ index: i, leaf, leafHash: leafHash(leaf), envelope: env });
        if (out.length >= limit) break;
      }
    } else {
      for await (const e of this.entries(from, to)) {
        const env = fromTrustedLeaf(e.leaf);
        if (match(env)) out.push({ ...e, envelope: env });
        if (out.length >= limit) break;
      }
    }
    return out;
  }

  /** Root hash at a past size. */
  async rootAt(size: number): Promise<Hash> {
    this.#checkOpen();
    if (!Number.isSafeInteger(size) || size < 0 || size > this.size) throw new LedgerError('E_RANGE', `no tree of size ${size} (size is ${this.size})`);
    return rootAt(this, size);
  }

  /** Inclusion proof of an entry in the tree of the given size (default: the committed size). */
  async inclusionProof(index: number, size = this.size): Promise<Hash[]> {
    if (!Number.isSafeInteger(size) || size > this.size) throw new LedgerError('E_RANGE', `no tree of size ${size} (size is ${this.size})`);
    this.#checkIndex(index, size);
    return inclusionProof(this, index, size, this.#rightEdges);
  }

  /** Consistency proof between two sizes of this tree. */
  async consistencyProof(m: number, n = this.size): Promise<Hash[]> {
    if (!Number.isSafeInteger(n) || n > this.size) throw new LedgerError('E_RANGE', `no tree of size ${n} (size is ${this.size})`);
    return consistencyProof(this, m, n, this.#rightEdges);
  }

  /**
   * Sign a checkpoint of the committed tree if it grew since the last one (or none exists).
   * Never signs one inconsistent with an earlier checkpoint: the earlier root is recomputed
   * from the stored tree first. Returns the new checkpoint, or undefined if none was needed.
   */
  async checkpoint(): Promise<StoredCheckpoint | undefined> {
    while (this.#checkpointing) await this.#checkpointing.catch(() => undefined);
    this.#checkpointing = this.#signCheckpoint();
    try {
      return await this.#checkpointing;
    } finally {
      this.#checkpointing = undefined;
    }
  }

  async #signCheckpoint(): Promise<StoredCheckpoint | undefined> {
    this.#checkWritable();
    if (!this.#identity) throw new FormatError('E_KEY', 'signing a checkpoint needs the operator key');
    // The committed tree is durable: a group commit is committed only after its synced batch
    // succeeded, and no write reaches LevelDB after a failed one. So the root signed here is
    // the root at this size after any restart, and signing again at this size (e.g. after
    // this put failed) gives the same root: never two roots for one size.
    const size = this.size;
    const root = this.root();
    const prev = this.#latest;
    if (prev && prev.size >= size) return undefined;
    if (prev) {
      const prevRoot = fromBase64(prev.note.split('\n')[2] ?? '', 'checkpoint root');
      const stored = await this.rootAt(prev.size);
      if (!stored.equals(prevRoot)) {
        throw new LedgerError('E_CHECKPOINT', `the stored tree no longer matches checkpoint ${prev.size}: refusing to sign a new checkpoint`);
      }
    }
    const note = signCheckpoint(this.origin, size, root, this.#identity);
    // Stored (synced) before anyone sees it: a note given out is found again after a restart.
    await this.#write('a checkpoint', (db) => db.put(L.checkpointKey(size), Buffer.from(note, 'utf8'), { sync: true }));
    this.#latest = { size, note };
    this.#emit(this.#checkpointListeners, this.#latest);
    return this.#latest;
  }

  /**
   * Store a checkpoint the operator signed elsewhere (a mirror keeps its remote's checkpoints):
   * it must verify with the operator key under this origin, cover at most the committed size,
   * and its root must equal the stored tree's root at its size; else a typed error
   * (E_SIGNATURE / E_NOTE from the note checks, E_RANGE, E_CHECKPOINT) and nothing is stored.
   * Becomes latestCheckpoint() when larger than the latest, and then is emitted to
   * onCheckpoint listeners like a checkpoint signed here (so a mirror can republish it).
   * Idempotent for a note already stored at its size.
   */
  async storeCheckpoint(note: string): Promise<StoredCheckpoint> {
    while (this.#checkpointing) await this.#checkpointing.catch(() => undefined);
    const p = this.#storeCheckpoint(note);
    this.#checkpointing = p;
    try {
      return await p;
    } finally {
      if (this.#checkpointing === p) this.#checkpointing = undefined;
    }
  }

  async #storeCheckpoint(note: string): Promise<StoredCheckpoint> {
    this.#checkWritable();
    this.#checkOpen();
    if (typeof note !== 'string') throw new FormatError('E_NOTE', 'a checkpoint note is text');
    const opened = openNote(note, [NoteVerifier.ed25519(this.origin, this.operator)]);
    const cp = parseCheckpoint(opened.text);
    if (cp.origin !== this.origin) throw new LedgerError('E_CHECKPOINT', `the checkpoint is for ${cp.origin}, not ${this.origin}`);
    if (cp.size > this.size) throw new LedgerError('E_RANGE', `the checkpoint covers size ${cp.size}, above the stored size ${this.size}`);
    const root = await this.rootAt(cp.size);
    if (!root.equals(cp.root)) throw new LedgerError('E_CHECKPOINT', `the checkpoint root at size ${cp.size} does not match the stored tree`);
    const stored: StoredCheckpoint = { size: cp.size, note };
    const existing = await this.#db.get(L.checkpointKey(cp.size));
    if (existing && existing.toString('utf8') === note) return stored;
    await this.#write('a stored checkpoint', (db) => db.put(L.checkpointKey(cp.size), Buffer.from(note, 'utf8'), { sync: true }));
    if (!this.#latest || cp.size > this.#latest.size) {
      this.#latest = stored;
      this.#emit(this.#checkpointListeners, stored);
    } else if (this.#latest.size === cp.size) {
      this.#latest = stored;
    }
    return stored;
  }

  /** The checkpoint signed at exactly this size, if any. */
  async checkpointAt(size: number): Promise<StoredCheckpoint | undefined> {
    this.#checkOpen();
    const v = await this.#db.get(L.checkpointKey(size));
    return v ? { size, note: v.toString('utf8') } : undefined;
  }

  /** All stored checkpoints, oldest first. */
  async *checkpoints(): AsyncGenerator<StoredCheckpoint> {
    this.#checkOpen();
    for await (const [k, v] of this.#db.iterator({ ...L.CHECKPOINT_RANGE })) yield { size: L.sizeOfCheckpointKey(k), note: v.toString('utf8') };
  }

  /**
   * A consistent read-only view of the raw store (a LevelDB snapshot), for the audit to
   * check a ledger that is still being appended to. Close it when done.
   */
  snapshotView(): RawView {
    this.#checkOpen();
    const snapshot = this.#db.snapshot();
    const db = this.#db;
    return {
      head: async () => db.get(L.KEY_HEAD, { snapshot }),
      iterator: (prefix: string) =>
        db.iterator({
          gte: prefix,
          lt: prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1),
          snapshot,
        }),
      close: () => snapshot.close(),
    };
  }

  /**
   * Small durable records kept beside the log in the same LevelDB (key prefix `X`), for
   * state that must survive restarts with the ledger: witness state, collected
   * cosignatures. Writes are atomic batches with `sync`.
   */
  get aux(): AuxStore {
    this.#aux ??= this.#makeAux();
    return this.#aux;
  }

  /** One AuxStore per ledger (reopen() keeps it): callers may key locks on its identity. */
  #makeAux(): AuxStore {
    const check = (): void => this.#checkOpen();
    return {
      get: async (key) => {
        check();
        return this.#db.get(L.auxKey(key));
      },
      batch: async (ops, opts) => {
        this.#checkWritable();
        const batch = ops.map((o) =>
          o.value === undefined ? { type: 'del' as const, key: L.auxKey(o.key) } : { type: 'put' as const, key: L.auxKey(o.key), value: o.value },
        );
        await this.#write('auxiliary records', (db) => db.batch(batch, { sync: opts?.sync ?? true }));
      },
      iterator: (prefix) => {
        check();
        const db = this.#db;
        const p = L.auxKey(prefix);
        return (async function* () {
          for await (const [k, v] of db.iterator({ gte: p, lt: p + '\uffff' })) yield [k.slice(L.AUX_PREFIX.length), v] as [string, Buffer];
        })();
      },
    };
  }

  /**
   * Recover from a store failure (see failure): close the LevelDB handle, open the same
   * directory again (LevelDB replays its log) and re-read the committed state; then writes
   * are accepted again. The object stays the same, so its holders (listeners, aux users) go
   * on. Every acknowledged write is there; the failed write may be there too: entries it held
   * are then announced to onCommit listeners, a checkpoint it held to onCheckpoint ones.
   * Rejects with a typed error, the ledger staying failed (reads refused too while the store
   * is closed), when the store cannot be opened yet (e.g. the disk is still full) or no longer
   * holds every acknowledged entry (E_CORRUPT). Resolves at once when the ledger has not failed.
   */
  reopen(): Promise<void> {
    if (this.#closed) return Promise.reject(new LedgerError('E_CLOSED', 'the ledger is closed'));
    if (!this.#failure) return Promise.resolve();
    this.#reopening ??= this.#reopen().finally(() => {
      this.#reopening = undefined;
    });
    return this.#reopening;
  }

  async #reopen(): Promise<void> {
    const failure = this.#failure as StoreError;
    // Let what is under way settle first: refused appends, a checkpoint, queued writes.
    while (this.#admission) await this.#admission;
    while (this.#writing) await this.#writing;
    while (this.#checkpointing) await this.#checkpointing.catch(() => undefined);
    await this.#writeTail;
    if (this.#closed) throw new LedgerError('E_CLOSED', 'the ledger is closed');
    this.#offline = new StoreError('E_STORE', `the ledger is being reopened after a store failure; reads are refused until then (${failure.message})`, {
      cause: failure,
    });
    await this.#db.close().catch(() => undefined);
    const before = { size: this.size, root: this.root(), latest: this.#latest };
    const db = new Level<string, Buffer>(this.dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
    try {
      await db.open({ createIfMissing: false });
    } catch (err) {
      throw openError(err, this.dir);
    }
    let state: State;
    let index: QueryIndex;
    let latest: StoredCheckpoint | undefined;
    try {
      ({ state, index } = await readState(db));
      latest = await readLatest(db);
    } catch (err) {
      await db.close().catch(() => undefined);
      if (err instanceof BotError) throw err;
      throw new StoreError('E_STORE', `cannot read the ledger in ${this.dir}: ${(err as Error).message}`, { cause: err });
    }
    this.#db = db;
    this.#state = state;
    this.#index = index;
    this.#latest = latest;
    this.#pendingSeq.clear();
    this.#seqCache.clear();
    this.#hashCache.clear();
    this.#lowTiles.clear();
    this.#highTiles.clear();
    this.#rightEdges.clear();
    this.#offline = undefined;
    // Acknowledged means durable: the reopened tree must extend the one committed before.
    let lost = this.size < before.size;
    if (!lost && before.size > 0) lost = !(await rootAt(this, before.size)).equals(before.root);
    if (lost) {
      this.#offline = new StoreError(
        'E_CORRUPT',
        `after reopening, ${this.dir} no longer holds the ${before.size} acknowledged entries (it holds ${this.size})`,
      );
      await db.close().catch(() => undefined);
      throw this.#offline;
    }
    this.#failure = undefined;
    this.#emit(this.#failureListeners, undefined);
    if (this.size > before.size) {
      const leaves: Buffer[] = [];
      for await (const e of this.entries(before.size, this.size)) leaves.push(e.leaf);
      this.#emit(this.#commitListeners, { from: before.size, leaves, size: this.size });
    }
    if (latest && latest.size > (before.latest?.size ?? -1)) this.#emit(this.#checkpointListeners, latest);
  }

  /** Finish the writes already accepted, then close the database. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Appends called before close() are accepted: admit and write them first.
    while (this.#admission) await this.#admission;
    while (this.#writing) await this.#writing;
    while (this.#checkpointing) await this.#checkpointing.catch(() => undefined);
    await this.#reopening?.catch(() => undefined);
    await this.#writeTail;
    await this.#db.close();
  }
}

/** The first key of a store, if any (an empty store is a ledger whose creation failed). */
async function firstKey(db: Level<string, Buffer>): Promise<string | undefined> {
  for await (const k of db.keys({ limit: 1 })) return k;
  return undefined;
}

/** The latest stored checkpoint (checkpoint keys sort by size). */
async function readLatest(db: Level<string, Buffer>): Promise<StoredCheckpoint | undefined> {
  for await (const [k, v] of db.iterator({ ...L.CHECKPOINT_RANGE, reverse: true, limit: 1 })) {
    return { size: L.sizeOfCheckpointKey(k), note: v.toString('utf8') };
  }
  return undefined;
}

function encodeHead(f: Frontier): Buffer {
  return Buffer.from(JSON.stringify({ size: f.size, frontier: f.hashes.map(toBase64) }));
}

/**
 * Read head, the unfinished tail chunk, and the entries of the open index segment (at most
 * SEGMENT − 1, for the query index to rebuild its postings): all that opening needs, bounded
 * whatever the size.
 */
async function readState(db: Level<string, Buffer>): Promise<{ state: State; index: QueryIndex }> {
  const headBuf = await db.get(L.KEY_HEAD);
  if (!headBuf) throw new StoreError('E_CORRUPT', 'the ledger has no head record');
  const head = JSON.parse(headBuf.toString()) as { size: number; frontier: string[] };
  const frontier = new Frontier(
    head.size,
    head.frontier.map((h) => asHash(fromBase64(h, 'frontier hash'))),
  );
  // Tiles missing (a ledger written before them, or a build a crash cut short) are built first.
  await buildTiles(db, head.size);
  const state: State = { frontier, tailLeaves: [], tailHashes: Buffer.alloc(0), tiles: await readTails(db, head.size) };
  const chunk = Math.floor(head.size / L.CHUNK);
  const inTail = head.size % L.CHUNK;
  if (inTail !== 0) {
    const [e, h] = await db.getMany([L.entryKey(chunk), L.hashKey(chunk)]);
    if (!e || !h) throw new StoreError('E_CORRUPT', `the tail chunk ${chunk} is missing`, { cause: { index: chunk * L.CHUNK } });
    state.tailLeaves = L.decodeLeaves(e, chunk);
    state.tailHashes = h;
    if (state.tailLeaves.length !== inTail)
      throw new StoreError('E_CORRUPT', `the tail chunk holds ${state.tailLeaves.length} entries, the head says ${inTail}`, {
        cause: { index: chunk * L.CHUNK },
      });
  }
  const segment = Math.floor(head.size / L.SEGMENT);
  const chunks: Buffer[][] = [];
  for (let c = (segment * L.SEGMENT) / L.CHUNK; c <= chunk; c++) {
    if (c === chunk) chunks.push(state.tailLeaves);
    else {
      const e = await db.get(L.entryKey(c));
      if (!e) throw new StoreError('E_CORRUPT', `entries of chunk ${c} are missing`, { cause: { index: c * L.CHUNK } });
      chunks.push(L.decodeLeaves(e, c));
    }
  }
  return { state, index: QueryIndex.rebuild(db, head.size, chunks) };
}

function openError(err: unknown, dir: string): BotError {
  const e = err as { code?: string; cause?: { code?: string; message?: string } };
  if (e.cause?.code === 'LEVEL_LOCKED' || e.code === 'LEVEL_LOCKED') {
    return new StoreError('E_LOCKED', `the ledger in ${dir} is in use by another process (or another open in this one)`, { cause: err });
  }
  return new StoreError('E_STORE', `cannot open the ledger in ${dir}: ${e.cause?.message ?? (err as Error).message}`, { cause: err });
}
