/**
 * The owner's side of confidential scopes (docs/design.md "Confidential entries"): declare a
 * scope (epoch 0), wrap its keys to readers, rotate on revocation, seal entries of its topics
 * and open them again. Every key decision is a signed entry of the owner's own ledger
 * (lib/confidential/keys.ts); the owner wraps every epoch to its own X25519 key as well, so its
 * ledger and that one secret restore every scope key after a restart.
 */
import { AccessError, GrantIndex, type GrantTerms, revokeGrant, type Issued } from '../access/grants';
import { type Envelope, type EnvelopeInput, type EnvelopeLimits, fromTrustedLeaf, type SignedEnvelope, signEnvelope, verifyEnvelope } from '../format/envelope';
import type { DidKey, Identity } from '../format/identity';
import { type Ledger } from '../store/ledger';
import { serialized } from '../store/mutex';
import { type EncryptionKey } from './hpke';
import {
  ENCKEY_KIND,
  encryptionKeyInput,
  EPOCH_KIND,
  epochInput,
  KEYWRAP_KIND,
  KeyEpochs,
  Keyring,
  keywrapInput,
  newScopeKey,
  type ReaderKey,
  readerKey,
  scopeKeyId,
} from './keys';
import { isScopeId, openSealed, SEALED_KIND, sealedInput, sealedScope, sealEnvelope } from './seal';
import { checkTopicFilter } from '../format/topic';
import { BotError, FormatError, isBotError } from '../errors';

const SCAN_PAGE = 10000;
/** Per open Ledger: its key epochs, the size applied so far, and whether a scan is running (in memory: one scan of the operator's entries after a restart). */
interface LedgerKeys {
  epochs: KeyEpochs;
  scanned: number;
  scanning: boolean;
}
const indexes = new WeakMap<Ledger, LedgerKeys>();
const KEY_KINDS = [EPOCH_KIND, KEYWRAP_KIND].map((k) => Buffer.from(`"kind":"${k}"`));

/**
 * The key epochs of a ledger (the owner's or a mirror's copy), caught up with its entries:
 * once scanned (the operator's entries, in order), it follows the ledger's commits (each
 * committed leaf that may be a key entry is applied), so sealing needs no store read; a gap
 * (commits while a scan ran) is closed by the next call's scan.
 */
export async function keyEpochsOf(ledger: Ledger): Promise<KeyEpochs> {
  let k = indexes.get(ledger);
  if (!k) {
    const idx: LedgerKeys = { epochs: new KeyEpochs(ledger.origin, ledger.operator.did), scanned: 0, scanning: false };
    ledger.onCommit((c) => {
      if (idx.scanning || c.from !== idx.scanned) return;
      for (const [i, leaf] of c.leaves.entries()) if (KEY_KINDS.some((kk) => leaf.includes(kk))) idx.epochs.apply(fromTrustedLeaf(leaf), c.from + i);
      idx.scanned = c.size;
    });
    indexes.set(ledger, idx);
    k = idx;
  }
  const idx = k;
  const epochs = idx.epochs;
  if (idx.scanned >= ledger.size) return epochs;
  return serialized(epochs, 'sync', async () => {
    idx.scanning = true;
    try {
      const size = ledger.size;
      let from = idx.scanned;
      while (from < size) {
        const rows = await ledger.query({ signer: ledger.operator.did, from, to: size, limit: SCAN_PAGE });
        for (const r of rows) {
          const kind = r.envelope.envelope.kind;
          if (kind === EPOCH_KIND || kind === KEYWRAP_KIND) epochs.apply(r.envelope, r.index);
        }
        if (rows.length < SCAN_PAGE) break;
        from = rows[rows.length - 1].index + 1;
      }
      idx.scanned = Math.max(idx.scanned, size);
    } finally {
      idx.scanning = false;
    }
    return epochs;
  });
}

/** One epoch of a scope as shown to people (bot-grant's `scopes` op, the Ledger sidebar). */
export interface EpochSummary {
  epoch: number;
  ts: number;
  index: number;
  kid: string;
  holders: DidKey[];
  revoked: DidKey[];
}

