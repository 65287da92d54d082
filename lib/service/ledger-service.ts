/**
 * LedgerService: the lifecycle of one local ledger as a bot-ledger config node runs it, without
 * Node-RED (docs/design.md "Nodes"). nodes/bot-ledger.ts reads the node's settings, builds one
 * and maps its events to the node's log; anything else (a test, a program) can run one alike.
 *
 * - start() takes the owner's lease on the ledger (lib/store/registry.ts, shared by every user
 *   of the folder), starts the checkpoint timer, and, with a broker, the sync;
 * - checkpoints: every checkpointMs, and once checkpointEntries entries were committed since the
 *   last checkpoint — driven by the ledger's commit event (Ledger.onCommit), whoever appended;
 *   one signature at a time, only when the tree grew, only with the operator key;
 * - sync (docs/design.md "Sync over MQTT"): once the ledger is open, one MqttLink and one
 *   Consortium (lib/consortium/consortium.ts) publish the ledger, collect the witnesses'
 *   cosignatures (QuorumPolicy from witnesses and quorum), witness the "witnessed" ledgers and
 *   answer partners' requests (lib/access/access.ts, under one RateLimiter); read-only Mirrors
 *   (docs/design.md "Mirrors") of the "mirrored" ledgers live in `<dir>-mirrors/`, and with
 *   `mirrorName` answer partners' reads and key requests from their copies (serveAs), under the
 *   same rate limits;
 * - confidential scopes (docs/design.md "Confidential entries"): one ConfidentialOwner, made
 *   once the ledger is open when scopes are configured or the ledger already declares some;
 *   it declares the configured scopes not declared yet (epoch 0), and sealForAppend() seals an
 *   entry of their topics before it is appended, so none is stored in plaintext;
 * - close() is ordered: seal what was appended since the last checkpoint (with a checkpoint
 *   policy), stop the consortium and mirrors and close the link (bounded: see #stopSync), then
 *   release the lease. Every failure on the way is an 'error' event; close() itself resolves.
 *
 * Events (on()): 'open', 'error', 'log' (the MQTT lines, password-free and escaped, link
 * errors once until they change, drops at most one line per reason a minute), 'linkState',
 * 'linkDrop', 'health' (the store's, while the registry reopens a failed one).
 *
 * Pure TypeScript, no Node-RED import.
 */
import { answerRequest, type RequestAnswer } from '../access/access';
import { DEFAULT_RATE_LIMITS, RateLimiter, type RateLimits } from '../access/rate-limit';
import { Consortium, type WitnessedLedger } from '../consortium/consortium';
import { Mirror, type MirrorState } from '../consortium/mirror';
import { type LinkDrop, type LinkState, MqttLink, redactUrl } from '../consortium/mqtt-link';
import { ledgerId, QuorumPolicy, type WitnessInit } from '../consortium/quorum';
import { BotError } from '../errors';
import type { Identity } from '../format/identity';
import { SignedEnvelope, verifyEnvelope } from '../format/envelope';
import type { EncryptionKey } from '../confidential/hpke';
import { ConfidentialOwner, keyEpochsOf, KEY_ENTRY_KINDS } from '../confidential/owner';
import { isSealed } from '../confidential/seal';
import { type SignPoolLease, sharedSignPool } from '../format/sign-pool';
import { escapeUnprintable } from '../format/topic';
import type { Commit, Ledger, Receipt, StoredCheckpoint } from '../store/ledger';
import { type AcquireOptions, acquireLedger, failedLease, type LedgerLease, type StoreHealth } from '../store/registry';
import { LineThrottle } from '../view/rate';
import { readTlsFiles, type TlsFiles } from './ledger-settings';

/** The MQTT broker a ledger syncs over (docs/design.md "Sync over MQTT"). */
export interface LedgerServiceLink {
  /** Broker URL (mqtt://, mqtts://, ws://, wss://), without a password (lib/service/ledger-settings.ts checkBrokerUrl). */
  url: string;
  clientId?: string;
  username?: string;
  password?: string;
  /** PEM files, read when the link is opened (a missing or too open key file fails the sync, E_KEY). */
  tls?: TlsFiles;
}

