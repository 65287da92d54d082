/** Confidential entries (issue 13): sealing, associated data, key epochs, revocation rotation (real LevelDB, no broker). */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { isBotError } from '../../lib/errors';
import { type Envelope, type SignedEnvelope, signEnvelope, verifyEnvelope } from '../../lib/format/envelope';
import { Identity } from '../../lib/format/identity';
import { Ledger } from '../../lib/store/ledger';
import { auditLedger } from '../../lib/store/audit';
import { type GrantTerms, issueGrant, newGrantId } from '../../lib/access/grants';
import { EncryptionKey, HPKE_X25519_SUITE, HPKE_XWING_SUITE } from '../../lib/confidential/hpke';
import { encryptionKeyInput, epochInput, KeyEpochs, Keyring, keywrapInput, newScopeKey, readerKey, scopeKeyId } from '../../lib/confidential/keys';
import { openSealed, sealEnvelope } from '../../lib/confidential/seal';
import { ConfidentialOwner, filtersOverlap, keyEpochsOf, openWith } from '../../lib/confidential/owner';
import { answerRequest, refusal } from '../../lib/access/access';
import { PartnerClient } from '../../lib/access/partner';
import { requestAccess } from '../../lib/access/access-client';
import { AccessRequests } from '../../lib/access/access-requests';
import type { StoredCheckpoint } from '../../lib/store/ledger';
import type { JsonValue } from '../../lib/format/jcs';
import { tmpDir } from '../helpers';

const ORIGIN = 'example.com/confidential';
const refused =
  (code: string) =>
  (e: unknown): boolean =>
    isBotError(e) && e.code === code;

/**
 * An owner's ledger in dir with scope "plant" (plant/#) declared, and a transport answering
 * partners' requests in-process (answerRequest; `receipts`: it signs receipts and grants too).
 */
async function plantOwner(dir: string, receipts: boolean) {
  const op = Identity.generate();
  let seq = 0;
  const nextSeq = (): number => seq++;
  const ledger = await Ledger.open({ dir, origin: ORIGIN, identity: op });
  const owner = new ConfidentialOwner({ ledger, operator: op, nextSeq, encryptionKey: await EncryptionKey.generate() });
  await owner.declareScope('plant', ['plant/#']);
  const latest = async (): Promise<StoredCheckpoint | undefined> => (await ledger.checkpoint()) ?? ledger.latestCheckpoint();
  const server = { ledger, checkpoint: latest, ...(receipts ? { receiptCheckpoint: latest } : {}) };
  const transport = async (req: unknown): Promise<unknown> => answerRequest(server, req).catch((e: unknown) => refusal(e));
  return { op, nextSeq, ledger, owner, transport };
}

/** o's device readings on plant/1, sealed and appended: put(v) gives the entry's index. */
function sealedReadings(o: Awaited<ReturnType<typeof plantOwner>>): (v: string) => Promise<number> {
  const dev = Identity.generate();
  let devSeq = 0;
  return async (v) =>
    (
      await o.ledger.append(
        (await o.owner.seal(signEnvelope(dev, { kind: 'reading', seq: devSeq++, ts: Date.now(), topic: 'plant/1', payload: { v } }), o.op, o.nextSeq))!,
      )
    ).index;
}

/** A partner granted read of plant/# on o's ledger (from `from` on) and given the keys it covers, reading through `transport`. */
async function plantReader(o: Awaited<ReturnType<typeof plantOwner>>, transport: (req: unknown) => Promise<unknown>, from?: number) {
  const me = Identity.generate();
  const ek = await EncryptionKey.generate();
  const terms: GrantTerms = {
    id: newGrantId(),
    subject: me.did,
    ledger: ORIGIN,
    actions: ['read'],
    scope: { signers: '*', topics: ['plant/#'], ...(from !== undefined ? { from } : {}) },
    expires: Date.now() + 3600e3,
  };
  await issueGrant(o.ledger, o.op, o.nextSeq, terms);
  await o.owner.addReader(terms, signEnvelope(me, encryptionKeyInput(ek, 0, Date.now())).toJSON());
  let s = 0;
  const client = new PartnerClient({
    owner: { origin: ORIGIN, operator: o.op.did },
    grant: terms.id,
    identity: me,
    nextSeq: () => s++,
    encryptionKey: ek,
    transport,
  });
  return { me, client, terms };
}