/** The confidential scopes of a ledger, each with its topics and epochs (who holds each, who was revoked): what the editor shows. */
export async function scopeSummaries(ledger: Ledger): Promise<{ scope: string; topics: string[]; epochs: EpochSummary[] }[]> {
  return (await keyEpochsOf(ledger)).view().map((v) => ({
    scope: v.scope,
    topics: v.topics,
    epochs: v.epochs.map((e) => ({ epoch: e.epoch, ts: e.ts, index: e.index, kid: e.kid, holders: e.holders, revoked: e.revoked })),
  }));
}

/**
 * After a grant is issued or an access request approved: wrap the confidential scopes' keys the
 * grant covers to the partner's encryption key, when the grant reads and a key was given
 * (docs/design.md "Confidential entries"). `owner` is asked only then (it may load a key).
 * Returns how many keys were wrapped, or undefined when there was nothing to wrap with.
 */
export async function wrapKeysForGrant(owner: () => Promise<ConfidentialOwner | undefined>, terms: GrantTerms, enckey: unknown): Promise<number | undefined> {
  if (enckey === undefined || enckey === null || !terms.actions.includes('read')) return undefined;
  const o = await owner();
  return o ? o.addReader(terms, enckey) : undefined;
}

/** An entry of a query answer as the owner opens it (openSealedEntries). */
export interface OwnerOpenedEntry {
  leaf: unknown;
  /** A sealed entry's scope and epoch. */
  sealed?: { scope: string; epoch: number };
  /** The inner envelope. */
  opened?: Envelope;
  /** Why a sealed entry stays closed (E_NO_KEY, E_DECRYPT, E_SIGNATURE, ...). */
  error?: { code: string; message: string };
}

/**
 * The owner opens the sealed entries of a query answer in place (each keeps its leaf and proof):
 * `opened` (the inner envelope), or `error` {code, message} saying why it stays sealed; `sealed`
 * is its scope and epoch. The owner is fetched only when an entry is sealed.
 */
export async function openSealedEntries(owner: () => Promise<ConfidentialOwner | undefined>, entries: OwnerOpenedEntry[]): Promise<void> {
  const isSealed = (e: { leaf: unknown }): boolean => (e.leaf as { kind?: unknown } | null)?.kind === SEALED_KIND;
  if (!entries.some(isSealed)) return;
  const o = await owner();
  for (const e of entries) {
    if (!isSealed(e)) continue;
    try {
      const outer = verifyEnvelope(e.leaf);
      e.sealed = sealedScope(outer);
      if (!o) throw new BotError('E_NO_KEY', 'this ledger has no encryption key to open sealed entries with');
      e.opened = (await o.open(outer)).envelope;
    } catch (err) {
      if (!isBotError(err)) throw err;
      e.error = { code: err.code, message: err.message };
    }
  }
}

/** Whether two MQTT topic filters (MQTT 3.1.1 §4.7) match at least one topic name in common. */
export function filtersOverlap(a: string, b: string): boolean {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; ; i++) {
    if (x[i] === '#' || y[i] === '#') return true; // '#' also matches the parent level (§4.7.1.2)
    if (i >= x.length || i >= y.length) return x.length === y.length;
    if (x[i] !== '+' && y[i] !== '+' && x[i] !== y[i]) return false;
  }
}

/** What an owner needs for its confidential scopes. */
export interface ConfidentialOwnerOptions {
  ledger: Ledger;
  /** The operator's identity (signs epoch and keywrap entries). */
  operator: Identity;
  /** The operator's persistent seq counter (lib/store/sequence.ts). */
  nextSeq: () => number;
  /** The operator's own X25519 key: every epoch is wrapped to it too. */
  encryptionKey: EncryptionKey;
  /** The clock (tests). */
  now?: () => number;
}

