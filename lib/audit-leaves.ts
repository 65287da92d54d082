/** The per-leaf part of the audit, shared by the main thread and the worker threads. */
import { BotError } from './errors';
import { verifyEnvelope } from './envelope';
import { decodeLeaves } from './layout';

/** One unit of signature work: the framed leaves of a chunk. */
export interface LeafTask { id: number; chunk: number; start: number; leaves: Uint8Array }

/** A failed check at an entry index. */
export interface AuditFailure { index: number; code: string; reason: string }

/** Verify each leaf's signature and canonical form; the first failure, or null. */
export function checkLeaves(task: LeafTask): AuditFailure | null {
  const buf = Buffer.from(task.leaves.buffer, task.leaves.byteOffset, task.leaves.byteLength);
  const leaves = decodeLeaves(buf, task.chunk);
  for (let i = 0; i < leaves.length; i++) {
    const index = task.start + i;
    try {
      const env = verifyEnvelope(leaves[i], { maxBytes: Infinity });
      if (!env.bytes.equals(leaves[i])) return { index, code: 'E_ENVELOPE', reason: `entry ${index} is not in canonical (RFC 8785) form` };
    } catch (err) {
      const code = err instanceof BotError ? err.code : 'E_ENVELOPE';
      return { index, code, reason: `entry ${index}: ${(err as Error).message}` };
    }
  }
  return null;
}
