/**
 * Witness set and quorum (docs/design.md "Witness set and quorum"): counting confirmations over
 * the consortium, the cosignature collector over a real LevelDB, ledger ids, and one round
 * of three partners confirming a ledger through tlog-witness requests.
 */
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import { cosignLine, Identity, Ledger, NoteVerifier, openNote, parseNote, signCheckpoint, signEnvelope } from '../../lib';
import { CosignatureCollector, countConfirmations, defaultQuorum, ledgerId, QuorumPolicy, type WitnessInit } from '../../lib/consortium/quorum';
import { checkEvidence, EquivocationError } from '../../lib/format/equivocation';
import { formatAddCheckpointRequest, parseAddCheckpointResponse, formatAddCheckpointResponse, Witness } from '../../lib/consortium/witness';
import { ledgerTopics } from '../../lib/consortium/publisher';
import { tmpDir } from '../helpers';

const ORIGIN = 'example.com/plant-1';
const op = Identity.generate();
const device = Identity.generate();
const b = Identity.generate();
const c = Identity.generate();
const outsider = Identity.generate();
const B = 'partner-b.example/witness';
const C = 'partner-c.example/witness';
const T = 1_700_000_000;

function policy(
  quorum?: number,
  witnesses: WitnessInit[] = [
    { name: B, key: b.did },
    { name: C, key: c.did },
  ],
): QuorumPolicy {
  return QuorumPolicy.create({ origin: ORIGIN, operator: op.did, witnesses, quorum });
}

function withLines(note: string, ...lines: string[]): string {
  return note + lines.join('');
}

async function growTo(led: Ledger, n: number, tag = 'h'): Promise<string> {
  let seq = (await led.lastSeq(device.did)) + 1;
  const envs = [];
  for (let i = led.size; i < n; i++) envs.push(signEnvelope(device, { kind: 'reading', seq: seq++, ts: 1_700_000_000_000 + i, payload: { tag, i } }));
  await Promise.all(envs.map((e) => led.append(e)));
  const cp = await led.checkpoint();
  return cp ? cp.note : (await led.checkpointAt(n))!.note;
}

