/**
 * Partner access that cannot be forged, raced or flooded (issue 10: defects 3, 4, 6, 7 and
 * the query checks), over a real LevelDB and a real Mosquitto:
 *   - a forged append receipt (right origin and leaf hash, answered first by an attacker on
 *     the owner's rpc topic) neither wins the race nor, alone, passes for a receipt;
 *   - overlapping supply requests, run concurrently with local appends, are all or nothing;
 *   - refused requests from throw-away keys leave no state; rate limits refuse with E_RATE;
 *   - a large read is paged by size so that it fits one MQTT message;
 *   - filters that are not safe integers are E_QUERY; a peer's text is escaped in messages.
 */
import { strict as assert } from 'node:assert';
import mqtt from 'mqtt';
import {
  answerRequest,
  type AppendAnswer,
  type BotError,
  grantInput,
  type GrantTerms,
  Identity,
  isBotError,
  Ledger,
  makeRequest,
  mqttTransport,
  PartnerClient,
  queryFrom,
  type ReadAnswer,
  ReplayGuard,
  refusalStatus,
  signCheckpoint,
  signEnvelope,
  type SignedEnvelope,
  type StoredCheckpoint,
  throwIfRefused,
  verifyAppendAnswer,
  verifyEnvelope,
  leafHash,
  ledgerId,
} from '../../lib';
import { MqttLink } from '../../lib/consortium/mqtt-link';
import { RateLimiter } from '../../lib/access/rate-limit';
import { LedgerPublisher, ledgerTopics } from '../../lib/consortium/publisher';
import { Mosquitto } from '../mosquitto';
import { tmpDir, until } from '../helpers';

const ORIGIN = 'example.com/hardened';
const op = Identity.generate();
const partner = Identity.generate();
const device = Identity.generate();
const attacker = Identity.generate();
const owner = { origin: ORIGIN, operator: op.did };

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

function grant(over: Partial<GrantTerms> = {}): GrantTerms {
  return {
    id: 'g-read',
    subject: partner.did,
    ledger: ORIGIN,
    actions: ['read', 'append'],
    scope: { signers: [device.did, partner.did] },
    expires: Date.now() + 3_600_000,
    ...over,
  };
}

/** An owner ledger with a read+append grant for the partner; cp signs (or reuses) a checkpoint covering it. */
async function ownerLedger(dir: string): Promise<{ led: Ledger; cp: () => Promise<StoredCheckpoint | undefined> }> {
  const led = await Ledger.open({ dir, origin: ORIGIN, identity: op });
  await led.append(signEnvelope(op, grantInput(grant(), 1, Date.now())));
  const cp = async (): Promise<StoredCheckpoint | undefined> => (await led.checkpoint()) ?? led.latestCheckpoint();
  return { led, cp };
}

/** Every leaf hash (base64) in the ledger. */
async function leafHashes(led: Ledger): Promise<Set<string>> {
  const out = new Set<string>();
  for await (const e of led.entries()) out.add(e.leafHash.toString('base64'));
  return out;
}

