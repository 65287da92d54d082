/**
 * Full audit of a ledger: re-hash every leaf, rebuild every stored tree node and every
 * stored checkpoint root, verify every envelope signature, every checkpoint signature and
 * the per-signer seq order, and report the first entry index that fails.
 *
 * The main thread streams the chunks and checks the tree; signature checks, the bulk of
 * the work, run on worker threads so that a large ledger uses every core.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { fromBase64, toBase64 } from '../format/bytes';
import { BotError } from '../errors';
import { type AuditFailure, checkLeaves, type LeafResult, type LeafTask } from './audit-leaves';
import * as L from './layout';
import { type Ledger, type RawView } from './ledger';
import { Frontier, HASH_SIZE, leafHash, type NewNode, nodePosition } from '../format/merkle';
import { NoteVerifier, openNote, parseCheckpoint } from '../format/note';

/** Audit progress, reported once per chunk batch. */
export interface AuditProgress {
  checked: number;
  size: number;
}

/** Options of auditLedger. */
export interface AuditOptions {
  /**
   * Signature worker threads beside the main thread, which checks signatures too whenever
   * every worker is busy (default: available parallelism − 1, so every core verifies).
   */
  workers?: number;
  onProgress?: (p: AuditProgress) => void;
}

/** The audit's verdict. */
export type AuditResult =
  | { ok: true; size: number; root: string; checkpoints: number; signers: number; workers: number }
  // `workers` counts worker threads; the main thread verifies as well.
  | { ok: false; size: number; index: number; code: string; reason: string; workers: number };

/** Audit every entry, node and checkpoint of an open ledger. */
export async function auditLedger(ledger: Ledger, opts: AuditOptions = {}): Promise<AuditResult> {
  const view = ledger.snapshotView();
  try {
    return await auditView(ledger, view, opts);
  } finally {
    await view.close();
  }
}