/** What a LedgerService runs: the ledger, its checkpoint policy and its sync. */
export interface LedgerServiceOptions {
  /** The ledger's folder, as configured (mirrors live in `<dir>-mirrors/`). */
  dir: string;
  /** The origin the ledger must have; undefined: whatever it has (or defaultOrigin when created). */
  origin?: string;
  /** The origin a new ledger is created with when origin is undefined. */
  defaultOrigin?: string;
  /** The operator key: signs checkpoints; needed to sync. */
  identity?: Identity;
  /** Largest entry in bytes (the ledger's default when undefined). */
  maxEntryBytes?: number;
  /** The configuration owning the folder (a second owner is refused, E_LOCKED: lib/store/registry.ts). */
  owner?: { id: string; label: string };
  /** Sign a checkpoint this often (ms; 0 or undefined = no timer). */
  checkpointMs?: number;
  /** Sign a checkpoint once this many entries were committed since the last one (0 or undefined = off). */
  checkpointEntries?: number;
  /** The broker to sync over; undefined: a standalone ledger. */
  link?: LedgerServiceLink;
  /** The witness set of this ledger. */
  witnesses?: readonly WitnessInit[];
  /** Cosignatures a checkpoint needs, the operator's included (0 or undefined = a majority). */
  quorum?: number;
  /** Partners' ledgers this one witnesses. */
  witnessed?: readonly WitnessedLedger[];
  /** Partners' ledgers kept as read-only mirrors. */
  mirrored?: readonly WitnessedLedger[];
  /** Publish every entry for mirrors (default true); false: entries leave only through granted requests. */
  shareEntries?: boolean;
  /** Partner requests answered per second (DEFAULT_RATE_LIMITS when undefined; 0 = no limit). */
  rateLimits?: RateLimits;
  /** The name under which this ledger's mirrors answer partners (lib/consortium/mirror.ts serveAs); undefined: they do not. */
  mirrorName?: string;
  /** Confidential scopes and the operator's encryption key (needs the operator identity). */
  confidential?: ConfidentialSettings;
}

/** A confidential scope as configured: its id and MQTT topic filters. */
export interface ConfiguredScope {
  scope: string;
  topics: string[];
}

/** What the service needs for confidential scopes (docs/design.md "Confidential entries"). */
export interface ConfidentialSettings {
  /** Scopes to declare when the ledger does not declare them yet. */
  scopes: readonly ConfiguredScope[];
  /** The operator's encryption key (every epoch is wrapped to it); called once, when needed. */
  encryptionKey: () => Promise<EncryptionKey>;
  /** The operator's persistent seq counter (shared with the other signers of that identity). */
  nextSeq: () => number;
}

/** A mirrored partner ledger and its state (for the admin endpoints). */
export interface MirrorInfo extends MirrorState {
  origin: string;
  did: string;
}

/** The events of a LedgerService; on() returns the unsubscribe. */
export interface LedgerServiceEvents {
  /** The ledger is open (origin is now its own). */
  open: (ledger: Ledger) => void;
  /** Something failed outside a caller's request: the open, the sync's start, a timed checkpoint, a step of close(). */
  error: (err: unknown) => void;
  /** A line about the MQTT link, for the log (no password, a peer's text escaped). */
  log: (line: string) => void;
  /** The MQTT link's state (given at once to a new listener when known). */
  linkState: (state: LinkState) => void;
  /** A message the link dropped or refused (every one; the 'log' line is throttled). */
  linkDrop: (drop: LinkDrop) => void;
  /** The store's health changed (a write failure, a failed reopen attempt, the recovery). */
  health: (health: StoreHealth) => void;
}

type Listeners = { [K in keyof LedgerServiceEvents]: Set<LedgerServiceEvents[K]> };

/** How long the MQTT drop lines are throttled: one line per reason a minute. */
const DROP_LINE_MS = 60000;