describe('partner access hardening over MQTT (issue 10)', function () {
  this.timeout(30000);
  let broker: Mosquitto;
  let t: ReturnType<typeof tmpDir>;
  let led: Ledger;
  let cp: () => Promise<StoredCheckpoint | undefined>;
  let ownerLink: MqttLink;
  let partnerLink: MqttLink;
  let publisher: LedgerPublisher | undefined;
  let ownerAnsweredAt: number[];
  let seq = 1;

  before(async () => {
    broker = await Mosquitto.start();
    t = tmpDir('bot-hardening-mqtt-');
    ({ led, cp } = await ownerLedger(t.dir));
    ownerLink = new MqttLink({ url: broker.url, reconnectMs: 100 });
    partnerLink = new MqttLink({ url: broker.url, reconnectMs: 100 });
    ownerLink.on('error', () => undefined);
    partnerLink.on('error', () => undefined);
    ownerLink.start();
    partnerLink.start();
    await until('both connected', () => ownerLink.state === 'connected' && partnerLink.state === 'connected');
  });
  after(async () => {
    publisher?.stop();
    await ownerLink.close();
    await partnerLink.close();
    await led.close();
    await broker.close();
    t.cleanup();
  });

  /** Answered once the owner's rpc subscription is active (a probe on the checkpoint method). */
  const ownerReady = async (): Promise<void> => {
    const rpc = ledgerTopics(ledgerId(ORIGIN, op.did)).rpc;
    for (let i = 0; ; i++) {
      try {
        await partnerLink.request(rpc, 'checkpoint', {}, 300);
        return;
      } catch (err) {
        if (!isBotError(err, 'E_TIMEOUT') || i > 20) return;
      }
    }
  };
  afterEach(() => {
    publisher?.stop();
    publisher = undefined;
  });
  /** The owner answering requests (after delayMs: the attacker then surely answers first). */
  const startOwner = async (delayMs = 0): Promise<void> => {
    publisher?.stop();
    ownerAnsweredAt = [];
    publisher = new LedgerPublisher(led, ownerLink, ledgerId(ORIGIN, op.did), {
      requests: async (p) => {
        if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
        const a = await answerRequest({ ledger: led, checkpoint: cp, receiptCheckpoint: cp }, p);
        ownerAnsweredAt.push(Date.now());
        return a;
      },
    });
    publisher.start();
    await ownerReady();
  };
  const client = (timeoutMs: number): PartnerClient =>
    new PartnerClient({
      owner,
      grant: 'g-read',
      identity: partner,
      nextSeq: () => seq++,
      transport: mqttTransport(partnerLink, owner, timeoutMs),
    });

  it("a forged receipt (right origin and leaf hash) answered first does not win: the partner gets the owner's signed, proven receipt; alone it is E_TIMEOUT", async () => {
    // The attacker reads every request on the owner's rpc topic and answers at once with
    // receipts anyone can compute (origin, leaf hashes), a checkpoint signed with its own key.
    const rpc = ledgerTopics(ledgerId(ORIGIN, op.did)).rpc;
    const evil = mqtt.connect(broker.url, { protocolVersion: 4, clientId: 'attacker' });
    const forgedAt: number[] = [];
    evil.on('message', (_topic, payload) => {
      const req = JSON.parse(payload.toString()) as { id: string; reply: string; method: string; params: { payload: { op: string; entries?: unknown[] } } };
      if (req.method !== 'request' || req.params.payload.op !== 'append') return;
      const entries = req.params.payload.entries ?? [];
      const forged = {
        checkpoint: signCheckpoint(ORIGIN, 1000, Buffer.alloc(32, 9), attacker),
        receipts: entries.map((e, i) => ({
          origin: ORIGIN,
          index: 900 + i,
          leafHash: leafHash(verifyEnvelope(e).bytes).toString('base64'),
          treeSize: 1000,
          proof: [],
        })),
      };
      forgedAt.push(Date.now());
      evil.publish(req.reply, JSON.stringify({ v: 1, id: req.id, result: forged }), { qos: 1 });
    });
    await new Promise<void>((resolve, reject) => evil.on('connect', () => evil.subscribe(rpc, { qos: 1 }, (err) => (err ? reject(err) : resolve()))));
    try {
      await startOwner(200);
      const env = signEnvelope(partner, { kind: 'reading', seq: 1, ts: Date.now(), topic: 'supply/a', payload: { litres: 1 } });
      const expected = led.size;
      const [receipt] = await client(8000).append([env]);
      assert.equal(receipt.index, expected, "the owner's receipt, not the forged one");
      assert.equal(forgedAt.length, 1, 'the attacker answered');
      assert.ok(forgedAt[0] <= ownerAnsweredAt[0], 'the forged answer came first');
      assert.equal(receipt.leafHash, (await led.get(expected)).leafHash.toString('base64'));
      assert.ok(receipt.checkpoint.size > expected && receipt.proof.length >= 0);
      assert.match(receipt.checkpoint.note, /^example\.com\/hardened\n/);

      // The owner gone, the forged answer is all there is: no success, a timeout naming why.
      publisher?.stop();
      publisher = undefined;
      const size = led.size;
      const again = signEnvelope(partner, { kind: 'reading', seq: 2, ts: Date.now(), topic: 'supply/a', payload: { litres: 2 } });
      const err = await expectCode(client(1500).append([again]), 'E_TIMEOUT');
      assert.match(err.message, /1 answer\(s\) that did not verify were ignored/);
      assert.equal(forgedAt.length, 2);
      assert.equal(led.size, size, 'nothing was stored');
    } finally {
      await new Promise<void>((r) => evil.end(false, {}, () => r()));
    }
  });

  it('a read of 1000 entries of ~1.3 KiB is paged by size: the answer fits one MQTT message and says where to continue (next)', async () => {
    await startOwner();
    try {
      const from = led.size;
      const filler = 'x'.repeat(1200);
      await Promise.all(
        Array.from({ length: 1000 }, (_, i) =>
          led.append(signEnvelope(device, { kind: 'reading', seq: i, ts: Date.now(), topic: 'plant/bulk', payload: { i, filler } })),
        ),
      );
      const c = client(6000);
      const first = await c.read({ from, limit: 1000 });
      assert.ok(first.entries.length > 100 && first.entries.length < 1000, `paged: ${first.entries.length} entries`);
      assert.equal(first.next, first.entries[first.entries.length - 1].index + 1);
      let got = first.entries.length;
      let next: number | undefined = first.next;
      while (next !== undefined) {
        const page = await c.read({ from: next, limit: 1000 });
        got += page.entries.length;
        next = page.next;
      }
      assert.equal(got, 1000, 'every entry, over the pages');
    } finally {
      publisher?.stop();
      publisher = undefined;
    }
  });
});