async function auditView(ledger: Ledger, view: RawView, opts: AuditOptions): Promise<AuditResult> {
  const headBuf = await view.head();
  const head = headBuf ? (JSON.parse(headBuf.toString()) as { size: number; frontier: string[] }) : { size: -1, frontier: [] };
  const size = head.size;
  const wanted = opts.workers ?? Math.max(1, os.availableParallelism() - 1);
  const workers = size >= 4 * L.CHUNK ? wanted : 0;
  const lastSeq = new Map<string, number>();
  /** Per-signer seq order, checked in chunk order as signature results arrive. */
  const checkSeqs = (r: LeafResult): AuditFailure | null => {
    for (let i = 0; i < r.seqs.length; i++) {
      const prev = lastSeq.get(r.signers[i]) ?? -1;
      if (r.seqs[i] <= prev) {
        return {
          index: r.start + i,
          code: 'E_REPLAY',
          reason: `entry ${r.start + i}: seq ${r.seqs[i]} of ${r.signers[i]} is not above its earlier seq ${prev}`,
        };
      }
      lastSeq.set(r.signers[i], r.seqs[i]);
    }
    return r.failure;
  };
  const pool = new SignaturePool(workers, checkSeqs);
  const failures: AuditFailure[] = [];
  const fail = (index: number, code: string, reason: string): void => {
    failures.push({ index, code, reason });
  };
  const verifier = NoteVerifier.ed25519(ledger.origin, ledger.operator);
  const frontier = new Frontier();
  let checkpoints = 0;

  const cpIter = view.iterator(L.CHECKPOINT_PREFIX)[Symbol.asyncIterator]();
  let cp = await cpIter.next();
  const cpSize = (): number => (cp.done ? Infinity : L.sizeOfCheckpointKey(cp.value[0]));
  /** Check the stored checkpoint at the current tree size; a failure names the last covered entry. */
  const checkCheckpoint = async (): Promise<void> => {
    const at = frontier.size;
    try {
      const note = openNote((cp.value as [string, Buffer])[1].toString('utf8'), [verifier]);
      const c = parseCheckpoint(note.text);
      if (c.origin !== ledger.origin || c.size !== at) throw new BotError('E_CHECKPOINT', `it says ${c.origin} size ${c.size}`);
      if (!c.root.equals(frontier.root())) throw new BotError('E_CHECKPOINT', 'its root does not match the rebuilt tree');
      checkpoints++;
    } catch (err) {
      fail(Math.max(0, at - 1), (err as BotError).code ?? 'E_CHECKPOINT', `checkpoint at size ${at}: ${(err as Error).message}`);
    }
    cp = await cpIter.next();
  };

  try {
    if (size < 0 || !Number.isSafeInteger(size)) {
      fail(0, 'E_CORRUPT', 'the head record is missing or unreadable');
    } else {
      if (cpSize() === 0) await checkCheckpoint();
      const hIter = view.iterator(L.HASH_PREFIX)[Symbol.asyncIterator]();
      let expected = 0;
      const nodes: NewNode[] = [];
      for await (const [ek, ebuf] of view.iterator(L.ENTRY_PREFIX)) {
        if (failures.length > 0 || pool.failure) break;
        const chunk = L.chunkOfKey(ek);
        const start = chunk * L.CHUNK;
        if (chunk !== expected) {
          fail(expected * L.CHUNK, 'E_CORRUPT', `entries of chunk ${expected} are missing`);
          break;
        }
        expected++;
        if (start >= size) {
          fail(start, 'E_CORRUPT', `entries stored beyond the head's tree size ${size}`);
          break;
        }
        const h = await hIter.next();
        if (h.done || L.chunkOfKey(h.value[0]) !== chunk) {
          fail(start, 'E_CORRUPT', `tree hashes of chunk ${chunk} are missing`);
          break;
        }
        const hbuf = h.value[1];
        let leaves: Buffer[];
        try {
          leaves = L.decodeLeaves(ebuf, chunk);
        } catch (err) {
          fail(start, 'E_CORRUPT', (err as Error).message);
          break;
        }
        const expectedCount = Math.min(L.CHUNK, size - start);
        if (leaves.length !== expectedCount) {
          fail(start + Math.min(leaves.length, expectedCount), 'E_CORRUPT', `chunk ${chunk} holds ${leaves.length} entries, expected ${expectedCount}`);
        }
        for (let i = 0; i < leaves.length && failures.length === 0; i++) {
          const index = start + i;
          nodes.length = 0;
          frontier.append(leafHash(leaves[i]), nodes);
          for (const n of nodes) {
            const stored = L.hashAt(hbuf, chunk, nodePosition(n.level, n.index));
            if (!stored || !stored.equals(n.hash)) {
              fail(
                index,
                'E_CORRUPT',
                n.level === 0
                  ? `entry ${index}: its stored leaf hash does not match the entry`
                  : `entry ${index}: stored tree node (level ${n.level}, index ${n.index}) does not match the rebuilt tree`,
              );
              break;
            }
          }
          if (failures.length === 0 && cpSize() === frontier.size) await checkCheckpoint();
        }
        if (hbuf.length !== (L.chunkNodeStart(chunk + 1) - L.chunkNodeStart(chunk)) * HASH_SIZE && leaves.length === L.CHUNK && failures.length === 0) {
          fail(start + L.CHUNK - 1, 'E_CORRUPT', `chunk ${chunk} stores a wrong number of tree hashes`);
        }
        await pool.submit({ id: 0, chunk, start, leaves: new Uint8Array(ebuf) });
        opts.onProgress?.({ checked: frontier.size, size });
      }
      await pool.drain();
      if (pool.failure) failures.push(pool.failure);
      if (failures.length === 0) {
        if (frontier.size !== size) fail(frontier.size, 'E_CORRUPT', `the head says ${size} entries, the store holds ${frontier.size}`);
        else if (head.frontier.length !== frontier.hashes.length || head.frontier.some((hh, i) => !fromBase64(hh).equals(frontier.hashes[i]))) {
          fail(Math.max(0, size - 1), 'E_CORRUPT', 'the head record does not match the rebuilt tree');
        } else if (!cp.done) {
          fail(Math.max(0, size - 1), 'E_CHECKPOINT', `checkpoint at size ${cpSize()} is beyond the tree size ${size}`);
        }
      }
    }
  } finally {
    await pool.close();
  }
  if (failures.length > 0) {
    const first = failures.reduce((a, b) => (b.index < a.index ? b : a));
    return { ok: false, size, ...first, workers };
  }
  return { ok: true, size, root: toBase64(frontier.root()), checkpoints, signers: lastSeq.size, workers };
}

/**
 * Test hook, internal: not an AuditOptions field and not exported from lib/index.ts. What every
 * audit worker is constructed with: `script` replaces audit-worker.js (with `options.eval`, it is
 * code), `options` are passed to the Worker (e.g. tiny `resourceLimits`, so that V8 ends the worker
 * with ERR_WORKER_OUT_OF_MEMORY). test/unit/audit.test.ts uses it to make workers fail and check
 * that the audit then ends with ok:false (E_STORE) instead of waiting forever. Nothing else sets it.
 */
