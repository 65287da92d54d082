/**
 * The partner side of partner access (docs/design.md "Partner access"): sign a request with the
 * partner's own key, send it to the owner over a transport (the owner's MQTT rpc topic, or an
 * HTTP endpoint wired to the owner's bot-query), and verify the answer before anything of it
 * is used. Only the owner's operator key (and its witnesses' keys, when a quorum is required)
 * is trusted; the transport is not: over MQTT anyone who can publish on the partner's reply
 * topic can answer, so an answer that does not verify is ignored and the real one awaited
 * (MqttLink.request's accept); only when none verifies in time is the request E_TIMEOUT.
 * Refusals are not signed and are taken as they come (a forged one denies service; it cannot
 * make the partner believe anything was stored).
 */
import { type Envelope, SignedEnvelope, verifyEnvelope } from '../format/envelope';
import { BotError, FormatError, isBotError, LedgerError } from '../errors';
import { type Identity } from '../format/identity';
import type { JsonValue } from '../format/jcs';
import type { Query } from '../store/ledger';
import {
  makeRequest,
  type OwnerRef,
  peerWords,
  type RequestPayload,
  verifyAppendAnswer,
  type VerifiedEntry,
  type VerifiedRead,
  type VerifiedReceipt,
  verifyReadAnswer,
} from './access';
import { queryFrom } from './answer';
import type { MqttLink } from '../consortium/mqtt-link';
import { openNote, parseCheckpoint } from '../format/note';
import { ledgerId, logVerifier } from '../consortium/quorum';
import { ledgerTopics } from '../consortium/publisher';
import { mirrorRpcTopic } from '../consortium/mirror';
import type { EncryptionKey } from '../confidential/hpke';
import { EPOCH_KIND, KeyEpochs, Keyring, KEYWRAP_KIND } from '../confidential/keys';
import { openWith } from '../confidential/owner';
import { SEALED_KIND, sealedScope } from '../confidential/seal';

/**
 * Sends one signed request envelope and resolves with the owner's answer body. A transport
 * on which several answers may arrive (MQTT) passes each result to `accept` and takes the
 * first it returns true for (refusals are taken as they come); one answer per request (HTTP)
 * may ignore it.
 */
export type PartnerTransport = (request: Envelope, accept?: (answer: unknown) => boolean) => Promise<unknown>;

/** What the owner check says while nothing has been found yet: the words statuses show. */
export const NO_OWNER_LEDGER = 'no ledger with this origin and key on the broker';

/** Default bound of the owner check: how long a retained checkpoint (or a checkpoint RPC answer) is awaited. */
export const OWNER_CHECK_MS = 2000;

/**
 * Whether the owner's ledger is on the partner's broker, checked before a request is sent: a
 * wrong operator did:key or origin gives another ledger id (lib/consortium/quorum.ts ledgerId), whose
 * topics nobody serves, so a request would only time out. Evidence that the ledger is there:
 *
 * - a checkpoint on `<prefix>/<ledgerId>/checkpoint` (retained by the owner, lib/consortium/publisher.ts) that
 *   verifies under the configured operator key with the origin as key name (tlog-checkpoint
 *   "Signatures") and names that origin; or
 * - an answer to the ledger's `checkpoint` RPC (an owner that has not signed a checkpoint yet
 *   has nothing retained): its note, when it has one, must verify the same way.
 *
 * It subscribes with the filter `<topic>/#`, which matches the topic itself (MQTT 3.1.1
 * §4.7.1.2), so that the broker sends the retained message even when this link already holds
 * a subscription to the exact topic (a witness or mirror of the same ledger): a new filter
 * is a new subscription (§3.8.4). While nothing is found the subscription stays, so a
 * checkpoint the owner publishes later (first start, reconnect) finds it; once found, it ends.
 * Not found within `waitMs` after the link is connected: E_NOT_FOUND ("no ledger with this
 * origin and key on the broker"). Only what verifies counts, so a junk retained message
 * cannot make a ledger appear, and the bound holds whatever the broker does.
 */
