/**
 * The witness set and quorum of a ledger, and the collection of cosignatures until a
 * checkpoint is confirmed (docs/design.md "Witness set and quorum", "Model in one paragraph").
 *
 * The quorum is counted over the consortium: the operator's own checkpoint signature
 * (c2sp.org/tlog-checkpoint@v1.0.0 "Signatures", type 0x01) counts 1, and each distinct
 * configured witness with a valid c2sp.org/tlog-cosignature@v1.0.1 cosignature (type 0x04)
 * counts 1. The default quorum is a majority of 1 + the number of witnesses (2 of 3 for
 * three partners). In c2sp.org/tlog-policy terms this is `log <operator>` plus one group of
 * all witnesses with threshold quorum − 1 (lib/format/tlog-policy.ts converts both ways).
 */
import * as crypto from 'node:crypto';
import { toHex } from '../format/bytes';
import { BotError, FormatError, LedgerError, StoreError, VerificationError } from '../errors';
import { type DidKey, PublicKey } from '../format/identity';
import type { AuxStore } from '../store/ledger';
import { serialized } from '../store/mutex';
import { formatNote, type NoteSignature, NoteVerifier, openNote, parseCheckpoint, parseNote, SIG_COSIGNATURE_V1, SIG_ED25519 } from '../format/note';
import { EquivocationError, forkEvidence, parseEvidence, evidenceToJson, type Evidence } from '../format/equivocation';

/** Most witnesses in one set (c2sp.org/tlog-policy "Implementation limits" recommends at least 32). */
export const MAX_WITNESSES = 64;

function bad(msg: string): FormatError {
  return new FormatError('E_NOTE', msg);
}

/** The log's note verifier (type 0x01, key name = origin) from a vkey or a did:key (tlog-checkpoint "Signatures"). */
export function logVerifier(origin: string, key: NoteVerifier | string): NoteVerifier {
  let v: NoteVerifier;
  if (key instanceof NoteVerifier) v = key;
  else if (typeof key === 'string' && key.startsWith('did:key:')) v = NoteVerifier.ed25519(origin, PublicKey.fromDid(key));
  else if (typeof key === 'string') v = NoteVerifier.parse(key);
  else throw bad('a log key is a NoteVerifier, a vkey or a did:key');
  if (v.type !== SIG_ED25519) throw bad(`the log key of ${origin} must be an Ed25519 note key (type 0x01), not a cosigner key`);
  if (v.name !== origin) throw bad(`the log key is named ${JSON.stringify(v.name)}, not the origin ${JSON.stringify(origin)} (tlog-policy "Defining a log")`);
  return v;
}

/** A cosigner verifier (type 0x04) from a vkey, or a name and a did:key (tlog-cosignature "Format"). */
export function cosignerVerifier(name: string | undefined, key: NoteVerifier | string): NoteVerifier {
  let v: NoteVerifier;
  if (key instanceof NoteVerifier) v = key;
  else if (typeof key === 'string' && key.startsWith('did:key:')) {
    if (name === undefined) throw bad('a witness given by did:key needs its cosigner key name');
    v = NoteVerifier.cosigner(name, PublicKey.fromDid(key));
  } else if (typeof key === 'string') v = NoteVerifier.parse(key);
  else throw bad('a witness key is a NoteVerifier, a vkey or a did:key');
  if (v.type !== SIG_COSIGNATURE_V1) throw bad(`the key of witness ${v.name} must be a cosigner key (type 0x04)`);
  if (name !== undefined && name !== v.name) throw bad(`witness name ${JSON.stringify(name)} does not match its vkey name ${JSON.stringify(v.name)}`);
  return v;
}

/** Ledger id: 16 lowercase hex of SHA-256(origin ‖ "\n" ‖ operator public key), for `bot/v1/<ledgerId>/…` (docs/design.md "Sync over MQTT"). */
export function ledgerId(origin: string, operator: string | PublicKey): string {
  if (typeof origin !== 'string' || origin === '' || origin.includes('\n')) throw bad('origin must be one non-empty line');
  const pk = operator instanceof PublicKey ? operator : PublicKey.fromDid(operator);
  return crypto
    .createHash('sha256')
    .update(Buffer.from(origin, 'utf8'))
    .update(Buffer.from([0x0a]))
    .update(pk.bytes)
    .digest('hex')
    .slice(0, 16);
}

