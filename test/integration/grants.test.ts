/** Grants (lib/access/grants.ts) and partner requests (lib/access/access.ts) over a real LevelDB. */
import { strict as assert } from 'node:assert';
import {
  answerRequest,
  checkGrant,
  GrantIndex,
  grantInput,
  issueGrant,
  revokeGrant,
  type GrantTerms,
  Identity,
  inScope,
  isBotError,
  Ledger,
  makeRequest,
  parseGrantTerms,
  revokeInput,
  type SignedEnvelope,
  signEnvelope,
  verifyAppendAnswer,
  verifyReadAnswer,
  type ReadAnswer,
  type AppendAnswer,
  type StoredCheckpoint,
  type BotError,
  readInScope,
} from '../../lib';
import { MqttLink } from '../../lib/consortium/mqtt-link';
import { LedgerPublisher, ledgerTopics } from '../../lib/consortium/publisher';
import { cosignLine, formatNote, ledgerId, mqttTransport, parseNote, PartnerClient, QuorumPolicy } from '../../lib';
import { Mosquitto } from '../mosquitto';
import { tmpDir, until } from '../helpers';

const ORIGIN = 'example.com/owner';
const T0 = 1_800_000_000_000;
const op = Identity.generate();
const partner = Identity.generate();
const stranger = Identity.generate();
const sensorA = Identity.generate();
const sensorB = Identity.generate();

function terms(over: Partial<GrantTerms> = {}): GrantTerms {
  return {
    id: 'g1',
    subject: partner.did,
    ledger: ORIGIN,
    actions: ['read'],
    scope: { signers: [sensorA.did], topics: ['plant/1/+/temp'] },
    expires: T0 + 3_600_000,
    ...over,
  };
}
const grantBy = (id: Identity, t: GrantTerms, seq = 1): SignedEnvelope => signEnvelope(id, grantInput(t, seq, T0));

