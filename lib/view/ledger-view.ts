/**
 * A monitoring view of one open ledger, for the editor sidebar and other dashboards: a
 * summary (size, rate, checkpoint, MQTT state, consensus strip of recent checkpoints with
 * their cosignature counts, witnesses' last cosignature times, conflict evidence), pages of
 * entries newest first with filters, and one entry with everything a browser needs to check
 * it alone (exact leaf bytes, inclusion proof, the signed checkpoint it is proven against), and
 * the enrolled devices with their state and activity (docs/design.md "Devices").
 *
 * Nothing here holds or returns secret key material: only public keys (did:key), signed
 * notes and leaves, which are public by design.
 */
import { toBase64 } from '../format/bytes';
import type { Consortium } from '../consortium/consortium';
import { checkpointState, type ConsensusState } from '../consortium/entry-state';
import type { Evidence } from '../format/equivocation';
import { LedgerError } from '../errors';
import type { Ledger, StoredCheckpoint } from '../store/ledger';
import { leafHash } from '../format/merkle';
import { parseCheckpoint, parseNote } from '../format/note';
import { type Confirmations, ledgerId } from '../consortium/quorum';
import { RateMeter } from './rate';
import { checkTopicFilter } from '../format/topic';
import { DEFAULT_SILENT_MS, DeviceActivity, type DeviceRow } from '../devices/device-activity';

/** Most checkpoints kept in a view's consensus strip. */
export const STRIP_LENGTH = 24;
/** Window of the entries-per-second rate (ms). */
export const RATE_WINDOW_MS = 5000;
/** Most new entries a view hands out per change notification (the newest). */
export const LIVE_ROWS = 50;
/** Most entries in one page. */
export const MAX_PAGE = 200;
/** Most entries scanned (backwards) for one filtered page, so a rare match cannot stall the runtime. */
export const MAX_SCAN = 20000;

/** Status of one checkpoint in the strip: sealed (operator only), confirmed (quorum reached) or conflict. */
export interface StripItem {
  size: number;
  status: Exclude<ConsensusState, 'pending'>;
  /** Operator signature plus distinct set witnesses' cosignatures held. */
  confirmations: number;
  quorum: number;
}

/** A witness of the ledger and when it last cosigned one of the checkpoints in view. */
export interface WitnessView {
  name: string;
  did: string;
  /** Unix seconds of its latest cosignature seen, null if none. */
  lastCosigned: number | null;
}

/** The consensus part of a summary (synced ledgers only). */
export interface ConsensusView {
  quorum: number;
  /** Operator plus witnesses. */
  total: number;
  confirmedSize: number;
  witnesses: WitnessView[];
  /** Recent checkpoints, oldest first. */
  strip: StripItem[];
  /** Proven equivocation of this ledger's operator, re-checkable by anyone. */
  conflict: Evidence | null;
}

/** What a monitoring view shows of one ledger. */
export interface LedgerSummary {
  origin: string;
  /** The operator's did:key (public). */
  did: string;
  /** The MQTT ledger id (topic segment). */
  ledgerId: string;
  treeSize: number;
  /** Entries appended per second over the last few seconds. */
  rate: number;
  checkpoint: {
    size: number;
    root: string;
    note: string;
    /** When it was signed or received (ms); when `approx`, the `ts` of the last entry it covers (it is at least that old). */
    time: number | null;
    approx: boolean;
  } | null;
  /** 'standalone' without a broker, else the MQTT connection state. */
  mqtt: string;
  consensus: ConsensusView | null;
}

const GRANT_KINDS = [Buffer.from('"kind":"grant"'), Buffer.from('"kind":"revoke"')];
/** Whether a leaf may be a grant or revocation (JCS puts `"kind":"…"` literally; a payload holding that text only costs a re-read). */
function mayBeGrant(leaf: Buffer): boolean {
  return GRANT_KINDS.some((k) => leaf.includes(k));
}

/**
 * Runs fn at most once per intervalMs, always ending with a trailing run after the last
 * request, so a busy source (thousands of commits a second) yields a bounded event rate.
 */
export class Throttle {
  #last = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #fn: () => void;
  readonly #interval: number;

  constructor(fn: () => void, intervalMs = 250) {
    this.#fn = fn;
    this.#interval = intervalMs;
  }

