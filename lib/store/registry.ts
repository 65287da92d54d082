/**
 * A process-wide registry of open ledgers, keyed by their resolved directory, so that every
 * user of one ledger (config node, append, query and verify nodes) shares one open Ledger:
 * LevelDB allows one open per directory.
 *
 * - acquireLedger() opens the ledger for the first user and counts the others;
 * - release() of the last user closes it;
 * - an open of a directory waits until an earlier close of the same directory has finished,
 *   so a redeploy (close everything, then start everything) never meets its own lock and
 *   never interleaves two handles on one store;
 * - when a shared ledger's store fails (a write error: the ledger refuses writes from then
 *   on, see Ledger.failure), the registry reopens it (Ledger.reopen: the same directory, the
 *   same Ledger object) with back-off, 1 s doubling to 30 s, without a human: lease.current
 *   and lease.ledger are the reopened ledger. lease.health and lease.onHealth tell the users
 *   (node statuses "store failed: <reason> — reopening").
 *
 * Pure TypeScript, no Node-RED import.
 */
import * as path from 'node:path';
import { BotError, FormatError, isBotError, StoreError } from '../errors';
import { Ledger, type LedgerOptions } from './ledger';

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
  /** Whether the store works, or failed and is being reopened. */
  readonly health: StoreHealth;
  /** Call fn with every change of health (failure, failed reopen attempt, recovery); returns an unsubscribe. */
  onHealth(fn: (h: StoreHealth) => void): () => void;
}

/** The store state of a shared ledger, for statuses and monitoring. */
export interface StoreHealth {
  /** The write failure the ledger is recovering from (writes are refused with it); undefined when healthy. */
  failure: StoreError | undefined;
  /** A short reason for statuses (e.g. "No space left on device"), '' when healthy. */
  reason: string;
  /** Reopen attempts made since the failure. */
  attempts: number;
  /** Why the last reopen attempt failed, if it did. */
  lastError: BotError | undefined;
  /** When the next reopen attempt is due (ms since the epoch), while failed. */
  retryAt: number | undefined;
}

/** Options of acquireLedger (defaultOrigin: see LedgerOptions). */
export interface AcquireOptions extends LedgerOptions {
  /**
   * The configuration that owns the folder (a bot-ledger node: its id and a label naming it).
   * A second owner of the same folder is refused with E_LOCKED naming both, rather than
   * silently sharing one ledger; users that are not owners (append, query nodes) share freely.
   */
  owner?: { id: string; label: string };
  /** How long to retry an open that finds the store locked (default 2000 ms). */
  lockRetryMs?: number;
  /** First delay before reopening a failed store (default 1000 ms); it doubles up to reopenMaxMs. */
  reopenMinMs?: number;
  /** Longest delay between reopen attempts (default 30000 ms). */
  reopenMaxMs?: number;
}

interface Slot {
  refs: number;
  ledger: Promise<Ledger>;
  value: Ledger | undefined;
  failed: boolean;
  health: StoreHealth;
  listeners: Set<(h: StoreHealth) => void>;
  timer: NodeJS.Timeout | undefined;
  unsubscribe: (() => void) | undefined;
  /** The owning configuration and how many of the leases it handed out are held. */
  owner: { id: string; label: string; refs: number } | undefined;
}