async function expectCode(p: Promise<unknown> | (() => unknown), code: string): Promise<BotError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    assert.ok(isBotError(err), `expected a BotError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

describe('grants: the one check', () => {
  const base = { ledger: { origin: ORIGIN, operator: op.did }, requester: partner.did, action: 'read' as const, at: T0, revoked: false };

  it('accepts a grant of the operator, for this ledger and this partner, in time', () => {
    const t = checkGrant({ ...base, grant: grantBy(op, terms()) });
    assert.equal(t.id, 'g1');
  });

  it('refuses a grant signed by someone else, or for another ledger (E_GRANT)', async () => {
    await expectCode(() => checkGrant({ ...base, grant: grantBy(stranger, terms()) }), 'E_GRANT');
    await expectCode(() => checkGrant({ ...base, grant: grantBy(op, terms({ ledger: 'example.com/other' })) }), 'E_GRANT');
    const reading = signEnvelope(op, { kind: 'reading', seq: 1, ts: T0, payload: terms() as never });
    await expectCode(() => checkGrant({ ...base, grant: reading }), 'E_GRANT');
  });

  it('refuses another partner (E_NO_GRANT), a revoked grant (E_REVOKED)', async () => {
    await expectCode(() => checkGrant({ ...base, requester: stranger.did, grant: grantBy(op, terms()) }), 'E_NO_GRANT');
    await expectCode(() => checkGrant({ ...base, revoked: true, grant: grantBy(op, terms()) }), 'E_REVOKED');
  });

  it('time edges: valid at notBefore and at expires, not 1 ms outside (E_EXPIRED)', async () => {
    const g = grantBy(op, terms({ notBefore: T0, expires: T0 + 1000 }));
    checkGrant({ ...base, grant: g, at: T0 });
    checkGrant({ ...base, grant: g, at: T0 + 1000 });
    await expectCode(() => checkGrant({ ...base, grant: g, at: T0 - 1 }), 'E_EXPIRED');
    await expectCode(() => checkGrant({ ...base, grant: g, at: T0 + 1001 }), 'E_EXPIRED');
  });

  it('refuses an action not granted and an entry out of scope (E_SCOPE)', async () => {
    const g = grantBy(op, terms());
    await expectCode(() => checkGrant({ ...base, grant: g, action: 'append' }), 'E_SCOPE');
    checkGrant({ ...base, grant: g, target: { signer: sensorA.did, topic: 'plant/1/line-3/temp', ts: T0 } });
    await expectCode(() => checkGrant({ ...base, grant: g, target: { signer: sensorB.did, topic: 'plant/1/line-3/temp', ts: T0 } }), 'E_SCOPE');
    await expectCode(() => checkGrant({ ...base, grant: g, target: { signer: sensorA.did, topic: 'plant/1/line-3/rh', ts: T0 } }), 'E_SCOPE');
  });

  it('scope matching follows MQTT 3.1.1 §4.7 wildcards and time bounds', () => {
    const s = parseGrantTerms(terms({ scope: { signers: '*', topics: ['plant/+/temp', 'site/#'], from: T0, until: T0 + 10 } })).scope;
    const at = (topic: string | undefined, ts = T0): boolean => inScope(s, { signer: stranger.did, topic, ts });
    assert.equal(at('plant/1/temp'), true);
    assert.equal(at('plant/1/2/temp'), false, '+ is one level');
    assert.equal(at('site'), true, '# matches the parent level');
    assert.equal(at('site/a/b/c'), true);
    assert.equal(at('sites/a'), false);
    assert.equal(at(undefined), false, 'an entry without topic is outside a topic scope');
    assert.equal(at('plant/1/temp', T0 - 1), false);
    assert.equal(at('plant/1/temp', T0 + 10), true);
    assert.equal(at('plant/1/temp', T0 + 11), false);
    const any = parseGrantTerms(terms({ scope: { signers: '*' } })).scope;
    assert.equal(inScope(any, { signer: stranger.did, ts: 0 }), true);
  });

  it('parses grant payloads strictly', async () => {
    const cases: [unknown, string][] = [
      [{ ...terms(), actions: ['delete'] }, 'E_GRANT'],
      [{ ...terms(), actions: [] }, 'E_GRANT'],
      [{ ...terms(), subject: 'did:web:x' }, 'E_DID'],
      [{ ...terms(), scope: { signers: [] } }, 'E_GRANT'],
      [{ ...terms(), scope: { signers: '*', topics: ['a/#/b'] } }, 'E_GRANT'],
      [{ ...terms(), expires: undefined }, 'E_GRANT'],
      [{ ...terms(), notBefore: T0 + 7_200_000 }, 'E_GRANT'],
      [{ ...terms(), id: 'has space' }, 'E_GRANT'],
      [{ ...terms(), extra: 1 }, 'E_GRANT'],
      [{ ...terms(), scope: { signers: '*', from: 5, until: 4 } }, 'E_GRANT'],
    ];
    for (const [bad, code] of cases) await expectCode(() => parseGrantTerms(bad), code);
  });
});

describe('grants: index over a real ledger, and partner requests', function () {
  this.timeout(30000);
  let t: ReturnType<typeof tmpDir>;
  let led: Ledger;
  let opSeq: number;
  let reqSeq: number;
  let now: number;
  const cp = async (): Promise<StoredCheckpoint | undefined> => (await led.checkpoint()) ?? led.latestCheckpoint();
  const server = (): { ledger: Ledger; checkpoint: typeof cp; receiptCheckpoint: typeof cp; now: () => number } => ({
    ledger: led,
    checkpoint: cp,
    receiptCheckpoint: cp,
    now: () => now,
  });
  const read = (grant: string, filter: Record<string, unknown> = {}, who = partner): Promise<ReadAnswer> =>
    answerRequest(server(), makeRequest(who, reqSeq++, { op: 'read', grant, filter: filter as never }, now).toJSON()) as Promise<ReadAnswer>;

  beforeEach(async () => {
    t = tmpDir('bot-grants-');
    led = await Ledger.open({ dir: t.dir, origin: ORIGIN, identity: op });
    opSeq = 1;
    reqSeq = 1;
    now = T0 + 1000;
    for (let i = 0; i < 30; i++) {
      const who = i % 2 === 0 ? sensorA : sensorB;
      await led.append(
        signEnvelope(who, { kind: 'reading', seq: i, ts: T0 + i, topic: `plant/1/line-${i % 3}/${i % 4 === 0 ? 'temp' : 'rh'}`, payload: { v: i } }),
      );
    }
  });
  afterEach(async () => {
    await led.close();
    t.cleanup();
  });

  const issue = async (tm: GrantTerms): Promise<void> => {
    await led.append(signEnvelope(op, grantInput(tm, opSeq++, T0)));
  };
  const revoke = async (id: string): Promise<void> => {
    await led.append(signEnvelope(op, revokeInput({ grant: id, ledger: ORIGIN }, opSeq++, T0)));
  };

  it('answers a read with only in-scope entries, each proven against the checkpoint', async () => {
    await issue(terms());
    const answer = await read('g1');
    const expected = [0, 4, 8, 12, 16, 20, 24, 28].filter((i) => i % 2 === 0 && i % 4 === 0);
    assert.deepEqual(
      answer.entries.map((e) => e.index),
      expected,
    );
    const v = verifyReadAnswer(answer, { origin: ORIGIN, operator: op.did });
    assert.equal(v.entries.length, expected.length);
    assert.equal(v.checkpoint.size, 31);
    // a filter inside the scope narrows it; limit and next page
    const page = await read('g1', { limit: 2 });
    assert.deepEqual(
      page.entries.map((e) => e.index),
      [0, 4],
    );
    assert.equal(page.next, 5);
    const rest = await read('g1', { from: page.next });
    assert.deepEqual(
      rest.entries.map((e) => e.index),
      [8, 12, 16, 20, 24, 28],
    );
  });

  it("refuses reads outside the scope, without a grant, with another partner's grant", async () => {
    await issue(terms());
    await expectCode(read('g1', { signer: sensorB.did }), 'E_SCOPE');
    await expectCode(read('g1', { topic: 'plant/1/line-0/rh' }), 'E_SCOPE');
    await expectCode(read('nope'), 'E_NO_GRANT');
    await expectCode(read('g1', {}, stranger), 'E_NO_GRANT');
    await issue(terms({ id: 'g-append', actions: ['append'] }));
    await expectCode(read('g-append'), 'E_SCOPE');
  });

  it('ignores grants signed by anyone but the operator, and the first grant of an id wins', async () => {
    await led.append(signEnvelope(stranger, grantInput(terms({ id: 'fake', subject: stranger.did }), 1, T0)));
    await expectCode(read('fake', {}, stranger), 'E_NO_GRANT');
    await issue(terms({ id: 'dup' }));
    await issue(terms({ id: 'dup', subject: stranger.did, scope: { signers: '*' } }));
    await expectCode(read('dup', {}, stranger), 'E_NO_GRANT');
    assert.equal((await read('dup')).entries.length, 8);
  });

  it('a revocation applies to every later request, whatever the order it was appended in', async () => {
    await issue(terms());
    assert.equal((await read('g1')).entries.length, 8);
    await revoke('g1');
    await expectCode(read('g1'), 'E_REVOKED');
    // a revocation appended before its grant still revokes it
    await revoke('g2');
    await issue(terms({ id: 'g2' }));
    await expectCode(read('g2'), 'E_REVOKED');
    const list = await GrantIndex.of(led).list(now);
    assert.deepEqual(
      list.map((g) => [g.id, g.status]),
      [
        ['g2', 'revoked'],
        ['g1', 'revoked'],
      ],
    );
  });

  it('expiry and notBefore are checked at the time of the request', async () => {
    await issue(terms({ notBefore: T0 + 10_000, expires: T0 + 20_000 }));
    now = T0 + 9_999;
    await expectCode(read('g1'), 'E_EXPIRED');
    now = T0 + 15_000;
    assert.equal((await read('g1')).entries.length, 8);
    now = T0 + 20_001;
    await expectCode(read('g1'), 'E_EXPIRED');
    assert.equal((await GrantIndex.of(led).list(now))[0].status, 'expired');
  });

  it('refuses replayed and stale requests (E_REPLAY), and bad signatures (E_SIGNATURE)', async () => {
    await issue(terms());
    const req = makeRequest(partner, 100, { op: 'read', grant: 'g1' }, now).toJSON();
    await answerRequest(server(), req);
    await expectCode(answerRequest(server(), req), 'E_REPLAY');
    await expectCode(answerRequest(server(), makeRequest(partner, 99, { op: 'read', grant: 'g1' }, now).toJSON()), 'E_REPLAY');
    await expectCode(answerRequest(server(), makeRequest(partner, 101, { op: 'read', grant: 'g1' }, now - 10 * 60_000).toJSON()), 'E_REPLAY');
    const forged = { ...makeRequest(partner, 102, { op: 'read', grant: 'g1' }, now).toJSON(), payload: { op: 'read', grant: 'g1', filter: { limit: 5 } } };
    await expectCode(answerRequest(server(), forged), 'E_SIGNATURE');
    // the replay state survives a reopen
    await led.close();
    led = await Ledger.open({ dir: t.dir, identity: op });
    await expectCode(answerRequest(server(), req), 'E_REPLAY');
  });

  it('admits concurrent requests of one partner in the order they came, whatever their lookups cost (8 in flight, cold index)', async () => {
    await issue(terms());
    // A reopened ledger: the first request builds the grant index and reads the replay state from disk, later ones find them ready.
    await led.close();
    led = await Ledger.open({ dir: t.dir, identity: op });
    const first = 5000;
    const answers = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => answerRequest(server(), makeRequest(partner, first + i, { op: 'read', grant: 'g1' }, now).toJSON())),
    );
    assert.deepEqual(
      answers.map((a) => (a.status === 'fulfilled' ? 'ok' : (a.reason as BotError).code)),
      Array(8).fill('ok'),
    );
  });

  it('supplies entries under an append grant, and refuses out-of-scope entries changing nothing', async () => {
    await issue(terms({ id: 'sup', actions: ['append'], scope: { signers: [partner.did], topics: ['partner/#'] } }));
    const envs = [0, 1].map((i) => signEnvelope(partner, { kind: 'reading', seq: 1000 + i, ts: now, topic: `partner/x/${i}`, payload: { i } }));
    const size = led.size;
    const ans = (await answerRequest(
      server(),
      makeRequest(partner, reqSeq++, { op: 'append', grant: 'sup', entries: envs.map((e) => e.toJSON() as never) }, now).toJSON(),
    )) as AppendAnswer;
    const receipts = verifyAppendAnswer(ans, { origin: ORIGIN, operator: op.did }, envs);
    assert.deepEqual(
      receipts.map((r) => r.index),
      [size, size + 1],
    );
    // one entry out of scope: nothing is appended
    const mixed = [
      signEnvelope(partner, { kind: 'reading', seq: 2000, ts: now, topic: 'partner/ok', payload: 1 }),
      signEnvelope(partner, { kind: 'reading', seq: 2001, ts: now, topic: 'plant/1/x', payload: 2 }),
    ];
    await expectCode(
      answerRequest(server(), makeRequest(partner, reqSeq++, { op: 'append', grant: 'sup', entries: mixed.map((e) => e.toJSON() as never) }, now).toJSON()),
      'E_SCOPE',
    );
    await expectCode(
      answerRequest(
        server(),
        makeRequest(
          partner,
          reqSeq++,
          {
            op: 'append',
            grant: 'sup',
            entries: [signEnvelope(sensorA, { kind: 'reading', seq: 5000, ts: now, topic: 'partner/a', payload: 1 }).toJSON() as never],
          },
          now,
        ).toJSON(),
      ),
      'E_SCOPE',
    );
    await expectCode(
      answerRequest(server(), makeRequest(partner, reqSeq++, { op: 'append', grant: 'sup', entries: envs.map((e) => e.toJSON() as never) }, now).toJSON()),
      'E_REPLAY',
    );
    assert.equal(led.size, size + 2);
  });

  it('the partner detects a tampered answer: leaf, proof, checkpoint, an entry it did not ask for', async () => {
    await issue(terms());
    const owner = { origin: ORIGIN, operator: op.did };
    const fresh = async (): Promise<ReadAnswer> => JSON.parse(JSON.stringify(await read('g1'))) as ReadAnswer;
    let a = await fresh();
    (a.entries[1].leaf as { payload: unknown }).payload = { v: 999 };
    await expectCode(() => verifyReadAnswer(a, owner), 'E_SIGNATURE');
    a = await fresh();
    a.entries[2].proof[0] = Buffer.alloc(32, 7).toString('base64');
    const e = await expectCode(() => verifyReadAnswer(a, owner), 'E_PROOF');
    assert.match(e.message, /#8/);
    a = await fresh();
    a.entries[0].index = 1;
    await expectCode(() => verifyReadAnswer(a, owner), 'E_PROOF');
    a = await fresh();
    await expectCode(() => verifyReadAnswer(a, { origin: ORIGIN, operator: stranger.did }), 'E_SIGNATURE');
    a = await fresh();
    a.checkpoint = (a.checkpoint as string).replace('\n31\n', '\n32\n');
    await expectCode(() => verifyReadAnswer(a, owner), 'E_SIGNATURE');
    a = await fresh();
    await expectCode(() => verifyReadAnswer(a, owner, { topic: 'plant/1/line-0/temp' }), 'E_SCOPE');
    await expectCode(() => verifyReadAnswer({ error: { code: 'E_REVOKED', message: 'x' } }, owner), 'E_REVOKED');
  });

  it("with the owner's witness set, the partner believes only a checkpoint cosigned by the quorum", async () => {
    await issue(terms());
    const w = Identity.generate();
    const policy = QuorumPolicy.create({ origin: ORIGIN, operator: op.did, witnesses: [{ name: 'w.example/log', key: w.did }], quorum: 2 });
    const owner = { origin: ORIGIN, operator: op.did, policy };
    const answer = await read('g1');
    const e = await expectCode(() => verifyReadAnswer(answer, owner), 'E_CHECKPOINT');
    assert.match(e.message, /1 of the 2/);
    const note = parseNote(answer.checkpoint as string);
    const cosigned = formatNote(note.text, [...note.signatures.map((x) => x.line), cosignLine(note.text, 'w.example/log', w, Math.floor(now / 1000))]);
    const v = verifyReadAnswer({ ...answer, checkpoint: cosigned }, owner);
    assert.equal(v.confirmations?.count, 2);
    assert.equal(v.entries.length, 8);
    // a cosignature by a key outside the set does not count
    const stranger2 = Identity.generate();
    const other = formatNote(note.text, [...note.signatures.map((x) => x.line), cosignLine(note.text, 'w.example/log', stranger2, 1)]);
    await expectCode(() => verifyReadAnswer({ ...answer, checkpoint: other }, owner), 'E_CHECKPOINT');
  });

  it('a read-only copy of the ledger (as a mirror holds it) sees the same grants and revocations', async () => {
    await issue(terms());
    await revoke('g1');
    await issue(terms({ id: 'g3' }));
    const t2 = tmpDir('bot-grants-copy-');
    const copy = await Ledger.open({ dir: t2.dir, origin: ORIGIN, operator: op.did });
    try {
      for await (const e of led.entries()) await copy.append(JSON.parse(e.leaf.toString('utf8')));
      const views = await GrantIndex.of(copy).list(now);
      assert.deepEqual(
        views.map((g) => [g.id, g.status]),
        [
          ['g3', 'active'],
          ['g1', 'revoked'],
        ],
      );
      const checkpoint = await led.checkpoint();
      await copy.storeCheckpoint((checkpoint as StoredCheckpoint).note);
      await expectCode(GrantIndex.of(copy).check('g1', partner.did, 'read', now), 'E_REVOKED');
      const rec = await GrantIndex.of(copy).check('g3', partner.did, 'read', now);
      const ans = await readInScope(copy, {}, rec.terms.scope, copy.latestCheckpoint());
      assert.equal(verifyReadAnswer(ans, { origin: ORIGIN, operator: op.did }).entries.length, 8);
    } finally {
      await copy.close();
      t2.cleanup();
    }
  });

  it('issueGrant and revokeGrant: one grant per id even when issued concurrently; unknown ids are not revoked', async () => {
    const nextSeq = (): number => opSeq++;
    const results = await Promise.allSettled([
      issueGrant(led, op, nextSeq, terms({ id: 'same' })),
      issueGrant(led, op, nextSeq, terms({ id: 'same', subject: stranger.did })),
    ]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.equal((rejected.reason as BotError).code, 'E_GRANT');
    const size = led.size;
    await expectCode(revokeGrant(led, op, nextSeq, 'unknown'), 'E_NO_GRANT');
    await expectCode(issueGrant(led, op, nextSeq, terms({ id: 'elsewhere', ledger: 'example.com/other' })), 'E_GRANT');
    assert.equal(led.size, size);
    const { receipt } = await revokeGrant(led, op, nextSeq, 'same');
    assert.equal(receipt.index, size);
    assert.equal((await GrantIndex.of(led).list(now))[0].status, 'revoked');
  });

  it('keeps its index across a reopen and scans only new entries', async () => {
    await issue(terms());
    await GrantIndex.of(led).sync();
    await led.close();
    led = await Ledger.open({ dir: t.dir, identity: op });
    await revoke('g1');
    await expectCode(read('g1'), 'E_REVOKED');
  });
});

describe('partner access over a real MQTT broker (kernel)', function () {
  this.timeout(60000);
  let broker: Mosquitto;
  let t: ReturnType<typeof tmpDir>;
  before(async () => {
    broker = await Mosquitto.start();
    t = tmpDir('bot-partner-mqtt-');
  });
  after(async () => {
    await broker.close();
    t.cleanup();
  });

  it('a PartnerClient reads and supplies under grants; a ledger that does not share entries refuses the entries RPC', async () => {
    const led = await Ledger.open({ dir: t.dir, origin: ORIGIN, identity: op });
    const ownerLink = new MqttLink({ url: broker.url, reconnectMs: 100 });
    const partnerLink = new MqttLink({ url: broker.url, reconnectMs: 100 });
    ownerLink.on('error', () => undefined);
    partnerLink.on('error', () => undefined);
    const id = ledgerId(ORIGIN, op.did);
    const publisher = new LedgerPublisher(led, ownerLink, id, {
      shareEntries: false,
      requests: (p) => {
        const cp = async (): Promise<StoredCheckpoint | undefined> => (await led.checkpoint()) ?? led.latestCheckpoint();
        return answerRequest({ ledger: led, checkpoint: cp, receiptCheckpoint: cp }, p);
      },
    });
    try {
      publisher.start();
      ownerLink.start();
      partnerLink.start();
      for (let i = 0; i < 10; i++)
        await led.append(signEnvelope(sensorA, { kind: 'reading', seq: i, ts: Date.now(), topic: `plant/1/line-${i % 2}/temp`, payload: i }));
      let opSeq = 1;
      const grant = async (tm: GrantTerms): Promise<void> => {
        await led.append(signEnvelope(op, grantInput(tm, opSeq++, Date.now())));
      };
      await grant(terms({ id: 'r', scope: { signers: [sensorA.did], topics: ['plant/1/line-0/#'] } }));
      await grant(terms({ id: 'a', actions: ['append'], scope: { signers: [partner.did] } }));
      await until('both connected', () => ownerLink.state === 'connected' && partnerLink.state === 'connected');
      let seq = 1;
      const client = (g: string): PartnerClient =>
        new PartnerClient({
          owner: { origin: ORIGIN, operator: op.did },
          grant: g,
          identity: partner,
          nextSeq: () => seq++,
          transport: mqttTransport(partnerLink, { origin: ORIGIN, operator: op.did }),
        });
      const read = await client('r').read({});
      assert.deepEqual(
        read.entries.map((e) => e.index),
        [0, 2, 4, 6, 8],
      );
      await expectCode(client('r').read({ topic: 'plant/1/line-1/temp' }), 'E_SCOPE');
      const env = signEnvelope(partner, { kind: 'reading', seq: 1, ts: Date.now(), topic: 'partner/x', payload: 1 });
      const [receipt] = await client('a').append([env]);
      assert.equal(receipt.index, 12);
      await led.append(signEnvelope(op, revokeInput({ grant: 'r', ledger: ORIGIN }, opSeq++, Date.now())));
      await expectCode(client('r').read({}), 'E_REVOKED');
      await expectCode(partnerLink.request(ledgerTopics(id).rpc, 'entries', { from: 0, to: 5 }, 5000), 'E_SCOPE');
      // A request made before the partner's link is up waits for it (within the timeout).
      const late = new MqttLink({ url: broker.url, reconnectMs: 100 });
      late.on('error', () => undefined);
      try {
        const lateClient = new PartnerClient({
          owner: { origin: ORIGIN, operator: op.did },
          grant: 'a',
          identity: partner,
          nextSeq: () => seq++,
          transport: mqttTransport(late, { origin: ORIGIN, operator: op.did }, 5000),
        });
        const pending = lateClient.append([signEnvelope(partner, { kind: 'reading', seq: 2, ts: Date.now(), topic: 'partner/x', payload: 2 })]);
        setTimeout(() => late.start(), 200);
        assert.equal((await pending)[0].index, 14);
      } finally {
        await late.close();
      }
    } finally {
      publisher.stop();
      await ownerLink.close();
      await partnerLink.close();
      await led.close();
    }
  });
});