describe('confidential entries: sealed payloads', () => {
  const dev = Identity.generate();
  const gw = Identity.generate();
  const inner = signEnvelope(dev, { kind: 'reading', seq: 7, ts: 1000, topic: 'plant/a/temp', payload: { c: 21.5, secret: 'MARK-42' } });
  const key = newScopeKey();
  const k = { origin: ORIGIN, scope: 'plant', epoch: 0, key };

  it('round trip: the outer leaf is a signed envelope without the plaintext; the inner envelope comes back verified', () => {
    const outer = sealEnvelope(gw, inner, k, 1, 2000);
    assert.equal(outer.envelope.kind, 'sealed');
    assert.equal(outer.envelope.topic, 'plant/a/temp');
    assert.ok(!outer.bytes.toString().includes('MARK-42'));
    verifyEnvelope(outer.toJSON(), { fresh: true }); // anyone verifies the outer signature
    const back = openSealed(outer, ORIGIN, key);
    assert.ok(back.bytes.equals(inner.bytes));
    assert.equal(back.signer.did, dev.did);
  });

  it('tampering with any bound field, the ciphertext or moving the payload fails with E_DECRYPT', () => {
    const outer = sealEnvelope(gw, inner, k, 1, 2000);
    const e = outer.toJSON();
    const pl = e.payload as Record<string, unknown>;
    // Re-sign a changed outer envelope (as a malicious sealer or a forger with its own key would).
    const resign = (id: Identity, change: Partial<Envelope>, payload: Record<string, unknown> = pl): SignedEnvelope =>
      signEnvelope(id, {
        kind: change.kind ?? e.kind,
        seq: change.seq ?? e.seq,
        ts: change.ts ?? e.ts,
        topic: 'topic' in change ? change.topic : e.topic,
        payload: payload as never,
      });
    const cases: [string, SignedEnvelope, string][] = [
      ['another seq (another entry)', resign(gw, { seq: 2 }), ORIGIN],
      ['another ts', resign(gw, { ts: 2001 }), ORIGIN],
      ['another topic', resign(gw, { topic: 'plant/b/temp' }), ORIGIN],
      ['no topic', resign(gw, { topic: undefined }), ORIGIN],
      ['another signer (moved by someone else)', resign(Identity.generate(), {}), ORIGIN],
      ['another scope', resign(gw, {}, { ...pl, scope: 'other' }), ORIGIN],
      ['another epoch', resign(gw, {}, { ...pl, epoch: 1 }), ORIGIN],
      ['another ledger', outer, 'example.com/other'],
    ];
    const ct = Buffer.from(pl.ct as string, 'base64');
    for (const i of [0, ct.length - 1]) {
      const t = Buffer.from(ct);
      t[i] ^= 0x80;
      cases.push([`ct byte ${i}`, resign(gw, {}, { ...pl, ct: t.toString('base64') }), ORIGIN]);
    }
    const n = Buffer.from(pl.nonce as string, 'base64');
    n[0] ^= 1;
    cases.push(['nonce', resign(gw, {}, { ...pl, nonce: n.toString('base64') }), ORIGIN]);
    for (const [what, env, origin] of cases) assert.throws(() => openSealed(env, origin, key), refused('E_DECRYPT'), what);
    assert.throws(() => openSealed(outer, ORIGIN, newScopeKey()), refused('E_DECRYPT'), 'a wrong key');
  });

  it('the inner envelope is verified: a sealer cannot make up a device entry', () => {
    const forged = { ...(inner.toJSON() as Envelope), payload: { c: 99 } };
    const fake = { bytes: Buffer.from(JSON.stringify(forged)), envelope: forged } as unknown as SignedEnvelope;
    const outer = sealEnvelope(gw, fake, k, 3, 2000);
    assert.throws(() => openSealed(outer, ORIGIN, key), refused('E_SIGNATURE'));
  });

  it('MQTT filter overlap', () => {
    assert.ok(filtersOverlap('plant/#', 'plant/+/temp'));
    assert.ok(filtersOverlap('plant/#', 'plant'));
    assert.ok(filtersOverlap('+/a', 'x/+'));
    assert.ok(!filtersOverlap('plant/#', 'office/#'));
    assert.ok(!filtersOverlap('a/b', 'a/b/c'));
  });
});

