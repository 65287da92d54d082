/**
 * A mirror of another partner's ledger (docs/design.md "Mirrors"): it
 * replicates the remote's entries into a read-only local copy (a Ledger created with
 * `operator` = the remote's did:key and no secret), checked against the remote's own signed
 * checkpoints with proofs, and catches up after downtime.
 *
 * - It follows the remote's retained `checkpoint` topic. The broker delivers the retained
 *   note on every (re)subscribe, so catching up after downtime is the same loop.
 * - A checkpoint is used only when it verifies with the remote operator's key under origin.
 * - When it is larger than the local copy, entries are fetched over the remote's `rpc`
 *   (`entries`, at most 1000 per call and at most MAX_ANSWER_BYTES of them, so a page may be
 *   short: the next call asks from where it ended), one request at a time. An entry too large
 *   to cross MQTT is answered E_TOO_LARGE, which stops the mirror there (state().error).
 *   Each page is verified before anything of it is written: every envelope's signature;
 *   then its leaf hashes are added to a copy of the local right edge, and the resulting
 *   root at the page's end must be consistent with the checkpoint (an RPC `consistency`
 *   proof from the page end to the checkpoint size, or equality with the checkpoint root on
 *   the last page). Only then is the page appended. Memory stays flat: one page and one
 *   proof at a time.
 * - After the last page the note is stored in the local ledger (Ledger.storeCheckpoint),
 *   which emits it to onCheckpoint listeners: a LedgerPublisher on the mirror republishes it.
 * - Entries that the checkpoint does not cover (E_PROOF), a forged checkpoint (E_SIGNATURE),
 *   or a remote checkpoint smaller than / inconsistent with what is held (E_CONFLICT) are
 *   recorded in state().error; nothing of the offending page is appended. While behind, the
 *   sync is retried on a timer.
 * - With `serveAs`, the mirror answers partners' signed requests from its copy on its own rpc
 *   topic (mirrorRpcTopic): reads and the keys of confidential scopes (lib/access/access.ts
 *   answerRequest, op read / keys, under the owner's grants and revocations it holds), proven
 *   against the owner's checkpoint it stored, so a partner verifies them with the owner's key
 *   alone and reads while the owner is offline (docs/design.md "Confidential entries"). It
 *   cannot sign receipts or grants: supply and access requests are refused (E_KEY). It also
 *   follows the witnesses' retained cosigned checkpoints (`cosignature/+`) of the ledger and,
 *   when it holds some whose tree it holds too, answers against the largest of them with the
 *   cosignature lines it saw merged in (tlog-cosignature; at most 64, each at most
 *   MAX_CARRIED_LINE characters), so a partner that requires the
 *   owner's quorum can count it; cosignature lines are only carried, the partner checks them.
 */
import { fromBase64 } from '../format/bytes';
import { type BotError, type BotErrorCode, FormatError, LedgerError, VerificationError } from '../errors';
import { type SignedEnvelope, verifyEnvelope } from '../format/envelope';
import { type Ledger, type StoredCheckpoint } from '../store/ledger';
import { MAX_ENTRIES_PER_MESSAGE, ledgerTopics, type LedgerTopics } from './publisher';
import { type MqttLink } from './mqtt-link';
import { type Checkpoint, formatNote, NoteVerifier, openNote, parseCheckpoint, parseNote } from '../format/note';
import { ledgerId } from './quorum';
import { type NewNode, leafHash, verifyConsistency } from '../format/merkle';
import { PublicKey } from '../format/identity';
import { answerRequest, type RequestAnswer } from '../access/access';
import type { RateLimiter } from '../access/rate-limit';

/** Options of a Mirror. */
export interface MirrorOptions {
  /** The local read-only copy: a Ledger with the remote's origin and operator. */
  ledger: Ledger;
  /** The MQTT connection (started by its owner). */
  link: MqttLink;
  /** The remote ledger's origin. */
  origin: string;
  /** The remote operator's did:key. */
  did: string;
  /** Retry period while behind (ms, default 2000). */
  retryMs?: number;
  /** RPC timeout (ms, default 10000). */
  timeoutMs?: number;
  /** Serve partners' reads from this copy on mirrorRpcTopic(ledgerId, serveAs) (e.g. the mirroring node's own ledger id). */
  serveAs?: string;
  /** Rate limits of the requests served (lib/access/rate-limit.ts). */
  rateLimiter?: RateLimiter;
}

