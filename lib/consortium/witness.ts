/**
 * A partner's witness for other partners' ledgers: the add-checkpoint semantics of
 * c2sp.org/tlog-witness@v1.0.0 over its request and response bodies, independent of the
 * transport (docs/design.md "Witness exchange": carried as MQTT payloads, so a stock witness
 * could sit behind a thin bridge). Cosignatures are c2sp.org/tlog-cosignature@v1.0.1
 * Ed25519 cosignatures (type 0x04).
 *
 * Per log (origin) the witness keeps only its latest cosigned checkpoint in an AuxStore.
 * Checking the old size and persisting the new checkpoint happen in one critical section
 * (an in-process mutex per store and origin; the stored state is re-read inside it, and the
 * new state is written with one atomic synced batch) before any cosignature is returned
 * (tlog-witness "add-checkpoint", last paragraph). A new Witness over the same store resumes
 * from that state, so it never cosigns a rolled-back or forked history.
 *
 * Equivocation (lib/format/equivocation.ts): a validly signed checkpoint of the stored size with a
 * different root, or a proof that reproduces the new root from a different old root, is kept
 * as evidence; the log's status becomes `conflict` and the witness refuses to cosign it from
 * then on. A proof that merely fails (which anyone can send) is kept as a bounded "suspect"
 * record only, so that a stranger cannot make a witness abandon an honest log.
 */
import { fromBase64, toBase64 } from '../format/bytes';
import { BotError, FormatError, LedgerError, StoreError, VerificationError } from '../errors';
import { type DidKey, Identity } from '../format/identity';
import type { AuxStore } from '../store/ledger';
import { serialized } from '../store/mutex';
import { EMPTY_ROOT, verifyConsistency } from '../format/merkle';
import { type Checkpoint, cosignLine, formatNote, type NoteSignature, NoteVerifier, parseCheckpoint, parseNote, openNote } from '../format/note';
import { type Evidence, type EvidenceKind, evidenceToJson, isConclusiveInconsistency, parseEvidence } from '../format/equivocation';
import { logVerifier } from './quorum';

/** Most consistency proof lines in a request (tlog-witness "add-checkpoint": clients MUST NOT send more than 63). */
export const MAX_PROOF_LINES = 63;
/** Default largest request body accepted, in UTF-8 bytes (docs/design.md "Sync over MQTT": parsed with limits). */
export const DEFAULT_MAX_REQUEST_BYTES = 64 * 1024;
/** Most conflict evidence records kept per log (docs/design.md "Sync over MQTT": bounded before it changes state). */
export const MAX_EVIDENCE_PER_LOG = 8;
/** Most suspect records kept per log, oldest overwritten (tlog-witness "add-checkpoint": MAY log a failed proof). */
export const MAX_SUSPECTS_PER_LOG = 16;

const SIZE = /^(?:0|[1-9][0-9]*)$/;
const OLD_LINE = /^old (0|[1-9][0-9]*)$/;

/** A parsed add-checkpoint request (tlog-witness "add-checkpoint"). */
export interface AddCheckpointRequest {
  /** Tree size of the previous checkpoint the client believes the witness holds. */
  oldSize: number;
  /** Consistency proof from oldSize to the checkpoint's size (RFC 6962 §2.1.2). */
  proof: Buffer[];
  /** The signed checkpoint note. */
  checkpoint: string;
}

/** Format an add-checkpoint request body: `old <N>`, proof lines in base64, a blank line, the checkpoint (tlog-witness "add-checkpoint"). */
export function formatAddCheckpointRequest(oldSize: number, proof: readonly Uint8Array[], checkpoint: string): string {
  if (!Number.isSafeInteger(oldSize) || oldSize < 0) throw new FormatError('E_NOTE', 'old size must be a non-negative integer');
  if (proof.length > MAX_PROOF_LINES) throw new FormatError('E_NOTE', `at most ${MAX_PROOF_LINES} consistency proof lines`);
  if (proof.some((p) => !(p instanceof Uint8Array) || p.length !== 32)) throw new FormatError('E_NOTE', 'each proof hash is 32 bytes');
  parseNote(checkpoint);
  return `old ${oldSize}\n${proof.map((p) => toBase64(p) + '\n').join('')}\n${checkpoint}`;
}