describe('confidential entries: key epochs and revocation (real LevelDB)', function () {
  this.timeout(20000);
  let t: ReturnType<typeof tmpDir>;
  before(() => {
    t = tmpDir('bot-conf-');
  });
  after(() => t.cleanup());

  it('grant, seal, revoke: the revoked reader opens what came before and not after; others get the new epoch; a copy rebuilds the same state', async () => {
    const op = Identity.generate();
    const dev = Identity.generate();
    let seq = 0;
    const nextSeq = (): number => seq++;
    let devSeq = 0;
    const ledger = await Ledger.open({ dir: path.join(t.dir, 'owner'), origin: ORIGIN, identity: op });
    const owner = new ConfidentialOwner({ ledger, operator: op, nextSeq, encryptionKey: await EncryptionKey.generate() });
    // b's encryption key is of the post-quantum hybrid suite (X-Wing): the suite travels with each key and wrap.
    const partners = await Promise.all(
      ([HPKE_X25519_SUITE, HPKE_XWING_SUITE] as const).map(async (suite) => {
        const id = Identity.generate();
        const ek = await EncryptionKey.generate(suite);
        return { id, ek, enckey: signEnvelope(id, encryptionKeyInput(ek, 0, Date.now())) };
      }),
    );
    const [a, b] = partners;
    assert.equal(await owner.declareScope('plant', ['plant/#']), 0);
    const grants: GrantTerms[] = [];
    for (const p of partners) {
      const terms: GrantTerms = {
        id: newGrantId(),
        subject: p.id.did,
        ledger: ORIGIN,
        actions: ['read'],
        scope: { signers: '*', topics: ['plant/#'] },
        expires: Date.now() + 3600e3,
      };
      await issueGrant(ledger, op, nextSeq, terms);
      grants.push(terms);
      assert.equal(await owner.addReader(terms, p.enckey.toJSON()), 1);
    }
    // A key envelope signed by someone else than the subject is refused.
    await assert.rejects(owner.addReader(grants[0], partners[1].enckey.toJSON()), refused('E_GRANT'));

    const reading = (topic: string, v: string): SignedEnvelope => signEnvelope(dev, { kind: 'reading', seq: devSeq++, ts: Date.now(), topic, payload: { v } });
    const before = (await owner.seal(reading('plant/1', 'BEFORE'), op, nextSeq)) as SignedEnvelope;
    assert.equal(await owner.seal(reading('office/1', 'plain'), op, nextSeq), undefined, 'a topic outside every scope is not sealed');
    await ledger.append(before);

    const rot = await owner.revokeGrant(grants[0].id);
    assert.deepEqual(rot.rotated, ['plant']);
    const after = (await owner.seal(reading('plant/1', 'AFTER'), op, nextSeq)) as SignedEnvelope;
    assert.equal((after.envelope.payload as { epoch: number }).epoch, 1);
    await ledger.append(after);

    // Each partner rebuilds the epochs from the owner's entries alone.
    const rings = async (): Promise<Keyring[]> => {
      const epochs = new KeyEpochs(ORIGIN, op.did);
      for (const r of await ledger.query({ limit: 10000 })) epochs.apply(r.envelope, r.index);
      return partners.map((p) => new Keyring(epochs, p.id.did, p.ek));
    };
    const [ra, rb] = await rings();
    assert.equal(((await openWith(ra, before)).envelope.payload as { v: string }).v, 'BEFORE');
    await assert.rejects(openWith(ra, after), refused('E_NO_KEY'));
    assert.equal(((await openWith(rb, before)).envelope.payload as { v: string }).v, 'BEFORE');
    assert.equal(((await openWith(rb, after)).envelope.payload as { v: string }).v, 'AFTER');
    // a's key, even with the new epoch's wrap of b at hand, does not open it.
    const bWrap = rb.epochs.wrap('plant', 1, b.id.did);
    assert.ok(bWrap);
    const stolen = new Keyring(rb.epochs, b.id.did, a.ek);
    await assert.rejects(stolen.keyOf('plant', 1), refused('E_NO_KEY'));

    const view = ra.epochs.view();
    assert.equal(view.length, 1);
    assert.deepEqual(view[0].epochs[0].holders.sort(), [op.did, a.id.did, b.id.did].sort());
    assert.deepEqual(view[0].epochs[1].holders.sort(), [op.did, b.id.did].sort());
    assert.deepEqual(view[0].epochs[1].revoked, [a.id.did]);

    // A later partner with a grant covering everything reads every epoch.
    const c = Identity.generate();
    const cek = await EncryptionKey.generate();
    const cTerms: GrantTerms = { id: newGrantId(), subject: c.did, ledger: ORIGIN, actions: ['read'], scope: { signers: '*' }, expires: Date.now() + 3600e3 };
    await issueGrant(ledger, op, nextSeq, cTerms);
    assert.equal(await owner.addReader(cTerms, signEnvelope(c, encryptionKeyInput(cek, 0, Date.now())).toJSON()), 2);
    const ce = new KeyEpochs(ORIGIN, op.did);
    for (const r of await ledger.query({ limit: 10000 })) ce.apply(r.envelope, r.index);
    const rc = new Keyring(ce, c.did, cek);
    assert.equal(((await openWith(rc, before)).envelope.payload as { v: string }).v, 'BEFORE');
    assert.equal(((await openWith(rc, after)).envelope.payload as { v: string }).v, 'AFTER');

    // Granted again, a gets a new epoch (the one that revoked it cannot be wrapped to it): it opens what is sealed from then on, not epoch 1.
    const again1: GrantTerms = { ...grants[0], id: newGrantId() };
    await issueGrant(ledger, op, nextSeq, again1);
    assert.equal(await owner.addReader(again1, a.enckey.toJSON()), 1);
    const later = (await owner.seal(reading('plant/1', 'AGAIN'), op, nextSeq)) as SignedEnvelope;
    assert.equal((later.envelope.payload as { epoch: number }).epoch, 2);
    await ledger.append(later);
    const ae = new KeyEpochs(ORIGIN, op.did);
    for (const r of await ledger.query({ limit: 10000 })) ae.apply(r.envelope, r.index);
    const ra2 = new Keyring(ae, a.id.did, a.ek);
    assert.equal(((await openWith(ra2, later)).envelope.payload as { v: string }).v, 'AGAIN');
    await assert.rejects(openWith(ra2, after), refused('E_NO_KEY'));
    assert.equal(((await openWith(new Keyring(ae, b.id.did, b.ek), later)).envelope.payload as { v: string }).v, 'AGAIN');

    // The ledger audits clean without any key, and a reopened owner restores its keys from the ledger and its one X25519 secret.
    const audit = await auditLedger(ledger, { workers: 0 });
    assert.ok(audit.ok, JSON.stringify(audit));
    const secret = (await owner.keyring()).key.secret();
    await ledger.close();
    const again = await Ledger.open({ dir: path.join(t.dir, 'owner') });
    const owner2 = new ConfidentialOwner({ ledger: again, operator: op, nextSeq, encryptionKey: await EncryptionKey.fromSecret(secret) });
    assert.equal(((await owner2.open(after)).envelope.payload as { v: string }).v, 'AFTER');
    assert.equal((await keyEpochsOf(again)).current('plant')?.epoch, 2);
    assert.equal(readerKey(a.enckey.toJSON()).reader, a.id.did);
    await again.close();
  });
});

