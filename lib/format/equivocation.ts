/**
 * Equivocation evidence: two checkpoints signed by one log's key that cannot both be true
 * (docs/design.md "The model": "proof of misbehaviour, published and shown as status
 * `conflict`"). Evidence is self-contained: anyone holding the log's verifier key re-checks
 * it with checkEvidence, without trusting the witness that found it.
 *
 * Two kinds prove misbehaviour on their own (assuming SHA-256 collision resistance):
 *
 * - `fork`: two signed checkpoints of the same size with different root hashes
 *   (c2sp.org/tlog-witness "add-checkpoint": same size, roots differ → 409);
 * - `inconsistent`: signed checkpoints A (size m) and B (size n > m) and a consistency
 *   proof from m to n (RFC 9162 §2.1.4.2) that reproduces B's root but derives an old root
 *   different from A's: the tree B commits to has a different prefix at m than A. This is
 *   what a forked log's own proof looks like (tlog-witness: "it might be proof of log
 *   misbehavior"). It needs m not to be a power of two (for such m the proof does not carry
 *   the old root).
 *
 * A proof that merely fails to verify proves nothing — anyone can pair a log's genuine
 * checkpoints with garbage hashes — so it is not evidence (the witness keeps it as a
 * bounded "suspect" record instead, see lib/consortium/witness.ts).
 */
import { fromBase64, toBase64 } from './bytes';
import { FormatError, LedgerError } from '../errors';
import { canonicalize } from './jcs';
import { isPowerOfTwo, rootsFromConsistencyProof } from './merkle';
import { type Checkpoint, NoteVerifier, openNote, parseCheckpoint } from './note';

/** What the evidence shows (module comment; tlog-witness "add-checkpoint"). */
export type EvidenceKind = 'fork' | 'inconsistent';

/** Self-contained proof that a log signed two incompatible checkpoints (docs/design.md "The model"). */
export interface Evidence {
  /** Format version, 1. */
  v: 1;
  kind: EvidenceKind;
  /** The log's origin. */
  origin: string;
  /** The earlier-known signed checkpoint note (size ≤ b's): text and the log's signature line. */
  a: string;
  /** The conflicting signed checkpoint note. */
  b: string;
  /** For `inconsistent`: the consistency proof from a's size to b's, base64 (RFC 9162 §2.1.4); else empty. */
  proof: string[];
  /** Unix seconds when it was observed; informational, not verified. */
  observed: number;
  /** Cosigner name of the witness that found it; informational, not verified. */
  witness?: string;
}

/** Largest evidence JSON accepted by parseEvidence (docs/design.md "Sync over MQTT": parsed with limits). */
export const MAX_EVIDENCE_BYTES = 64 * 1024;
/** Most proof hashes in evidence (tlog-witness "add-checkpoint": at most 63 proof lines). */
const MAX_PROOF = 63;

/**
 * The old and new roots a consistency proof implies (RFC 9162 §2.1.4.2, steps 2-6), or
 * undefined if it is malformed for these sizes. For a power-of-two size1 the old root is not
 * in the proof: pass the claimed one as root1 (it is then returned as the old root).
 */
export function consistencyRoots(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1?: Uint8Array,
): { oldRoot: Buffer; newRoot: Buffer } | undefined {
  if (!(Number.isSafeInteger(size1) && Number.isSafeInteger(size2) && size1 > 0 && size1 < size2)) return undefined;
  if (proof.length === 0 || proof.length > MAX_PROOF || proof.some((p) => p.length !== 32)) return undefined;
  if (isPowerOfTwo(size1) && (!root1 || root1.length !== 32)) return undefined;
  return rootsFromConsistencyProof(size1, size2, proof, root1 ?? proof[0]);
}

/**
 * Whether a failed consistency proof from checkpoint a to b is conclusive: it reproduces
 * b's root but derives an old root other than a's (RFC 9162 §2.1.4.2; module comment).
 */
export function isConclusiveInconsistency(a: Pick<Checkpoint, 'size' | 'root'>, b: Pick<Checkpoint, 'size' | 'root'>, proof: readonly Uint8Array[]): boolean {
  if (!(a.size < b.size) || isPowerOfTwo(a.size)) return false;
  const r = consistencyRoots(a.size, b.size, proof);
  return r !== undefined && r.newRoot.equals(b.root) && !r.oldRoot.equals(a.root);
}