const MIRROR_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/**
 * Longest cosignature line a mirror carries: a tlog-cosignature/v1 line (76 bytes of key id,
 * timestamp and signature: 104 base64 characters) with a key name of up to ~140 characters.
 */
const MAX_CARRIED_LINE = 256;

/** A cosigned checkpoint a mirror saw: the operator's line, the other lines, and what answerCheckpoint derived once. */
interface Cosigned {
  size: number;
  root: Buffer;
  operatorLine: string;
  lines: Set<string>;
  /** Whether the copy's tree of this size has this root (checked once the copy holds it). */
  held: boolean;
  /** The note with every line, formatted once per change of lines. */
  note: string | undefined;
}

/** The rpc topic on which a mirror named `name` serves partners' requests about the ledger `ledgerId`: `<prefix>/<ledgerId>/mirror/<name>/rpc`. */
export function mirrorRpcTopic(ledgerIdHex: string, name: string, prefix = 'bot/v1'): string {
  if (!MIRROR_NAME.test(name)) throw new FormatError('E_QUERY', 'a mirror name is 1-64 characters of A-Z a-z 0-9 _ -');
  return `${ledgerTopics(ledgerIdHex, prefix).rpc.slice(0, -'/rpc'.length)}/mirror/${name}/rpc`;
}

/** What a mirror reports. */
export interface MirrorState {
  /** Entries held locally. */
  size: number;
  /** Size of the latest remote checkpoint stored locally (0 if none). */
  checkpointSize: number;
  /** Size of the latest verified remote checkpoint seen (0 if none). */
  remoteSize: number;
  /** True while a verified remote checkpoint is not yet held locally. */
  behind: boolean;
  /** The last failure, cleared by the next successful sync. */
  error?: { code: BotErrorCode | string; message: string };
}

interface Target {
  cp: Checkpoint;
  note: string;
}

/** Replicates one remote ledger into a local read-only copy. */
export class Mirror {
  readonly ledger: Ledger;
  readonly link: MqttLink;
  readonly origin: string;
  readonly did: string;
  readonly ledgerId: string;
  readonly topics: LedgerTopics;
  #verifier: NoteVerifier;
  #retryMs: number;
  #timeoutMs: number;
  #target: Target | undefined;
  #error: MirrorState['error'];
  #running: Promise<void> | undefined;
  #again = false;
  #stops: (() => void)[] = [];
  #timer: NodeJS.Timeout | undefined;
  #stopped = true;

  constructor(opts: MirrorOptions) {
    const { ledger, link, origin, did } = opts;
    const pk = PublicKey.fromDid(did);
    if (ledger.origin !== origin) throw new FormatError('E_NOTE', `the local ledger has origin ${ledger.origin}, not ${origin}`);
    if (ledger.operator.did !== pk.did) throw new FormatError('E_KEY', `the local ledger is operated by ${ledger.operator.did}, not ${did}`);
    this.ledger = ledger;
    this.link = link;
    this.origin = origin;
    this.did = pk.did;
    this.ledgerId = ledgerId(origin, pk);
    this.topics = ledgerTopics(this.ledgerId, link.prefix);
    this.#verifier = NoteVerifier.ed25519(origin, pk);
    this.#retryMs = opts.retryMs ?? 2000;
    this.#timeoutMs = opts.timeoutMs ?? 10000;
    if (opts.serveAs !== undefined) this.serveTopic = mirrorRpcTopic(this.ledgerId, opts.serveAs, link.prefix);
    this.#rateLimiter = opts.rateLimiter;
  }

  /** The topic partners' requests are served on (serveAs), if any. */
  readonly serveTopic: string | undefined;
  #rateLimiter: RateLimiter | undefined;
  /** Cosigned checkpoints seen, by checkpoint text: the operator's line and the other lines (bounded). */
  #cosigned = new Map<string, Cosigned>();

