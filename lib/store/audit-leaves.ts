/** The per-leaf part of the audit, shared by the main thread and the worker threads. */
import { BotError } from '../errors';
import { verifyEnvelope } from '../format/envelope';
import { decodeLeaves } from './layout';

/** One unit of signature work: the framed leaves of a chunk. */
export interface LeafTask {
  id: number;
  chunk: number;
  start: number;
  leaves: Uint8Array;
}

/** A failed check at an entry index. */
export interface AuditFailure {
  index: number;
  code: string;
  reason: string;
}

/** What checking a chunk's leaves found: the first failure, and each valid leaf's signer and seq. */
export interface LeafResult {
  chunk: number;
  start: number;
  failure: AuditFailure | null;
  signers: string[];
  seqs: number[];
}

/** Verify each leaf's signature and canonical form, up to the first failure. */
export function checkLeaves(task: LeafTask): LeafResult {
  const buf = Buffer.from(task.leaves.buffer, task.leaves.byteOffset, task.leaves.byteLength);
  const leaves = decodeLeaves(buf, task.chunk);
  const out: LeafResult = { chunk: task.chunk, start: task.start, failure: null, signers: [], seqs: [] };
  for (let i = 0; i < leaves.length; i++) {
    const index = task.start + i;
    try {
      const env = verifyEnvelope(leaves[i], { maxBytes: Infinity, fresh: true });
      if (!env.bytes.equals(leaves[i])) {
        out.failure = { index, code: 'E_ENVELOPE', reason: `entry ${index} is not in canonical (RFC 8785) form` };
        break;
      }
      out.signers.push(env.envelope.signer);
      out.seqs.push(env.envelope.seq);
    } catch (err) {
      const code = err instanceof BotError ? err.code : 'E_ENVELOPE';
      out.failure = { index, code, reason: `entry ${index}: ${(err as Error).message}` };
      break;
    }
  }
  return out;
}
