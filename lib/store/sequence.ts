/**
 * Persistent per-signer sequence counters (docs/design.md "Envelope": `seq` increases strictly per
 * signer). A signer must never hand out the same `seq` twice — not after a redeploy, a
 * restart or a crash — or its later envelopes are refused as replays.
 *
 * High-water reservation: the file stores H, a number no handed-out seq has reached. A
 * counter starts at H, and before it hands out any seq in [H, H + reserve) it durably writes
 * H + reserve (temp file, fsync, rename, fsync of the directory). A crash therefore loses at
 * most the unused rest of one block (a gap, which is allowed) and never reuses a seq.
 *
 * One file per did: `<dir>/<hex sha256(did)>.json`, holding `{"v":1,"did":…,"next":H}`.
 * Pure TypeScript, no Node-RED import.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StoreError } from '../errors';
import { createFolder } from './folders';

/** Seqs reserved per durable write. */
export const SEQ_RESERVE = 1000;

/** Options of a SequenceCounter. */
export interface SequenceOptions {
  /** Seqs reserved per durable write (default SEQ_RESERVE). */
  reserve?: number;
}

interface SequenceRecord {
  v: 1;
  did: string;
  next: number;
}

/** The counter file of a did in a directory. */
export function sequenceFile(dir: string, did: string): string {
  return path.join(path.resolve(dir), crypto.createHash('sha256').update(did, 'utf8').digest('hex') + '.json');
}

/** A persistent, strictly increasing counter for one signer. Synchronous and crash-safe. */
export class SequenceCounter {
  readonly file: string;
  readonly did: string;
  readonly reserve: number;
  #next: number;
  #limit: number;

  /**
   * Open the counter of `did` in `dir` (the directory is created on the first reservation).
   * Throws StoreError E_CORRUPT when the file exists but cannot be trusted: starting again
   * from 0 could reuse seqs, so a person has to decide.
   */
  constructor(dir: string, did: string, opts: SequenceOptions = {}) {
    const reserve = opts.reserve ?? SEQ_RESERVE;
    if (!Number.isSafeInteger(reserve) || reserve < 1) throw new RangeError('reserve must be a positive integer');
    this.reserve = reserve;
    this.did = did;
    this.file = sequenceFile(dir, did);
    this.#next = readRecord(this.file, did);
    this.#limit = this.#next; // nothing reserved yet: the first next() writes a reservation
  }

  /** The seq the next call to next() returns (nothing is reserved or consumed). */
  peek(): number {
    return this.#next;
  }

  /** The durable high-water mark: every seq handed out so far is below it. */
  get reserved(): number {
    return this.#limit;
  }

  /** Hand out the next seq, first reserving a new block durably when the current one is used up. */
  next(): number {
    if (this.#next >= this.#limit) {
      const limit = this.#next + this.reserve;
      if (!Number.isSafeInteger(limit)) throw new StoreError('E_STORE', `the seq counter of ${this.did} is exhausted`);
      writeRecord(this.file, { v: 1, did: this.did, next: limit });
      this.#limit = limit;
    }
    return this.#next++;
  }
}

function readRecord(file: string, did: string): number {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw new StoreError('E_STORE', `cannot read the seq counter ${file}: ${(err as Error).message}`);
  }
  let rec: Partial<SequenceRecord>;
  try {
    rec = JSON.parse(text) as Partial<SequenceRecord>;
  } catch {
    throw new StoreError('E_CORRUPT', `the seq counter ${file} is not valid JSON; restarting it could reuse seqs`);
  }
  if (
    rec === null ||
    typeof rec !== 'object' ||
    rec.v !== 1 ||
    rec.did !== did ||
    typeof rec.next !== 'number' ||
    !Number.isSafeInteger(rec.next) ||
    rec.next < 0
  ) {
    throw new StoreError('E_CORRUPT', `the seq counter ${file} is not a counter of ${did}; restarting it could reuse seqs`);
  }
  return rec.next;
}

/** Write a file atomically and durably: temp file, fsync, rename, fsync of the directory. */
function writeRecord(file: string, rec: SequenceRecord): void {
  const dir = path.dirname(file);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    createFolder(dir, 'seq counters', 0o700);
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, JSON.stringify(rec) + '\n');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      /* best effort */
    }
    throw new StoreError('E_STORE', `cannot write the seq counter ${file}: ${(err as Error).message}`);
  }
  try {
    const d = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(d);
    } finally {
      fs.closeSync(d);
    }
  } catch {
    /* directories cannot be fsynced on every platform */
  }
}

const shared = new Map<string, SequenceCounter>();

/**
 * The process-wide counter of `did` in `dir`: every signer node with the same identity and
 * directory shares one, so they never hand out the same seq. Counters stay for the life of
 * the process, so a redeploy continues the block already reserved.
 */
export function sharedSequence(dir: string, did: string, opts: SequenceOptions = {}): SequenceCounter {
  const file = sequenceFile(dir, did);
  let c = shared.get(file);
  if (!c) {
    c = new SequenceCounter(dir, did, opts);
    shared.set(file, c);
  }
  return c;
}

/** Forget the shared counters, as a process restart does (for tests). */
export function forgetSharedSequences(): void {
  shared.clear();
}