/** Default quorum: a majority of the consortium, ⌊(1 + witnesses) / 2⌋ + 1 (docs/design.md "The model"). */
export function defaultQuorum(witnesses: number): number {
  if (!Number.isSafeInteger(witnesses) || witnesses < 0) throw bad('the number of witnesses must be a non-negative integer');
  return Math.floor((1 + witnesses) / 2) + 1;
}

/** A witness of the set: its cosigner key name, verifier and did:key (tlog-cosignature "Format"). */
export interface WitnessMember {
  /** The cosigner key name, as on its signature lines. */
  readonly name: string;
  /** Its type 0x04 verifier. */
  readonly verifier: NoteVerifier;
  /** did:key of its Ed25519 public key. */
  readonly did: DidKey;
  /** Where to reach it, if known (tlog-policy "Defining a witness"); not used for verification. */
  readonly url?: string;
}

/** A witness as configured: a vkey (type 0x04), or a name and a did:key (tlog-cosignature "Format"). */
export interface WitnessInit {
  /** The cosigner key name; required with a did:key, checked against a vkey. */
  name?: string;
  /** A type 0x04 vkey, a NoteVerifier or a did:key. */
  key: NoteVerifier | string;
  /** Optional URL, kept for tlog-policy round trips. */
  url?: string;
}

/** What QuorumPolicy.create takes (docs/design.md "Witness set and quorum"). */
export interface QuorumPolicyInit {
  /** The ledger's checkpoint origin. */
  origin: string;
  /** The operator key: a type 0x01 vkey named after the origin, a NoteVerifier or a did:key. */
  operator: NoteVerifier | string;
  /** The witness set; distinct names and keys, none equal to the operator key. */
  witnesses?: readonly WitnessInit[];
  /** Confirmations needed, counting the operator's signature as 1; default the majority. */
  quorum?: number;
}

/** One witness counted in a quorum (tlog-cosignature "Format": timestamp in POSIX seconds). */
export interface ConfirmingWitness {
  did: DidKey;
  name: string;
  /** The cosignature's timestamp, seconds since the epoch. */
  time: number;
}

/** The quorum count of one checkpoint (docs/design.md "Witness set and quorum"). */
export interface Confirmations {
  /** Tree size of the checkpoint. */
  size: number;
  /** Operator signature (1) plus distinct set witnesses with a valid cosignature. */
  count: number;
  /** Confirmations needed. */
  quorum: number;
  /** count >= quorum. */
  confirmed: boolean;
  /** The set witnesses that cosigned, in set order. */
  witnesses: ConfirmingWitness[];
}

/** A ledger's witness set and quorum, counted over 1 + witnesses (docs/design.md "Witness set and quorum"). */
export class QuorumPolicy {
  /** The checkpoint origin. */
  readonly origin: string;
  /** The operator's note verifier (type 0x01). */
  readonly log: NoteVerifier;
  /** The witness set, in configured order. */
  readonly witnesses: readonly WitnessMember[];
  /** Confirmations needed, counting the operator's signature. */
  readonly quorum: number;
  #byKey: Map<string, WitnessMember>;

  private constructor(origin: string, log: NoteVerifier, witnesses: WitnessMember[], quorum: number) {
    this.origin = origin;
    this.log = log;
    this.witnesses = Object.freeze(witnesses);
    this.quorum = quorum;
    this.#byKey = new Map(witnesses.map((w) => [`${w.name}+${toHex(w.verifier.keyId)}`, w]));
    Object.freeze(this);
  }

