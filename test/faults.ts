/**
 * Storage fault injection for the disk-fault and crash tests (task H1):
 * - a real full filesystem: a small tmpfs mounted for the test, filled until ENOSPC;
 * - injected write failures (ENOSPC, EIO): LevelDB's put and batch are wrapped for the
 *   duration of a test, so a chosen write of the ledger fails before it reaches the store
 *   (nothing written) or after it (written, but reported failed, as a failed fsync);
 * - a record of what a ledger acknowledged (receipts, checkpoint notes) and the check that
 *   a reopened ledger holds all of it and never contradicts a checkpoint.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Level } from 'level';
import { auditLedger } from '../lib/store/audit';
import { toBase64 } from '../lib/format/bytes';
import { isBotError, StoreError } from '../lib/errors';
import { type Ledger, type Receipt, type StoredCheckpoint } from '../lib/store/ledger';
import { parseCheckpoint, parseNote } from '../lib/format/note';

// ------------------------------------------------------------------ tmpfs

/** A mounted tmpfs of a few MiB. */
export interface Tmpfs {
  dir: string;
  /** Write a filler file until the filesystem is full (ENOSPC). */
  fill(): void;
  /** Remove the filler file. */
  free(): void;
  /** Unmount and remove the mount point. */
  unmount(): void;
}

/**
 * Mount a tmpfs of sizeKiB. Returns a reason string instead when the process is not root or
 * there is no mount command (the only acceptable reasons to skip); a failed mount as root throws
 * (the test must fail).
 */