  /** Answer a partner's request from the copy (reads and keys; proven against the owner's checkpoint held here, cosigned when it can be). */
  answer(input: unknown): Promise<RequestAnswer> {
    return answerRequest({ ledger: this.ledger, checkpoint: () => this.answerCheckpoint(), rateLimiter: this.#rateLimiter }, input);
  }

  /**
   * The checkpoint answers are proven against: the largest cosigned one whose tree the copy
   * holds (its root recomputed from the copy, once), with the cosignature lines kept; else the
   * owner's checkpoint stored last.
   */
  async answerCheckpoint(): Promise<StoredCheckpoint | undefined> {
    const held = this.ledger.latestCheckpoint();
    const best = [...this.#cosigned.entries()].filter(([, c]) => c.size <= this.ledger.size).sort((a, b) => b[1].size - a[1].size)[0];
    if (!best) return held;
    const [text, c] = best;
    if (!c.held) {
      // Once: the copy only grows, so its tree of that size does not change.
      if (!(await this.ledger.rootAt(c.size)).equals(c.root)) {
        this.#cosigned.delete(text);
        return held;
      }
      c.held = true;
    }
    c.note ??= formatNote(text, [c.operatorLine, ...c.lines]);
    return { size: c.size, note: c.note };
  }

  /**
   * Keep the cosignature lines of a cosigned checkpoint of this ledger (operator signature
   * verified; at most 16 checkpoints, 64 lines each, each at most MAX_CARRIED_LINE characters:
   * the lines are a peer's and not verified here, and longer ones could make the note served
   * too large to format or to send).
   */
  #onCosigned(payload: Buffer): void {
    if (payload.length === 0 || payload.length > 64 * 1024) return;
    try {
      const note = payload.toString('utf8');
      const opened = openNote(note, [this.#verifier]);
      const cp = parseCheckpoint(opened.text);
      if (cp.origin !== this.origin) return;
      const parsed = parseNote(note);
      const op = parsed.signatures.find((x) => x.name === this.#verifier.name && x.keyId.equals(this.#verifier.keyId))?.line;
      if (op === undefined) return;
      let c = this.#cosigned.get(opened.text);
      if (!c) {
        if (this.#cosigned.size >= 16) {
          const smallest = [...this.#cosigned.entries()].sort((a, b) => a[1].size - b[1].size)[0];
          if (smallest[1].size >= cp.size) return;
          this.#cosigned.delete(smallest[0]);
        }
        c = { size: cp.size, root: cp.root, operatorLine: op, lines: new Set(), held: false, note: undefined };
        this.#cosigned.set(opened.text, c);
      }
      for (const sig of parsed.signatures) {
        if (sig.line === op || sig.line.length > MAX_CARRIED_LINE || c.lines.size >= 64 || c.lines.has(sig.line)) continue;
        c.lines.add(sig.line);
        c.note = undefined;
      }
    } catch {
      // not a cosigned checkpoint of this ledger: nothing to carry
    }
  }

  /** Start following the remote (idempotent). */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#stops.push(this.link.subscribe(this.topics.checkpoint, (_t, payload) => this.#onNote(payload)));
    if (this.serveTopic) {
      this.#stops.push(this.link.subscribe(this.topics.cosignatures, (_t, payload) => this.#onCosigned(payload)));
      this.#stops.push(
        this.link.serve(this.serveTopic, async (method, p) => {
          if (method === 'request') return this.answer(p);
          if (method === 'checkpoint') return { note: this.ledger.latestCheckpoint()?.note ?? null };
          throw new FormatError('E_QUERY', 'a mirror answers the methods request and checkpoint');
        }),
      );
    }
    this.#timer = setInterval(() => {
      if (this.#behind()) this.#kick();
    }, this.#retryMs);
    this.#timer.unref?.();
  }

  /** Stop following; resolves once an in-flight sync step has finished. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const s of this.#stops.splice(0)) s();
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    while (this.#running) await this.#running;
  }

  /** The mirror's progress and last error. */
  state(): MirrorState {
    const s: MirrorState = {
      size: this.ledger.size,
      checkpointSize: this.ledger.latestCheckpoint()?.size ?? 0,
      remoteSize: this.#target?.cp.size ?? 0,
      behind: this.#behind(),
    };
    if (this.#error) s.error = { ...this.#error };
    return s;
  }

  #behind(): boolean {
    const t = this.#target;
    if (!t || this.ledger.closed) return false;
    return t.cp.size > (this.ledger.latestCheckpoint()?.size ?? -1) && !this.#isConflict();
  }

  #isConflict(): boolean {
    return this.#error?.code === 'E_CONFLICT';
  }

  #fail(err: unknown): void {
    const e = err as BotError;
    this.#error = { code: e?.code ?? 'E_STORE', message: String(e?.message ?? err).slice(0, 500) };
  }

  #onNote(payload: Buffer): void {
    if (this.#stopped) return;
    let target: Target;
    try {
      const note = payload.toString('utf8');
      const cp = parseCheckpoint(openNote(note, [this.#verifier]).text);
      if (cp.origin !== this.origin) throw new VerificationError('E_NOTE', `checkpoint origin ${cp.origin} is not ${this.origin}`);
      target = { cp, note };
    } catch (err) {
      this.#fail(err);
      return;
    }
    const cur = this.#target;
    if (cur && target.cp.size < cur.cp.size) {
      this.#fail(
        new LedgerError('E_CONFLICT', `the remote published checkpoint ${target.cp.size}, smaller than checkpoint ${cur.cp.size} it published before`),
      );
      return;
    }
    if (cur && target.cp.size === cur.cp.size && !target.cp.root.equals(cur.cp.root)) {
      this.#fail(new LedgerError('E_CONFLICT', `the remote published two different checkpoints of size ${cur.cp.size}`));
      return;
    }
    this.#target = target;
    if (this.#isConflict()) this.#error = undefined; // a new checkpoint: judge it afresh
    this.#kick();
  }

  /** Run one sync at a time; a request arriving meanwhile runs again after it. */
  #kick(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        try {
          await this.#sync();
        } catch (err) {
          this.#fail(err);
        }
      } while (this.#again && !this.#stopped);
    })().finally(() => {
      this.#running = undefined;
    });
  }

  async #sync(): Promise<void> {
    const t = this.#target;
    if (!t || this.#stopped || this.ledger.closed) return;
    const { cp, note } = t;
    const held = this.ledger.latestCheckpoint();
    if (held && cp.size < held.size) {
      throw new LedgerError('E_CONFLICT', `the remote checkpoint ${cp.size} is smaller than the checkpoint ${held.size} held`);
    }
    if (cp.size <= this.ledger.size) {
      const root = await this.ledger.rootAt(cp.size);
      if (!root.equals(cp.root)) throw new LedgerError('E_CONFLICT', `the remote checkpoint ${cp.size} is inconsistent with the entries held`);
      if (!held || held.size < cp.size) await this.ledger.storeCheckpoint(note);
      this.#error = undefined;
      return;
    }
    // Entries held beyond the last checkpoint held must also be covered by the new one.
    while (this.ledger.size < cp.size) {
      if (this.#stopped || this.ledger.closed) return;
      await this.#page(cp);
    }
    await this.ledger.storeCheckpoint(note);
    this.#error = undefined;
  }

  /** Fetch, verify and append the next page of entries towards cp. */
  async #page(cp: Checkpoint): Promise<void> {
    const from = this.ledger.size;
    const to = Math.min(cp.size, from + MAX_ENTRIES_PER_MESSAGE);
    const res = (await this.link.request(this.topics.rpc, 'entries', { from, to }, this.#timeoutMs)) as { from?: unknown; entries?: unknown };
    if (!res || res.from !== from || !Array.isArray(res.entries) || res.entries.length === 0 || res.entries.length > to - from) {
      throw new VerificationError('E_PROOF', `the remote answered entries from ${from} with a malformed page`);
    }
    const envs: SignedEnvelope[] = res.entries.map((e) => verifyEnvelope(e, { maxBytes: this.ledger.maxEntryBytes }));
    const f = this.ledger.frontierCopy();
    if (f.size !== from) throw new LedgerError('E_CONFLICT', 'the local copy changed during the sync: it must be written only by its mirror');
    const nodes: NewNode[] = [];
    for (const env of envs) {
      nodes.length = 0;
      f.append(leafHash(env.bytes), nodes);
    }
    const end = f.size;
    const notCovered = (why: string): VerificationError =>
      new VerificationError('E_PROOF', `the remote served entries [${from}, ${end}) that its own checkpoint ${cp.size} does not cover (${why})`);
    if (end === cp.size) {
      if (!f.root().equals(cp.root)) throw notCovered('root differs');
    } else {
      const c = (await this.link.request(this.topics.rpc, 'consistency', { from: end, to: cp.size }, this.#timeoutMs)) as { proof?: unknown };
      if (!c || !Array.isArray(c.proof) || c.proof.length > 64 || c.proof.some((h) => typeof h !== 'string')) throw notCovered('malformed consistency proof');
      try {
        verifyConsistency(
          end,
          cp.size,
          (c.proof as string[]).map((h) => fromBase64(h, 'proof hash')),
          f.root(),
          cp.root,
        );
      } catch (err) {
        throw notCovered((err as Error).message);
      }
    }
    if (this.ledger.size !== from) throw new LedgerError('E_CONFLICT', 'the local copy changed during the sync: it must be written only by its mirror');
    await Promise.all(envs.map((e) => this.ledger.append(e)));
    if (!this.ledger.root().equals(f.root()))
      throw new LedgerError('E_CONFLICT', 'the local copy changed during the sync: it must be written only by its mirror');
  }
}