const HEALTHY: StoreHealth = Object.freeze({ failure: undefined, reason: '', attempts: 0, lastError: undefined, retryAt: undefined });

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
  const origin = opts.origin;
  const deadline = Date.now() + (opts.lockRetryMs ?? 2000);
  for (;;) {
    try {
      return await Ledger.open({
        dir,
        origin,
        identity: opts.identity,
        operator: opts.operator,
        create: opts.create,
        maxEntryBytes: opts.maxEntryBytes,
        maxBatch: opts.maxBatch,
        defaultOrigin: opts.defaultOrigin,
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
  if (opts.operator !== undefined && opts.operator !== l.operator.did) {
    throw new FormatError('E_KEY', `the ledger in ${l.dir} is operated by ${l.operator.did}, not ${opts.operator}`);
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
    closing.set(
      dir,
      quiet(slot.value.close()).catch(() => undefined),
    );
    slot = undefined;
  }
  if (!slot) {
    const s: Slot = {
      refs: 0,
      ledger: Promise.resolve() as unknown as Promise<Ledger>,
      value: undefined,
      failed: false,
      health: HEALTHY,
      listeners: new Set(),
      timer: undefined,
      unsubscribe: undefined,
      owner: undefined,
    };
    s.ledger = quiet(
      openWithRetry(opts, dir).then(
        (l) => {
          s.value = l;
          s.unsubscribe = l.onFailure((f) => {
            if (f) {
              recover(dir, s, l, f, opts);
              return;
            }
            // Reopened (by the registry or anyone else): no attempt is pending any more.
            if (s.timer) clearTimeout(s.timer);
            s.timer = undefined;
            setHealth(s, HEALTHY);
          });
          if (l.failure) recover(dir, s, l, l.failure, opts);
          return l;
        },
        (err: unknown) => {
          s.failed = true;
          if (slots.get(dir) === s) slots.delete(dir); // the next acquire tries again
          throw err;
        },
      ),
    );
    slots.set(dir, s);
    slot = s;
  }
  const mine = slot;
  const owner = opts.owner;
  if (owner && mine.owner && mine.owner.id !== owner.id) {
    return failedLease(
      new StoreError('E_LOCKED', `${owner.label} and ${mine.owner.label} both use the ledger folder ${dir}: give each ledger node its own folder (or name)`),
      dir,
    );
  }
  if (owner) mine.owner = { id: owner.id, label: owner.label, refs: (mine.owner?.refs ?? 0) + 1 };
  mine.refs++;
  let released: Promise<void> | undefined;
  const ledger = quiet(mine.ledger.then((l) => checkCompatible(l, opts)));
  const mineListeners = new Set<() => void>();
  return {
    dir,
    ledger,
    get current() {
      return released || mine.failed ? undefined : mine.value;
    },
    get health() {
      return mine.health;
    },
    onHealth(fn: (h: StoreHealth) => void): () => void {
      if (released) return () => undefined;
      mine.listeners.add(fn);
      const off = (): void => {
        mine.listeners.delete(fn);
        mineListeners.delete(off);
      };
      mineListeners.add(off);
      return off;
    },
    release(): Promise<void> {
      if (released) return released;
      for (const off of [...mineListeners]) off();
      if (owner && mine.owner?.id === owner.id && --mine.owner.refs === 0) mine.owner = undefined;
      released = releaseSlot(dir, mine);
      return released;
    },
  };
}

/** A short reason of a store failure for statuses: the system's words (e.g. "No space left on device"). */
export function failureReason(err: unknown): string {
  let e: unknown = err;
  // The innermost error is the system's; kernel errors wrap it.
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  const m = e instanceof Error ? e.message : String(e);
  const parts = m
    .split(': ')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  return (parts[parts.length - 1] ?? m).slice(0, 80);
}

function setHealth(s: Slot, h: StoreHealth): void {
  s.health = h;
  for (const fn of [...s.listeners]) {
    try {
      fn(h);
    } catch {
      /* listeners handle their own errors */
    }
  }
}

/**
 * Reopen a failed shared ledger with back-off until it works again or its last user has
 * released it: the first attempt after reopenMinMs, each next one after twice the delay,
 * at most reopenMaxMs.
 */
function recover(dir: string, s: Slot, l: Ledger, failure: StoreError, opts: AcquireOptions): void {
  if (s.timer || s.health.failure) return;
  const min = opts.reopenMinMs ?? 1000;
  const max = opts.reopenMaxMs ?? 30000;
  let delay = min;
  const schedule = (h: Omit<StoreHealth, 'retryAt'>): void => {
    setHealth(s, { ...h, retryAt: Date.now() + delay });
    s.timer = setTimeout(attempt, delay);
    s.timer.unref?.();
    delay = Math.min(delay * 2, max);
  };
  const attempt = (): void => {
    s.timer = undefined;
    if (slots.get(dir) !== s || l.closed) return; // released: the close ends it
    const attempts = s.health.attempts + 1;
    // Success is told by the ledger's onFailure(undefined) (and a new failure restarts this).
    l.reopen().then(
      () => undefined,
      (err: unknown) => {
        if (slots.get(dir) !== s || l.closed || !l.failure) return;
        const lastError = err instanceof BotError ? err : new StoreError('E_STORE', String(err), { cause: err });
        schedule({ failure, reason: s.health.reason, attempts, lastError });
      },
    );
  };
  schedule({ failure, reason: failureReason(failure), attempts: 0, lastError: undefined });
}

function releaseSlot(dir: string, slot: Slot): Promise<void> {
  slot.refs--;
  if (slot.refs > 0 || slots.get(dir) !== slot) return Promise.resolve();
  slots.delete(dir);
  if (slot.timer) clearTimeout(slot.timer);
  slot.timer = undefined;
  slot.unsubscribe?.();
  slot.listeners.clear();
  const done = slot.ledger.then(
    (l) => l.close(),
    () => undefined,
  );
  const settled = done.catch(() => undefined);
  closing.set(dir, settled);
  void settled.then(() => {
    if (closing.get(dir) === settled) closing.delete(dir);
  });
  return done;
}

/** A lease that holds nothing and rejects with err (for a misconfigured user). */
export function failedLease(err: BotError | Error, dir = ''): LedgerLease {
  const ledger = quiet(Promise.reject(err) as Promise<Ledger>);
  return { dir, ledger, current: undefined, release: () => Promise.resolve(), health: HEALTHY, onHealth: () => () => undefined };
}

/** The directories currently open and their user counts (for diagnostics and tests). */
export function openLedgers(): { dir: string; users: number }[] {
  return [...slots].map(([dir, s]) => ({ dir, users: s.refs }));
}

/** Resolves once every close started so far has finished. */
export async function settledLedgers(): Promise<void> {
  await Promise.all([...closing.values()]);
}