export function mountTmpfs(sizeKiB: number): Tmpfs | string {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    return 'not root: cannot mount a tmpfs to fill a real filesystem (CI runs as root)';
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bot-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    // No mount command at all (a container with Node.js alone): as impossible as not being root.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'no mount command: cannot mount a tmpfs to fill a real filesystem (CI has one)';
    throw new Error(`mounting a tmpfs at ${dir} failed as root: ${(err as Error).message}`);
  }
  const filler = path.join(dir, 'filler');
  return {
    dir,
    fill(): void {
      const fd = fs.openSync(filler, 'a');
      try {
        for (const n of [64 * 1024, 4096, 64]) {
          const buf = Buffer.alloc(n, 0x55);
          try {
            for (;;) fs.writeSync(fd, buf);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
          }
        }
      } finally {
        fs.closeSync(fd);
      }
    },
    free(): void {
      fs.rmSync(filler, { force: true });
    },
    unmount(): void {
      // Lazily if still busy (a failed test may leave a store open): never leave it mounted.
      try {
        execFileSync('umount', [dir], { stdio: 'pipe' });
      } catch {
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ------------------------------------------------------------------ injected write failures

/** Which write of a ledger: told apart by the keys it writes (lib/store/layout.ts). */
export type WriteKind = 'create' | 'append' | 'checkpoint' | 'aux';
/** Fail before the write reaches LevelDB, or after it was done. */
export type Phase = 'before' | 'after';
export type Errno = 'ENOSPC' | 'EIO';

interface Op {
  type: string;
  key: string;
}

function kindOf(ops: Op[]): WriteKind | undefined {
  if (ops.some((o) => o.key === 'meta')) return 'create';
  if (ops.some((o) => o.key === 'head')) return 'append';
  if (ops.length === 1 && ops[0].key.startsWith('C')) return 'checkpoint';
  if (ops.every((o) => o.key.startsWith('X'))) return 'aux';
  return undefined;
}

/** A LevelDB-like I/O error, as classic-level reports a failed write. */
export function ioError(errno: Errno, file: string): Error {
  const text = errno === 'ENOSPC' ? 'No space left on device' : 'Input/output error';
  return Object.assign(new Error(`IO error: ${file}: ${text}`), { code: 'LEVEL_IO_ERROR' });
}

/** The injector: arm one failure, count the writes that reach LevelDB. */
export interface Injector {
  /**
   * Fail the next write of `kind` (in the store at `dir`, if given) with errno, before or after
   * it is done; onFault runs just before the error is thrown (to queue more work behind it).
   */
  arm(kind: WriteKind, phase: Phase, errno: Errno, opts?: { dir?: string; onFault?: () => void }): void;
  /** Whether the armed failure has fired. */
  readonly fired: boolean;
  /** Writes (put / batch calls) that reached LevelDB since the failure fired. */
  readonly writesAfterFault: number;
  /** Restore LevelDB's put and batch. */
  restore(): void;
}

type BatchFn = (ops: Op[], opts?: unknown) => Promise<void>;
type PutFn = (key: string, value: unknown, opts?: unknown) => Promise<void>;

/** Wrap LevelDB's put and batch (every Level instance of this process) until restore(). */
export function injectFaults(): Injector {
  const proto = Level.prototype as unknown as { batch: BatchFn; put: PutFn; location: string };
  const origBatch = proto.batch;
  const origPut = proto.put;
  let armed: { kind: WriteKind; phase: Phase; errno: Errno; dir?: string; onFault?: () => void } | undefined;
  let fired = false;
  let after = 0;
  async function write(db: { location: string }, ops: Op[], run: () => Promise<void>): Promise<void> {
    if (fired) after++;
    const a = armed;
    if (a && kindOf(ops) === a.kind && (a.dir === undefined || path.resolve(a.dir) === path.resolve(db.location))) {
      armed = undefined;
      fired = true;
      if (a.phase === 'after') await run();
      a.onFault?.();
      throw ioError(a.errno, path.join(db.location, '000003.log'));
    }
    await run();
  }
  proto.batch = function (this: { location: string }, ops: Op[], opts?: unknown): Promise<void> {
    if (!Array.isArray(ops)) return origBatch.call(this, ops, opts); // a chained batch: not used by the ledger
    return write(this, ops, () => origBatch.call(this, ops, opts));
  } as BatchFn;
  proto.put = function (this: { location: string }, key: string, value: unknown, opts?: unknown): Promise<void> {
    return write(this, [{ type: 'put', key }], () => origPut.call(this, key, value, opts));
  } as PutFn;
  return {
    arm(kind, phase, errno, opts = {}) {
      armed = { kind, phase, errno, ...opts };
      fired = false;
      after = 0;
    },
    get fired() {
      return fired;
    },
    get writesAfterFault() {
      return after;
    },
    restore() {
      proto.batch = origBatch;
      proto.put = origPut;
    },
  };
}

// ------------------------------------------------------------------ what was acknowledged

/** The root of a checkpoint note, base64. */
export function noteRoot(note: string): { size: number; root: string } {
  const cp = parseCheckpoint(parseNote(note).text);
  return { size: cp.size, root: toBase64(cp.root) };
}

/** Everything a ledger acknowledged, and every checkpoint note seen, across failures and reopens. */
export class Acks {
  readonly receipts = new Map<number, string>();
  /** Checkpoints given out (returned or emitted): they must be stored after a reopen. */
  readonly checkpoints = new Map<number, string>();
  /** Every root seen per size, from any note (given out or stored): one root per size. */
  readonly roots = new Map<number, Set<string>>();

  receipt(r: Receipt): void {
    this.receipts.set(r.index, r.leafHash);
  }

  note(note: string, givenOut: boolean): void {
    const { size, root } = noteRoot(note);
    let s = this.roots.get(size);
    if (!s) {
      s = new Set();
      this.roots.set(size, s);
    }
    s.add(root);
    if (givenOut) this.checkpoints.set(size, note);
  }

  /** Follow a ledger's emitted checkpoints. */
  follow(l: Ledger): () => void {
    return l.onCheckpoint((c: StoredCheckpoint) => this.note(c.note, true));
  }

  /**
   * Check a (re)opened ledger: every acknowledged entry at its index with its leaf hash, every
   * checkpoint given out stored, every note's root the tree's root at its size, one root per
   * size (never equivocation), and the full audit (unless opts.audit is false: it checks
   * every signature, slow on large ledgers).
   */
  async check(l: Ledger, what: string, opts: { audit?: boolean } = {}): Promise<void> {
    const max = Math.max(-1, ...this.receipts.keys());
    assert.ok(l.size > max, `${what}: size ${l.size} lost acknowledged entry ${max}`);
    for await (const e of l.entries(0, max + 1)) {
      const want = this.receipts.get(e.index);
      if (want !== undefined) assert.equal(toBase64(e.leafHash), want, `${what}: entry ${e.index} changed`);
    }
    for (const [size, note] of this.checkpoints) {
      const stored = await l.checkpointAt(size);
      assert.ok(stored, `${what}: checkpoint ${size} given out but not stored`);
      assert.equal(noteRoot(stored.note).root, noteRoot(note).root, `${what}: checkpoint ${size} changed`);
    }
    for await (const c of l.checkpoints()) this.note(c.note, false);
    for (const [size, roots] of this.roots) {
      assert.equal(roots.size, 1, `${what}: ${roots.size} different roots signed at size ${size}`);
      if (size <= l.size) assert.equal(toBase64(await l.rootAt(size)), [...roots][0], `${what}: checkpoint ${size} contradicts the tree`);
    }
    const latest = l.latestCheckpoint();
    const given = Math.max(0, ...this.checkpoints.keys());
    if (given > 0) assert.ok(latest && latest.size >= given, `${what}: latest checkpoint ${latest?.size} is below ${given}, given out`);
    if (opts.audit === false) return;
    const res = await auditLedger(l);
    assert.ok(res.ok, `${what}: audit failed: ${JSON.stringify(res).slice(0, 500)}`);
  }
}

/** Assert err is the typed E_STORE of a failed ledger: names the cause, says to reopen, no raw LEVEL_* error. */
export function assertStoreFailure(err: unknown, cause: RegExp): true {
  assert.ok(err instanceof StoreError, `not a StoreError: ${String(err)} (${(err as { code?: string }).code})`);
  assert.ok(isBotError(err, 'E_STORE'), `code ${(err as { code?: string }).code}`);
  assert.match(err.message, /reopen/);
  assert.match(err.message, cause);
  return true;
}