  /** Build and check a policy: distinct witnesses, 1 ≤ quorum ≤ 1 + witnesses (tlog-policy "Defining a witness group"). */
  static create(init: QuorumPolicyInit): QuorumPolicy {
    if (init === null || typeof init !== 'object') throw bad('a quorum policy needs an origin, an operator key and witnesses');
    const log = logVerifier(init.origin, init.operator);
    const list = init.witnesses ?? [];
    if (!Array.isArray(list)) throw bad('witnesses must be a list');
    if (list.length > MAX_WITNESSES) throw bad(`at most ${MAX_WITNESSES} witnesses`);
    const names = new Set<string>();
    const keys = new Set<string>([toHex(log.publicKey.bytes)]);
    const members: WitnessMember[] = list.map((w) => {
      const v = cosignerVerifier(w.name, w.key);
      if (names.has(v.name)) throw bad(`witness ${v.name} is listed twice`);
      const k = toHex(v.publicKey.bytes);
      if (keys.has(k)) {
        throw bad(
          k === toHex(log.publicKey.bytes)
            ? `witness ${v.name} uses the operator key: the operator already counts once`
            : `witness ${v.name} uses the same public key as another witness (tlog-policy "Defining a witness")`,
        );
      }
      names.add(v.name);
      keys.add(k);
      if (w.url !== undefined && (typeof w.url !== 'string' || w.url === '' || /\s/.test(w.url))) throw bad(`witness ${v.name} has an invalid URL`);
      return Object.freeze(
        w.url === undefined ? { name: v.name, verifier: v, did: v.publicKey.did } : { name: v.name, verifier: v, did: v.publicKey.did, url: w.url },
      );
    });
    const total = 1 + members.length;
    const quorum = init.quorum ?? defaultQuorum(members.length);
    if (!Number.isSafeInteger(quorum) || quorum < 1 || quorum > total) {
      throw bad(`quorum ${String(quorum)} is impossible with the operator and ${members.length} witness(es): it must be 1 to ${total}`);
    }
    return new QuorumPolicy(init.origin, log, members, quorum);
  }

  /** Size of the consortium the quorum is counted over: 1 + witnesses. */
  get total(): number {
    return 1 + this.witnesses.length;
  }

  /** did:key of the operator. */
  get operatorDid(): DidKey {
    return this.log.publicKey.did;
  }

  /** This ledger's id (see ledgerId). */
  get ledgerId(): string {
    return ledgerId(this.origin, this.log.publicKey);
  }

  /** The set member that signature line belongs to (name and key ID match), if any (signed-note "Signatures"). */
  member(s: Pick<NoteSignature, 'name' | 'keyId'>): WitnessMember | undefined {
    return this.#byKey.get(`${s.name}+${toHex(s.keyId)}`);
  }

  /** The operator's verifier followed by the witnesses' (signed-note "Verifier keys"). */
  verifiers(): NoteVerifier[] {
    return [this.log, ...this.witnesses.map((w) => w.verifier)];
  }

  /** A JSON summary: origin, operator did, witnesses (name, did, vkey), quorum. */
  toJSON(): { origin: string; operator: DidKey; ledgerId: string; quorum: number; witnesses: { name: string; did: DidKey; vkey: string }[] } {
    return {
      origin: this.origin,
      operator: this.operatorDid,
      ledgerId: this.ledgerId,
      quorum: this.quorum,
      witnesses: this.witnesses.map((w) => ({ name: w.name, did: w.did, vkey: w.verifier.toString() })),
    };
  }
}

/**
 * Whether a checkpoint with the operator's signature and `witnesses` distinct witness
 * cosignatures is confirmed: the count (operator + witnesses) reaches the quorum, and at least
 * one independent witness cosigned — the operator's word alone never confirms, whatever the
 * quorum (a ledger with no witnesses configured seals, it never confirms).
 */
export function isConfirmed(witnesses: number, quorum: number): boolean {
  return witnesses >= 1 && 1 + witnesses >= quorum;
}

/**
 * Count the confirmations of a checkpoint note (docs/design.md "Witness set and quorum"): the
 * operator's signature is required (else VerificationError E_SIGNATURE) and counts 1; each
 * distinct set witness with a valid cosignature counts 1, once however many lines it has;
 * lines of keys outside the set are ignored; a set key's line that fails to verify rejects
 * the note, as signed-note "Signatures" requires.
 */