/** Why evidence does or does not prove misbehaviour (docs/design.md "The model"). */
export interface EvidenceVerdict {
  proven: boolean;
  reason: string;
}

function verifiersOf(v: NoteVerifier | readonly NoteVerifier[]): NoteVerifier[] {
  return v instanceof NoteVerifier ? [v] : [...v];
}

/** Open a note with the log's keys and parse its checkpoint, or say why not (signed-note "Signatures"). */
function openCheckpoint(note: string, vs: NoteVerifier[]): Checkpoint | string {
  try {
    return parseCheckpoint(openNote(note, vs).text);
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Re-verify evidence independently (docs/design.md "The model"): both notes carry a
 * valid signature of the log's key, share the origin, and either have the same size and
 * different roots (`fork`), or the proof reproduces b's root from an old root other than a's
 * (`inconsistent`, see isConclusiveInconsistency). Never throws.
 */
export function explainEvidence(evidence: unknown, logVerifier: NoteVerifier | readonly NoteVerifier[]): EvidenceVerdict {
  let e: Evidence;
  try {
    e = parseEvidence(evidence);
  } catch (err) {
    return { proven: false, reason: `malformed evidence: ${(err as Error).message}` };
  }
  const vs = verifiersOf(logVerifier);
  const a = openCheckpoint(e.a, vs);
  if (typeof a === 'string') return { proven: false, reason: `checkpoint a is not signed by the log: ${a}` };
  const b = openCheckpoint(e.b, vs);
  if (typeof b === 'string') return { proven: false, reason: `checkpoint b is not signed by the log: ${b}` };
  if (a.origin !== e.origin || b.origin !== e.origin) return { proven: false, reason: 'the checkpoints are not of the evidence origin' };
  if (e.kind === 'fork') {
    if (a.size !== b.size) return { proven: false, reason: 'a fork needs two checkpoints of the same size' };
    if (a.root.equals(b.root)) return { proven: false, reason: 'the roots are equal: no fork' };
    return { proven: true, reason: `two signed checkpoints of size ${a.size} with different roots` };
  }
  if (!(a.size < b.size)) return { proven: false, reason: 'inconsistency needs a smaller checkpoint a and a larger b' };
  if (isPowerOfTwo(a.size)) return { proven: false, reason: `a proof from a power-of-two size (${a.size}) cannot show a different old root` };
  let proof: Buffer[];
  try {
    proof = e.proof.map((p) => fromBase64(p, 'proof hash'));
  } catch {
    return { proven: false, reason: 'a proof hash is not base64' };
  }
  const r = consistencyRoots(a.size, b.size, proof);
  if (!r) return { proven: false, reason: `the proof is malformed for sizes ${a.size} and ${b.size}` };
  if (!r.newRoot.equals(b.root)) return { proven: false, reason: 'the proof does not reproduce the root of b: it proves nothing' };
  if (r.oldRoot.equals(a.root)) return { proven: false, reason: 'the proof shows a and b are consistent' };
  return { proven: true, reason: `the tree of size ${b.size} has a different prefix at size ${a.size} than the signed checkpoint a` };
}

/** True when the evidence proves the log misbehaved (see explainEvidence; docs/design.md "The model"). */
export function checkEvidence(evidence: unknown, logVerifier: NoteVerifier | readonly NoteVerifier[]): boolean {
  return explainEvidence(evidence, logVerifier).proven;
}

/** Extra fields of new evidence, informational and not verified (docs/design.md "The model"). */
export interface EvidenceMeta {
  observed?: number;
  witness?: string;
}

function meta(m: EvidenceMeta): Pick<Evidence, 'observed' | 'witness'> {
  return m.witness === undefined ? { observed: m.observed ?? 0 } : { observed: m.observed ?? 0, witness: m.witness };
}

/** Build `fork` evidence from two signed notes of one size with different roots; FormatError E_NOTE if they do not prove it (tlog-witness "add-checkpoint"). */
export function forkEvidence(a: string, b: string, logVerifier: NoteVerifier | readonly NoteVerifier[], m: EvidenceMeta = {}): Evidence {
  const origin = parseCheckpoint(openNote(a, verifiersOf(logVerifier)).text).origin;
  const e: Evidence = { v: 1, kind: 'fork', origin, a, b, proof: [], ...meta(m) };
  const verdict = explainEvidence(e, logVerifier);
  if (!verdict.proven) throw new FormatError('E_NOTE', `not a fork: ${verdict.reason}`);
  return e;
}

/** Build `inconsistent` evidence (a smaller, b larger, proof from a to b); throws FormatError if not conclusive (RFC 9162 §2.1.4.2). */
export function inconsistencyEvidence(
  a: string,
  b: string,
  proof: readonly Uint8Array[],
  logVerifier: NoteVerifier | readonly NoteVerifier[],
  m: EvidenceMeta = {},
): Evidence {
  const origin = parseCheckpoint(openNote(a, verifiersOf(logVerifier)).text).origin;
  const e: Evidence = { v: 1, kind: 'inconsistent', origin, a, b, proof: proof.map((p) => toBase64(p)), ...meta(m) };
  const verdict = explainEvidence(e, logVerifier);
  if (!verdict.proven) throw new FormatError('E_NOTE', `not conclusive: ${verdict.reason}`);
  return e;
}

/** Evidence as canonical JSON (RFC 8785), for publishing on `bot/v1/<ledgerId>/conflict` (docs/design.md "Sync over MQTT"). */
export function evidenceToJson(e: Evidence): string {
  return canonicalize(parseEvidence(e));
}

function field<T>(ok: boolean, what: string, v: T): T {
  if (!ok) throw new FormatError('E_JSON', `evidence ${what}`);
  return v;
}

/** Parse and shape-check evidence from JSON text, bytes or a value; FormatError E_JSON / E_TOO_LARGE on failure (docs/design.md "Sync over MQTT": parsed with limits). */
export function parseEvidence(input: unknown): Evidence {
  let v: unknown = input;
  if (typeof input === 'string' || input instanceof Uint8Array) {
    const text = typeof input === 'string' ? input : Buffer.from(input).toString('utf8');
    if (Buffer.byteLength(text, 'utf8') > MAX_EVIDENCE_BYTES) throw new FormatError('E_TOO_LARGE', `evidence is larger than ${MAX_EVIDENCE_BYTES} bytes`);
    try {
      v = JSON.parse(text);
    } catch {
      throw new FormatError('E_JSON', 'evidence is not JSON');
    }
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new FormatError('E_JSON', 'evidence must be an object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!['v', 'kind', 'origin', 'a', 'b', 'proof', 'observed', 'witness'].includes(k))
      throw new FormatError('E_JSON', `evidence has an unknown field ${JSON.stringify(k).slice(0, 40)}`);
  }
  field(o.v === 1, 'version must be 1', 0);
  const kind = field(o.kind === 'fork' || o.kind === 'inconsistent', 'kind must be "fork" or "inconsistent"', o.kind as EvidenceKind);
  const origin = field(typeof o.origin === 'string' && o.origin !== '', 'origin must be a non-empty string', o.origin as string);
  const a = field(typeof o.a === 'string' && o.a.length <= MAX_EVIDENCE_BYTES, 'a must be a signed note', o.a as string);
  const b = field(typeof o.b === 'string' && o.b.length <= MAX_EVIDENCE_BYTES, 'b must be a signed note', o.b as string);
  const proof = field(
    Array.isArray(o.proof) && o.proof.length <= MAX_PROOF && o.proof.every((p) => typeof p === 'string' && p.length <= 64),
    'proof must be a list of at most 63 base64 hashes',
    o.proof as string[],
  );
  const observed = field(
    o.observed === undefined || (typeof o.observed === 'number' && Number.isSafeInteger(o.observed) && o.observed >= 0),
    'observed must be a non-negative integer',
    (o.observed as number | undefined) ?? 0,
  );
  const witness = field(
    o.witness === undefined || (typeof o.witness === 'string' && o.witness.length <= 255),
    'witness must be a string',
    o.witness as string | undefined,
  );
  const e: Evidence = { v: 1, kind, origin, a, b, proof: [...proof], observed };
  if (witness !== undefined) e.witness = witness;
  return e;
}

/** Raised when a log is caught signing incompatible checkpoints; carries the evidence (errors.ts E_CONFLICT). */
export class EquivocationError extends LedgerError {
  /** The evidence, verifiable with checkEvidence. */
  readonly evidence: Evidence;
  constructor(message: string, evidence: Evidence) {
    super('E_CONFLICT', message);
    this.evidence = evidence;
  }
}