describe('confidential entries: partner reads through answerRequest (real LevelDB, no broker)', function () {
  this.timeout(20000);
  let t: ReturnType<typeof tmpDir>;
  before(() => {
    t = tmpDir('bot-conf-read-');
  });
  after(() => t.cleanup());

  it('keys op, readOpen across a rotation (keys fetched again for the new epoch), a grant of a later time range holds only its epochs', async () => {
    const dev = Identity.generate();
    const o = await plantOwner(path.join(t.dir, 'owner'), false);
    const { op, nextSeq, ledger, owner } = o;
    const partner = async (from?: number): Promise<{ client: PartnerClient; id: Identity; terms: GrantTerms }> => {
      const { me, client, terms } = await plantReader(o, o.transport, from);
      return { client, id: me, terms };
    };
    const a = await partner();
    const b = await partner();
    let devSeq = 0;
    const put = async (v: string): Promise<void> => {
      await ledger.append(
        (await owner.seal(signEnvelope(dev, { kind: 'reading', seq: devSeq++, ts: Date.now(), topic: 'plant/1', payload: { v } }), op, nextSeq))!,
      );
    };
    await put('e0');
    const r0 = await b.client.readOpen({ topic: 'plant/#' });
    assert.deepEqual(
      r0.entries.map((e) => (e.opened?.payload as { v: string }).v),
      ['e0'],
    );
    await new Promise((r) => setTimeout(r, 5));
    await owner.revokeGrant(a.terms.id);
    await new Promise((r) => setTimeout(r, 5));
    const late = await partner(Date.now());
    await put('e1');
    // b's keyring knew epoch 0 only: readOpen fetches the keys again and opens epoch 1.
    const r1 = await b.client.readOpen({ topic: 'plant/#' });
    assert.deepEqual(
      r1.entries.map((e) => [e.sealed?.epoch, (e.opened?.payload as { v: string }).v]),
      [
        [0, 'e0'],
        [1, 'e1'],
      ],
    );
    // The revoked partner is refused by the owner altogether.
    await assert.rejects(a.client.readOpen({ topic: 'plant/#' }), refused('E_REVOKED'));
    // A grant from after epoch 0 ended reads (and holds the key of) epoch 1 only.
    const r2 = await late.client.readOpen({ topic: 'plant/#' });
    assert.deepEqual(
      r2.entries.map((e) => [e.sealed?.epoch, (e.opened?.payload as { v: string }).v]),
      [[1, 'e1']],
    );
    // Keys are entries of the ledger: the keys answer is proven like a read, and holds the epochs and this reader's keywraps only.
    const ring = await late.client.keys();
    assert.deepEqual(
      ring.epochs.view()[0].epochs.map((e) => e.holders.includes(late.id.did)),
      [false, true],
    );
    await ledger.close();
  });

  it('a keys answer that left out key entries below its last index (a stale or hostile mirror): readOpen rescans from index 0 once and opens them', async () => {
    const o = await plantOwner(path.join(t.dir, 'omitted'), false);
    const put = sealedReadings(o);
    // The first keys answer leaves out the keywrap of epoch 0 to this partner and the epoch 1 entry
    // (each entry left is still proven): the partner's last index is then its epoch 1 keywrap, so
    // continuing from there never brings them; and the epoch 1 keywrap, met before its epoch, did not count.
    let keysAsked = 0;
    let me = '';
    const omitting = async (req: unknown): Promise<unknown> => {
      const answer = await o.transport(req);
      if ((req as { payload: { op: string } }).payload.op !== 'keys' || keysAsked++ > 0) return answer;
      const a = answer as { entries: { leaf: Envelope }[] };
      const omitted = (e: { leaf: Envelope }): boolean => {
        const p = e.leaf.payload as { epoch: number; reader?: string };
        return (e.leaf.kind === 'keywrap' && p.epoch === 0 && p.reader === me) || (e.leaf.kind === 'epoch' && p.epoch === 1);
      };
      assert.equal(a.entries.filter(omitted).length, 2);
      return { ...a, entries: a.entries.filter((e) => !omitted(e)) };
    };
    const { me: reader, client } = await plantReader(o, omitting);
    me = reader.did;
    await put('e0');
    await o.owner.rotate('plant'); // epoch 1, wrapped to this partner too: its keywrap is the last key entry
    await put('e1');
    const r = await client.readOpen({ topic: 'plant/#' });
    assert.deepEqual(
      r.entries.map((e) => [e.sealed?.epoch, e.error?.code, (e.opened?.payload as { v: string } | undefined)?.v]),
      [
        [0, undefined, 'e0'],
        [1, undefined, 'e1'],
      ],
    );
    // The keys asked: the first (omitting), the incremental refresh, the one rescan from index 0.
    assert.equal(keysAsked, 3);
    // Each entry counted once: this partner holds each epoch by one keywrap.
    const ring = await client.keys();
    assert.deepEqual(
      ring.epochs.view()[0].epochs.map((e) => e.holders.filter((d) => d === me).length),
      [1, 1],
    );
    // Everything held now: a later readOpen asks for no keys beyond keys() above.
    const again = await client.readOpen({ topic: 'plant/#' });
    assert.ok(again.entries.every((e) => e.opened !== undefined));
    assert.equal(keysAsked, 4);
    await o.ledger.close();
  });

  it('a keys answer padded with proven entries that are not key entries (a hostile mirror holds the whole ledger): the partner keeps none of them, its keyring is not rebuilt by the rescan', async () => {
    const o = await plantOwner(path.join(t.dir, 'padded'), false);
    const put = sealedReadings(o);
    const i0 = await put('e0'); // epoch 0, which the partner below holds no key of
    await new Promise((r) => setTimeout(r, 5));
    await o.owner.rotate('plant');
    await new Promise((r) => setTimeout(r, 5));
    // e0 as an answer entry, proven against the answer's checkpoint (a mirror holding the ledger can send it).
    const e0 = async (note: string): Promise<{ index: number; leaf: unknown; proof: string[] }> => {
      const size = Number(note.split('\n')[1]);
      const proof = await o.ledger.inclusionProof(i0, size);
      return { index: i0, leaf: JSON.parse((await o.ledger.get(i0)).leaf.toString('utf8')) as unknown, proof: proof.map((h) => h.toString('base64')) };
    };
    let keysAsked = 0;
    let padded = 0;
    const hostile = async (req: unknown): Promise<unknown> => {
      const answer = (await o.transport(req)) as { checkpoint: string; entries: { index: number }[] };
      const p = (req as { payload: { op: string; from?: number } }).payload;
      if (p.op === 'read') return { ...answer, entries: [await e0(answer.checkpoint), ...answer.entries.filter((e) => e.index !== i0)] };
      if (p.op !== 'keys' || keysAsked++ === 0 || p.from !== 0) return answer;
      padded++;
      return { ...answer, entries: [...answer.entries, await e0(answer.checkpoint)].sort((a, b) => a.index - b.index) };
    };
    const { client } = await plantReader(o, hostile, Date.now());
    await put('e1');
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
    await o.ledger.close();
  });
});