describe('partner access hardening in the kernel (issue 10)', function () {
  this.timeout(30000);
  let t: ReturnType<typeof tmpDir>;
  let led: Ledger;
  let cp: () => Promise<StoredCheckpoint | undefined>;
  let reqSeq = 1;
  beforeEach(async () => {
    t = tmpDir('bot-hardening-');
    ({ led, cp } = await ownerLedger(t.dir));
  });
  afterEach(async () => {
    await led.close();
    t.cleanup();
  });

  const supply = (entries: SignedEnvelope[], who = partner, s = reqSeq++): Record<string, unknown> =>
    makeRequest(who, s, { op: 'append', grant: 'g-read', entries: entries.map((e) => e.toJSON() as never) }).toJSON() as unknown as Record<string, unknown>;
  const readReq = (filter: Record<string, unknown>, who = partner, grantId = 'g-read'): Record<string, unknown> =>
    makeRequest(who, reqSeq++, { op: 'read', grant: grantId, filter: filter as never }).toJSON() as unknown as Record<string, unknown>;

  it('overlapping supply requests run concurrently, or racing a local append of the same signer, are each all or nothing', async () => {
    const N = 30;
    const PER = 4;
    const reading = (s: number): SignedEnvelope => signEnvelope(partner, { kind: 'reading', seq: s, ts: Date.now(), topic: 'supply/tank', payload: { s } });
    const server = { ledger: led, checkpoint: cp, receiptCheckpoint: cp };
    const hashOf = (e: SignedEnvelope): string => leafHash(e.bytes).toString('base64');
    /** N requests, request k carrying seqs 2k … 2k + 3 (each overlaps the next), all at once. */
    const requests = Array.from({ length: N }, (_, k) => Array.from({ length: PER }, (_, j) => reading(2 * k + j)));
    const results = await Promise.allSettled(requests.map((envs) => answerRequest(server, supply(envs))));
    let stored = await leafHashes(led);
    // An entry of a refused request may be stored only as the same envelope of an accepted request.
    const accepted = new Set(
      requests
        .filter((_, k) => results[k].status === 'fulfilled')
        .flat()
        .map(hashOf),
    );
    let whole = 0;
    for (const [k, envs] of requests.entries()) {
      const r = results[k];
      if (r.status === 'fulfilled') {
        assert.equal(envs.filter((e) => stored.has(hashOf(e))).length, PER, `request ${k} succeeded: all its entries are stored`);
        assert.equal(verifyAppendAnswer(r.value, owner, envs).length, PER);
        whole++;
      } else {
        assert.equal((r.reason as BotError).code, 'E_REPLAY', (r.reason as Error).message);
        const left = envs.filter((e) => stored.has(hashOf(e)) && !accepted.has(hashOf(e))).length;
        assert.equal(left, 0, `refused request ${k} left ${left} entr(ies) behind`);
      }
    }
    assert.ok(whole > 0 && whole < N, `${whole} of ${N} requests accepted`);

    // A local append of the partner's seq 1001, admitted but not yet durable (queued behind a
    // large batch), while a request carries 1000-1003: the request is refused whole.
    const bulk = Array.from({ length: 1000 }, (_, i) => signEnvelope(device, { kind: 'reading', seq: 10_000 + i, ts: Date.now(), payload: { i } }));
    const batch = bulk.map((e) => led.append(e));
    const raced = [1000, 1001, 1002, 1003].map(reading);
    const local = led.append(raced[1]);
    await expectCode(answerRequest(server, supply(raced)), 'E_REPLAY');
    await Promise.all([...batch, local]);
    stored = await leafHashes(led);
    assert.deepEqual(
      raced.map((e) => stored.has(hashOf(e))),
      [false, true, false, false],
      'only the local append of 1001 is stored',
    );
  });

  it("2,000 refused requests from throw-away keys leave no records and no per-key memory; only a grant's subject gets a seq record", async () => {
    const limiter = new RateLimiter({ perSigner: 20, total: 0 });
    const server = { ledger: led, checkpoint: cp, receiptCheckpoint: cp, rateLimiter: limiter };
    const countAux = async (): Promise<number> => {
      let n = 0;
      for await (const _ of led.aux.iterator('requests/')) n++;
      return n;
    };
    for (let i = 0; i < 2000; i++) {
      const key = Identity.generate();
      // Half name the partner's grant (not theirs), half a grant that does not exist.
      const req = makeRequest(key, 1, {
        op: i % 2 ? 'read' : 'append',
        grant: i % 2 ? 'g-read' : `nope-${i}`,
        ...(i % 2 ? {} : { entries: [{}] }),
      } as never).toJSON();
      await expectCode(answerRequest(server, req), 'E_NO_GRANT');
    }
    assert.equal(await countAux(), 0, 'no request record for keys without a grant');
    assert.equal(ReplayGuard.of(led).cached, 0, 'no replay state in memory');
    assert.equal(limiter.trackedSigners, 0, 'no rate bucket for keys without a grant');
    // The grant's subject: one record, and its replay is refused.
    const ok = readReq({});
    await answerRequest(server, ok);
    assert.equal(await countAux(), 1);
    await expectCode(answerRequest(server, ok), 'E_REPLAY');
  });

  it("rate limits: per partner (a forged claim cannot spend the partner's tokens) and in total, refused with E_RATE (HTTP 429)", async () => {
    let clock = 0;
    const limiter = new RateLimiter({ perSigner: 3, total: 0 }, { clock: () => clock });
    const server = { ledger: led, checkpoint: cp, rateLimiter: limiter };
    // Forged requests claiming the partner's key (bad signatures): refused, the partner's bucket untouched.
    for (let i = 0; i < 20; i++) {
      const forged = { ...readReq({}), sig: readReq({ limit: 2 }).sig };
      await expectCode(answerRequest(server, forged), 'E_SIGNATURE');
    }
    for (let i = 0; i < 3; i++) await answerRequest(server, readReq({}));
    const e = await expectCode(answerRequest(server, readReq({})), 'E_RATE');
    assert.match(e.message, /try again in \d+ ms/);
    assert.equal(refusalStatus('E_RATE'), 429);
    // Over the limit, a request claiming the partner is refused before its signature is checked.
    await expectCode(answerRequest(server, { ...readReq({}), sig: 'not even base64url!' }), 'E_RATE');
    clock += 1000;
    await answerRequest(server, readReq({}));

    const total = new RateLimiter({ perSigner: 0, total: 5 }, { clock: () => clock });
    const junk = { v: 1, kind: 'request', signer: attacker.did };
    for (let i = 0; i < 5; i++) await expectCode(answerRequest({ ledger: led, checkpoint: cp, rateLimiter: total }, junk), 'E_ENVELOPE');
    await expectCode(answerRequest({ ledger: led, checkpoint: cp, rateLimiter: total }, readReq({})), 'E_RATE');
    clock += 200; // one token back (5 per second)
    await answerRequest({ ledger: led, checkpoint: cp, rateLimiter: total }, readReq({}));
  });

  it('read filters that are not whole numbers in range are E_QUERY (limit 1.5, from 1e300, from -1), not an empty answer', async () => {
    const server = { ledger: led, checkpoint: cp };
    for (const filter of [{ limit: 1.5 }, { from: 1e300 }, { from: -1 }, { to: 2 ** 60 }, { since: 1e300 }, { from: '99999999999999999999' }]) {
      await expectCode(answerRequest(server, readReq(filter)), 'E_QUERY');
    }
    await expectCode(() => queryFrom({}, { limit: 2.5 }), 'E_QUERY');
    assert.deepEqual(queryFrom({}, { from: '3', limit: 10, since: '2026-01-01T00:00:00Z' }), { from: 3, limit: 10, since: Date.parse('2026-01-01T00:00:00Z') });
    await led.append(signEnvelope(device, { kind: 'reading', seq: 1, ts: Date.now(), payload: 1 }));
    const ok = (await answerRequest(server, readReq({ from: 0, limit: 1 }))) as ReadAnswer;
    assert.deepEqual(
      ok.entries.map((e) => e.index),
      [1],
    );
  });

  it("a peer's text in a refusal is cut and escaped: no line breaks, controls or bidi overrides reach a message", async () => {
    const server = { ledger: led, checkpoint: cp };
    // The grant's scope: signers device and partner, any topic; a signer filter outside it names the topic only escaped.
    await led.append(signEnvelope(op, grantInput(grant({ id: 'g-topic', scope: { signers: '*', topics: ['plant/#'] } }), 2, Date.now())));
    const evilTopic = 'site/\n[error] forged log line\u202E\u0007/' + 'y'.repeat(3000);
    const e = await expectCode(answerRequest(server, readReq({ topic: evilTopic }, partner, 'g-topic')), 'E_SCOPE');
    assert.ok(!/[\n\u202E\u0007]/.test(e.message), e.message);
    assert.ok(e.message.length < 400, `${e.message.length} characters`);
    const f = await expectCode(answerRequest(server, readReq({ topic: 'a/#/b\n[error] x' })), 'E_QUERY');
    assert.ok(!/\n/.test(f.message), f.message);
    const g = await expectCode(() => throwIfRefused({ error: { code: 'E_SCOPE', message: 'no\r\n[error] owner says\u202Eevil'.repeat(200) } }), 'E_SCOPE');
    assert.ok(!/[\r\n\u202E]/.test(g.message) && g.message.length < 400, g.message);
  });

  it('supply requests without a way to sign receipts are refused before anything is appended (E_KEY); receipts verify with only the operator key', async () => {
    const env = signEnvelope(partner, { kind: 'reading', seq: 7, ts: Date.now(), topic: 'supply/x', payload: 1 });
    const size = led.size;
    await expectCode(answerRequest({ ledger: led, checkpoint: cp }, supply([env])), 'E_KEY');
    assert.equal(led.size, size);
    const answer = (await answerRequest({ ledger: led, checkpoint: cp, receiptCheckpoint: cp }, supply([env]))) as AppendAnswer;
    const [r] = verifyAppendAnswer(answer, owner, [env]);
    assert.equal(r.index, size);
    // Tampering with any part is detected.
    const copy = (): AppendAnswer => JSON.parse(JSON.stringify(answer)) as AppendAnswer;
    const a1 = copy();
    a1.receipts[0].index = 0;
    await expectCode(() => verifyAppendAnswer(a1, owner, [env]), 'E_PROOF');
    const a2 = copy();
    a2.checkpoint = signCheckpoint(ORIGIN, 1000, Buffer.alloc(32), attacker);
    await expectCode(() => verifyAppendAnswer(a2, owner, [env]), 'E_SIGNATURE');
    const a3 = copy();
    delete (a3 as Partial<AppendAnswer>).checkpoint;
    await expectCode(() => verifyAppendAnswer(a3, owner, [env]), 'E_CHECKPOINT');
    await expectCode(() => verifyAppendAnswer(answer, { origin: ORIGIN, operator: attacker.did }, [env]), 'E_SIGNATURE');
  });
});
