/** The one consensus-state rule: an entry's pending / sealed / confirmed / conflict, and a strip checkpoint's. */
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { checkpointState, type ConsensusState, entryState, type EntryFacts } from '../../lib/consortium/entry-state';

const facts = (f: Partial<EntryFacts>): EntryFacts => ({ index: 5, size: 20, sealedSize: undefined, confirmedSize: 0, conflict: false, ...f });

describe('entry state', () => {
  it('is pending until a checkpoint covers the entry, then sealed, then confirmed, each with the size it refers to', () => {
    assert.deepEqual(entryState(facts({})), { status: 'pending', treeSize: 20 });
    assert.deepEqual(entryState(facts({ sealedSize: 5 })), { status: 'pending', treeSize: 20 }, 'a checkpoint of size 5 ends before entry 5');
    assert.deepEqual(entryState(facts({ sealedSize: 6 })), { status: 'sealed', treeSize: 6 });
    assert.deepEqual(entryState(facts({ sealedSize: 12, confirmedSize: 5 })), { status: 'sealed', treeSize: 12 });
    assert.deepEqual(entryState(facts({ sealedSize: 12, confirmedSize: 6 })), { status: 'confirmed', treeSize: 6 }, 'the confirmed checkpoint, not the latest');
    assert.deepEqual(entryState(facts({ index: 0, size: 1, sealedSize: 1, confirmedSize: 1 })), { status: 'confirmed', treeSize: 1 });
  });

  it('is conflict whatever else holds, referring to the latest checkpoint (the ledger size when none)', () => {
    assert.deepEqual(entryState(facts({ conflict: true })), { status: 'conflict', treeSize: 20 });
    assert.deepEqual(entryState(facts({ conflict: true, sealedSize: 3 })), { status: 'conflict', treeSize: 3 });
    assert.deepEqual(entryState(facts({ conflict: true, sealedSize: 12, confirmedSize: 10 })), { status: 'conflict', treeSize: 12 });
  });

  it('never confirms a standalone entry (nothing confirmed) and orders the states by index (property)', () => {
    const rank: Record<ConsensusState, number> = { pending: 0, sealed: 1, confirmed: 2, conflict: 3 };
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }).chain((size) =>
          fc.record({
            size: fc.constant(size),
            index: fc.nat(size - 1),
            sealed: fc.option(fc.integer({ min: 0, max: size }), { nil: undefined }),
            confirmedFrac: fc.double({ min: 0, max: 1, noNaN: true }),
            conflict: fc.boolean(),
          }),
        ),
        ({ size, index, sealed, confirmedFrac, conflict }) => {
          const confirmedSize = Math.floor((sealed ?? 0) * confirmedFrac);
          const f: EntryFacts = { index, size, sealedSize: sealed, confirmedSize, conflict };
          const s = entryState(f);
          const standalone = entryState({ ...f, confirmedSize: 0, conflict: false });
          assert.notEqual(standalone.status, 'confirmed');
          assert.equal(standalone.status, sealed !== undefined && sealed > index ? 'sealed' : 'pending');
          if (conflict) assert.equal(s.status, 'conflict');
          // An earlier entry is never in a weaker state than a later one.
          if (index > 0) assert.ok(rank[entryState({ ...f, index: index - 1 }).status] >= rank[s.status]);
          // The size referred to covers the entry unless it is pending (or a conflict before any checkpoint covering it).
          if (s.status === 'sealed' || s.status === 'confirmed') assert.ok(s.treeSize > index);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('gives a signed checkpoint sealed, confirmed once it reached the quorum, conflict over both', () => {
    assert.equal(checkpointState({ conflict: false, confirmed: false }), 'sealed');
    assert.equal(checkpointState({ conflict: false, confirmed: true }), 'confirmed');
    assert.equal(checkpointState({ conflict: true, confirmed: false }), 'conflict');
    assert.equal(checkpointState({ conflict: true, confirmed: true }), 'conflict');
  });
});