/** Parse an add-checkpoint request body strictly; FormatError (E_NOTE, E_TOO_LARGE) on any deviation (tlog-witness "add-checkpoint"). */
export function parseAddCheckpointRequest(body: string | Uint8Array, maxBytes = DEFAULT_MAX_REQUEST_BYTES): AddCheckpointRequest {
  let s: string;
  if (typeof body === 'string') s = body;
  else if (body instanceof Uint8Array) {
    const b = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    s = b.toString('utf8');
    if (!Buffer.from(s, 'utf8').equals(b)) throw new FormatError('E_NOTE', 'request body is not valid UTF-8');
  } else throw new FormatError('E_NOTE', 'request body must be text or bytes');
  if (s.length > maxBytes || Buffer.byteLength(s, 'utf8') > maxBytes) throw new FormatError('E_TOO_LARGE', `request body is larger than ${maxBytes} bytes`);
  const nl = s.indexOf('\n');
  if (nl < 0) throw new FormatError('E_NOTE', 'request body has no old size line');
  const m = OLD_LINE.exec(s.slice(0, nl));
  if (!m) throw new FormatError('E_NOTE', 'the first line must be "old <size>" in decimal without leading zeros');
  const oldSize = Number(m[1]);
  if (!Number.isSafeInteger(oldSize)) throw new FormatError('E_NOTE', 'old size is above 2^53-1');
  const proof: Buffer[] = [];
  let pos = nl + 1;
  for (;;) {
    const end = s.indexOf('\n', pos);
    if (end < 0) throw new FormatError('E_NOTE', 'request body has no empty line before the checkpoint');
    const line = s.slice(pos, end);
    pos = end + 1;
    if (line === '') break;
    if (proof.length === MAX_PROOF_LINES) throw new FormatError('E_NOTE', `more than ${MAX_PROOF_LINES} consistency proof lines`);
    let h: Buffer;
    try {
      h = fromBase64(line, 'proof line');
    } catch {
      throw new FormatError('E_NOTE', `proof line ${proof.length + 1} is not base64`);
    }
    if (h.length !== 32) throw new FormatError('E_NOTE', `proof line ${proof.length + 1} is not a 32-byte hash`);
    proof.push(h);
  }
  const checkpoint = s.slice(pos);
  parseNote(checkpoint);
  return { oldSize, proof, checkpoint };
}

/** Result codes of add-checkpoint, one per HTTP status of tlog-witness "add-checkpoint". */
export type WitnessResultCode = 'ok' | 'bad-request' | 'bad-signature' | 'unknown-log' | 'conflict' | 'bad-proof';

/** The HTTP status of each result code (tlog-witness "add-checkpoint"). */
export const WITNESS_STATUS: Readonly<Record<WitnessResultCode, number>> = Object.freeze({
  ok: 200,
  'bad-request': 400,
  'bad-signature': 403,
  'unknown-log': 404,
  conflict: 409,
  'bad-proof': 422,
});

/** The outcome of add-checkpoint, mapped from its HTTP statuses (tlog-witness "add-checkpoint"). */
export type AddCheckpointResult =
  | { code: 'ok'; status: 200; /** Cosignature lines, each ending in "\n". */ cosignatures: string[] }
  | {
      code: 'conflict';
      status: 409;
      /** Size of the witness's latest cosigned checkpoint for the log. */ size: number;
      /** True when the witness holds equivocation evidence for the log and refuses it. */ equivocation: boolean;
      message: string;
    }
  | { code: 'unknown-log'; status: 404; message: string }
  | { code: 'bad-signature'; status: 403; message: string }
  | { code: 'bad-proof'; status: 422; message: string; /** True when the failure was kept as conflict evidence. */ equivocation: boolean }
  | { code: 'bad-request'; status: 400; message: string };

/** A response as HTTP would carry it: status, content type, body (tlog-witness "add-checkpoint"). */
export interface WitnessResponse {
  status: number;
  contentType: string;
  body: string;
}

