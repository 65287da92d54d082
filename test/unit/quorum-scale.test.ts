/**
 * The cosignature collector at consortium scale (docs/design.md "Witness set and quorum"): a
 * round of n witnesses costs n signature checks, not O(n²), over a real LevelDB. Before the
 * fix every added line re-read and re-verified every line already held for that size, and so
 * did every count and every confirmed-checkpoint read.
 */
import { strict as assert } from 'node:assert';
import { cosignLine, Identity, Ledger, NoteVerifier, parseNote, signEnvelope } from '../../lib';
import { CosignatureCollector, QuorumPolicy } from '../../lib/consortium/quorum';
import { tmpDir } from '../helpers';

const ORIGIN = 'example.com/scale';
const T = 1_700_000_000;

describe('cosignature collector with 14 witnesses', () => {
  let t: ReturnType<typeof tmpDir>;
  let led: Ledger;
  const op = Identity.generate();
  const ids = Array.from({ length: 14 }, () => Identity.generate());
  const names = ids.map((_, i) => `w${i}.example/witness`);
  let checks = 0;
  const verifiers = ids.map((id, i) => {
    const v = NoteVerifier.cosigner(names[i], id.publicKey);
    const verify = v.verifyLine.bind(v);
    v.verifyLine = (text, s) => {
      checks++;
      return verify(text, s);
    };
    return v;
  });
  const policy = QuorumPolicy.create({ origin: ORIGIN, operator: op.did, witnesses: verifiers.map((v) => ({ key: v })), quorum: 8 });

  beforeEach(async () => {
    t = tmpDir('bot-quorum-scale-');
    led = await Ledger.open({ dir: t.dir, origin: ORIGIN, identity: op });
    const device = Identity.generate();
    for (let i = 0; i < 4; i++) await led.append(signEnvelope(device, { kind: 'reading', seq: i, ts: T * 1000, topic: 't', payload: { i } }));
  });
  afterEach(async () => {
    await led.close();
    t.cleanup();
  });

  it('verifies each line once as the lines arrive one by one, and counts without verifying again', async () => {
    const col = await CosignatureCollector.open({ store: led.aux, policy });
    const note = (await led.checkpoint())!.note;
    await col.addCheckpoint(note);
    const text = parseNote(note).text;
    checks = 0;
    for (let i = 0; i < ids.length; i++) {
      const r = await col.addCosignatures(4, cosignLine(text, names[i], ids[i], T + i));
      assert.deepEqual(r.accepted, [names[i]]);
      assert.equal(r.confirmations.count, i + 2);
      // What an entry's status reads on every confirmation (Consortium.status).
      await col.confirmations(4);
      await col.confirmedCheckpoint(4);
    }
    assert.equal(col.confirmedSize, 4);
    assert.equal(checks, ids.length, `${checks} signature checks for ${ids.length} lines`);
    // A repeat is ignored without being stored again; a reopened collector verifies what it reads, once.
    assert.equal((await col.addCosignatures(4, cosignLine(text, names[0], ids[0], T))).ignored, 1);
    checks = 0;
    const again = await CosignatureCollector.open({ store: led.aux, policy });
    assert.equal((await again.confirmations(4))?.count, 15);
    assert.equal((await again.confirmations(4))?.count, 15);
    assert.equal(checks, ids.length);
  });

  it('forgets pruned sizes', async () => {
    const col = await CosignatureCollector.open({ store: led.aux, policy });
    const n4 = (await led.checkpoint())!.note;
    await col.addCheckpoint(n4);
    await col.addCosignatures(4, cosignLine(parseNote(n4).text, names[0], ids[0], T));
    const device = Identity.generate();
    await led.append(signEnvelope(device, { kind: 'reading', seq: 0, ts: T * 1000, topic: 't', payload: {} }));
    const n5 = (await led.checkpoint())!.note;
    await col.addCheckpoint(n5);
    const lines = ids.slice(0, 8).map((id, i) => cosignLine(parseNote(n5).text, names[i], id, T));
    assert.equal((await col.addCosignatures(5, lines)).confirmedSize, 5);
    assert.ok((await col.prune(5)) >= 2);
    assert.equal(await col.confirmations(4), undefined);
    assert.equal((await col.confirmations(5))?.count, 9);
  });
});
