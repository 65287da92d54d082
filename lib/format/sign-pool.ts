/**
 * SignPool: envelope signing spread over worker threads when it pays (docs/design.md "Envelope").
 *
 * The calling thread checks and canonicalizes each envelope (prepareEnvelope: RFC 8785) and
 * worker threads make the Ed25519 signature (RFC 8032) over exactly the bytes signEnvelope
 * signs, so an envelope signed here is byte for byte the one signEnvelope makes (Ed25519 is
 * deterministic). Rules:
 *
 * - Adaptive: a call while nothing is pending and calls are not coming in a burst signs
 *   inline (no thread hop, no latency); calls closer than `burstGapMs` to each other, `burst`
 *   times in a row, go to the workers, which start on first use.
 * - Order: results resolve strictly in call order (a signer's seq order is the ledger's rule).
 * - Batches: jobs are sent `batch` at a time (or at the next turn of the event loop) in one
 *   transferred buffer, to amortise the messaging.
 * - Bounded: at most `maxQueue` jobs wait in the workers; past that the calling thread signs
 *   the job itself (still delivered in order), so a fast producer is slowed, never queued
 *   without bound (the audit pool's rule, lib/store/audit.ts).
 * - Secrets: each worker gets the 32-byte seed once, in a transferred ArrayBuffer; it is in no
 *   log, error or message after that.
 * - Errors: a worker that dies rejects the jobs it held with E_WORKER and is replaced on next
 *   use (after `maxRestarts` deaths the pool signs inline only); close() rejects every pending
 *   job with E_CLOSED and terminates the workers. Idle workers are unref'd: they never keep a
 *   process alive.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { BotError } from '../errors';
import { type EnvelopeInput, type EnvelopeLimits, type PreparedEnvelope, prepareEnvelope, type SignedEnvelope } from './envelope';
import { type Identity } from './identity';
import type { BatchMessage, BatchReply, KeyMessage } from './sign-pool-worker';

/** Options of a SignPool. */
export interface SignPoolOptions {
  /** Worker threads (default: available parallelism − 1, at least 1; the calling thread works too). */
  workers?: number;
  /** Most jobs per message to a worker (default 64). */
  batch?: number;
  /** Most jobs waiting in the workers at once (default 8192: a few MiB). */
  maxQueue?: number;
  /** 'auto' (default): inline when idle, workers under load; 'always': workers whenever there is room; 'never': inline only. */
  mode?: 'auto' | 'always' | 'never';
  /** Calls at most this many ms apart count toward a burst (default 2). */
  burstGapMs?: number;
  /** Calls in a burst before the workers are used (default 4). */
  burst?: number;
  /** Worker deaths after which the pool stops using workers (default 3). */
  maxRestarts?: number;
}

/** A job, in call order. */
interface Job {
  prepared: PreparedEnvelope;
  result?: SignedEnvelope;
  error?: Error;
  resolve: (env: SignedEnvelope) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  /** Jobs sent to this worker and not answered yet. */
  outstanding: number;
  batches: Map<number, Job[]>;
  closing: boolean;
}

/** What the pool has done, for status lines and tests. */
export interface SignPoolStats {
  inline: number;
  pooled: number;
  batches: number;
  /** Most jobs that were waiting in the workers at once. */
  maxInWorkers: number;
  workerDeaths: number;
  workers: number;
}

const WORKER_FILE = path.join(__dirname, 'sign-pool-worker.js');

/** A pool of signing worker threads for one identity. */
export class SignPool {
  readonly #identity: Identity;
  readonly #size: number;
  readonly #batchSize: number;
  readonly #maxQueue: number;
  readonly #mode: 'auto' | 'always' | 'never';
  readonly #burstGapMs: number;
  readonly #burst: number;
  readonly #maxRestarts: number;
  #slots: Slot[] = [];
  /** Jobs not yet delivered, in call order; #head is the first. */
  #order: Job[] = [];
  #head = 0;
  #batch: Job[] = [];
  #flushScheduled = false;
  #inWorkers = 0;
  #nextBatch = 1;
  #last = 0;
  #streak = 0;
  #closed = false;
  #spaceWaiters: (() => void)[] = [];
  #drainWaiters: (() => void)[] = [];
  readonly stats: SignPoolStats = { inline: 0, pooled: 0, batches: 0, maxInWorkers: 0, workerDeaths: 0, workers: 0 };

  constructor(identity: Identity, opts: SignPoolOptions = {}) {
    this.#identity = identity;
    this.#size = Math.max(1, Math.floor(opts.workers ?? os.availableParallelism() - 1));
    this.#batchSize = Math.max(1, Math.floor(opts.batch ?? 64));
    this.#maxQueue = Math.max(1, Math.floor(opts.maxQueue ?? 8192));
    this.#mode = opts.mode ?? 'auto';
    this.#burstGapMs = opts.burstGapMs ?? 2;
    this.#burst = opts.burst ?? 4;
    this.#maxRestarts = opts.maxRestarts ?? 3;
  }