describe('confidential entries: an access request carries the encryption key (real LevelDB, no broker)', function () {
  this.timeout(20000);
  let t: ReturnType<typeof tmpDir>;
  before(() => {
    t = tmpDir('bot-conf-ask-');
  });
  after(() => t.cleanup());

  it('ask with an enckey, approve, wrap, read; an enckey of another signer is refused', async () => {
    const { op, nextSeq, ledger, owner, transport } = await plantOwner(path.join(t.dir, 'owner'), true);
    const me = Identity.generate();
    const ek = await EncryptionKey.generate();
    let s = 0;
    const opts = { owner: { origin: ORIGIN, operator: op.did }, identity: me, nextSeq: () => s++, transport };
    const stranger = Identity.generate();
    await assert.rejects(
      requestAccess(opts, {
        actions: ['read'],
        scope: { signers: '*', topics: ['plant/#'] },
        enckey: signEnvelope(stranger, encryptionKeyInput(ek, 0, Date.now())).toJSON() as unknown as JsonValue,
      }),
      refused('E_QUERY'),
    );
    const asked = await requestAccess(opts, {
      actions: ['read'],
      scope: { signers: '*', topics: ['plant/#'] },
      enckey: signEnvelope(me, encryptionKeyInput(ek, 0, Date.now())).toJSON() as unknown as JsonValue,
    });
    const approved = await AccessRequests.of(ledger).approve(asked.id, op, nextSeq);
    assert.ok(approved.enckey);
    assert.equal(await owner.addReader(approved.terms, approved.enckey), 1);
    const dev = Identity.generate();
    await ledger.append(
      (await owner.seal(signEnvelope(dev, { kind: 'reading', seq: 0, ts: Date.now(), topic: 'plant/9', payload: { v: 'ok' } }), op, nextSeq))!,
    );
    const client = new PartnerClient({ owner: opts.owner, grant: asked.id, identity: me, nextSeq: () => s++, encryptionKey: ek, transport });
    const r = await client.readOpen({ topic: 'plant/#' });
    assert.deepEqual(
      r.entries.map((e) => e.opened?.payload),
      [{ v: 'ok' }],
    );
    await ledger.close();
  });
});