  /** Ask for a run: now if the interval has passed, else once when it has. */
  request(): void {
    if (this.#stopped || this.#timer) return;
    const wait = this.#last + this.#interval - Date.now();
    if (wait <= 0) {
      this.#run();
      return;
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#run();
    }, wait);
  }

  #run(): void {
    if (this.#stopped) return;
    this.#last = Date.now();
    this.#fn();
  }

  /** Drop any pending run; later requests do nothing. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** Options of a LedgerWatch. */
export interface LedgerWatchOptions {
  ledger: Ledger;
  /** Called (throttled) when the summary may have changed. */
  onChange?: () => void;
  /** Most change calls per second (default 4). */
  maxPerSecond?: number;
}

/**
 * Watches one open ledger (and its consortium once attached): appends, checkpoints,
 * cosignatures, conflicts and the MQTT state, and makes summaries of it on demand.
 */
export class LedgerWatch {
  readonly ledger: Ledger;
  #consortium: Consortium | undefined;
  #mqtt = 'standalone';
  #rate = new RateMeter(RATE_WINDOW_MS, 10);
  /** Recent checkpoint sizes with the time this runtime saw them signed or stored (ms). */
  #strip: { size: number; time: number | null }[] = [];
  #stops: (() => void)[] = [];
  #throttle: Throttle;
  /** Quorum counts of the strip's checkpoints, kept until the consortium reports a change (each count re-verifies cosignatures). */
  #counts = new Map<number, Confirmations | undefined>();
  /** Whether a grant or revocation may have been appended since the last grantsChanged(). */
  #grants = true;
  /** Leaves appended since the last drainRows, the newest LIVE_ROWS only. */
  #fresh: { index: number; leaf: Buffer }[] = [];
  /** Fires once appends have stopped for a rate window, so the rate shown falls back to 0. */
  #idle: NodeJS.Timeout | undefined;

  constructor(opts: LedgerWatchOptions) {
    this.ledger = opts.ledger;
    const onChange = opts.onChange ?? ((): void => undefined);
    this.#throttle = new Throttle(onChange, Math.ceil(1000 / (opts.maxPerSecond ?? 4)));
    const latest = opts.ledger.latestCheckpoint();
    if (latest) this.#strip.push({ size: latest.size, time: null });
    DeviceActivity.of(opts.ledger); // count device messages from now on, for the device list's rates
    this.#stops.push(
      opts.ledger.onCommit((c) => {
        this.#rate.tick(c.leaves.length);
        if (!this.#grants) this.#grants = c.leaves.some(mayBeGrant);
        const skip = Math.max(0, c.leaves.length - LIVE_ROWS);
        for (let i = skip; i < c.leaves.length; i++) this.#fresh.push({ index: c.from + i, leaf: c.leaves[i] });
        if (this.#fresh.length > LIVE_ROWS) this.#fresh.splice(0, this.#fresh.length - LIVE_ROWS);
        if (this.#idle) clearTimeout(this.#idle);
        this.#idle = setTimeout(() => {
          this.#idle = undefined;
          this.changed();
        }, RATE_WINDOW_MS + 100);
        this.#idle.unref?.();
        this.changed();
      }),
      opts.ledger.onCheckpoint((c) => {
        this.#addCheckpoint(c, Date.now());
        this.changed();
      }),
    );
  }

  /** Attach the ledger's started consortium (synced ledgers): the summary then has a consensus part. */
  attachConsortium(c: Consortium): void {
    if (this.#consortium === c) return;
    this.#consortium = c;
    this.#stops.push(
      c.onUpdate(() => {
        this.#counts.clear();
        this.changed();
      }),
    );
    this.changed();
  }