/** Declares, grants, rotates, seals and opens the confidential scopes of the owner's ledger. */
export class ConfidentialOwner {
  readonly ledger: Ledger;
  #opts: ConfidentialOwnerOptions;
  #self: ReaderKey | undefined;
  #ring: Keyring | undefined;

  constructor(opts: ConfidentialOwnerOptions) {
    if (opts.operator.did !== opts.ledger.operator.did)
      throw new FormatError('E_KEY', `the ledger is operated by ${opts.ledger.operator.did}, not ${opts.operator.did}`);
    this.ledger = opts.ledger;
    this.#opts = opts;
  }

  #now(): number {
    return (this.#opts.now ?? Date.now)();
  }

  /** The operator's own encryption-key envelope (signed once per process; it travels in its keywraps). */
  ownKey(): ReaderKey {
    this.#self ??= readerKey(signEnvelope(this.#opts.operator, encryptionKeyInput(this.#opts.encryptionKey, this.#opts.nextSeq(), this.#now())));
    return this.#self;
  }

  /** The owner's keyring over the ledger's key epochs, caught up. */
  async keyring(): Promise<Keyring> {
    const epochs = await keyEpochsOf(this.ledger);
    this.#ring ??= new Keyring(epochs, this.#opts.operator.did, this.#opts.encryptionKey);
    return this.#ring;
  }