describe('confidential entries: the KeyEpochs rules', () => {
  it('counts only the operator’s well-formed entries, epochs without a gap, keywraps with the reader’s own enckey, first one each', async () => {
    const op = Identity.generate();
    const other = Identity.generate();
    const reader = Identity.generate();
    const ek = await EncryptionKey.generate();
    const enckey = readerKey(signEnvelope(reader, encryptionKeyInput(ek, 0, 1)));
    const forged = readerKey(signEnvelope(other, encryptionKeyInput(ek, 0, 1)));
    const key = newScopeKey();
    const e = new KeyEpochs(ORIGIN, op.did);
    let i = 0;
    const put = (id: Identity, input: Parameters<typeof signEnvelope>[1]): boolean => e.apply(signEnvelope(id, input), i++);
    const epoch = (n: number, ledger = ORIGIN): Parameters<typeof signEnvelope>[1] =>
      epochInput({ ledger, scope: 'plant', epoch: n, topics: ['plant/#'], kid: scopeKeyId(key), readers: [reader.did as never] }, i, 1);
    assert.equal(put(other, epoch(0)), false, 'not the operator');
    assert.equal(put(op, epoch(1)), false, 'a gap');
    assert.equal(put(op, epoch(0, 'example.com/other')), false, 'another ledger');
    assert.equal(put(op, epoch(0)), true);
    assert.equal(put(op, epoch(0)), false, 'epoch 0 again');
    assert.equal(put(op, await keywrapInput(ORIGIN, 'plant', 5, key, enckey, i, 1)), false, 'an epoch not declared');
    const w = await keywrapInput(ORIGIN, 'plant', 0, key, enckey, i, 1);
    assert.equal(
      put(op, { ...w, payload: { ...(w.payload as Record<string, JsonValue>), reader: other.did } }),
      false,
      'an enckey of someone else than the reader',
    );
    assert.equal(
      put(op, await keywrapInput(ORIGIN, 'plant', 0, key, { ...forged, reader: reader.did as never }, i, 1)),
      false,
      'an enckey the reader did not sign',
    );
    assert.equal(put(op, { kind: 'keywrap', seq: i, ts: 1, payload: { junk: true } }), false, 'malformed');
    assert.equal(put(op, w), true);
    assert.equal(put(op, await keywrapInput(ORIGIN, 'plant', 0, newScopeKey(), enckey, i, 1)), false, 'a second wrap for the same reader and epoch');
    assert.equal(e.apply(signEnvelope(op, w), 3), false, 'an index already passed');
    const ring = new Keyring(e, reader.did, ek);
    assert.ok((await ring.keyOf('plant', 0)).equals(key));
    // A wrap of another key than the epoch's kid is refused once unwrapped.
    const e2 = new KeyEpochs(ORIGIN, op.did);
    e2.apply(signEnvelope(op, epoch(0)), 0);
    e2.apply(signEnvelope(op, await keywrapInput(ORIGIN, 'plant', 0, newScopeKey(), enckey, 1, 1)), 1);
    await assert.rejects(new Keyring(e2, reader.did, ek).keyOf('plant', 0), refused('E_DECRYPT'));
  });
});