export function countConfirmations(note: string | Uint8Array, policy: QuorumPolicy): Confirmations {
  const opened = openNote(note, policy.verifiers());
  const cp = parseCheckpoint(opened.text);
  if (cp.origin !== policy.origin) throw bad(`checkpoint origin ${JSON.stringify(cp.origin)} is not ${JSON.stringify(policy.origin)}`);
  if (!opened.verified.some((x) => x.verifier === policy.log)) {
    throw new VerificationError('E_SIGNATURE', `the checkpoint has no signature of the operator ${policy.log.name}`);
  }
  const times = new Map<NoteVerifier, number>();
  for (const x of opened.verified) if (x.verifier !== policy.log) times.set(x.verifier, x.timestamp ?? 0);
  const witnesses: ConfirmingWitness[] = [];
  for (const w of policy.witnesses) {
    const t = times.get(w.verifier);
    if (t !== undefined) witnesses.push({ did: w.did, name: w.name, time: t });
  }
  return { size: cp.size, count: 1 + witnesses.length, quorum: policy.quorum, confirmed: isConfirmed(witnesses.length, policy.quorum), witnesses };
}

/** Options of a CosignatureCollector (docs/design.md "Storage and durability": state kept in the ledger's LevelDB). */
export interface CollectorOptions {
  /** Durable store (e.g. ledger.aux); pass the same object to every collector over one database, and open one collector per ledger (it caches what it verified). */
  store: AuxStore;
  /** The ledger's witness set and quorum. */
  policy: QuorumPolicy;
  /** Key prefix inside the store; default `cosig/<ledgerId>/`. */
  prefix?: string;
}

/** What adding cosignatures did (tlog-witness "add-checkpoint": clients ignore unknown keys). */
export interface CollectResult {
  /** Tree size of the checkpoint. */
  size: number;
  /** Names of set witnesses whose cosignature was stored (new, or a later timestamp). */
  accepted: string[];
  /** Lines from keys outside the set, or already held with a later timestamp. */
  ignored: number;
  /** Lines from set keys that do not verify over the stored checkpoint. */
  rejected: { name: string; reason: string }[];
  /** The count after this call. */
  confirmations: Confirmations;
  /** The confirmed size after this call. */
  confirmedSize: number;
}

/** Sizes whose verified cosignatures a collector keeps in memory. */
const CACHED_SIZES = 8;

const SIZE_HEX = 14; // 2^53 fits in 14 hex digits, so key order is size order
const sizeKey = (n: number): string => n.toString(16).padStart(SIZE_HEX, '0');

interface StoredCosig {
  line: string;
  time: number;
}

/**
 * Collects witnesses' cosignatures of a ledger's checkpoints in an AuxStore, per checkpoint
 * size, validating each line against the witness set and the stored operator-signed note
 * (tlog-witness "add-checkpoint": "it can move the valid signatures to its own view of the
 * checkpoint"), and tracks the largest confirmed size, persisted. Each line is verified once:
 * the verified lines of the latest sizes are kept in memory, so one collector per ledger
 * (store and prefix) is assumed.
 */
export class CosignatureCollector {
  /** The ledger's witness set and quorum. */
  readonly policy: QuorumPolicy;
  readonly #store: AuxStore;
  readonly #prefix: string;
  #confirmedSize: number;
  /**
   * The verified cosignatures of the latest sizes read or written (at most CACHED_SIZES), so
   * that adding one witness's line, or counting, does not re-verify every line already held
   * (that made a round of n witnesses cost O(n²) signature checks). Written only after the
   * store write succeeded; a read that raced a write does not fill it (#gen).
   */
  readonly #cache = new Map<number, Map<string, StoredCosig>>();
  #gen = 0;

  private constructor(opts: CollectorOptions, prefix: string, confirmedSize: number) {
    this.policy = opts.policy;
    this.#store = opts.store;
    this.#prefix = prefix;
    this.#confirmedSize = confirmedSize;
  }