export const auditWorkerHook: { script?: string; options?: WorkerOptions } = {};

/** A chunk handed to a worker and not answered yet. */
interface InFlight {
  worker: Worker;
  start: number;
}

/**
 * Signature checks on worker threads (or inline when there are none). Results are handed to
 * `inOrder` strictly in chunk order, whatever order the workers finish in; the pool keeps
 * the first failure.
 *
 * Fail-stop: a worker that emits 'error' (an uncaught exception, V8's
 * ERR_WORKER_OUT_OF_MEMORY…) or exits before close() (whatever its exit code: V8 ends an
 * out-of-memory worker with code 0) is dead. Its chunks in flight will never be answered: they
 * are released (so drain() does not wait for them) and recorded as an E_STORE failure at the
 * first entry left unchecked, and the dead worker gets no further chunk (the others, or this
 * thread, check the rest). The audit then ends with ok:false: it neither hangs nor reports ok.
 */
class SignaturePool {
  failure: AuditFailure | undefined;
  #workers: Worker[] = [];
  /** Free slots: each worker appears once per chunk it may still be handed. */
  #idle: Worker[] = [];
  #inflight = new Map<number, InFlight>();
  #dead = new Set<Worker>();
  #closing = false;
  #waiters: (() => void)[] = [];
  #nextId = 1;
  #ready = new Map<number, LeafResult>();
  #nextChunk = 0;
  #inOrder: (r: LeafResult) => AuditFailure | null;

  constructor(n: number, inOrder: (r: LeafResult) => AuditFailure | null) {
    this.#inOrder = inOrder;
    for (let i = 0; i < n; i++) {
      const w = new Worker(auditWorkerHook.script ?? path.join(__dirname, 'audit-worker.js'), auditWorkerHook.options);
      w.on('message', (m: { id: number; result: LeafResult }) => {
        if (!this.#inflight.delete(m.id)) return; // released when its worker was declared dead
        this.#accept(m.result);
        if (!this.#dead.has(w)) this.#idle.push(w);
        this.#waiters.shift()?.();
      });
      w.on('error', (err) => this.#lost(w, `audit worker failed: ${err.message}`));
      w.on('messageerror', (err) => this.#lost(w, `audit worker failed: ${err.message}`));
      w.on('exit', (code) => {
        if (!this.#closing) this.#lost(w, `audit worker exited unexpectedly (exit code ${code})`);
      });
      this.#workers.push(w);
      // Two queued chunks per worker: it starts the next one while this thread is busy.
      this.#idle.push(w, w);
    }
  }

  #record(f: AuditFailure | null): void {
    if (f && (!this.failure || f.index < this.failure.index)) this.failure = f;
  }

  /** A worker died: release its chunks in flight, hand it nothing more, record the failure, wake every waiter. */
  #lost(w: Worker, reason: string): void {
    if (this.#dead.has(w)) return; // 'error' is followed by 'exit': the first reason counts
    this.#dead.add(w);
    this.#idle = this.#idle.filter((x) => x !== w);
    // With nothing in flight, the first entry not checked in order yet (the results it gave were taken).
    let index = this.#nextChunk * L.CHUNK;
    let lost = false;
    for (const [id, f] of this.#inflight) {
      if (f.worker !== w) continue;
      this.#inflight.delete(id);
      index = lost ? Math.min(index, f.start) : f.start;
      lost = true;
    }
    this.#record({ index, code: 'E_STORE', reason: `${reason}; entries from ${index} on were not all checked` });
    void w.terminate().catch(() => undefined);
    for (const wake of this.#waiters.splice(0)) wake();
  }

  #accept(r: LeafResult): void {
    this.#ready.set(r.chunk, r);
    for (let next = this.#ready.get(this.#nextChunk); next; next = this.#ready.get(this.#nextChunk)) {
      this.#ready.delete(this.#nextChunk++);
      this.#record(this.#inOrder(next));
    }
  }

  /** Hand a chunk to an idle (live) worker, or check it on this thread when every worker is busy or dead. */
  async submit(task: LeafTask): Promise<void> {
    if (this.#idle.length === 0) return this.#accept(checkLeaves(task));
    const w = this.#idle.pop() as Worker;
    const id = this.#nextId++;
    this.#inflight.set(id, { worker: w, start: task.start });
    w.postMessage({ ...task, id });
  }

  /** Wait for every queued chunk (a dead worker's are released, not awaited). */
  async drain(): Promise<void> {
    while (this.#inflight.size > 0) await new Promise<void>((r) => this.#waiters.push(r));
  }

  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}