/** The response body of a result: cosignature lines (200), `<size>\n` as text/x.tlog.size (409), else a message (tlog-witness "add-checkpoint"). */
export function formatAddCheckpointResponse(r: AddCheckpointResult): WitnessResponse {
  switch (r.code) {
    case 'ok':
      return { status: 200, contentType: 'text/plain; charset=utf-8', body: r.cosignatures.join('') };
    case 'conflict':
      return { status: 409, contentType: 'text/x.tlog.size', body: `${r.size}\n` };
    default:
      return { status: r.status, contentType: 'text/plain; charset=utf-8', body: r.message.endsWith('\n') ? r.message : r.message + '\n' };
  }
}

/**
 * Parse a witness's response from its status and body, for the log side (tlog-witness
 * "add-checkpoint"). Cosignature lines are only checked for form here: verify them with the
 * witness key (e.g. CosignatureCollector.addCosignatures), ignoring unknown keys.
 */
export function parseAddCheckpointResponse(status: number, body: string | Uint8Array): AddCheckpointResult {
  if (typeof body !== 'string' && !(body instanceof Uint8Array)) throw new FormatError('E_NOTE', 'a witness response body is text or bytes');
  const s = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
  if (s.length > DEFAULT_MAX_REQUEST_BYTES) throw new FormatError('E_TOO_LARGE', 'witness response is too large');
  const message = s.replace(/\n$/, '').slice(0, 1000);
  switch (status) {
    case 200: {
      if (!s.endsWith('\n')) throw new FormatError('E_NOTE', 'cosignature lines must end with a newline');
      const lines = s
        .slice(0, -1)
        .split('\n')
        .map((l) => l + '\n');
      if (lines.length > 100) throw new FormatError('E_NOTE', 'too many cosignature lines');
      // Check the form of each line with a throwaway checkpoint-shaped text.
      for (const l of lines) parseNote('x\n\n' + l);
      return { code: 'ok', status: 200, cosignatures: lines };
    }
    case 409: {
      const size = parseTlogSize(s);
      return { code: 'conflict', status: 409, size, equivocation: false, message: `the witness holds size ${size}` };
    }
    case 400:
      return { code: 'bad-request', status: 400, message };
    case 403:
      return { code: 'bad-signature', status: 403, message };
    case 404:
      return { code: 'unknown-log', status: 404, message };
    case 422:
      return { code: 'bad-proof', status: 422, message, equivocation: false };
    default:
      throw new FormatError('E_NOTE', `unexpected witness status ${status}`);
  }
}

/** A log this witness cosigns for: its origin and the operator's key, a type 0x01 vkey named after the origin or a did:key (tlog-witness "Introduction"). */
export interface WitnessedLog {
  origin: string;
  key: NoteVerifier | string;
}

/** Options of a Witness (tlog-witness "HTTP Interface": a witness is a name and a key). */
export interface WitnessOptions {
  /** The witness's cosigner key name (tlog-cosignature "Format": SHOULD be a schema-less URL). */
  name: string;
  /** The witness's own key. */
  identity: Identity;
  /** Durable state (e.g. ledger.aux); pass the same object to every Witness over one database. */
  store: AuxStore;
  /** The logs it witnesses. */
  logs: readonly WitnessedLog[];
  /** Milliseconds since the epoch, like Date.now (the default); cosignatures carry it in seconds. */
  clock?: () => number;
  /** Largest request body accepted (default 64 KiB). */
  maxRequestBytes?: number;
  /** Key prefix inside the store (default `witness/`). */
  prefix?: string;
}

/** What a witness holds for one log (tlog-witness "Introduction": the latest checkpoint it verified). */
export interface WitnessLogState {
  origin: string;
  /** `new` before its first cosignature, `conflict` once it holds equivocation evidence. */
  status: 'new' | 'ok' | 'conflict';
  /** Size of the latest cosigned checkpoint (0 when new). */
  size: number;
  /** That checkpoint: its text and the log's signature line. */
  note?: string;
  /** Time of the latest cosignature, unix seconds. */
  time?: number;
  /** Evidence records held. */
  evidence: number;
  /** Suspect records held (inconclusive failed proofs). */
  suspects: number;
}

/** A signed checkpoint whose consistency proof failed without proving misbehaviour (tlog-witness: "MAY log the request"). */
export interface SuspectRecord {
  oldSize: number;
  /** The witness's checkpoint then (text and the log's signature line). */
  held: string;
  /** The submitted checkpoint (text and the log's signature line). */
  submitted: string;
  proof: string[];
  observed: number;
}

