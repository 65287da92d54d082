/**
 * The consensus of a consortium of partners (docs/design.md "The model", "Witness
 * exchange", "Witness set and quorum", "Sync over MQTT"): one Consortium per ledger, over one
 * MqttLink, plays both roles.
 *
 * - Log side: it publishes its own ledger (LedgerPublisher: retained checkpoint, entries,
 *   RPC), collects the partners' cosignatures from its retained `cosignature/+` topics into a
 *   CosignatureCollector kept in ledger.aux, and answers the status of an entry: `pending`,
 *   `sealed`, `confirmed` (a checkpoint covering it reached the quorum) or `conflict`.
 * - Witness side (witness pull): for each partner ledger it witnesses it follows the retained
 *   `add-checkpoint` and `checkpoint` topics, takes the consistency proof from the log's
 *   add-checkpoint body when it starts from the size the witness holds (else fetches one from
 *   the log over RPC), runs the C2SP tlog-witness add-checkpoint request through its Witness,
 *   and publishes the cosigned checkpoint retained on the log's `cosignature/<its own ledger
 *   id>` topic, or the equivocation evidence retained on the log's `conflict` topic. Each log's
 *   checkpoints are handled one at a time, latest wins: at most one cosignature per log per
 *   checkpoint, however many arrive while one is being cosigned.
 *
 * Everything received is untrusted: size-limited, parsed strictly and signature-checked
 * before it changes state. Retained state is republished on every (re)connect, since a
 * broker restarting without persistence loses it.
 */
import { fromBase64 } from '../format/bytes';
import { BotError, FormatError, LedgerError } from '../errors';
import { type Evidence, checkEvidence, evidenceToJson, parseEvidence, MAX_EVIDENCE_BYTES } from '../format/equivocation';
import { Identity } from '../format/identity';
import { type Ledger, type StoredCheckpoint } from '../store/ledger';
import { type MqttLink } from './mqtt-link';
import { type NoteVerifier, parseCheckpoint, parseNote } from '../format/note';
import { type Confirmations, CosignatureCollector, ledgerId, logVerifier, QuorumPolicy } from './quorum';
import { type ConsensusState, entryState } from './entry-state';
import { LedgerPublisher, ledgerTopics, type LedgerTopics } from './publisher';
import {
  type AddCheckpointRequest,
  DEFAULT_MAX_REQUEST_BYTES,
  formatAddCheckpointRequest,
  MAX_PROOF_LINES,
  parseAddCheckpointRequest,
  Witness,
  type WitnessLogState,
} from './witness';

/** Largest checkpoint or cosigned note accepted from MQTT (bytes). */
export const MAX_CONSENSUS_NOTE_BYTES = 64 * 1024;

/** A partner ledger this consortium member witnesses. */
export interface WitnessedLedger {
  /** Its checkpoint origin. */
  origin: string;
  /** Its operator's did:key. */
  did: string;
}

/** Options of a Consortium. */
export interface ConsortiumOptions {
  /** The own ledger (opened with the operator key). */
  ledger: Ledger;
  /** The operator key: signs the ledger's checkpoints and, as a witness, the partners' cosignatures. */
  identity: Identity;
  /** The MQTT connection (started by the caller or by start()). */
  link: MqttLink;
  /** Witness set and quorum of the own ledger: its witnesses are the partners. */
  policy: QuorumPolicy;
  /** The partners' ledgers this member witnesses. */
  witnessed: readonly WitnessedLedger[];
  /** Cosigner key name of this member as a witness (default: the own ledger's origin). */
  witnessName?: string;
  /** Retry period while a witnessed log is ahead of what was cosigned (default 2000 ms). */
  retryMs?: number;
  /** Timeout of one consistency-proof RPC (default 5000 ms). */
  rpcTimeoutMs?: number;
  /** Answers partners' signed requests on the ledger's rpc topic (method "request"; lib/access/access.ts). */
  requests?: (params: unknown) => Promise<unknown>;
  /** Publish all entries for mirrors (default true; see PublisherOptions in lib/consortium/publisher.ts). */
  shareEntries?: boolean;
}

