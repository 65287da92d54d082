/**
 * The consensus state of an entry or of a signed checkpoint:
 * docs/design.md "Witness set and quorum"
 * (the one place that says what `pending`, `sealed`, `confirmed` and `conflict` mean, used
 * by the Consortium's entry status, a standalone ledger's status in bot-consensus and the
 * consensus strip of the ledger view).
 *
 * - `conflict` overrides everything: the operator was proven to have signed two
 *   checkpoints that cannot both hold (equivocation evidence), so no checkpoint of it counts.
 * - `confirmed`: a checkpoint covering the entry reached the quorum of signatures, at least
 *   one of them a witness's (quorum.ts isConfirmed).
 * - `sealed`: a checkpoint signed by the operator covers the entry.
 * - `pending`: appended, in no checkpoint yet.
 */

/** Consensus status of an entry (docs/design.md "Nodes": bot-consensus). */
export type ConsensusState = 'pending' | 'sealed' | 'confirmed' | 'conflict';

/** What is known of the ledger when judging an entry. */
export interface EntryFacts {
  /** The entry's index. */
  index: number;
  /** The ledger's committed size. */
  size: number;
  /** Size of the latest signed checkpoint, undefined when there is none. */
  sealedSize: number | undefined;
  /** Size of the largest checkpoint that reached the quorum (0 when none did, e.g. standalone). */
  confirmedSize: number;
  /** Whether the operator was proven to equivocate. */
  conflict: boolean;
}

/** An entry's state and the tree size of the checkpoint it refers to (the ledger size while pending or with no checkpoint). */
export interface EntryState {
  status: ConsensusState;
  treeSize: number;
}

/** The rule itself, on what holds: conflict over confirmed over sealed over pending. */
function consensusState(conflict: boolean, confirmed: boolean, sealed: boolean): ConsensusState {
  if (conflict) return 'conflict';
  if (confirmed) return 'confirmed';
  if (sealed) return 'sealed';
  return 'pending';
}

/** The consensus state of the entry at an index, and the checkpoint size that state refers to (tlog-cosignature "Format" for what confirms). */
export function entryState(f: EntryFacts): EntryState {
  const status = consensusState(f.conflict, f.confirmedSize > f.index, f.sealedSize !== undefined && f.sealedSize > f.index);
  switch (status) {
    case 'conflict':
      return { status, treeSize: f.sealedSize ?? f.size };
    case 'confirmed':
      return { status, treeSize: f.confirmedSize };
    case 'sealed':
      return { status, treeSize: f.sealedSize ?? f.size };
    default:
      return { status, treeSize: f.size };
  }
}

/** The state of one signed checkpoint (a consensus strip item): it is sealed by its signature, confirmed when it reached the quorum itself. */
export function checkpointState(c: { conflict: boolean; confirmed: boolean }): Exclude<ConsensusState, 'pending'> {
  return consensusState(c.conflict, c.confirmed, true) as Exclude<ConsensusState, 'pending'>;
}