  /** Jobs called and not yet delivered (in the workers, in a batch, or waiting for earlier ones). */
  get pending(): number {
    return this.#order.length - this.#head;
  }

  /** Jobs waiting in the workers. */
  get inWorkers(): number {
    return this.#inWorkers;
  }

  /**
   * Sign an envelope; results resolve in call order. A bad input throws at once, before any
   * work (what signEnvelope throws: E_ENVELOPE, E_JSON, E_TOO_LARGE); the promise rejects only
   * with E_WORKER (a worker died holding this job) or E_CLOSED (the pool was closed first).
   */
  sign(input: EnvelopeInput, limits: EnvelopeLimits = {}): Promise<SignedEnvelope> {
    if (this.#closed) return Promise.reject(new BotError('E_CLOSED', 'the signing pool is closed'));
    const prepared = prepareEnvelope(this.#identity.publicKey, input, limits);
    const t = performance.now();
    this.#streak = t - this.#last <= this.#burstGapMs ? this.#streak + 1 : 0;
    this.#last = t;
    const usable = this.#mode !== 'never' && this.stats.workerDeaths < this.#maxRestarts;
    const idle = this.pending === 0 && (this.#mode === 'auto' ? this.#streak < this.#burst : false);
    if (!usable || idle) {
      if (this.pending === 0) {
        this.stats.inline++;
        return Promise.resolve(prepared.finish(this.#identity.sign(prepared.message)));
      }
    }
    return new Promise<SignedEnvelope>((resolve, reject) => {
      const job: Job = { prepared, resolve, reject };
      this.#order.push(job);
      if (!usable || this.#inWorkers + this.#batch.length >= this.#maxQueue) {
        // Full (or no workers): this thread signs it, delivered after the earlier jobs.
        this.stats.inline++;
        this.#complete(job, () => prepared.finish(this.#identity.sign(prepared.message)));
        this.#deliver();
        return;
      }
      this.stats.pooled++;
      this.#batch.push(job);
      if (this.#batch.length >= this.#batchSize) this.#flush();
      else if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => {
          this.#flushScheduled = false;
          this.#flush();
        });
      }
    });
  }

  /** Resolves once fewer than maxQueue jobs wait in the workers (for producers that can wait). */
  whenSpace(): Promise<void> {
    if (this.#closed || this.#inWorkers + this.#batch.length < this.#maxQueue) return Promise.resolve();
    return new Promise((r) => this.#spaceWaiters.push(r));
  }

  /** Resolves once every job called so far is delivered (or the pool is closed). */
  drain(): Promise<void> {
    if (this.#closed || this.pending === 0) return Promise.resolve();
    return new Promise((r) => this.#drainWaiters.push(r));
  }

  /** Reject every pending job with E_CLOSED and terminate the workers. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const err = new BotError('E_CLOSED', 'the signing pool was closed before this envelope was signed');
    const left = this.#order.slice(this.#head);
    this.#order = [];
    this.#head = 0;
    this.#batch = [];
    for (const j of left) j.reject(err);
    for (const w of this.#spaceWaiters.splice(0)) w();
    for (const w of this.#drainWaiters.splice(0)) w();
    const slots = this.#slots.splice(0);
    for (const s of slots) s.closing = true;
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  /** @internal the live worker threads (tests end one to check recovery). */
  _threads(): Worker[] {
    return this.#slots.map((s) => s.worker);
  }

  #complete(job: Job, f: () => SignedEnvelope): void {
    try {
      job.result = f();
    } catch (err) {
      job.error = err instanceof Error ? err : new BotError('E_WORKER', String(err));
    }
  }

  /** Settle the jobs at the head of the order that are done. */
  #deliver(): void {
    while (this.#head < this.#order.length) {
      const j = this.#order[this.#head];
      if (!j.result && !j.error) break;
      this.#head++;
      if (j.error) j.reject(j.error);
      else j.resolve(j.result as SignedEnvelope);
    }
    if (this.#head === this.#order.length) {
      this.#order = [];
      this.#head = 0;
      for (const w of this.#drainWaiters.splice(0)) w();
    } else if (this.#head > 1024 && this.#head * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#head);
      this.#head = 0;
    }
  }

  #flush(): void {
    if (this.#batch.length === 0 || this.#closed) return;
    const jobs = this.#batch;
    this.#batch = [];
    const slot = this.#slot();
    let total = 0;
    for (const j of jobs) total += j.prepared.message.length;
    const data = new Uint8Array(total);
    const ends = new Uint32Array(jobs.length);
    let at = 0;
    jobs.forEach((j, i) => {
      data.set(j.prepared.message, at);
      at += j.prepared.message.length;
      ends[i] = at;
    });
    const id = this.#nextBatch++;
    slot.batches.set(id, jobs);
    if (slot.outstanding === 0) slot.worker.ref();
    slot.outstanding += jobs.length;
    this.#inWorkers += jobs.length;
    this.stats.maxInWorkers = Math.max(this.stats.maxInWorkers, this.#inWorkers);
    this.stats.batches++;
    slot.worker.postMessage({ type: 'batch', id, data: data.buffer, ends } satisfies BatchMessage, [data.buffer, ends.buffer]);
  }

  /** The least busy worker, starting one while there are fewer than the pool's size. */
  #slot(): Slot {
    let best: Slot | undefined;
    for (const s of this.#slots) if (!best || s.outstanding < best.outstanding) best = s;
    if (best && (best.outstanding === 0 || this.#slots.length >= this.#size)) return best;
    return this.#start();
  }

  #start(): Slot {
    const worker = new Worker(WORKER_FILE);
    const slot: Slot = { worker, outstanding: 0, batches: new Map(), closing: false };
    // The seed, once, in a buffer whose ownership moves to the worker.
    const seed = this.#identity.exportSeed();
    const ab = new ArrayBuffer(32);
    new Uint8Array(ab).set(seed);
    seed.fill(0);
    worker.postMessage({ type: 'key', seed: ab } satisfies KeyMessage, [ab]);
    worker.on('message', (m: BatchReply) => this.#answer(slot, m));
    worker.on('error', (err: Error) => this.#died(slot, `the signing worker failed: ${err.message}`));
    worker.on('exit', (code: number) => this.#died(slot, `the signing worker exited (code ${code})`));
    this.#slots.push(slot);
    this.stats.workers = this.#slots.length;
    return slot;
  }

  #answer(slot: Slot, m: BatchReply): void {
    const jobs = slot.batches.get(m.id);
    if (!jobs) return;
    slot.batches.delete(m.id);
    this.#release(slot, jobs.length);
    const sigs = m.sigs ? new Uint8Array(m.sigs) : undefined;
    jobs.forEach((j, i) => {
      if (!sigs) j.error = new BotError('E_WORKER', m.error ?? 'the signing worker gave no signatures');
      else this.#complete(j, () => j.prepared.finish(sigs.subarray(i * 64, i * 64 + 64)));
    });
    this.#deliver();
  }

  #release(slot: Slot, n: number): void {
    slot.outstanding -= n;
    this.#inWorkers -= n;
    if (slot.outstanding === 0) slot.worker.unref();
    while (this.#spaceWaiters.length > 0 && this.#inWorkers + this.#batch.length < this.#maxQueue) this.#spaceWaiters.shift()?.();
  }

  /** A worker died: its jobs fail with E_WORKER, it leaves the pool (a new one starts on next use). */
  #died(slot: Slot, reason: string): void {
    if (slot.closing) return;
    slot.closing = true;
    this.stats.workerDeaths++;
    const i = this.#slots.indexOf(slot);
    if (i >= 0) this.#slots.splice(i, 1);
    this.stats.workers = this.#slots.length;
    const err = new BotError('E_WORKER', reason);
    for (const jobs of slot.batches.values()) {
      this.#release(slot, jobs.length);
      for (const j of jobs) j.error = err;
    }
    slot.batches.clear();
    void slot.worker.terminate();
    this.#deliver();
  }
}

/** A share of the one SignPool of an identity (sharedSignPool); release() when done with it. */
export interface SignPoolLease {
  readonly pool: SignPool;
  /** Give the share back; the last one lets pending jobs finish (up to drainMs) and closes the pool. */
  release(drainMs?: number): Promise<void>;
}

const sharedPools = new Map<string, { pool: SignPool; refs: number }>();

/**
 * The one SignPool of an identity in this process, shared by every signer of it: results
 * resolve in call order within one pool, so envelopes signed by several nodes of one identity
 * (one seq counter, lib/store/sequence.ts) go out in seq order, which verifiers require
 * (docs/design.md "Envelope"). Options apply when the pool is made by the first share. The
 * pool stays the identity's while its last share drains, so a share taken meanwhile (a
 * redeploy) gets the same pool, which is then not closed.
 */
export function sharedSignPool(identity: Identity, opts: SignPoolOptions = {}): SignPoolLease {
  let entry = sharedPools.get(identity.did);
  if (!entry) {
    entry = { pool: new SignPool(identity, opts), refs: 0 };
    sharedPools.set(identity.did, entry);
  }
  entry.refs++;
  const held = entry;
  let released = false;
  return {
    pool: held.pool,
    async release(drainMs = 2000): Promise<void> {
      if (released) return;
      released = true;
      if (--held.refs > 0) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([held.pool.drain(), new Promise<void>((r) => (timer = setTimeout(r, drainMs)))]);
      clearTimeout(timer);
      if (held.refs > 0) return; // shared again while draining
      if (sharedPools.get(identity.did) === held) sharedPools.delete(identity.did);
      await held.pool.close();
    },
  };
}