/** The lifecycle of one local ledger: lease, checkpoints, MQTT sync, mirrors, ordered close (see the module comment). */
export class LedgerService {
  /** The folder as configured. */
  readonly dir: string;
  /** Whether a broker is configured (false = standalone). */
  readonly synced: boolean;
  /** Whether the operator key is here (checkpoints are signed). */
  readonly canSign: boolean;
  readonly #opts: LedgerServiceOptions;
  readonly #error: BotError | undefined;
  #origin: string;
  readonly #rateLimiter: RateLimiter | undefined;
  readonly #listeners: Listeners = {
    open: new Set(),
    error: new Set(),
    log: new Set(),
    linkState: new Set(),
    linkDrop: new Set(),
    health: new Set(),
  };
  #lease: LedgerLease | undefined;
  #consensus: Promise<Consortium | undefined> | undefined;
  #consortium: Consortium | undefined;
  #link: MqttLink | undefined;
  #linkState: LinkState | undefined;
  #mirrors: { lease: LedgerLease; ledger: Ledger; mirror: Mirror }[] = [];
  #policy: Promise<QuorumPolicy> | undefined;
  #signing: Promise<StoredCheckpoint | undefined> | undefined;
  #tickError = '';
  #timer: NodeJS.Timeout | undefined;
  #offCommit: (() => void) | undefined;
  #offHealth: (() => void) | undefined;
  #stopping = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #owner: Promise<ConfidentialOwner | undefined> | undefined;
  #sealTail: Promise<void> = Promise.resolve();
  #noOwner = false;
  #signLease: SignPoolLease | undefined;

  /** A service for opts; with error, an unusable one (see unusable()). Nothing runs before start(). */
  constructor(opts: LedgerServiceOptions, error?: BotError) {
    this.#opts = opts;
    this.#error = error;
    this.dir = opts.dir;
    this.#origin = opts.origin ?? opts.defaultOrigin ?? '';
    this.synced = error === undefined && opts.link !== undefined;
    this.canSign = opts.identity !== undefined;
    this.#rateLimiter = error === undefined ? new RateLimiter(opts.rateLimits ?? DEFAULT_RATE_LIMITS) : undefined;
  }

  /**
   * A service for a configuration that is not usable: its lease (and so every request, the
   * policy and checkpointNow) rejects with error; nothing syncs, no timer runs.
   */
  static unusable(error: BotError, where: { dir: string; origin: string }): LedgerService {
    return new LedgerService({ dir: where.dir, origin: where.origin }, error);
  }

  /** The configured origin, and the ledger's own once open. */
  get origin(): string {
    return this.#origin;
  }

  /** The service's own hold on the ledger (start() takes it). */
  get lease(): LedgerLease {
    if (!this.#lease) throw new BotError('E_CLOSED', 'the ledger service is not started');
    return this.#lease;
  }

  /** Resolves with the started Consortium (undefined when standalone or closed); rejects when it could not start. */
  get consensus(): Promise<Consortium | undefined> {
    if (!this.#consensus) throw new BotError('E_CLOSED', 'the ledger service is not started');
    return this.#consensus;
  }

  /** The started Consortium when synced over MQTT, else undefined (also once close() began). */
  get consortium(): Consortium | undefined {
    return this.#consortium;
  }

  /** The store's health (lib/store/registry.ts); undefined before start(). */
  get health(): StoreHealth | undefined {
    return this.#lease?.health;
  }

  /** Listen to an event (see LedgerServiceEvents); returns the unsubscribe. */
  on<K extends keyof LedgerServiceEvents>(event: K, fn: LedgerServiceEvents[K]): () => void {
    const set = this.#listeners[event] as Set<LedgerServiceEvents[K]>;
    set.add(fn);
    if (event === 'linkState' && this.#linkState !== undefined) (fn as LedgerServiceEvents['linkState'])(this.#linkState);
    return () => {
      set.delete(fn);
    };
  }

  #emit<K extends keyof LedgerServiceEvents>(event: K, ...args: Parameters<LedgerServiceEvents[K]>): void {
    for (const fn of [...this.#listeners[event]]) {
      try {
        (fn as (...a: Parameters<LedgerServiceEvents[K]>) => void)(...args);
      } catch {
        /* listeners handle their own errors */
      }
    }
  }

  /** The registry options: the owner's, also given to the users' leases (acquire()). */
  #acquireOptions(): AcquireOptions {
    const o = this.#opts;
    return { dir: o.dir, origin: o.origin, defaultOrigin: o.defaultOrigin, identity: o.identity, maxEntryBytes: o.maxEntryBytes, owner: o.owner };
  }

  /** A new hold on the shared ledger for a user (an append or query node); release it when done. */
  acquire(): LedgerLease {
    return this.#error ? failedLease(this.#error, this.dir) : acquireLedger(this.#acquireOptions());
  }

  /** Take the lease, start the checkpoint timer and (with a broker) the sync. Idempotent; failures are 'error' events. */
  start(): void {
    if (this.#lease || this.#closed) return;
    const lease = this.acquire();
    this.#lease = lease;
    lease.ledger.then(
      (l) => {
        this.#origin = l.origin;
        if (!this.#closed) this.#offCommit = l.onCommit((c) => this.#committed(l, c));
        this.#emit('open', l);
      },
      (err: unknown) => this.#emit('error', err),
    );
    this.#offHealth = lease.onHealth((h) => this.#emit('health', h));
    this.#consensus = this.#startSync();
    this.#consensus.catch((err: unknown) => this.#emit('error', err));
    if (!this.#error && this.#opts.confidential?.scopes.length) this.confidential().catch((err: unknown) => this.#emit('error', err));
    const ms = this.#opts.checkpointMs ?? 0;
    if (!this.#error && ms > 0) this.#timer = setInterval(() => this.#tick(), ms);
  }

  // ------------------------------------------------------------------ checkpoints

  /** The every-N rule: a checkpoint once checkpointEntries were committed since the latest one. */
  #committed(l: Ledger, c: Commit): void {
    const n = this.#opts.checkpointEntries ?? 0;
    if (n <= 0 || !this.canSign) return;
    const at = l.latestCheckpoint()?.size ?? 0;
    if (c.size - at >= n) this.#tick();
  }

  /** Sign a checkpoint if the tree grew; one at a time; errors are the service's, not a request's. */
  #sign(): Promise<StoredCheckpoint | undefined> {
    const l = this.#lease?.current;
    if (!l || l.closed || this.#closed) return Promise.resolve(l?.latestCheckpoint());
    if (!this.canSign) return Promise.resolve(l.latestCheckpoint());
    const latest = l.latestCheckpoint();
    if (latest && latest.size >= l.size) return Promise.resolve(latest);
    if (!this.#signing) {
      this.#signing = l
        .checkpoint()
        .then((cp) => cp ?? l.latestCheckpoint())
        .finally(() => {
          this.#signing = undefined;
        });
    }
    return this.#signing;
  }

  /** A timed (or every-N) checkpoint; a failure is an 'error' once, not every tick, until one succeeds again. */
  #tick(): void {
    this.#sign().then(
      () => {
        this.#tickError = '';
      },
      (err: unknown) => {
        const m = (err as Error).message;
        if (m !== this.#tickError) this.#emit('error', err);
        this.#tickError = m;
      },
    );
  }

  /** Sign a checkpoint now if the tree grew and the operator key is here; the latest checkpoint. */
  async checkpointNow(): Promise<StoredCheckpoint | undefined> {
    const l = await this.lease.ledger;
    if (!this.canSign) return l.latestCheckpoint();
    // #sign() may hand back a checkpoint already in flight that predates the appends made
    // before this call: then sign once more, which covers them.
    const size = l.size;
    let cp = await this.#sign();
    if (!cp || cp.size < size) cp = await this.#sign();
    return cp;
  }

  // ------------------------------------------------------------------ witness set, quorum and partners

  /** Witness set and quorum as configured, once the ledger is open (also when standalone). */
  policy(): Promise<QuorumPolicy> {
    const { witnesses = [], quorum = 0 } = this.#opts;
    this.#policy ??= this.lease.ledger.then((l) =>
      QuorumPolicy.create({ origin: l.origin, operator: l.operator.did, witnesses: [...witnesses], quorum: quorum > 0 ? quorum : undefined }),
    );
    return this.#policy;
  }

  /** The checkpoint partners' answers are proven against: quorum-confirmed when the ledger has witnesses. */
  async answerCheckpoint(): Promise<StoredCheckpoint | undefined> {
    const cons = await this.consensus.catch(() => undefined);
    if (cons && cons.policy.witnesses.length > 0) {
      const info = await cons.info();
      return info.confirmedCheckpoint ? { size: info.confirmedSize, note: info.confirmedCheckpoint } : undefined;
    }
    return this.checkpointNow();
  }

  /** Answer a partner's signed request (lib/access/access.ts) under the rate limits; rejects with the typed refusal. */
  async answerRequest(input: unknown): Promise<RequestAnswer> {
    const l = await this.lease.ledger;
    if (l.closed) throw new BotError('E_CLOSED', 'the ledger is closed');
    // Receipts are proven against an operator checkpoint signed right after the append.
    return answerRequest(
      {
        ledger: l,
        checkpoint: () => this.answerCheckpoint(),
        receiptCheckpoint: this.canSign ? () => this.checkpointNow() : undefined,
        rateLimiter: this.#rateLimiter,
      },
      input,
    );
  }

  // ------------------------------------------------------------------ confidential scopes

  /**
   * The owner of the ledger's confidential scopes, once the configured ones are declared:
   * undefined when none is configured and the ledger declares none (nothing is sealed).
   * E_KEY when scopes exist but the operator identity or encryption key is missing.
   */
  confidential(): Promise<ConfidentialOwner | undefined> {
    this.#owner ??= this.#makeOwner().then((o) => {
      this.#noOwner = o === undefined;
      return o;
    });
    return this.#owner;
  }

  async #makeOwner(): Promise<ConfidentialOwner | undefined> {
    const l = await this.lease.ledger;
    const conf = this.#opts.confidential;
    const declared = (await keyEpochsOf(l)).view();
    if (!conf?.scopes.length && declared.length === 0) return undefined;
    const identity = this.#opts.identity;
    if (!identity || !conf) throw new BotError('E_KEY', 'confidential scopes need the operator identity and its encryption key');
    const owner = new ConfidentialOwner({ ledger: l, operator: identity, nextSeq: conf.nextSeq, encryptionKey: await conf.encryptionKey() });
    for (const s of conf.scopes) {
      const have = declared.find((d) => d.scope === s.scope);
      if (!have) await owner.declareScope(s.scope, s.topics);
      else if (JSON.stringify(have.topics) !== JSON.stringify(s.topics))
        this.#emit(
          'error',
          new BotError(
            'E_SCOPE',
            `confidential scope ${s.scope} is declared in the ledger with topics ${have.topics.join(' ')}: the ledger's topics stay in force`,
          ),
        );
    }
    return owner;
  }

  /**
   * What to append for an input (docs/design.md "Confidential entries"): the verified envelope,
   * sealed by the operator when its topic is in a confidential scope the ledger declares;
   * sealed and key entries as they are. Without confidential scopes, the input unchanged.
   */
  async sealForAppend(input: unknown): Promise<SignedEnvelope | unknown> {
    const owner = await this.confidential();
    if (!owner) return input;
    const l = owner.ledger;
    const env = input instanceof SignedEnvelope ? input : verifyEnvelope(input, { maxBytes: l.maxEntryBytes });
    if (isSealed(env) || KEY_ENTRY_KINDS.includes(env.envelope.kind)) return env;
    const conf = this.#opts.confidential as ConfidentialSettings;
    return (await owner.seal(env, this.#opts.identity as Identity, conf.nextSeq)) ?? env;
  }

  /**
   * Append an input as a bot-append node does: sealed first when its topic is confidential
   * (as sealForAppend). Sealings are started one after another (the sealer's seq grows in
   * ledger order); their signatures are made by the identity's shared SignPool (lib/format/sign-pool.ts sharedSignPool: on a worker
   * thread under load, results in call order), and each append starts once its signature is
   * there, without waiting for the previous one to be durable, so appends share group commits.
   */
  async append(input: unknown): Promise<Receipt> {
    const l = await this.lease.ledger;
    if (this.#noOwner) return l.append(input); // no confidential scope: as before, one await less
    const owner = await this.confidential();
    if (!owner) return l.append(input);
    let receipt: Promise<Receipt> | undefined;
    const turn = this.#sealTail.then(async () => {
      const env = input instanceof SignedEnvelope ? input : verifyEnvelope(input, { maxBytes: l.maxEntryBytes });
      if (isSealed(env) || KEY_ENTRY_KINDS.includes(env.envelope.kind)) {
        receipt = l.append(env);
        return;
      }
      const identity = this.#opts.identity as Identity;
      // The identity's one pool (shared with its bot-sign nodes, which take seqs from the same
      // counter): results in call order, so appends follow seq order.
      const pool = (this.#signLease ??= sharedSignPool(identity)).pool;
      const s = await owner.sealWith(env, identity.did, (this.#opts.confidential as ConfidentialSettings).nextSeq, (i, lim) => pool.sign(i, lim));
      receipt = s ? s.signed.then((sealed) => l.append(sealed)) : l.append(env);
    });
    this.#sealTail = turn.catch(() => undefined);
    await turn;
    return receipt as Promise<Receipt>;
  }

  /** The state of each mirrored ledger (empty when not synced, or before the mirrors opened). */
  mirrors(): MirrorInfo[] {
    const mirrored = this.#opts.mirrored ?? [];
    return this.#mirrors.map((m, i) => ({ origin: mirrored[i].origin, did: mirrored[i].did, ...m.mirror.state() }));
  }

  // ------------------------------------------------------------------ sync

  async #startSync(): Promise<Consortium | undefined> {
    const conf = this.#opts.link;
    if (!this.synced || !conf) return undefined;
    const identity = this.#opts.identity;
    if (!identity) throw new BotError('E_KEY', 'syncing over MQTT needs the operator identity');
    // A ledger that fails to open is reported by the lease (and to its users), not twice here.
    const l = await this.lease.ledger.catch(() => undefined);
    if (!l || this.#stopping) return undefined;
    const policy = await this.policy();
    if (this.#stopping) return undefined;
    const link = new MqttLink({ url: conf.url, clientId: conf.clientId, username: conf.username, password: conf.password, tls: readTlsFiles(conf.tls) });
    this.#link = link;
    // Log lines show the URL without its password, and a peer's text only escaped (lib/format/topic.ts).
    const shown = redactUrl(conf.url);
    const say = (text: string): void => this.#emit('log', `MQTT ${shown}: ${escapeUnprintable(text).slice(0, 500)}`);
    let lastError = '';
    link.on('state', (st: LinkState, err?: Error) => {
      say(`${st}${err ? ` (${err.message})` : ''}`);
      this.#linkState = st;
      this.#emit('linkState', st);
      if (st === 'connected') lastError = '';
    });
    link.on('error', (err: Error) => {
      const m = err?.message ?? String(err);
      if (m !== lastError) say(m);
      lastError = m;
    });
    // What the link drops or refuses, at most one line per reason a minute (a peer may send many).
    const drops = new LineThrottle(DROP_LINE_MS);
    link.on('drop', (d: LinkDrop) => {
      this.#emit('linkDrop', d);
      const line = drops.line(d.reason, d.message);
      if (line !== undefined) say(line);
    });
    const cons = new Consortium({
      ledger: l,
      identity,
      link,
      policy,
      witnessed: this.#opts.witnessed ?? [],
      requests: (p) => this.answerRequest(p),
      shareEntries: this.#opts.shareEntries !== false,
    });
    await cons.start();
    if (this.#stopping) {
      await cons.stop();
      return undefined;
    }
    this.#consortium = cons;
    // Read-only copies of partners' ledgers, beside this one, checked against their checkpoints.
    for (const m of this.#opts.mirrored ?? []) {
      // Through the registry, so that a mirror whose store failed is reopened like the ledger.
      const lease = acquireLedger({
        dir: `${this.dir}-mirrors/${ledgerId(m.origin, m.did)}`,
        origin: m.origin,
        operator: m.did,
        maxEntryBytes: l.maxEntryBytes,
      });
      const ml = await lease.ledger.catch(async (err: unknown) => {
        await lease.release();
        throw err;
      });
      // With a mirror name, partners read (and fetch keys) from this copy while the owner is offline.
      const mirror = new Mirror({ ledger: ml, link, origin: m.origin, did: m.did, serveAs: this.#opts.mirrorName, rateLimiter: this.#rateLimiter });
      this.#mirrors.push({ lease, ledger: ml, mirror });
      if (this.#stopping) break;
      mirror.start();
    }
    return cons;
  }

  /**
   * Stop the consortium and the mirrors and close the link (before the lease is released),
   * within a bounded time whatever the broker and the partners do: they stop taking work
   * first (their stop() does that before its first await), then the link closes (bounded by
   * MqttLink.close), which fails their requests in flight at once (E_CLOSED) instead of
   * leaving them to run to their timeouts (5 s witness, 10 s mirror); then they finish.
   * A consortium that started is stopped even when a mirror then failed to open.
   */
  async #stopSync(): Promise<void> {
    this.#stopping = true;
    await this.#consensus?.catch(() => undefined);
    const cons = this.#consortium;
    this.#consortium = undefined;
    const stops = [...this.#mirrors.map((m) => m.mirror.stop()), ...(cons ? [cons.stop()] : [])];
    if (this.#link) await this.#link.close();
    await Promise.allSettled(stops);
    for (const m of this.#mirrors.splice(0)) await m.lease.release();
  }

  // ------------------------------------------------------------------ close

  /**
   * Close in order: stop the timer; with a checkpoint policy, seal what was appended since the
   * last checkpoint; stop the sync; release the lease. Each failure is an 'error' event and
   * does not stop the next step. Idempotent; resolves when done.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    const { checkpointMs = 0, checkpointEntries = 0 } = this.#opts;
    const last = !this.#error && (checkpointMs > 0 || checkpointEntries > 0) ? this.#sign() : (this.#signing ?? Promise.resolve(undefined));
    this.#closed = true;
    this.#offCommit?.();
    this.#offCommit = undefined;
    const report = (err: unknown): void => this.#emit('error', err);
    await last.catch(report);
    if (!this.#lease) return;
    await this.#stopSync().catch(report);
    await this.#sealTail;
    await this.#signLease?.release().catch(report);
    this.#offHealth?.();
    await this.#lease.release().catch(report);
  }
}