describe('confidential entries: supplied entries', function () {
  this.timeout(20000);
  let t: ReturnType<typeof tmpDir>;
  before(() => {
    t = tmpDir('bot-conf-supply-');
  });
  after(() => t.cleanup());

  it('a supplied entry on a confidential topic is refused (E_SCOPE: it would be stored in plaintext); others are appended', async () => {
    const { op, nextSeq, ledger, transport } = await plantOwner(path.join(t.dir, 'owner'), true);
    const p = Identity.generate();
    const terms: GrantTerms = { id: newGrantId(), subject: p.did, ledger: ORIGIN, actions: ['append'], scope: { signers: '*' }, expires: Date.now() + 3600e3 };
    await issueGrant(ledger, op, nextSeq, terms);
    let s = 0;
    const client = new PartnerClient({ owner: { origin: ORIGIN, operator: op.did }, grant: terms.id, identity: p, nextSeq: () => s++, transport });
    const size = ledger.size;
    await assert.rejects(
      client.append([signEnvelope(p, { kind: 'reading', seq: 100, ts: Date.now(), topic: 'plant/7', payload: { secret: 1 } })]),
      refused('E_SCOPE'),
    );
    assert.equal(ledger.size, size);
    const ok = await client.append([signEnvelope(p, { kind: 'reading', seq: 101, ts: Date.now(), topic: 'office/7', payload: { open: 1 } })]);
    assert.equal(ok.length, 1);
    await ledger.close();
  });
});