describe('quorum (witness set, confirmations, collector)', function () {
  this.timeout(20000);
  const root = crypto.createHash('sha256').update('tree').digest();
  const note = signCheckpoint(ORIGIN, 10, root, op);
  const body = parseNote(note).text;

  it('computes the default quorum as a majority of the operator plus the witnesses', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map(defaultQuorum), [1, 2, 2, 3, 3, 4, 4]);
    assert.equal(policy().quorum, 2);
    assert.equal(policy().total, 3);
    assert.equal(policy(undefined, []).quorum, 1);
  });

  it('never confirms on the operator signature alone, even with a quorum of 1', () => {
    const r = countConfirmations(note, policy(undefined, []));
    assert.deepEqual(r, { size: 10, count: 1, quorum: 1, confirmed: false, witnesses: [] });
    assert.equal(countConfirmations(note, policy(1)).confirmed, false);
    assert.equal(countConfirmations(withLines(note, cosignLine(body, C, c, T)), policy(1)).confirmed, true);
  });

  it("counts 2 of 3 reached and not reached, with each witness's name, did and time", () => {
    const p = policy();
    assert.deepEqual(countConfirmations(note, p), { size: 10, count: 1, quorum: 2, confirmed: false, witnesses: [] });
    const r = countConfirmations(withLines(note, cosignLine(body, C, c, T + 5)), p);
    assert.equal(r.count, 2);
    assert.equal(r.confirmed, true);
    assert.deepEqual(r.witnesses, [{ did: c.did, name: C, time: T + 5 }]);
    const all = countConfirmations(withLines(note, cosignLine(body, C, c, T), cosignLine(body, B, b, T)), policy(3));
    assert.equal(all.count, 3);
    assert.deepEqual(
      all.witnesses.map((w) => w.name),
      [B, C],
    ); // set order
    assert.equal(countConfirmations(withLines(note, cosignLine(body, B, b, T)), policy(3)).confirmed, false);
  });

  it('ignores cosignatures from keys outside the set, including a set name with another key', () => {
    const p = policy();
    const r = countConfirmations(withLines(note, cosignLine(body, 'stranger.example/w', outsider, T), cosignLine(body, B, outsider, T)), p);
    assert.equal(r.count, 1);
    assert.equal(r.confirmed, false);
  });

  it('counts a witness that cosigned twice only once', () => {
    const r = countConfirmations(withLines(note, cosignLine(body, B, b, T), cosignLine(body, B, b, T + 60)), policy(3));
    assert.equal(r.count, 2);
    assert.equal(r.confirmed, false);
    assert.deepEqual(r.witnesses, [{ did: b.did, name: B, time: T }]);
  });

  it('requires a valid operator signature and rejects a bad set signature and a foreign origin', () => {
    const p = policy();
    const cosigsOnly = `${body}\n${cosignLine(body, B, b, T)}${cosignLine(body, C, c, T)}`;
    assert.throws(() => countConfirmations(cosigsOnly, p), { code: 'E_SIGNATURE' });
    const badB = cosignLine(parseNote(signCheckpoint(ORIGIN, 11, root, op)).text, B, b, T); // over another checkpoint
    assert.throws(() => countConfirmations(withLines(note, badB), p), { code: 'E_SIGNATURE' });
    const other = signCheckpoint('example.com/other', 10, root, op);
    assert.throws(() => countConfirmations(other, p), { code: 'E_SIGNATURE' }); // key name = origin: not this log's key
  });

  it('rejects impossible quorums and witness sets that are not distinct', () => {
    assert.throws(() => policy(4), { code: 'E_NOTE', message: /impossible.*1 to 3/ });
    assert.throws(() => policy(0), { code: 'E_NOTE' });
    assert.throws(() => policy(2, []), { code: 'E_NOTE' });
    assert.throws(() => policy(1.5), { code: 'E_NOTE' });
    assert.throws(
      () =>
        policy(undefined, [
          { name: B, key: b.did },
          { name: B, key: c.did },
        ]),
      /listed twice/,
    );
    assert.throws(
      () =>
        policy(undefined, [
          { name: B, key: b.did },
          { name: C, key: b.did },
        ]),
      /same public key/,
    );
    assert.throws(() => policy(undefined, [{ name: B, key: op.did }]), /operator key/);
    assert.throws(() => policy(undefined, [{ key: b.did }]), /needs its cosigner key name/);
    assert.throws(() => policy(undefined, [{ name: B, key: NoteVerifier.ed25519(B, b.publicKey) }]), /cosigner key/);
    assert.throws(() => QuorumPolicy.create({ origin: ORIGIN, operator: NoteVerifier.ed25519('other', op.publicKey) }), /not the origin/);
    // A vkey carries its own name; a given name must match it.
    const vkey = NoteVerifier.cosigner(B, b.publicKey).toString();
    assert.equal(policy(undefined, [{ key: vkey }]).witnesses[0].name, B);
    assert.throws(() => policy(undefined, [{ name: C, key: vkey }]), /does not match/);
  });

  it('derives a 16-hex ledger id from the origin and operator key', () => {
    const id = ledgerId(ORIGIN, op.did);
    assert.match(id, /^[0-9a-f]{16}$/);
    const expect = crypto
      .createHash('sha256')
      .update(Buffer.concat([Buffer.from(ORIGIN + '\n'), op.publicKey.bytes]))
      .digest('hex')
      .slice(0, 16);
    assert.equal(id, expect);
    assert.equal(ledgerId(ORIGIN, op.publicKey), id);
    assert.notEqual(ledgerId('example.com/plant-2', op.did), id);
    assert.notEqual(ledgerId(ORIGIN, b.did), id);
    assert.equal(policy().ledgerId, id);
    assert.equal(ledgerTopics(id).conflict, `bot/v1/${id}/conflict`);
    assert.throws(() => ledgerId(ORIGIN, 'did:key:nope'), { code: 'E_DID' });
  });

  describe('CosignatureCollector over LevelDB', () => {
    let t: ReturnType<typeof tmpDir>;
    let led: Ledger;
    beforeEach(async () => {
      t = tmpDir('bot-quorum-');
      led = await Ledger.open({ dir: t.dir, origin: ORIGIN, identity: op });
    });
    afterEach(async () => {
      await led.close();
      t.cleanup();
    });

    it('validates, stores and merges cosignatures, and persists the confirmed size', async () => {
      const aux = led.aux;
      let col = await CosignatureCollector.open({ store: aux, policy: policy() });
      assert.equal(col.confirmedSize, 0);
      const n4 = await growTo(led, 4);
      const first = await col.addCheckpoint(n4);
      assert.equal(first.confirmations.count, 1);
      assert.equal(first.confirmedSize, 0);
      const text4 = parseNote(n4).text;
      const r = await col.addCosignatures(4, [
        cosignLine(text4, 'stranger.example/w', outsider, T), // outside the set: ignored
        cosignLine(parseNote(signCheckpoint(ORIGIN, 4, crypto.randomBytes(32), op)).text, C, c, T), // not over this checkpoint
        cosignLine(text4, B, b, T),
      ]);
      assert.deepEqual(r.accepted, [B]);
      assert.equal(r.ignored, 1);
      assert.deepEqual(
        r.rejected.map((x) => x.name),
        [C],
      );
      assert.equal(r.confirmations.confirmed, true);
      assert.equal(r.confirmedSize, 4);
      // A repeat of B (older or same time) changes nothing.
      assert.equal((await col.addCosignatures(4, cosignLine(text4, B, b, T))).ignored, 1);
      const merged = await col.confirmedCheckpoint();
      assert.ok(merged);
      assert.equal(countConfirmations(merged, policy()).count, 2);
      assert.equal(openNote(merged, [NoteVerifier.cosigner(B, b.publicKey)]).verified.length, 1); // verifiable by anyone
      // Size 8 carries its cosignatures in the note itself.
      const n8 = await growTo(led, 8);
      const text8 = parseNote(n8).text;
      const r8 = await col.addCheckpoint(n8 + cosignLine(text8, C, c, T + 1));
      assert.deepEqual(r8.accepted, [C]);
      assert.equal(col.confirmedSize, 8);
      await assert.rejects(col.addCosignatures(5, cosignLine(text8, B, b, T)), { code: 'E_NOT_FOUND' });
      // Restart: the confirmed size and the merged notes are read back from the store.
      await led.close();
      led = await Ledger.open({ dir: t.dir, create: false });
      col = await CosignatureCollector.open({ store: led.aux, policy: policy() });
      assert.equal(col.confirmedSize, 8);
      assert.deepEqual(
        (await col.confirmations(4))?.witnesses.map((w) => w.name),
        [B],
      );
      assert.equal(await col.confirmedCheckpoint(), n8 + cosignLine(text8, C, c, T + 1));
      assert.equal(await col.confirmations(5), undefined);
      // A smaller confirmed size never lowers confirmedSize; pruning keeps the confirmed one.
      assert.equal((await col.addCosignatures(4, cosignLine(text4, C, c, T))).confirmedSize, 8);
      assert.ok((await col.prune(8)) >= 3);
      assert.equal(await col.checkpointNote(4), undefined);
      assert.ok(await col.confirmedCheckpoint());
    });

    it('keeps evidence when the operator signs two checkpoints of one size', async () => {
      const col = await CosignatureCollector.open({ store: led.aux, policy: policy() });
      const n5 = await growTo(led, 5);
      await col.addCheckpoint(n5);
      const forged = signCheckpoint(ORIGIN, 5, crypto.randomBytes(32), op);
      await assert.rejects(
        col.addCheckpoint(forged),
        (err: unknown) => err instanceof EquivocationError && err.code === 'E_CONFLICT' && checkEvidence(err.evidence, policy().log),
      );
      const ev = await col.conflict();
      assert.ok(ev && checkEvidence(ev, policy().log));
      await assert.rejects(col.addCheckpoint(signCheckpoint(ORIGIN, 6, crypto.randomBytes(32), Identity.generate())), { code: 'E_SIGNATURE' });
    });

    it('confirms a ledger with three partners through tlog-witness requests (2 of 3)', async () => {
      const t2 = tmpDir('bot-quorum-w-');
      const ledB = await Ledger.open({ dir: `${t2.dir}/b`, origin: 'example.com/b', identity: b });
      const ledC = await Ledger.open({ dir: `${t2.dir}/c`, origin: 'example.com/c', identity: c });
      try {
        const logs = [{ origin: ORIGIN, key: op.did }];
        const wB = new Witness({ name: B, identity: b, store: ledB.aux, logs });
        const wC = new Witness({ name: C, identity: c, store: ledC.aux, logs });
        const p = QuorumPolicy.create({ origin: ORIGIN, operator: op.did, witnesses: [{ key: wB.vkey }, { key: wC.vkey }] });
        const col = await CosignatureCollector.open({ store: led.aux, policy: p });
        const held = new Map<Witness, number>([
          [wB, 0],
          [wC, 0],
        ]);
        for (const n of [3, 7]) {
          const cpNote = await growTo(led, n);
          await col.addCheckpoint(cpNote);
          // Only B answers in the first round: 2 of 3 is already reached.
          for (const w of n === 3 ? [wB] : [wB, wC]) {
            const old = held.get(w)!;
            const reqBody = formatAddCheckpointRequest(old, old === 0 ? [] : await led.consistencyProof(old, n), cpNote);
            const resp = formatAddCheckpointResponse(await w.addCheckpoint(reqBody)); // what travels back
            const res = parseAddCheckpointResponse(resp.status, resp.body);
            assert.equal(res.code, 'ok', resp.body);
            if (res.code === 'ok') await col.addCosignatures(n, res.cosignatures);
            held.set(w, n);
          }
          assert.equal(col.confirmedSize, n);
        }
        const final = await col.confirmedCheckpoint();
        assert.ok(final);
        assert.deepEqual(countConfirmations(final, p), { size: 7, count: 3, quorum: 2, confirmed: true, witnesses: countConfirmations(final, p).witnesses });
        assert.deepEqual(
          countConfirmations(final, p).witnesses.map((w) => w.did),
          [b.did, c.did],
        );
      } finally {
        await Promise.all([ledB.close(), ledC.close()]);
        t2.cleanup();
      }
    });
  });
});
