/**
 * A partner keeps only the key entries of a keys answer (lib/access/partner.ts): real LevelDB,
 * the owner answering in-process, the transport playing a hostile mirror that pads its answers
 * with other proven entries.
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { signEnvelope } from '../../lib/format/envelope';
import { Identity } from '../../lib/format/identity';
import { Ledger, type StoredCheckpoint } from '../../lib/store/ledger';
import { type GrantTerms, issueGrant, newGrantId } from '../../lib/access/grants';
import { EncryptionKey } from '../../lib/confidential/hpke';
import { encryptionKeyInput } from '../../lib/confidential/keys';
import { ConfidentialOwner } from '../../lib/confidential/owner';
import { answerRequest, refusal } from '../../lib/access/access';
import { PartnerClient } from '../../lib/access/partner';
import { tmpDir } from '../helpers';

const ORIGIN = 'example.com/partner-keys';

describe('partner key entries', () => {
  let t: ReturnType<typeof tmpDir>;
  before(() => {
    t = tmpDir('bot-partner-keys-');
  });
  after(() => t.cleanup());

  it('a keys answer padded with proven entries that are not key entries: the partner keeps none of them (its keyring is not rebuilt by the rescan)', async () => {
    const op = Identity.generate();
    const dev = Identity.generate();
    let seq = 0;
    const nextSeq = (): number => seq++;
    const ledger = await Ledger.open({ dir: path.join(t.dir, 'owner'), origin: ORIGIN, identity: op });
    const owner = new ConfidentialOwner({ ledger, operator: op, nextSeq, encryptionKey: await EncryptionKey.generate() });
    await owner.declareScope('plant', ['plant/#']);
    const latest = async (): Promise<StoredCheckpoint | undefined> => (await ledger.checkpoint()) ?? ledger.latestCheckpoint();
    const honest = async (req: unknown): Promise<unknown> => answerRequest({ ledger, checkpoint: latest }, req).catch((e: unknown) => refusal(e));
    let devSeq = 0;
    const put = async (v: string): Promise<number> =>
      (
        await ledger.append(
          (await owner.seal(signEnvelope(dev, { kind: 'reading', seq: devSeq++, ts: Date.now(), topic: 'plant/1', payload: { v } }), op, nextSeq))!,
        )
      ).index;
    const i0 = await put('e0'); // epoch 0, which the partner below holds no key of
    await new Promise((r) => setTimeout(r, 5));
    await owner.rotate('plant');
    await new Promise((r) => setTimeout(r, 5));
    const me = Identity.generate();
    const ek = await EncryptionKey.generate();
    const terms: GrantTerms = {
      id: newGrantId(),
      subject: me.did,
      ledger: ORIGIN,
      actions: ['read'],
      scope: { signers: '*', topics: ['plant/#'], from: Date.now() },
      expires: Date.now() + 3600e3,
    };
    await issueGrant(ledger, op, nextSeq, terms);
    await owner.addReader(terms, signEnvelope(me, encryptionKeyInput(ek, 0, Date.now())).toJSON());
    await put('e1');
    // e0 as an answer entry, proven against the answer's checkpoint (a mirror holding the ledger can send it).
    const e0 = async (note: string): Promise<{ index: number; leaf: unknown; proof: string[] }> => {
      const size = Number(note.split('\n')[1]);
      const proof = await ledger.inclusionProof(i0, size);
      return { index: i0, leaf: JSON.parse((await ledger.get(i0)).leaf.toString('utf8')) as unknown, proof: proof.map((h) => h.toString('base64')) };
    };
    let keysAsked = 0;
    let padded = 0;
    const hostile = async (req: unknown): Promise<unknown> => {
      const answer = (await honest(req)) as { checkpoint: string; entries: { index: number }[] };
      const p = (req as { payload: { op: string; from?: number } }).payload;
      if (p.op === 'read') return { ...answer, entries: [await e0(answer.checkpoint), ...answer.entries.filter((e) => e.index !== i0)] };
      if (p.op !== 'keys' || keysAsked++ === 0 || p.from !== 0) return answer;
      padded++;
      return { ...answer, entries: [...answer.entries, await e0(answer.checkpoint)].sort((a, b) => a.index - b.index) };
    };
    let s = 0;
    const client = new PartnerClient({
      owner: { origin: ORIGIN, operator: op.did },
      grant: terms.id,
      identity: me,
      nextSeq: () => s++,
      encryptionKey: ek,
      transport: hostile,
    });
    const ring = await client.keys();
    const r = await client.readOpen({ topic: 'plant/#' });
    assert.deepEqual(
      r.entries.map((e) => [e.sealed?.epoch, e.opened === undefined, (e.opened?.payload as { v: string } | undefined)?.v]),
      [
        [0, true, undefined],
        [1, false, 'e1'],
      ],
    );
    // The refresh, then the one rescan from index 0 (padded with e0): nothing new to keep, so the same keyring.
    assert.equal(keysAsked, 3);
    assert.equal(padded, 1);
    assert.equal(await client.keys(), ring);
    await ledger.close();
  });
});