interface LogRecord {
  v: 1;
  size: number;
  root: string;
  note: string;
  time: number;
  /** Evidence records written (the first MAX_EVIDENCE_PER_LOG are kept). */
  conflicts: number;
  /** Suspect records written (a ring of MAX_SUSPECTS_PER_LOG). */
  suspects: number;
}

async function storeCall<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof BotError) throw err;
    throw new StoreError('E_STORE', `the witness store failed: ${(err as Error).message}`, { cause: err });
  }
}

const n16 = (n: number): string => n.toString(16).padStart(8, '0');

/** A witness for other ledgers (tlog-witness "add-checkpoint"; docs/design.md "Witness exchange"). */
export class Witness {
  /** The cosigner key name. */
  readonly name: string;
  /** The witness's cosigner verifier (type 0x04) that partners put in their witness sets. */
  readonly verifier: NoteVerifier;
  readonly #identity: Identity;
  readonly #store: AuxStore;
  readonly #logs: Map<string, NoteVerifier>;
  readonly #clock: () => number;
  readonly #maxBytes: number;
  readonly #prefix: string;

  constructor(opts: WitnessOptions) {
    if (!(opts.identity instanceof Identity)) throw new FormatError('E_KEY', 'a witness needs its own identity');
    this.verifier = NoteVerifier.cosigner(opts.name, opts.identity.publicKey); // checks the key name
    this.name = opts.name;
    this.#identity = opts.identity;
    this.#store = opts.store;
    this.#clock = opts.clock ?? Date.now;
    this.#maxBytes = opts.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
    this.#prefix = opts.prefix ?? 'witness/';
    this.#logs = new Map();
    for (const l of opts.logs) {
      if (this.#logs.has(l.origin)) throw new FormatError('E_NOTE', `log ${l.origin} is listed twice`);
      this.#logs.set(l.origin, logVerifier(l.origin, l.key));
    }
  }

  /** The cosigner vkey `<name>+<hex id>+<base64(0x04 ‖ key)>` (tlog-cosignature "Format"). */
  get vkey(): string {
    return this.verifier.toString();
  }

  /** did:key of the witness key. */
  get did(): DidKey {
    return this.#identity.did;
  }

  /** Origins of the logs witnessed. */
  get origins(): string[] {
    return [...this.#logs.keys()];
  }

  #key(kind: string, origin: string, n?: number): string {
    return `${this.#prefix}${kind}/${encodeURIComponent(origin)}${n === undefined ? '' : '/' + n16(n)}`;
  }

  async #read(origin: string): Promise<LogRecord | undefined> {
    const raw = await storeCall(() => this.#store.get(this.#key('cp', origin)));
    if (!raw) return undefined;
    let r: LogRecord;
    try {
      r = JSON.parse(raw.toString('utf8')) as LogRecord;
    } catch {
      throw new StoreError('E_CORRUPT', `the witness state of ${origin} is unreadable`);
    }
    if (
      r.v !== 1 ||
      !Number.isSafeInteger(r.size) ||
      r.size < 0 ||
      typeof r.root !== 'string' ||
      typeof r.note !== 'string' ||
      !Number.isSafeInteger(r.conflicts) ||
      !Number.isSafeInteger(r.suspects) ||
      !Number.isSafeInteger(r.time)
    ) {
      throw new StoreError('E_CORRUPT', `the witness state of ${origin} is malformed`);
    }
    let root: Buffer | undefined;
    try {
      root = fromBase64(r.root);
    } catch {
      root = undefined;
    }
    if (!root || root.length !== 32) throw new StoreError('E_CORRUPT', `the witness state of ${origin} has no valid root`);
    return r;
  }

  /**
   * Handle an add-checkpoint request body (tlog-witness "add-checkpoint"): 404 unknown
   * origin; 403 no valid log signature; 400 malformed or old > size; 409 old ≠ the stored
   * size (body: the stored size), a different root at the stored size, or a log in
   * conflict; 422 a consistency proof that does not verify. On success the new checkpoint
   * is persisted before the cosignature (time = clock seconds) is returned. Store failures
   * throw StoreError.
   */
  async addCheckpoint(body: string | Uint8Array): Promise<AddCheckpointResult> {
    let req: AddCheckpointRequest;
    let cp: Checkpoint;
    let sigs: NoteSignature[];
    try {
      req = parseAddCheckpointRequest(body, this.#maxBytes);
      const note = parseNote(req.checkpoint);
      sigs = note.signatures;
      cp = parseCheckpoint(note.text);
    } catch (err) {
      return { code: 'bad-request', status: 400, message: (err as Error).message };
    }
    const v = this.#logs.get(cp.origin);
    if (!v) return { code: 'unknown-log', status: 404, message: `unknown log origin ${JSON.stringify(cp.origin).slice(0, 300)}` };
    try {
      openNote(req.checkpoint, [v]);
    } catch (err) {
      if (err instanceof VerificationError) return { code: 'bad-signature', status: 403, message: err.message };
      return { code: 'bad-request', status: 400, message: (err as Error).message };
    }
    if (req.oldSize > cp.size) return { code: 'bad-request', status: 400, message: `old size ${req.oldSize} is above the checkpoint size ${cp.size}` };
    // The checkpoint as the witness keeps it: its text and the log's (verified) signature line.
    const logLine = sigs.find((s) => s.name === v.name && s.keyId.equals(v.keyId)) as NoteSignature;
    const minimal = formatNote(cp.text, [logLine.line]);

    return serialized(this.#store, `${this.#prefix}\u0000${cp.origin}`, async () => {
      // Inside the critical section: re-read the stored state, decide, persist, then answer.
      const held = await this.#read(cp.origin);
      const heldSize = held?.size ?? 0;
      if (held && held.conflicts > 0) {
        return { code: 'conflict', status: 409, size: heldSize, equivocation: true, message: `log ${cp.origin} equivocated: the witness refuses it` };
      }
      if (held && cp.size === held.size && !fromBase64(held.root).equals(cp.root)) {
        await this.#recordEvidence(held, 'fork', minimal, []);
        return { code: 'conflict', status: 409, size: heldSize, equivocation: true, message: `a different root at size ${cp.size}: the log equivocated` };
      }
      if (req.oldSize !== heldSize) {
        return { code: 'conflict', status: 409, size: heldSize, equivocation: false, message: `the witness holds size ${heldSize}, not ${req.oldSize}` };
      }
      if (req.oldSize === 0 && req.proof.length > 0) {
        return { code: 'bad-request', status: 400, message: 'the consistency proof must be empty when the old size is 0' };
      }
      if (cp.size === 0 && !cp.root.equals(EMPTY_ROOT)) {
        return { code: 'bad-proof', status: 422, message: 'a checkpoint of size 0 must carry the empty tree root', equivocation: false };
      }
      if (held && heldSize > 0) {
        try {
          verifyConsistency(heldSize, cp.size, req.proof, fromBase64(held.root), cp.root);
        } catch (err) {
          const heldCp = { size: heldSize, root: fromBase64(held.root) };
          if (isConclusiveInconsistency(heldCp, cp, req.proof)) {
            await this.#recordEvidence(held, 'inconsistent', minimal, req.proof);
            return {
              code: 'bad-proof',
              status: 422,
              message: `${(err as Error).message}; the proof shows a different tree: the log equivocated`,
              equivocation: true,
            };
          }
          await this.#recordSuspect(held, req.oldSize, minimal, req.proof);
          return { code: 'bad-proof', status: 422, message: (err as Error).message, equivocation: false };
        }
      }
      const now = this.#clock();
      const time = Math.floor(now / 1000);
      if (!Number.isSafeInteger(time) || time < 0) throw new LedgerError('E_RANGE', 'the witness clock gave an invalid time');
      const line = cosignLine(cp.text, this.name, this.#identity, time);
      const rec: LogRecord = { v: 1, size: cp.size, root: toBase64(cp.root), note: minimal, time, conflicts: 0, suspects: held?.suspects ?? 0 };
      await storeCall(() => this.#store.batch([{ key: this.#key('cp', cp.origin), value: Buffer.from(JSON.stringify(rec), 'utf8') }]));
      return { code: 'ok', status: 200, cosignatures: [line] };
    });
  }

  /** Keep evidence and mark the log in conflict, in one batch (called inside the log's critical section). */
  async #recordEvidence(held: LogRecord, kind: EvidenceKind, submitted: string, proof: readonly Uint8Array[]): Promise<void> {
    const origin = parseCheckpoint(parseNote(held.note).text).origin;
    const ev: Evidence = {
      v: 1,
      kind,
      origin,
      a: held.note,
      b: submitted,
      proof: proof.map((p) => toBase64(p)),
      observed: Math.max(0, Math.floor(this.#clock() / 1000)),
      witness: this.name,
    };
    const ops: { key: string; value?: Buffer }[] = [];
    if (held.conflicts < MAX_EVIDENCE_PER_LOG) ops.push({ key: this.#key('ev', origin, held.conflicts), value: Buffer.from(evidenceToJson(ev), 'utf8') });
    const rec: LogRecord = { ...held, conflicts: held.conflicts + 1 };
    ops.push({ key: this.#key('cp', origin), value: Buffer.from(JSON.stringify(rec), 'utf8') });
    await storeCall(() => this.#store.batch(ops));
  }

  /** Keep an inconclusive failed proof in a bounded ring (tlog-witness: "MAY log the request"). */
  async #recordSuspect(held: LogRecord, oldSize: number, submitted: string, proof: readonly Uint8Array[]): Promise<void> {
    const origin = parseCheckpoint(parseNote(held.note).text).origin;
    const s: SuspectRecord = {
      oldSize,
      held: held.note,
      submitted,
      proof: proof.map((p) => toBase64(p)),
      observed: Math.max(0, Math.floor(this.#clock() / 1000)),
    };
    const rec: LogRecord = { ...held, suspects: held.suspects + 1 };
    await storeCall(() =>
      this.#store.batch([
        { key: this.#key('sus', origin, held.suspects % MAX_SUSPECTS_PER_LOG), value: Buffer.from(JSON.stringify(s), 'utf8') },
        { key: this.#key('cp', origin), value: Buffer.from(JSON.stringify(rec), 'utf8') },
      ]),
    );
  }

  #checkOrigin(origin: string): void {
    if (!this.#logs.has(origin)) throw new LedgerError('E_NOT_FOUND', `this witness does not witness ${JSON.stringify(origin).slice(0, 300)}`);
  }

  /** What the witness holds for a log: status new / ok / conflict, size, note (tlog-witness "Introduction"). */
  async state(origin: string): Promise<WitnessLogState> {
    this.#checkOrigin(origin);
    const r = await this.#read(origin);
    if (!r) return { origin, status: 'new', size: 0, evidence: 0, suspects: 0 };
    return {
      origin,
      status: r.conflicts > 0 ? 'conflict' : 'ok',
      size: r.size,
      note: r.note,
      time: r.time,
      evidence: Math.min(r.conflicts, MAX_EVIDENCE_PER_LOG),
      suspects: Math.min(r.suspects, MAX_SUSPECTS_PER_LOG),
    };
  }

  /** Equivocation evidence held for a log, oldest first (lib/format/equivocation.ts; publish with evidenceToJson). */
  async evidence(origin: string): Promise<Evidence[]> {
    this.#checkOrigin(origin);
    const out: Evidence[] = [];
    await storeCall(async () => {
      for await (const [, v] of this.#store.iterator(this.#key('ev', origin) + '/')) out.push(parseEvidence(v.toString('utf8')));
    });
    return out;
  }

  /** Suspect records held for a log (inconclusive failed proofs), in ring order (tlog-witness: "MAY log the request"). */
  async suspects(origin: string): Promise<SuspectRecord[]> {
    this.#checkOrigin(origin);
    const out: SuspectRecord[] = [];
    await storeCall(async () => {
      for await (const [, v] of this.#store.iterator(this.#key('sus', origin) + '/')) out.push(JSON.parse(v.toString('utf8')) as SuspectRecord);
    });
    return out.sort((a, b) => a.observed - b.observed);
  }
}

/** The tree size a 409 body names (tlog-witness "add-checkpoint": text/x.tlog.size). */
export function parseTlogSize(body: string): number {
  if (typeof body !== 'string' || !body.endsWith('\n') || !SIZE.test(body.slice(0, -1))) throw new FormatError('E_NOTE', 'not a text/x.tlog.size body');
  const n = Number(body.slice(0, -1));
  if (!Number.isSafeInteger(n)) throw new FormatError('E_NOTE', 'size above 2^53-1');
  return n;
}