export type { ConsensusState } from './entry-state';

/** The status of one entry. */
export interface EntryStatus {
  status: ConsensusState;
  index: number;
  /** Size of the checkpoint the status refers to (the ledger size when pending). */
  treeSize: number;
  /** Operator signature plus distinct set witnesses' cosignatures on that checkpoint. */
  confirmations: number;
  quorum: number;
  /** The witnesses counted, with their cosignature times (unix seconds). */
  witnesses: { did: string; time: number }[];
  /** The checkpoint note (with the collected cosignatures when confirmed), null when pending. */
  checkpoint: string | null;
}

/** The consortium view of the own ledger. */
export interface ConsortiumInfo {
  /** did:keys of the witness set. */
  witnesses: string[];
  quorum: number;
  confirmedSize: number;
  /** The confirmed checkpoint with its cosignatures, null if none. */
  confirmedCheckpoint: string | null;
}

/** A wait for confirmation that failed: E_TIMEOUT, E_CONFLICT or E_CLOSED. */
export class ConsensusError extends LedgerError {}

interface LogFollow {
  origin: string;
  did: string;
  id: string;
  topics: LedgerTopics;
  verifier: NoteVerifier;
  /** Latest valid-looking checkpoint note received (latest wins). */
  latest?: string;
  /** The note last handled to completion (cosigned, ignored or refused). */
  done?: string;
  /** The log's latest add-checkpoint request body received (its shared consistency proof). */
  offer?: AddCheckpointRequest;
  busy: boolean;
  /** The latest cosigned note this member published for the log. */
  cosigned?: string;
  /** Proven equivocation evidence of the log (own finding or received). */
  evidence?: Evidence;
}

interface Waiter {
  index: number;
  resolve: (s: EntryStatus) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

const AUX = 'consensus/';

/** Tree size of a checkpoint note already parsed once (-1 if it no longer parses). */
function noteSize(note: string): number {
  try {
    return parseCheckpoint(parseNote(note).text).size;
  } catch {
    return -1;
  }
}

/** One ledger's member of a consortium: log side and witness side over MQTT. */
export class Consortium {
  readonly ledger: Ledger;
  readonly link: MqttLink;
  readonly policy: QuorumPolicy;
  /** The own ledger id (topic segment and this member's witness id on partners' topics). */
  readonly ledgerId: string;
  readonly witness: Witness;
  readonly topics: LedgerTopics;
  #logs = new Map<string, LogFollow>();
  #collector: CosignatureCollector | undefined;
  #publisher: LedgerPublisher;
  #stops: (() => void)[] = [];
  #timer: NodeJS.Timeout | undefined;
  #retryMs: number;
  #rpcTimeoutMs: number;
  #chain: Promise<unknown> = Promise.resolve();
  /** Latest cosigned note received per witness topic, not yet added (its checkpoint may come later). */
  #pendingCosigs = new Map<string, string>();
  /** Evidence records whose write failed (a failed store refuses writes until reopened): retried on every tick. */
  #unsaved = new Map<string, string>();
  #ownEvidence: Evidence | undefined;
  #waiters = new Set<Waiter>();
  #running = false;
  #updateListeners = new Set<() => void>();