  /** Set the MQTT connection state shown ('standalone' when no broker is configured). */
  setMqttState(state: string): void {
    if (state === this.#mqtt) return;
    this.#mqtt = state;
    this.changed();
  }

  /** The entries appended since the last call (at most LIVE_ROWS, the newest), newest first. */
  drainRows(): EntryRow[] {
    const fresh = this.#fresh.splice(0);
    return fresh.reverse().map((e) => row(e.index, leafHash(e.leaf), e.leaf));
  }

  /**
   * Whether grants or revocations may have been appended since the last call (true on the
   * first call), so a view re-reads the ledger's grants only when they can have changed.
   */
  grantsChanged(): boolean {
    const g = this.#grants;
    this.#grants = false;
    return g;
  }

  /** Ask for a (throttled) change notification. */
  changed(): void {
    this.#throttle.request();
  }

  #addCheckpoint(c: StoredCheckpoint, time: number): void {
    const at = this.#strip.findIndex((s) => s.size >= c.size);
    if (at >= 0 && this.#strip[at].size === c.size) return;
    if (at < 0) this.#strip.push({ size: c.size, time });
    else this.#strip.splice(at, 0, { size: c.size, time });
    if (this.#strip.length > STRIP_LENGTH) {
      for (const old of this.#strip.splice(0, this.#strip.length - STRIP_LENGTH)) this.#counts.delete(old.size);
    }
  }

  /** The summary now (reads only what is in memory and a few LevelDB records). */
  async summary(): Promise<LedgerSummary> {
    const l = this.ledger;
    if (l.closed) throw new LedgerError('E_CLOSED', 'the ledger is closed');
    const latest = l.latestCheckpoint();
    let checkpoint: LedgerSummary['checkpoint'] = null;
    if (latest) {
      const cp = parseCheckpoint(parseNote(latest.note).text);
      const seen = this.#strip.find((s) => s.size === latest.size)?.time ?? null;
      let time = seen;
      if (time === null && latest.size > 0) {
        try {
          time = (JSON.parse((await l.get(latest.size - 1)).leaf.toString('utf8')) as { ts: number }).ts;
        } catch {
          time = null;
        }
      }
      checkpoint = { size: cp.size, root: toBase64(cp.root), note: latest.note, time, approx: seen === null };
    }
    return {
      origin: l.origin,
      did: l.operator.did,
      ledgerId: ledgerId(l.origin, l.operator.did),
      treeSize: l.size,
      rate: this.#rate.rate(Date.now(), 1),
      checkpoint,
      mqtt: this.#mqtt,
      consensus: this.#consortium ? await this.#consensus(this.#consortium) : null,
    };
  }

  async #consensus(c: Consortium): Promise<ConsensusView> {
    const info = await c.info();
    const evidence = c.evidence ?? null;
    const conflictSizes = new Set<number>();
    if (evidence) {
      for (const n of [evidence.a, evidence.b]) {
        try {
          conflictSizes.add(parseCheckpoint(parseNote(n).text).size);
        } catch {
          /* shown as evidence text */
        }
      }
    }
    const last = new Map<string, number>();
    const strip: StripItem[] = [];
    for (const s of this.#strip) {
      let conf = this.#counts.get(s.size);
      if (!this.#counts.has(s.size)) {
        conf = await c.confirmations(s.size);
        this.#counts.set(s.size, conf);
      }
      for (const w of conf?.witnesses ?? []) last.set(w.did, Math.max(last.get(w.did) ?? 0, w.time));
      const count = conf?.count ?? 1;
      const status = checkpointState({ conflict: conflictSizes.has(s.size), confirmed: conf?.confirmed ?? false });
      strip.push({ size: s.size, status, confirmations: count, quorum: info.quorum });
    }
    return {
      quorum: info.quorum,
      total: c.policy.total,
      confirmedSize: info.confirmedSize,
      witnesses: c.policy.witnesses.map((w) => ({ name: w.name, did: w.did, lastCosigned: last.get(w.did) ?? null })),
      strip,
      conflict: evidence,
    };
  }

  /** Stop listening. */
  close(): void {
    this.#throttle.stop();
    if (this.#idle) clearTimeout(this.#idle);
    for (const s of this.#stops.splice(0)) s();
  }
}

/**
 * The devices enrolled in a ledger with their state, last seq, last seen, message rate and a
 * `silent` flag (nothing for silentMs), newest enrolment first (docs/design.md "Devices").
 */
export function deviceRows(ledger: Ledger, now = Date.now(), silentMs = DEFAULT_SILENT_MS): Promise<DeviceRow[]> {
  if (ledger.closed) throw new LedgerError('E_CLOSED', 'the ledger is closed');
  return DeviceActivity.of(ledger).rows(now, silentMs);
}

/** Filters of an entry page; every given one must hold. */
export interface EntryFilter {
  /** Entries below this index (exclusive; default the tree size): the page cursor. */
  before?: number;
  limit?: number;
  /** Signer did:key. */
  signer?: string;
  /** MQTT topic filter (`+`, `#`). */
  topic?: string;
  /** Earliest and latest envelope `ts` (ms, inclusive). */
  since?: number;
  until?: number;
}

/** One entry as a list shows it. */
export interface EntryRow {
  index: number;
  leafHash: string;
  kind: string;
  signer: string;
  seq: number;
  ts: number;
  topic: string | null;
}

/** A page of entries, newest first, and the cursor of the next (older) page. */
export interface EntryPage {
  treeSize: number;
  entries: EntryRow[];
  /** Pass as `before` for the next page; null when the start of the ledger was reached. */
  next: number | null;
}

function row(index: number, leafHash: Uint8Array, leaf: Buffer): EntryRow {
  const e = JSON.parse(leaf.toString('utf8')) as { kind: string; signer: string; seq: number; ts: number; topic?: string };
  return { index, leafHash: toBase64(leafHash), kind: e.kind, signer: e.signer, seq: e.seq, ts: e.ts, topic: e.topic ?? null };
}

/**
 * A page of entries newest first (paging back with `before`), matching the filters; a
 * filtered page scans at most MAX_SCAN entries back and then returns what it found with a
 * cursor to continue from.
 */
export async function entryPage(ledger: Ledger, f: EntryFilter = {}): Promise<EntryPage> {
  const size = ledger.size;
  const limit = f.limit ?? 50;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE) throw new LedgerError('E_RANGE', `limit must be 1 to ${MAX_PAGE}`);
  const before = Math.min(f.before ?? size, size);
  if (!Number.isSafeInteger(before) || before < 0) throw new LedgerError('E_RANGE', 'before must be a non-negative integer');
  if (f.topic !== undefined) checkTopicFilter(f.topic);
  const filtered = f.signer !== undefined || f.topic !== undefined || f.since !== undefined || f.until !== undefined;
  if (!filtered) {
    const from = Math.max(0, before - limit);
    const entries: EntryRow[] = [];
    for await (const e of ledger.entries(from, before)) entries.push(row(e.index, e.leafHash, e.leaf));
    return { treeSize: size, entries: entries.reverse(), next: from > 0 ? from : null };
  }
  const found: EntryRow[] = [];
  let to = before;
  let scanned = 0;
  while (to > 0 && found.length < limit && scanned < MAX_SCAN) {
    const from = Math.max(0, to - Math.min(1000, MAX_SCAN - scanned));
    const hits = await ledger.query({ from, to, signer: f.signer, topic: f.topic, since: f.since, until: f.until, limit: 10000 });
    for (let i = hits.length - 1; i >= 0 && found.length < limit; i--) {
      found.push(row(hits[i].index, hits[i].leafHash, hits[i].leaf));
    }
    scanned += to - from;
    to = found.length >= limit ? found[found.length - 1].index : from;
  }
  return { treeSize: size, entries: found, next: to > 0 ? to : null };
}

/** One entry with what a verifier needs: exact leaf bytes, and an inclusion proof against a signed checkpoint. */
export interface EntryDetail {
  index: number;
  /** The exact leaf bytes (JCS of the signed envelope), base64. */
  leaf: string;
  leafHash: string;
  /** The latest signed checkpoint covering the entry, null while none does (the entry is pending). */
  checkpoint: { size: number; note: string } | null;
  /** RFC 9162 §2.1.3 inclusion proof to that checkpoint's root, base64; empty when no checkpoint covers the entry. */
  proof: string[];
  /** The operator's did:key, whose key signs the checkpoint (C2SP signed-note, key name = origin). */
  operator: string;
  origin: string;
}

/** An entry with its inclusion proof against the latest signed checkpoint covering it. */
export async function entryDetail(ledger: Ledger, index: number): Promise<EntryDetail> {
  if (!Number.isSafeInteger(index) || index < 0 || index >= ledger.size) throw new LedgerError('E_RANGE', `no entry ${String(index)} (size ${ledger.size})`);
  const e = await ledger.get(index);
  const cp = ledger.latestCheckpoint();
  const covered = cp !== undefined && cp.size > index;
  return {
    index,
    leaf: e.leaf.toString('base64'),
    leafHash: toBase64(e.leafHash),
    checkpoint: covered ? { size: cp.size, note: cp.note } : null,
    proof: covered ? (await ledger.inclusionProof(index, cp.size)).map((h) => toBase64(h)) : [],
    operator: ledger.operator.did,
    origin: ledger.origin,
  };
}