export class OwnerCheck {
  readonly topic: string;
  readonly rpc: string;
  #link: MqttLink;
  #owner: Pick<OwnerRef, 'origin' | 'operator'>;
  #waitMs: number;
  #found = false;
  #unsubscribe: (() => void) | undefined;
  #offConnect: (() => void) | undefined;
  #listeningSince = 0;
  #waiters = new Set<() => void>();
  #listeners = new Set<(found: boolean) => void>();
  /** Why the last message on the topic did not count (for the error text). */
  #lastRefusal = '';
  #pending: Promise<void> | undefined;

  constructor(link: MqttLink, owner: Pick<OwnerRef, 'origin' | 'operator'>, waitMs = OWNER_CHECK_MS) {
    const topics = ledgerTopics(ledgerId(owner.origin, owner.operator), link.prefix);
    this.topic = topics.checkpoint;
    this.rpc = topics.rpc;
    this.#link = link;
    this.#owner = owner;
    this.#waitMs = waitMs;
  }

  /** Whether the owner's ledger has been seen on the broker. */
  get found(): boolean {
    return this.#found;
  }

  /** Call fn(found) whenever the check settles a verdict (found, or not found after the wait); returns an unsubscribe. */
  onVerdict(fn: (found: boolean) => void): () => void {
    this.#listeners.add(fn);
    return () => {
      this.#listeners.delete(fn);
    };
  }