  constructor(opts: ConsortiumOptions) {
    if (!(opts.identity instanceof Identity)) throw new FormatError('E_KEY', 'a consortium member needs its operator identity');
    if (!(opts.policy instanceof QuorumPolicy)) throw new FormatError('E_NOTE', 'a consortium member needs a QuorumPolicy');
    if (opts.policy.origin !== opts.ledger.origin) throw new FormatError('E_NOTE', `the policy is for ${opts.policy.origin}, not ${opts.ledger.origin}`);
    if (opts.policy.operatorDid !== opts.identity.did || opts.ledger.operator.did !== opts.identity.did) {
      throw new FormatError('E_KEY', 'the identity is not the operator key of the ledger and policy');
    }
    this.ledger = opts.ledger;
    this.link = opts.link;
    this.policy = opts.policy;
    this.ledgerId = ledgerId(opts.ledger.origin, opts.identity.publicKey);
    this.topics = ledgerTopics(this.ledgerId, opts.link.prefix);
    this.#retryMs = opts.retryMs ?? 2000;
    this.#rpcTimeoutMs = opts.rpcTimeoutMs ?? 5000;
    this.witness = new Witness({
      name: opts.witnessName ?? opts.ledger.origin,
      identity: opts.identity,
      store: opts.ledger.aux,
      logs: opts.witnessed.map((w) => ({ origin: w.origin, key: w.did })),
    });
    for (const w of opts.witnessed) {
      const id = ledgerId(w.origin, w.did);
      if (id === this.ledgerId) throw new FormatError('E_NOTE', 'a ledger does not witness itself');
      this.#logs.set(w.origin, {
        origin: w.origin,
        did: w.did,
        id,
        topics: ledgerTopics(id, opts.link.prefix),
        verifier: logVerifier(w.origin, w.did),
        busy: false,
      });
    }
    this.#publisher = new LedgerPublisher(opts.ledger, opts.link, this.ledgerId, {
      requests: opts.requests,
      shareEntries: opts.shareEntries,
      witnessRequests: opts.policy.witnesses.length > 0,
    });
  }

  /** Start both roles (idempotent); starts the link too. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#collector = await CosignatureCollector.open({ store: this.ledger.aux, policy: this.policy });
    this.#ownEvidence = await this.#readEvidence('own');
    for (const log of this.#logs.values()) {
      const raw = await this.ledger.aux.get(`${AUX}cosigned/${log.id}`);
      if (raw) log.cosigned = raw.toString('utf8');
      log.evidence = await this.#readEvidence(log.id);
    }
    if (!this.#running) return; // stopped meanwhile
    // 1. Publish the own ledger.
    this.#publisher.start();
    // 3. Log side: own checkpoints into the collector, cosignatures and conflicts from the partners.
    const latest = this.ledger.latestCheckpoint();
    if (latest) this.#ownCheckpoint(latest);
    this.#stops.push(
      this.ledger.onCheckpoint((c) => this.#ownCheckpoint(c)),
      this.link.subscribe(this.topics.cosignatures, (topic, p) => this.#onCosigned(topic, p)),
      this.link.subscribe(this.topics.conflict, (_t, p) => this.#onOwnConflict(p)),
    );
    // 2. Witness side.
    for (const log of this.#logs.values()) {
      this.#stops.push(
        this.link.subscribe(log.topics.addCheckpoint, (_t, p) => this.#onOffer(log, p)),
        this.link.subscribe(log.topics.checkpoint, (_t, p) => this.#onCheckpoint(log, p)),
        this.link.subscribe(log.topics.conflict, (_t, p) => this.#onLogConflict(log, p)),
      );
    }
    this.#stops.push(this.link.onConnect(() => this.#republish()));
    this.#timer = setInterval(() => this.#tick(), this.#retryMs);
    this.link.start();
  }

  /** Stop: unsubscribe everything, clear timers, fail pending waits with E_CLOSED. Does not close the link or the ledger. */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#publisher.stop();
    for (const s of this.#stops.splice(0)) s();
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.reject(new ConsensusError('E_CLOSED', 'the consortium was stopped'));
    }
    this.#waiters.clear();
    // Let the work in flight finish before the caller closes the ledger.
    await this.#chain.catch(() => undefined);
    for (let i = 0; i < 200 && [...this.#logs.values()].some((l) => l.busy); i++) await new Promise((r) => setTimeout(r, 25));
  }

  // ---------------------------------------------------------------- log side

  /** Serialize collector work (own checkpoints and cosignatures) in arrival order. */
  #serial(fn: () => Promise<void>): void {
    this.#chain = this.#chain.then(fn).catch((err) => this.#error(err));
  }

  #error(err: unknown): void {
    if (err instanceof BotError && err.code === 'E_CLOSED') return;
    if (this.link.listenerCount('error') > 0) this.link.emit('error', err);
  }

  #ownCheckpoint(c: StoredCheckpoint): void {
    this.#serial(async () => {
      if (!this.#running || this.ledger.closed) return;
      try {
        await this.#collector!.addCheckpoint(c.note);
      } catch (err) {
        if (err instanceof BotError && err.code === 'E_CONFLICT') {
          this.#ownEvidence ??= await this.#collector!.conflict();
          this.#settle();
          return;
        }
        throw err;
      }
      await this.#flushPending();
    });
  }

  #onCosigned(topic: string, payload: Buffer): void {
    if (payload.length === 0 || payload.length > MAX_CONSENSUS_NOTE_BYTES) return;
    const note = payload.toString('utf8');
    if (this.#pendingCosigs.size >= 256 && !this.#pendingCosigs.has(topic)) return; // bounded
    this.#pendingCosigs.set(topic, note);
    this.#serial(() => this.#flushPending());
  }

  /**
   * Add the received cosigned notes whose checkpoints are held. The lines of one checkpoint
   * size are added together (one verification each, one synced write for all of them), so a
   * round of n witnesses costs one write, not n.
   */
  async #flushPending(): Promise<void> {
    if (!this.#running || this.ledger.closed) return;
    const before = this.#collector!.confirmedSize;
    let accepted = 0;
    const bySize = new Map<number, string[]>();
    for (const [topic, note] of [...this.#pendingCosigs]) {
      this.#pendingCosigs.delete(topic);
      let size: number;
      let lines: string[];
      try {
        const n = parseNote(note);
        const cp = parseCheckpoint(n.text);
        if (cp.origin !== this.policy.origin) continue;
        size = cp.size;
        lines = n.signatures.filter((s) => this.policy.member(s)).map((s) => s.line);
      } catch {
        continue; // junk
      }
      if (lines.length === 0 || size > this.ledger.size) continue;
      bySize.set(size, [...(bySize.get(size) ?? []), ...lines]);
    }
    for (const [size, lines] of bySize) {
      try {
        accepted += (await this.#collector!.addCosignatures(size, lines)).accepted.length;
      } catch (err) {
        if (err instanceof BotError && err.code === 'E_NOT_FOUND') {
          // The checkpoint is not (yet) held: a stored one of the ledger may exist.
          const held = await this.ledger.checkpointAt(size);
          if (held) {
            try {
              await this.#collector!.addCheckpoint(held.note);
              accepted += (await this.#collector!.addCosignatures(size, lines)).accepted.length;
            } catch {
              /* a conflict is handled on own checkpoints; bad lines are dropped */
            }
          }
        }
      }
    }
    if (this.#collector!.confirmedSize !== before) this.#settle();
    else if (accepted) this.#notify();
  }

  #onOwnConflict(payload: Buffer): void {
    if (payload.length === 0 || payload.length > MAX_EVIDENCE_BYTES || this.#ownEvidence) return;
    let ev: Evidence;
    try {
      ev = parseEvidence(payload);
    } catch {
      return;
    }
    if (ev.origin !== this.policy.origin || !checkEvidence(ev, this.policy.log)) return;
    this.#ownEvidence = ev;
    this.#saveEvidence('own', ev);
    this.#settle();
  }

  async #readEvidence(which: string): Promise<Evidence | undefined> {
    const raw = await this.ledger.aux.get(`${AUX}evidence/${which}`);
    if (!raw) return undefined;
    try {
      return parseEvidence(raw);
    } catch {
      return undefined;
    }
  }

  /** Whether the own ledger is proven to have equivocated. */
  get inConflict(): boolean {
    return this.#ownEvidence !== undefined;
  }

  /** The proven equivocation evidence of the own ledger, if any (for monitoring views; re-checkable with checkEvidence). */
  get evidence(): Evidence | undefined {
    return this.#ownEvidence;
  }

  /**
   * Call fn whenever the consensus state of the own ledger may have changed: cosignatures
   * accepted, the confirmed size grown, or a conflict proven (for live views, e.g. the
   * editor sidebar). Returns an unsubscribe function. fn must not throw.
   */
  onUpdate(fn: () => void): () => void {
    this.#updateListeners.add(fn);
    return () => {
      this.#updateListeners.delete(fn);
    };
  }

  #notify(): void {
    for (const fn of this.#updateListeners) {
      try {
        fn();
      } catch {
        /* a listener's failure is not the consortium's */
      }
    }
  }

  /** The quorum count of the own checkpoint of that size as collected so far, or undefined if it is not held (tlog-cosignature "Format"). */
  async confirmations(size: number): Promise<Confirmations | undefined> {
    return this.#requireStarted().confirmations(size);
  }

  /** The consensus status of the entry at index (E_RANGE if there is none). */
  async status(index: number): Promise<EntryStatus> {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.ledger.size) {
      throw new LedgerError('E_RANGE', `no entry ${String(index)} (size ${this.ledger.size})`);
    }
    const collector = this.#requireStarted();
    const quorum = this.policy.quorum;
    const fromConf = (c: Confirmations | undefined): Pick<EntryStatus, 'confirmations' | 'witnesses'> => ({
      confirmations: c?.count ?? 1,
      witnesses: (c?.witnesses ?? []).map((w) => ({ did: w.did, time: w.time })),
    });
    const latest = this.ledger.latestCheckpoint();
    const { status, treeSize } = entryState({
      index,
      size: this.ledger.size,
      sealedSize: latest?.size,
      confirmedSize: collector.confirmedSize,
      conflict: this.#ownEvidence !== undefined,
    });
    if (status === 'pending') return { status, index, treeSize, confirmations: 0, quorum, witnesses: [], checkpoint: null };
    // The checkpoint the status refers to: the confirmed one, else the latest (none: a conflict proven before any was signed here).
    const held = latest || status === 'confirmed' ? await collector.confirmations(treeSize) : undefined;
    const checkpoint = status === 'confirmed' ? ((await collector.confirmedCheckpoint(treeSize)) ?? null) : (latest?.note ?? null);
    return { status, index, treeSize, ...fromConf(held), quorum, checkpoint };
  }

  /** Resolve with the status once the entry is confirmed; reject with ConsensusError E_TIMEOUT or E_CONFLICT. */
  waitConfirmed(index: number, timeoutMs = 30000): Promise<EntryStatus> {
    return new Promise<EntryStatus>((resolve, reject) => {
      if (!this.#running) {
        reject(new ConsensusError('E_CLOSED', 'the consortium is not running'));
        return;
      }
      const w: Waiter = {
        index,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(w);
          reject(new ConsensusError('E_TIMEOUT', `entry ${index} was not confirmed within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.#waiters.add(w);
      this.#settle();
    });
  }

  /** Settle the waits that can be settled now, and tell the update listeners. */
  #settle(): void {
    this.#notify();
    for (const w of [...this.#waiters]) {
      if (this.#ownEvidence) {
        this.#waiters.delete(w);
        clearTimeout(w.timer);
        w.reject(new ConsensusError('E_CONFLICT', `${this.policy.origin} signed conflicting checkpoints`));
      } else if (this.#collector && this.#collector.confirmedSize > w.index) {
        this.#waiters.delete(w);
        clearTimeout(w.timer);
        this.status(w.index).then(w.resolve, w.reject);
      }
    }
  }

  /** The witness set, quorum and the confirmed checkpoint of the own ledger. */
  async info(): Promise<ConsortiumInfo> {
    const collector = this.#requireStarted();
    return {
      witnesses: this.policy.witnesses.map((w) => w.did),
      quorum: this.policy.quorum,
      confirmedSize: collector.confirmedSize,
      confirmedCheckpoint: (await collector.confirmedCheckpoint()) ?? null,
    };
  }

  #requireStarted(): CosignatureCollector {
    if (!this.#collector) throw new LedgerError('E_CLOSED', 'the consortium is not started');
    return this.#collector;
  }

  // ---------------------------------------------------------------- witness side

  /** What this member's witness holds for a partner log; `conflict` also when proven evidence was received from another witness. */
  async witnessState(origin: string): Promise<WitnessLogState> {
    const s = await this.witness.state(origin);
    const log = this.#logs.get(origin);
    if (log?.evidence && s.status !== 'conflict') return { ...s, status: 'conflict', evidence: Math.max(1, s.evidence) };
    return s;
  }

  /** A log's add-checkpoint request body: kept for its proof, and its checkpoint handled like one from the checkpoint topic. */
  #onOffer(log: LogFollow, payload: Buffer): void {
    if (payload.length === 0 || payload.length > DEFAULT_MAX_REQUEST_BYTES) return;
    let req: AddCheckpointRequest;
    let size: number;
    try {
      req = parseAddCheckpointRequest(payload);
      const cp = parseCheckpoint(parseNote(req.checkpoint).text);
      if (cp.origin !== log.origin) return;
      size = cp.size;
    } catch {
      return;
    }
    log.offer = req;
    // A body for an older checkpoint than the one waiting (a late retained copy) does not replace it.
    if (log.latest !== undefined && log.latest !== log.done && noteSize(log.latest) > size) return;
    log.latest = req.checkpoint;
    this.#kick(log);
  }

  #onCheckpoint(log: LogFollow, payload: Buffer): void {
    if (payload.length === 0 || payload.length > MAX_CONSENSUS_NOTE_BYTES) return;
    const note = payload.toString('utf8');
    try {
      const cp = parseCheckpoint(parseNote(note).text);
      if (cp.origin !== log.origin) return;
    } catch {
      return;
    }
    log.latest = note;
    this.#kick(log);
  }

  /** Process the log's latest checkpoint, one at a time per log (latest wins). */
  #kick(log: LogFollow): void {
    if (log.busy || !this.#running) return;
    log.busy = true;
    void (async () => {
      try {
        while (this.#running && !this.ledger.closed && log.latest !== undefined && log.latest !== log.done) {
          const note = log.latest;
          const finished = await this.#witnessOne(log, note);
          if (!finished) break; // retried by the timer or the next checkpoint
          log.done = note;
        }
      } catch (err) {
        this.#error(err);
      } finally {
        log.busy = false;
      }
    })();
  }

  /** Witness one checkpoint note; false when it should be retried later. */
  async #witnessOne(log: LogFollow, note: string): Promise<boolean> {
    if (log.evidence) return true; // proven equivocation: never cosign the log again
    const cp = parseCheckpoint(parseNote(note).text);
    const state = await this.witness.state(log.origin);
    if (state.status === 'conflict') {
      await this.#takeOwnEvidence(log);
      return true;
    }
    if (cp.size < state.size) return true; // older than what was cosigned
    if (cp.size === state.size && state.note !== undefined && log.cosigned !== undefined && parseNote(state.note).text === parseNote(note).text) return true; // already cosigned
    let proof: Buffer[] = [];
    // The log's shared proof when it starts from what this witness holds; else ask the log.
    const offer = log.offer;
    const offered = offer !== undefined && offer.checkpoint === note && offer.oldSize === state.size;
    if (offered) proof = offer.proof;
    else if (state.size > 0 && cp.size > state.size) {
      let res: unknown;
      try {
        res = await this.link.request(log.topics.rpc, 'consistency', { from: state.size, to: cp.size }, this.#rpcTimeoutMs);
      } catch {
        return false; // timeout or not connected: retry
      }
      const list = (res as { proof?: unknown } | null)?.proof;
      if (!Array.isArray(list) || list.length > MAX_PROOF_LINES || !list.every((h) => typeof h === 'string' && h.length <= 64)) return false;
      try {
        proof = list.map((h) => fromBase64(h as string));
      } catch {
        return false;
      }
      if (proof.some((h) => h.length !== 32)) return false;
    }
    let body: string;
    try {
      body = formatAddCheckpointRequest(state.size, proof, note);
    } catch {
      return true;
    }
    const r = await this.witness.addCheckpoint(body);
    switch (r.code) {
      case 'ok': {
        const held = await this.witness.state(log.origin);
        const cosigned = (held.note ?? note) + r.cosignatures.join('');
        // Not synced: the witness state above is, and a record lost in a crash only means cosigning that checkpoint again.
        await this.ledger.aux.batch([{ key: `${AUX}cosigned/${log.id}`, value: Buffer.from(cosigned, 'utf8') }], { sync: false });
        log.cosigned = cosigned;
        this.link.publish(log.topics.cosignature(this.ledgerId), cosigned, { retain: true }).catch(() => undefined);
        return true;
      }
      case 'conflict':
      case 'bad-proof':
        if (r.equivocation) {
          await this.#takeOwnEvidence(log);
          return true;
        }
        if (offered && log.offer === offer) {
          log.offer = undefined; // a shared proof that does not fit: ask the log itself, now
          return this.#witnessOne(log, note);
        }
        return false; // a race on the old size or a bad proof from the network: retry
      default:
        return true; // bad signature, malformed, unknown: junk on the topic
    }
  }

  /** Take the witness's own evidence for the log, keep and publish it (retained). */
  async #takeOwnEvidence(log: LogFollow): Promise<void> {
    if (log.evidence) return;
    const list = await this.witness.evidence(log.origin);
    const ev = list.find((e) => checkEvidence(e, log.verifier));
    if (!ev) return;
    log.evidence = ev;
    await this.ledger.aux.batch([{ key: `${AUX}evidence/${log.id}`, value: Buffer.from(evidenceToJson(ev), 'utf8') }]);
    this.link.publish(log.topics.conflict, evidenceToJson(ev), { retain: true }).catch(() => undefined);
  }

  #onLogConflict(log: LogFollow, payload: Buffer): void {
    if (log.evidence || payload.length === 0 || payload.length > MAX_EVIDENCE_BYTES) return;
    let ev: Evidence;
    try {
      ev = parseEvidence(payload);
    } catch {
      return;
    }
    if (ev.origin !== log.origin || !checkEvidence(ev, log.verifier)) return;
    log.evidence = ev;
    this.#saveEvidence(log.id, ev);
  }

  /**
   * Persist proven evidence. It is shown at once (it proves itself); a write that fails is
   * kept and retried on every tick, so a store that failed and was reopened still ends up
   * holding it, and a restart still shows the conflict.
   */
  #saveEvidence(which: string, ev: Evidence): void {
    this.#unsaved.set(which, evidenceToJson(ev));
    this.#flushEvidence();
  }

  #flushEvidence(): void {
    for (const [which, json] of this.#unsaved) {
      this.ledger.aux.batch([{ key: `${AUX}evidence/${which}`, value: Buffer.from(json, 'utf8') }]).then(
        () => {
          if (this.#unsaved.get(which) === json) this.#unsaved.delete(which);
        },
        (err: unknown) => this.#error(err),
      );
    }
  }

  /** Retry logs that are behind, and cosignatures waiting for their checkpoint. */
  #tick(): void {
    if (!this.#running) return;
    if (this.#unsaved.size > 0 && !this.ledger.failure) this.#flushEvidence();
    for (const log of this.#logs.values()) if (log.latest !== undefined && log.latest !== log.done) this.#kick(log);
    if (this.#pendingCosigs.size > 0) this.#serial(() => this.#flushPending());
  }

  /** On every (re)connect: republish the latest cosignature per log and the evidence held (retained). */
  #republish(): void {
    for (const log of this.#logs.values()) {
      if (log.cosigned) this.link.publish(log.topics.cosignature(this.ledgerId), log.cosigned, { retain: true }).catch(() => undefined);
      if (log.evidence) this.link.publish(log.topics.conflict, evidenceToJson(log.evidence), { retain: true }).catch(() => undefined);
    }
    if (this.#ownEvidence) this.link.publish(this.topics.conflict, evidenceToJson(this.#ownEvidence), { retain: true }).catch(() => undefined);
  }
}
