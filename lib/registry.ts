/**
 * A process-wide registry of open ledgers, keyed by their resolved directory, so that every
 * user of one ledger (config node, append, query and verify nodes) shares one open Ledger:
 * LevelDB allows one open per directory.
 *
 * - acquireLedger() opens the ledger for the first user and counts the others;
 * - release() of the last user closes it;
 * - an open of a directory waits until an earlier close of the same directory has finished,
 *   so a redeploy (close everything, then start everything) never meets its own lock and
 *   never interleaves two handles on one store.
 *
 * Pure TypeScript, no Node-RED import.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BotError, FormatError, isBotError } from './errors';
import { Ledger, LedgerOptions } from './ledger';

/** One user's hold on a shared ledger. */
export interface LedgerLease {
  /** The resolved directory. */
  readonly dir: string;
  /** Resolves with the open ledger, or rejects with the typed error of the open. */
  readonly ledger: Promise<Ledger>;
  /** The ledger once open (undefined before, and after a failed open). */
  readonly current: Ledger | undefined;
  /** Give the ledger back; the last release closes it. Idempotent. */
  release(): Promise<void>;
}

/** Options of acquireLedger. */
export interface AcquireOptions extends LedgerOptions {
  /** Origin to create the ledger with when `origin` is not given (ignored for an existing ledger). */
  defaultOrigin?: string;
  /** How long to retry an open that finds the store locked (default 2000 ms). */
  lockRetryMs?: number;
}

interface Slot {
  refs: number;
  ledger: Promise<Ledger>;
  value: Ledger | undefined;
  failed: boolean;
}

const slots = new Map<string, Slot>();
const closing = new Map<string, Promise<void>>();

function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined); // the rejection is observed by whoever awaits p
  return p;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function openWithRetry(opts: AcquireOptions, dir: string): Promise<Ledger> {
  const prior = closing.get(dir);
  if (prior) await prior;
  let origin = opts.origin;
  if (origin === undefined && opts.defaultOrigin !== undefined && !fs.existsSync(path.join(dir, 'CURRENT'))) origin = opts.defaultOrigin;
  const deadline = Date.now() + (opts.lockRetryMs ?? 2000);
  for (;;) {
    try {
      return await Ledger.open({
        dir, origin, identity: opts.identity, create: opts.create, maxEntryBytes: opts.maxEntryBytes, maxBatch: opts.maxBatch,
      });
    } catch (err) {
      // A handle closed by someone else may still be releasing the LevelDB lock.
      if (!isBotError(err, 'E_LOCKED') || Date.now() >= deadline) throw err;
      await sleep(50);
    }
  }
}

/** Check that a shared ledger is the one this user asked for. */
function checkCompatible(l: Ledger, opts: AcquireOptions): Ledger {
  if (opts.origin !== undefined && opts.origin !== l.origin) {
    throw new FormatError('E_NOTE', `the ledger in ${l.dir} has origin ${l.origin}, not ${opts.origin}`);
  }
  if (opts.identity !== undefined && opts.identity.did !== l.operator.did) {
    throw new FormatError('E_KEY', `the key given is not the operator key of the ledger in ${l.dir} (${l.operator.did})`);
  }
  if (opts.maxEntryBytes !== undefined && opts.maxEntryBytes !== l.maxEntryBytes) {
    throw new FormatError('E_TOO_LARGE', `the ledger in ${l.dir} is already open with an entry limit of ${l.maxEntryBytes} bytes, not ${opts.maxEntryBytes}`);
  }
  return l;
}

/** Acquire the shared ledger of opts.dir, opening (or creating) it if this is the first user. */
export function acquireLedger(opts: AcquireOptions): LedgerLease {
  const dir = path.resolve(opts.dir);
  let slot = slots.get(dir);
  if (slot && slot.value?.closed) {
    // Someone closed the shared ledger behind the registry's back: start a fresh one. The
    // old slot's users keep their (closed) ledger and their releases become no-ops.
    slots.delete(dir);
    closing.set(dir, quiet(slot.value.close()).catch(() => undefined));
    slot = undefined;
  }
  if (!slot) {
    const s: Slot = { refs: 0, ledger: Promise.resolve() as unknown as Promise<Ledger>, value: undefined, failed: false };
    s.ledger = quiet(openWithRetry(opts, dir).then((l) => { s.value = l; return l; }, (err: unknown) => {
      s.failed = true;
      if (slots.get(dir) === s) slots.delete(dir); // the next acquire tries again
      throw err;
    }));
    slots.set(dir, s);
    slot = s;
  }
  const mine = slot;
  mine.refs++;
  let released: Promise<void> | undefined;
  const ledger = quiet(mine.ledger.then((l) => checkCompatible(l, opts)));
  return {
    dir,
    ledger,
    get current() { return released || mine.failed ? undefined : mine.value; },
    release(): Promise<void> {
      if (released) return released;
      released = releaseSlot(dir, mine);
      return released;
    },
  };
}

function releaseSlot(dir: string, slot: Slot): Promise<void> {
  slot.refs--;
  if (slot.refs > 0 || slots.get(dir) !== slot) return Promise.resolve();
  slots.delete(dir);
  const done = slot.ledger.then((l) => l.close(), () => undefined);
  const settled = done.catch(() => undefined);
  closing.set(dir, settled);
  void settled.then(() => { if (closing.get(dir) === settled) closing.delete(dir); });
  return done;
}

/** A lease that holds nothing and rejects with err (for a misconfigured user). */
export function failedLease(err: BotError | Error, dir = ''): LedgerLease {
  const ledger = quiet(Promise.reject(err) as Promise<Ledger>);
  return { dir, ledger, current: undefined, release: () => Promise.resolve() };
}

/** The directories currently open and their user counts (for diagnostics and tests). */
export function openLedgers(): { dir: string; users: number }[] {
  return [...slots].map(([dir, s]) => ({ dir, users: s.refs }));
}

/** Resolves once every close started so far has finished. */
export async function settledLedgers(): Promise<void> {
  await Promise.all([...closing.values()]);
}