  /** Throws unless the note is a checkpoint of the owner's origin signed by its operator key. */
  #verify(note: string | Uint8Array): void {
    const opened = openNote(note, [logVerifier(this.#owner.origin, this.#owner.operator)]);
    const cp = parseCheckpoint(opened.text);
    if (cp.origin !== this.#owner.origin) throw new FormatError('E_NOTE', 'the checkpoint names another origin');
  }

  #setFound(): void {
    if (this.#found) return;
    this.#found = true;
    this.#stopListening();
    for (const w of [...this.#waiters]) w();
    for (const fn of [...this.#listeners]) fn(true);
  }

  #listen(): void {
    if (this.#found || this.#unsubscribe) return;
    this.#unsubscribe = this.#link.subscribe(`${this.topic}/#`, (topic, payload) => {
      if (topic !== this.topic) return;
      try {
        this.#verify(payload);
        this.#setFound();
      } catch (err) {
        this.#lastRefusal = err instanceof BotError ? err.code : 'unreadable';
      }
    });
    // Retained messages come after each (re)subscription: the wait starts again on each connect.
    this.#offConnect = this.#link.onConnect(() => {
      this.#listeningSince = Date.now();
    });
  }

  #stopListening(): void {
    this.#unsubscribe?.();
    this.#offConnect?.();
    this.#unsubscribe = undefined;
    this.#offConnect = undefined;
  }

  /** Ask the ledger's `checkpoint` RPC (bounded by ms): true when an answer shows the ledger is there. */
  async #askOwner(ms: number): Promise<boolean> {
    try {
      await this.#link.request(this.rpc, 'checkpoint', {}, ms, (res) => {
        if (res.error !== undefined) return false;
        const note = (res.result as { note?: unknown } | null)?.note;
        if (note === null) return true; // the ledger answers; it has signed no checkpoint yet
        if (typeof note !== 'string') return false;
        try {
          this.#verify(note);
          return true;
        } catch {
          return false;
        }
      });
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Resolves once the owner's ledger is known to be on the broker; rejects with E_NOT_FOUND
   * when nothing verifiable came within the wait after the link was connected (E_CLOSED when the
   * link closes meanwhile). The caller waits for the link to be connected first.
   */
  check(): Promise<void> {
    if (this.#found) return Promise.resolve();
    // Concurrent callers (every node using this partner) share one check.
    this.#pending ??= this.#check().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  async #check(): Promise<void> {
    if (this.#link.state === 'closed') throw new LedgerError('E_CLOSED', 'the MQTT link was closed');
    if (!this.#unsubscribe) {
      this.#listen();
      this.#listeningSince = Date.now();
    }
    // The retained checkpoint comes within the window after the subscription; a later call
    // (the window passed, nothing retained) still asks the ledger's rpc topic for waitMs.
    const left = this.#listeningSince + this.#waitMs - Date.now();
    const windowMs = left > 0 ? left : this.#waitMs;
    const outcome = await new Promise<'found' | 'timeout' | 'closed'>((resolve) => {
      const finish = (r: 'found' | 'timeout' | 'closed'): void => {
        clearTimeout(timer);
        this.#waiters.delete(onFound);
        this.#link.off('state', onState);
        resolve(r);
      };
      const onFound = (): void => finish(this.#found ? 'found' : 'closed');
      const onState = (st: string): void => {
        if (st === 'closed') finish('closed');
      };
      const timer = setTimeout(() => finish('timeout'), windowMs);
      this.#waiters.add(onFound);
      this.#link.on('state', onState);
      void this.#askOwner(windowMs).then((ok) => {
        if (ok) this.#setFound();
      });
    });
    if (outcome === 'found') return;
    if (outcome === 'closed') throw new LedgerError('E_CLOSED', 'the MQTT link was closed');
    for (const fn of [...this.#listeners]) fn(false);
    const why = this.#lastRefusal ? `; a checkpoint there did not verify under that key (${this.#lastRefusal})` : '';
    throw new LedgerError(
      'E_NOT_FOUND',
      `${NO_OWNER_LEDGER}: no checkpoint of ${this.#owner.origin} signed by ${this.#owner.operator} ` +
        `on ${this.topic}, and no answer on its rpc topic, within ${this.#waitMs} ms${why}. Check the owner's did:key and origin, and that the owner is connected to this broker`,
    );
  }

  /** Stop listening (the link stays the caller's). */
  stop(): void {
    this.#stopListening();
    for (const w of [...this.#waiters]) w();
  }
}

/**
 * A transport over the owner's MQTT rpc topic (bot/v1/<ledgerId>/rpc, method "request").
 * Before the first request (and until it succeeds) the owner check runs (OwnerCheck): a wrong
 * did:key or origin is E_NOT_FOUND within its bound instead of E_TIMEOUT after timeoutMs.
 */
export function mqttTransport(
  link: MqttLink,
  owner: Pick<OwnerRef, 'origin' | 'operator'>,
  timeoutMs = 10000,
  check: OwnerCheck = new OwnerCheck(link, owner),
): PartnerTransport {
  const topic = ledgerTopics(ledgerId(owner.origin, owner.operator), link.prefix).rpc;
  // A refusal comes back as an RPC error: turn it into the same {error} body HTTP carries.
  // A partner flow may fire before its broker connection is up: wait for it within the timeout.
  return async (request, accept) => {
    await link.connected(timeoutMs);
    await check.check();
    try {
      return await link.request(topic, 'request', request, timeoutMs, accept ? (res) => res.error !== undefined || accept(res.result) : undefined);
    } catch (err) {
      if (err instanceof BotError && err.code !== 'E_TIMEOUT' && err.code !== 'E_CLOSED') return { error: { code: err.code, message: err.message } };
      throw err;
    }
  };
}

/**
 * A transport to a mirror of the owner's ledger (lib/consortium/mirror.ts serveAs): requests go
 * to the mirror's rpc topic `<prefix>/<ledgerId>/mirror/<name>/rpc`. Nothing of the mirror is
 * trusted: its answers are proven against the owner's checkpoint and verified with the owner's
 * key like the owner's own (reads and keys; a mirror refuses supply requests).
 */
export function mirrorTransport(link: MqttLink, owner: Pick<OwnerRef, 'origin' | 'operator'>, name: string, timeoutMs = 10000): PartnerTransport {
  const topic = mirrorRpcTopic(ledgerId(owner.origin, owner.operator), name, link.prefix);
  return async (request, accept) => {
    await link.connected(timeoutMs);
    try {
      return await link.request(topic, 'request', request, timeoutMs, accept ? (res) => res.error !== undefined || accept(res.result) : undefined);
    } catch (err) {
      if (err instanceof BotError && err.code !== 'E_TIMEOUT' && err.code !== 'E_CLOSED') return { error: { code: err.code, message: err.message } };
      throw err;
    }
  };
}

/** Codes after which the next place to read from is tried: nobody answered there. */
const UNREACHABLE: readonly string[] = ['E_TIMEOUT', 'E_CLOSED', 'E_NOT_FOUND'];

/**
 * Where to read, in order (e.g. the owner, then its mirrors): each request goes to the first
 * place that answers; when one does not (E_TIMEOUT, E_CLOSED, E_NOT_FOUND), the next is tried
 * with the same signed request. A refusal or a verified answer ends the round. Each place's
 * answers are verified as the owner's (they carry the owner's checkpoint).
 */
export function fallbackTransport(places: readonly PartnerTransport[]): PartnerTransport {
  if (places.length === 0) throw new FormatError('E_QUERY', 'no place to read from');
  return async (request, accept) => {
    let last: unknown;
    for (const t of places) {
      try {
        return await t(request, accept);
      } catch (err) {
        if (!(err instanceof BotError) || !UNREACHABLE.includes(err.code)) throw err;
        last = err;
      }
    }
    throw last;
  };
}

/** A transport that POSTs the request envelope as JSON to an owner's URL; `signal` aborts requests in flight (E_CLOSED), e.g. when the node closes. */
export function httpTransport(url: string, timeoutMs = 10000, headers: Record<string, string> = {}, signal?: AbortSignal): PartnerTransport {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new FormatError('E_QUERY', `not a URL: ${url.slice(0, 100)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new FormatError('E_QUERY', 'the owner URL must be http:// or https://');
  return async (request) => {
    let res: Response;
    try {
      res = await fetch(u, {
        method: 'POST',
        body: JSON.stringify(request),
        headers: { 'content-type': 'application/json', ...headers },
        signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      if (signal?.aborted) throw new BotError('E_CLOSED', `the request to ${u.origin} was cancelled: the partner access was closed`);
      const timeout = (err as Error).name === 'TimeoutError';
      throw new BotError(
        timeout ? 'E_TIMEOUT' : 'E_CLOSED',
        timeout ? `no answer from ${u.origin} within ${timeoutMs} ms` : `cannot reach ${u.origin}: ${(err as Error).message}`,
      );
    }
    const text = await res.text();
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new FormatError('E_QUERY', `the owner answered HTTP ${res.status} with a body that is not JSON`);
    }
  };
}

/** What a partner needs to talk to one owner's ledger. */
export interface PartnerClientOptions {
  owner: OwnerRef;
  /** The grant id the owner issued to this partner. */
  grant: string;
  /** The partner's own key (the grant's subject). */
  identity: Identity;
  /** The partner's persistent seq counter for its identity (lib/store/sequence.ts). */
  nextSeq: () => number;
  transport: PartnerTransport;
  /** The partner's own X25519 key (lib/confidential/hpke.ts), to open sealed entries of confidential scopes. */
  encryptionKey?: EncryptionKey;
}

/** A verified entry after an attempt to open it: a sealed one carries its scope and epoch, and the device's envelope when opened. */
export interface OpenedEntry extends VerifiedEntry {
  sealed?: { scope: string; epoch: number };
  /** The inner envelope, its signature verified (the sealer's was verified with the leaf). */
  opened?: Envelope;
  /** Why a sealed entry stays closed: E_NO_KEY (not granted, or sealed after a revocation), E_DECRYPT, E_SIGNATURE. */
  error?: { code: string; message: string };
}

/** A read whose sealed entries were opened where this partner holds the key. */
export interface OpenedRead extends Omit<VerifiedRead, 'entries'> {
  entries: OpenedEntry[];
}

/** Reads from and supplies entries to an owner's ledger under a grant, verifying every answer. */
export class PartnerClient {
  readonly owner: OwnerRef;
  #opts: PartnerClientOptions;
  #ring: Keyring | undefined;
  /** Every key entry (the operator's epochs and keywraps) taken from a verified keys answer, by ledger index (#rescanKeys replays them). */
  #keyEntries = new Map<number, SignedEnvelope>();

  constructor(opts: PartnerClientOptions) {
    this.owner = opts.owner;
    this.#opts = opts;
  }

  /**
   * Sign and send a request; resolve with the first answer `verify` accepts (a refusal is
   * thrown as its typed error). Answers that fail `verify` are ignored where the transport
   * may carry several (MQTT); if none verifies in time, E_TIMEOUT names the last failure.
   */
  async #request<T>(payload: RequestPayload, verify: (answer: unknown) => T): Promise<T> {
    const env = makeRequest(this.#opts.identity, this.#opts.nextSeq(), payload);
    let verified: { answer: unknown; value: T } | undefined;
    let ignored = 0;
    let lastFailure: unknown;
    const accept = (answer: unknown): boolean => {
      try {
        verified = { answer, value: verify(answer) };
        return true;
      } catch (err) {
        ignored++;
        lastFailure = err;
        return false;
      }
    };
    let answer: unknown;
    try {
      answer = await this.#opts.transport(env.toJSON(), accept);
    } catch (err) {
      if (ignored > 0 && isBotError(err, 'E_TIMEOUT')) {
        const why = lastFailure instanceof BotError ? `${lastFailure.code}: ${lastFailure.message}` : String(lastFailure);
        throw new BotError('E_TIMEOUT', `${err.message}; ${ignored} answer(s) that did not verify were ignored (the last: ${peerWords(why)})`);
      }
      throw err;
    }
    // Verified once already when the transport took it through accept (the same object).
    if (verified && verified.answer === answer) return verified.value;
    return verify(answer);
  }

  /** Read entries (filter as bot-query's) and return them only once every proof and signature verified. */
  async read(filter: Query = {}): Promise<VerifiedRead> {
    const q = queryFrom({}, filter);
    return this.#request({ op: 'read', grant: this.#opts.grant, filter: q as Record<keyof Query, string | number> }, (a) => verifyReadAnswer(a, this.owner, q));
  }

  /**
   * Fetch the key entries of confidential scopes this partner needs (op "keys": epoch entries
   * and the keywraps to it, each proven against the owner's checkpoint), from where the last
   * call ended; returns the keyring they build (lib/confidential/keys.ts). E_KEY without an
   * encryption key.
   */
  async keys(): Promise<Keyring> {
    const ring = this.#keyring();
    await this.#fetchKeys(ring.epochs.lastIndex + 1, (env, index) => ring.epochs.apply(env, index));
    return ring;
  }

  #keyring(): Keyring {
    const ek = this.#opts.encryptionKey;
    if (!ek) throw new FormatError('E_KEY', 'this partner has no encryption key to open confidential entries with');
    this.#ring ??= new Keyring(new KeyEpochs(this.owner.origin, this.owner.operator), this.#opts.identity.did, ek);
    return this.#ring;
  }

  /** Ask for the key entries from index `from` on, every page; each verified entry is kept in #keyEntries and passed to `each` as it comes. */
  async #fetchKeys(from: number, each?: (env: SignedEnvelope, index: number) => void): Promise<void> {
    const operator = this.#keyring().epochs.operator;
    for (let page = 0; page < 1000; page++) {
      const q: Query = { from };
      const got = await this.#request({ op: 'keys', grant: this.#opts.grant, from }, (a) => verifyReadAnswer(a, this.owner, q));
      for (const e of got.entries) {
        const env = verifyEnvelope(e.leaf);
        each?.(env, e.index);
        // Proven at its index against an operator-signed checkpoint: the first seen is kept. Only
        // what KeyEpochs.apply takes (the operator's epochs and keywraps): an answer padded with
        // other proven entries (a hostile mirror holds the whole ledger) is not kept.
        const { kind, signer } = env.envelope;
        if (signer !== operator || (kind !== EPOCH_KIND && kind !== KEYWRAP_KIND) || this.#keyEntries.has(e.index)) continue;
        this.#keyEntries.set(e.index, env);
      }
      if (got.next === undefined || got.next <= from) break;
      from = got.next;
    }
  }

  /**
   * Ask for the key entries again from index 0 and, when that brings an entry not seen before,
   * rebuild the keyring from every key entry proven so far, replayed in index order.
   *
   * keys() continues after the last index applied, so an entry below it that an answer left
   * out (a stale or hostile mirror, an owner answering before it was committed) would never
   * be asked for again. KeyEpochs.apply ignores any index at or below the last one applied
   * (it returns false: no effect, nothing counted twice), so a rescan cannot be fed to the same
   * KeyEpochs: its rules depend on ledger order (an epoch counts only without a gap, a keywrap
   * only after its epoch, the first of a conflicting pair wins), hence a fresh KeyEpochs fed
   * each proven entry once, in index order — the state a complete answer would have built.
   * Scope keys already unwrapped are unwrapped again on demand.
   */
  async #rescanKeys(): Promise<Keyring> {
    const ring = this.#keyring();
    const before = this.#keyEntries.size;
    await this.#fetchKeys(0);
    if (this.#keyEntries.size === before) return ring;
    const epochs = new KeyEpochs(this.owner.origin, this.owner.operator);
    for (const [index, env] of [...this.#keyEntries].sort((a, b) => a[0] - b[0])) epochs.apply(env, index);
    this.#ring = new Keyring(epochs, ring.reader, ring.key);
    return this.#ring;
  }

  /**
   * Read (as read()) and open the sealed entries this partner holds keys for: each opened
   * entry's inner envelope is verified too (both signatures, end to end from the device). An
   * epoch not seen yet fetches the keys once; one still not held then rescans the key entries
   * from index 0 once (#rescanKeys: an answer may have left one out). Entries it cannot open
   * stay verified but sealed.
   */
  async readOpen(filter: Query = {}): Promise<OpenedRead> {
    const read = await this.read(filter);
    const out: OpenedEntry[] = [];
    let refreshed = false;
    let rescanned = false;
    for (const e of read.entries) {
      if (e.leaf.kind !== SEALED_KIND) {
        out.push(e);
        continue;
      }
      const outer = verifyEnvelope(e.leaf);
      const o: OpenedEntry = { ...e };
      try {
        o.sealed = sealedScope(outer);
        let ring = this.#ring ?? (await this.keys());
        if (!ring.holds(o.sealed.scope, o.sealed.epoch) && !refreshed) {
          refreshed = true;
          ring = await this.keys();
        }
        if (!ring.holds(o.sealed.scope, o.sealed.epoch) && !rescanned) {
          rescanned = true;
          ring = await this.#rescanKeys();
        }
        o.opened = (await openWith(ring, outer)).envelope as Envelope;
      } catch (err) {
        if (!(err instanceof BotError)) throw err;
        o.error = { code: err.code, message: err.message };
      }
      out.push(o);
    }
    return { ...read, entries: out };
  }

  /**
   * Supply signed envelopes to the owner's ledger, in one request (all are appended, or none);
   * resolves with their receipts once each is proven against a checkpoint signed by the
   * owner's operator (verifyAppendAnswer): evidence the owner stored them.
   */
  async append(entries: readonly (SignedEnvelope | unknown)[]): Promise<VerifiedReceipt[]> {
    const envs = entries.map((e) => (e instanceof SignedEnvelope ? e : verifyEnvelope(e)));
    return this.#request({ op: 'append', grant: this.#opts.grant, entries: envs.map((e) => e.toJSON() as unknown as JsonValue) }, (a) =>
      verifyAppendAnswer(a, this.owner, envs),
    );
  }
}