  /** Open a collector, reading its persisted confirmed size (docs/design.md "Storage and durability"). */
  static async open(opts: CollectorOptions): Promise<CosignatureCollector> {
    if (!(opts.policy instanceof QuorumPolicy)) throw bad('a collector needs a QuorumPolicy');
    const prefix = opts.prefix ?? `cosig/${opts.policy.ledgerId}/`;
    const raw = await storeCall(() => opts.store.get(prefix + 'confirmed'));
    let size = 0;
    if (raw) {
      const v = Number(raw.toString('utf8'));
      if (!Number.isSafeInteger(v) || v < 0) throw new StoreError('E_CORRUPT', 'the stored confirmed size is unreadable');
      size = v;
    }
    // No witness configured: nothing is confirmed (isConfirmed), whatever an older version stored.
    if (opts.policy.witnesses.length === 0) size = 0;
    return new CosignatureCollector(opts, prefix, size);
  }

  /** Largest checkpoint size whose cosignatures reached the quorum (0 if none), persisted. */
  get confirmedSize(): number {
    return this.#confirmedSize;
  }

  /**
   * Store the operator-signed checkpoint note for its size (tlog-checkpoint "Signatures"),
   * then any set witnesses' cosignature lines it already carries. A different root at a size
   * already held is an equivocation: the evidence is kept and EquivocationError (E_CONFLICT)
   * thrown.
   */
  async addCheckpoint(note: string): Promise<CollectResult> {
    const { text, signatures } = parseNote(note);
    const cp = parseCheckpoint(text);
    if (cp.origin !== this.policy.origin) throw bad(`checkpoint origin ${JSON.stringify(cp.origin)} is not ${JSON.stringify(this.policy.origin)}`);
    const opLine = operatorLine(text, signatures, this.policy.log);
    const cosigLines = signatures.filter((s) => s.line !== opLine).map((s) => s.line);
    const minimal = formatNote(text, [opLine]);
    return serialized(this.#store, this.#prefix, async () => {
      const key = `${this.#prefix}cp/${sizeKey(cp.size)}`;
      const held = await storeCall(() => this.#store.get(key));
      if (held) {
        const heldNote = held.toString('utf8');
        const heldText = parseNote(heldNote).text;
        if (heldText !== text) {
          if (!parseCheckpoint(heldText).root.equals(cp.root)) {
            const ev = forkEvidence(heldNote, minimal, this.policy.log, { observed: 0 });
            await storeCall(() => this.#store.batch([{ key: this.#prefix + 'conflict', value: Buffer.from(evidenceToJson(ev), 'utf8') }]));
            throw new EquivocationError(`two checkpoints of ${cp.origin} at size ${cp.size} with different roots`, ev);
          }
          throw new LedgerError('E_CHECKPOINT', `a different checkpoint text of ${cp.origin} at size ${cp.size} is already held`);
        }
      } else {
        await storeCall(() => this.#store.batch([{ key, value: Buffer.from(minimal, 'utf8') }]));
      }
      return this.#collect(cp.size, text, cosigLines);
    });
  }

  /**
   * Validate cosignature lines (e.g. a tlog-witness add-checkpoint response body) against
   * the set and the stored checkpoint of that size, store the valid ones and update the
   * confirmed size (tlog-cosignature "Format"). Throws LedgerError E_NOT_FOUND when no
   * checkpoint of that size was added.
   */
  async addCosignatures(size: number, lines: string | readonly string[]): Promise<CollectResult> {
    const list = typeof lines === 'string' ? splitLines(lines) : lines;
    return serialized(this.#store, this.#prefix, async () => {
      const note = await this.checkpointNote(size);
      if (!note) throw new LedgerError('E_NOT_FOUND', `no checkpoint of size ${size} of ${this.policy.origin} to add cosignatures to`);
      return this.#collect(size, parseNote(note).text, list);
    });
  }

  /** Validate and store lines for one size; called inside the collector's mutex. */
  async #collect(size: number, text: string, lines: readonly string[]): Promise<CollectResult> {
    const held = await this.#cosigs(size);
    const accepted: string[] = [];
    const rejected: CollectResult['rejected'] = [];
    let ignored = 0;
    const ops: { key: string; value?: Buffer }[] = [];
    for (const line of lines) {
      const raw = line.endsWith('\n') ? line.slice(0, -1) : line;
      if (raw === '') continue;
      let sigs: NoteSignature[];
      try {
        sigs = parseNote(`${text}\n${raw}\n`).signatures;
      } catch (err) {
        rejected.push({ name: '?', reason: `not a signature line: ${(err as Error).message}` });
        continue;
      }
      if (sigs.length !== 1) {
        rejected.push({ name: '?', reason: 'not a single signature line' });
        continue;
      }
      const s = sigs[0];
      const w = this.policy.member(s);
      if (!w) {
        ignored++;
        continue;
      }
      const r = w.verifier.verifyLine(text, s);
      if (!r.ok || r.timestamp === undefined) {
        rejected.push({ name: w.name, reason: 'cosignature does not verify over the checkpoint' });
        continue;
      }
      const prev = held.get(w.name);
      if (prev && prev.time >= r.timestamp) {
        ignored++;
        continue;
      }
      held.set(w.name, { line: s.line, time: r.timestamp });
      ops.push({ key: `${this.#prefix}sig/${sizeKey(size)}/${w.name}`, value: Buffer.from(s.line, 'utf8') });
      if (!accepted.includes(w.name)) accepted.push(w.name);
    }
    const confirmations = this.#count(size, held);
    const grows = confirmations.confirmed && size > this.#confirmedSize;
    if (grows) ops.push({ key: this.#prefix + 'confirmed', value: Buffer.from(String(size), 'utf8') });
    if (ops.length > 0) {
      // #gen changes before and after the write: a read overlapping it in any part does not fill the cache.
      this.#gen++;
      try {
        await storeCall(() => this.#store.batch(ops));
      } finally {
        this.#gen++;
      }
      this.#remember(size, held);
    }
    if (grows) this.#confirmedSize = size;
    return { size, accepted, ignored, rejected, confirmations, confirmedSize: this.#confirmedSize };
  }

  #count(size: number, held: Map<string, StoredCosig>): Confirmations {
    const witnesses: ConfirmingWitness[] = [];
    for (const w of this.policy.witnesses) {
      const c = held.get(w.name);
      if (c) witnesses.push({ did: w.did, name: w.name, time: c.time });
    }
    return { size, count: 1 + witnesses.length, quorum: this.policy.quorum, confirmed: isConfirmed(witnesses.length, this.policy.quorum), witnesses };
  }

  #remember(size: number, sigs: Map<string, StoredCosig>): void {
    this.#cache.delete(size);
    this.#cache.set(size, new Map(sigs));
    while (this.#cache.size > CACHED_SIZES) this.#cache.delete(this.#cache.keys().next().value as number);
  }

  /** Stored cosignatures of one size (a copy), verified once when first read (a corrupted record is skipped), then kept in #cache. */
  async #cosigs(size: number): Promise<Map<string, StoredCosig>> {
    const cached = this.#cache.get(size);
    if (cached) return new Map(cached);
    const gen = this.#gen;
    const out = new Map<string, StoredCosig>();
    const note = await this.checkpointNote(size);
    if (!note) return out;
    const text = parseNote(note).text;
    const prefix = `${this.#prefix}sig/${sizeKey(size)}/`;
    await storeCall(async () => {
      for await (const [, v] of this.#store.iterator(prefix)) {
        let s: NoteSignature;
        try {
          s = parseNote(`${text}\n${v.toString('utf8')}`).signatures[0];
        } catch {
          continue;
        }
        const w = this.policy.member(s);
        if (!w) continue; // a witness removed from the set since
        const r = w.verifier.verifyLine(text, s);
        if (r.ok && r.timestamp !== undefined) out.set(w.name, { line: s.line, time: r.timestamp });
      }
    });
    if (gen === this.#gen) this.#remember(size, out);
    return out;
  }

  /** The stored operator-signed checkpoint note of that size, if any (tlog-checkpoint "Signatures"). */
  async checkpointNote(size: number): Promise<string | undefined> {
    if (!Number.isSafeInteger(size) || size < 0) throw new LedgerError('E_RANGE', `no checkpoint of size ${String(size)}`);
    const v = await storeCall(() => this.#store.get(`${this.#prefix}cp/${sizeKey(size)}`));
    return v?.toString('utf8');
  }

  /** The quorum count of the stored checkpoint of that size, or undefined if none is held. */
  async confirmations(size: number): Promise<Confirmations | undefined> {
    if (!(await this.checkpointNote(size))) return undefined;
    return this.#count(size, await this.#cosigs(size));
  }

  /**
   * The checkpoint of that size (default the confirmed size) with the operator's signature
   * and every stored set cosignature, in set order: a note anyone verifies with openNote or
   * countConfirmations (tlog-cosignature "Format"). Undefined when none is held.
   */
  async confirmedCheckpoint(size: number = this.#confirmedSize): Promise<string | undefined> {
    const note = await this.checkpointNote(size);
    if (!note) return undefined;
    const { text, signatures } = parseNote(note);
    const held = await this.#cosigs(size);
    const lines = this.policy.witnesses.map((w) => held.get(w.name)?.line).filter((l): l is string => l !== undefined);
    return formatNote(text, [...signatures.map((s) => s.line), ...lines]);
  }

  /** Equivocation evidence found by addCheckpoint, if any (docs/design.md "The model": status `conflict`). */
  async conflict(): Promise<Evidence | undefined> {
    const v = await storeCall(() => this.#store.get(this.#prefix + 'conflict'));
    return v ? parseEvidence(v.toString('utf8')) : undefined;
  }

  /** Delete checkpoints and cosignatures below a size, keeping the confirmed one (bounds the store). */
  async prune(below: number): Promise<number> {
    return serialized(this.#store, this.#prefix, async () => {
      const ops: { key: string }[] = [];
      const keep = sizeKey(this.#confirmedSize);
      const limit = sizeKey(Math.max(0, Math.min(below, Number.MAX_SAFE_INTEGER)));
      await storeCall(async () => {
        for (const kind of ['cp/', 'sig/']) {
          for await (const [k] of this.#store.iterator(this.#prefix + kind)) {
            const s = k.slice(this.#prefix.length + kind.length, this.#prefix.length + kind.length + SIZE_HEX);
            if (s >= limit) break;
            if (s !== keep) ops.push({ key: k });
          }
        }
      });
      this.#gen++;
      this.#cache.clear();
      try {
        for (let i = 0; i < ops.length; i += 1000) {
          const chunk = ops.slice(i, i + 1000);
          await storeCall(() => this.#store.batch(chunk));
        }
      } finally {
        this.#gen++;
      }
      return ops.length;
    });
  }
}

/** The first signature line of the operator's key that verifies; else VerificationError (tlog-checkpoint "Signatures"). */
function operatorLine(text: string, signatures: NoteSignature[], log: NoteVerifier): string {
  for (const s of signatures) {
    if (s.name === log.name && s.keyId.equals(log.keyId)) {
      if (log.verifyLine(text, s).ok) return s.line;
      throw new VerificationError('E_SIGNATURE', `the operator signature of ${log.name} does not verify`);
    }
  }
  throw new VerificationError('E_SIGNATURE', `the checkpoint has no signature of the operator ${log.name}`);
}

function splitLines(body: string): string[] {
  if (typeof body !== 'string') throw bad('cosignature lines must be text');
  return body.split('\n').filter((l) => l !== '');
}

/** Map store failures that are not kernel errors to StoreError E_STORE. */
async function storeCall<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof BotError) throw err;
    throw new StoreError('E_STORE', `the store failed: ${(err as Error).message}`, { cause: err });
  }
}