  async #append(input: Parameters<typeof signEnvelope>[1]): Promise<void> {
    await this.ledger.append(signEnvelope(this.#opts.operator, input, { maxBytes: this.ledger.maxEntryBytes }));
  }

  /**
   * A new epoch of a scope with a fresh key, wrapped to the owner and to each reader: the epoch
   * entry and one keywrap per reader, appended all or nothing (Ledger.appendAll), so a crash
   * never leaves an epoch that some of its readers cannot open.
   */
  async #newEpoch(scope: string, topics: string[], readers: ReaderKey[], revoked: string[]): Promise<number> {
    const epochs = await keyEpochsOf(this.ledger);
    const epoch = epochs.epochs(scope).length;
    const key = newScopeKey();
    const all = [this.ownKey(), ...readers.filter((r) => r.reader !== this.#opts.operator.did)];
    const ts = this.#now();
    const sign = (input: Parameters<typeof signEnvelope>[1]): SignedEnvelope =>
      signEnvelope(this.#opts.operator, input, { maxBytes: this.ledger.maxEntryBytes });
    const envs = [
      sign(
        epochInput(
          {
            ledger: this.ledger.origin,
            scope,
            epoch,
            topics,
            kid: scopeKeyId(key),
            readers: all.map((r) => r.reader),
            ...(revoked.length ? { revoked: revoked as DidKey[] } : {}),
          },
          this.#opts.nextSeq(),
          ts,
        ),
      ),
    ];
    // The HPKE wraps run concurrently (WebCrypto's X25519 works off the event loop); seqs are taken in order first.
    const seqs = all.map(() => this.#opts.nextSeq());
    const inputs = await Promise.all(all.map((r, i) => keywrapInput(this.ledger.origin, scope, epoch, key, r, seqs[i], ts)));
    for (const input of inputs) envs.push(sign(input));
    await this.ledger.appendAll(envs);
    (await this.keyring()).remember(scope, epoch, key);
    await keyEpochsOf(this.ledger);
    return epoch;
  }

  /** Mark topics (MQTT filters) confidential as a scope: its epoch 0, readable by the owner and the given readers' enckey envelopes. */
  async declareScope(scope: string, topics: string[], readers: unknown[] = []): Promise<number> {
    if (!isScopeId(scope)) throw new FormatError('E_KEY', 'a scope id is 1-64 characters of A-Z a-z 0-9 . _ -');
    for (const t of topics) checkTopicFilter(t);
    const keys = readers.map((r) => readerKey(r));
    return serialized(this, 'keys', async () => {
      if ((await keyEpochsOf(this.ledger)).current(scope)) throw new FormatError('E_KEY', `scope ${scope} is already declared`);
      return this.#newEpoch(scope, topics, keys, []);
    });
  }

  /**
   * Give a reader the keys a read grant covers: for each scope whose topics overlap the grant's
   * (all when it names none), every epoch whose time span meets the grant's from–until, wrapped
   * to the reader's enckey envelope (which must be the grant subject's). Returns how many keys were wrapped.
   */
  async addReader(grant: GrantTerms, enckey: unknown): Promise<number> {
    const rk = readerKey(enckey);
    if (rk.reader !== grant.subject)
      throw new AccessError('E_GRANT', `the encryption key is signed by ${rk.reader}, not by the grant's subject ${grant.subject}`);
    if (!grant.actions.includes('read')) throw new AccessError('E_SCOPE', `grant ${grant.id} does not allow read`);
    return serialized(this, 'keys', async () => {
      const epochs = await keyEpochsOf(this.ledger);
      const ring = await this.keyring();
      let n = 0;
      for (const s of epochs.view()) {
        if (grant.scope.topics && !grant.scope.topics.some((g) => s.topics.some((t) => filtersOverlap(g, t)))) continue;
        for (const [i, ep] of s.epochs.entries()) {
          const end = s.epochs[i + 1]?.ts ?? Number.MAX_SAFE_INTEGER;
          if ((grant.scope.from !== undefined && end < grant.scope.from) || (grant.scope.until !== undefined && ep.ts > grant.scope.until)) continue;
          if (epochs.wrap(s.scope, ep.epoch, rk.reader)) continue;
          if (ep.revoked.includes(rk.reader)) {
            // Granted again after a revocation: the epoch that revoked it cannot be wrapped to it; a new one is.
            if (i === s.epochs.length - 1) {
              await this.#rotate(s.scope, [], [rk]);
              n++;
            }
            continue;
          }
          const key = await ring.keyOf(s.scope, ep.epoch);
          await this.#append(await keywrapInput(this.ledger.origin, s.scope, ep.epoch, key, rk, this.#opts.nextSeq(), this.#now()));
          n++;
        }
      }
      await keyEpochsOf(this.ledger);
      return n;
    });
  }

  /**
   * Rotate a scope's key: a new epoch wrapped to the holders of the current one that still have
   * an active read grant, less `revoke` (each keeps its encryption key of the current keywrap).
   * Entries sealed from then on use it.
   */
  async rotate(scope: string, revoke: string[] = []): Promise<number> {
    return serialized(this, 'keys', () => this.#rotate(scope, revoke));
  }

  async #rotate(scope: string, revoke: string[], add: ReaderKey[] = []): Promise<number> {
    const epochs = await keyEpochsOf(this.ledger);
    const cur = epochs.current(scope);
    if (!cur) throw new FormatError('E_KEY', `scope ${scope} is not declared`);
    const view = epochs.view().find((s) => s.scope === scope);
    const holders = view?.epochs[cur.epoch].holders ?? [];
    const grants = await GrantIndex.of(this.ledger).list(this.#now());
    const active = new Set(grants.filter((g) => g.status === 'active' && g.actions.includes('read')).map((g) => g.subject as string));
    const keep = holders.filter((d) => !revoke.includes(d) && d !== this.#opts.operator.did && active.has(d));
    const keys = keep.map((d) => epochs.wrap(scope, cur.epoch, d)?.recipient).filter((r): r is ReaderKey => r !== undefined);
    for (const r of add) if (!keep.includes(r.reader)) keys.push(r);
    return this.#newEpoch(
      scope,
      cur.topics,
      keys,
      revoke.filter((d) => holders.includes(d as never)),
    );
  }

  /** Revoke a reader everywhere: every scope whose current epoch it holds rotates without it. Returns the scopes rotated. */
  async revokeReader(reader: string): Promise<string[]> {
    return serialized(this, 'keys', async () => {
      const epochs = await keyEpochsOf(this.ledger);
      const out: string[] = [];
      for (const s of epochs.view()) {
        const cur = s.epochs[s.epochs.length - 1];
        if (cur.holders.includes(reader as never)) {
          await this.#rotate(s.scope, [reader]);
          out.push(s.scope);
        }
      }
      return out;
    });
  }

  /**
   * Revoke a grant (lib/access/grants.ts revokeGrant) and, unless its subject still holds
   * another read grant that is active, rotate every scope it holds (revocation rotates).
   */
  async revokeGrant(grantId: string): Promise<Issued & { rotated: string[] }> {
    const issued = await revokeGrant(this.ledger, this.#opts.operator, this.#opts.nextSeq, grantId, this.#now());
    const rec = await GrantIndex.of(this.ledger).get(grantId);
    const subject = rec?.terms.subject;
    if (!subject) return { ...issued, rotated: [] };
    const still = (await GrantIndex.of(this.ledger).list(this.#now())).some(
      (g) => g.subject === subject && g.status === 'active' && g.actions.includes('read'),
    );
    return { ...issued, rotated: still ? [] : await this.revokeReader(subject) };
  }

  /**
   * Seal a verified envelope when its topic is in a confidential scope (its current epoch),
   * signed by `sealer` with seq from its counter; undefined when the topic is not confidential
   * (the caller appends the envelope as it is).
   */
  async seal(inner: SignedEnvelope, sealer: Identity, nextSeq: () => number, ts = this.#now()): Promise<SignedEnvelope | undefined> {
    const ring = await this.keyring();
    const scope = ring.epochs.scopeOf(inner.envelope.topic);
    if (scope === undefined) return undefined;
    const cur = ring.epochs.current(scope) as NonNullable<ReturnType<KeyEpochs['current']>>;
    const key = await ring.keyOf(scope, cur.epoch);
    return sealEnvelope(sealer, inner, { origin: this.ledger.origin, scope, epoch: cur.epoch, key }, nextSeq(), ts, { maxBytes: this.ledger.maxEntryBytes });
  }

  /**
   * Seal as seal() does, with the signature made by `sign` (e.g. a SignPool's, which keeps call
   * order: lib/format/sign-pool.ts), so the caller can start the next sealing before this
   * signature is made. Undefined when the topic is not confidential; else the signed envelope to come.
   */
  async sealWith(
    inner: SignedEnvelope,
    sealer: DidKey,
    nextSeq: () => number,
    sign: (input: EnvelopeInput, limits: EnvelopeLimits) => Promise<SignedEnvelope>,
    ts = this.#now(),
  ): Promise<{ signed: Promise<SignedEnvelope> } | undefined> {
    const ring = await this.keyring();
    const scope = ring.epochs.scopeOf(inner.envelope.topic);
    if (scope === undefined) return undefined;
    const cur = ring.epochs.current(scope) as NonNullable<ReturnType<KeyEpochs['current']>>;
    const key = await ring.keyOf(scope, cur.epoch);
    const input = sealedInput(sealer, inner, { origin: this.ledger.origin, scope, epoch: cur.epoch, key }, nextSeq(), ts);
    return { signed: sign(input, { maxBytes: this.ledger.maxEntryBytes }) };
  }

  /** Open a sealed entry of this ledger with the owner's keys (E_NO_KEY, E_DECRYPT, E_SIGNATURE). */
  async open(outer: SignedEnvelope): Promise<SignedEnvelope> {
    return openWith(await this.keyring(), outer);
  }
}

/** Open a sealed entry with a keyring (its ledger's origin): E_NO_KEY without its epoch's key, else openSealed's checks. */
export async function openWith(ring: Keyring, outer: SignedEnvelope): Promise<SignedEnvelope> {
  const { scope, epoch } = sealedScope(outer);
  const key = await ring.keyOf(scope, epoch);
  return openSealed(outer, ring.epochs.origin, key);
}

/** Kinds of the confidential scopes' own entries (never sealed themselves). */
export const KEY_ENTRY_KINDS: readonly string[] = [ENCKEY_KIND, EPOCH_KIND, KEYWRAP_KIND];
