/**
 * Access requests (lib/access/access-requests.ts, lib/access/access.ts ops "access" and "access-status",
 * lib/access/access-client.ts) over a real LevelDB ledger: the pending store's bounds, duplicates and
 * replays, refusals that change nothing, approval (narrowed, never widened) issuing a grant the
 * partner then reads with, declines, and the partner's checks of an approval.
 */
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { answerRequest, type AccessAnswer, makeRequest, type ReadAnswer } from '../../lib/access/access';
import { AccessRequests, type AccessView, accessRequestId, filterCovers, MAX_PENDING, narrowAsk, scopeWithin } from '../../lib/access/access-requests';
import { accessStatus, requestAccess } from '../../lib/access/access-client';
import { signEnvelope } from '../../lib/format/envelope';
import { type BotError, isBotError } from '../../lib/errors';
import { GrantIndex, grantInput } from '../../lib/access/grants';
import { Identity } from '../../lib/format/identity';
import { Ledger, type StoredCheckpoint } from '../../lib/store/ledger';
import type { PartnerTransport } from '../../lib/access/partner';
import { RateLimiter } from '../../lib/access/rate-limit';
import { tmpDir } from '../helpers';

const ORIGIN = 'example.com/owner';
const op = Identity.generate();
const partner = Identity.generate();
const other = Identity.generate();
const sensor = Identity.generate();

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

const ASK = { op: 'access', actions: ['read'], scope: { signers: '*', topics: ['plant/+/temp'] }, days: 30, note: 'ACME quality team' } as const;

describe("access requests: the owner's pending store", function () {
  this.timeout(20000);
  const t = tmpDir('bot-access-req-');
  let led: Ledger;
  let seq = 1;
  let opSeq = 1;
  const nextOp = (): number => opSeq++;
  const server = (extra: Partial<Parameters<typeof answerRequest>[0]> = {}): Parameters<typeof answerRequest>[0] => ({
    ledger: led,
    checkpoint: async (): Promise<StoredCheckpoint | undefined> => led.checkpoint().then((c) => c ?? led.latestCheckpoint()),
    receiptCheckpoint: async (): Promise<StoredCheckpoint | undefined> => led.checkpoint().then((c) => c ?? led.latestCheckpoint()),
    ...extra,
  });
  const ask = (who: Identity, payload: object = ASK, s = seq++, ts = Date.now()) => makeRequest(who, s, payload as never, ts);
  const send = async (env: { toJSON(): unknown }, extra = {}): Promise<AccessAnswer> => answerRequest(server(extra), env.toJSON()) as Promise<AccessAnswer>;
  const records = async (): Promise<number> => {
    let n = 0;
    for await (const _ of led.aux.iterator('access/p/')) n++;
    return n;
  };

  before(async () => {
    led = await Ledger.open({ dir: t.dir, origin: ORIGIN, identity: op });
    let s = 1;
    for (const topic of ['plant/1/temp', 'plant/2/temp', 'plant/1/humidity']) {
      await led.append(signEnvelope(sensor, { kind: 'reading', seq: s++, ts: Date.now(), topic, payload: { v: s } }));
    }
  });
  after(async () => {
    await led.close();
    t.cleanup();
  });

  it('keeps a signed request as pending, with the id the partner can compute (the future grant id)', async () => {
    const env = ask(partner);
    const a = await send(env);
    const v = a.access as AccessView;
    assert.equal(v.status, 'pending');
    assert.equal(v.id, accessRequestId(env));
    assert.match(v.id, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(v.requester, partner.did);
    assert.deepEqual(v.actions, ['read']);
    assert.deepEqual(v.scope, { signers: '*', topics: ['plant/+/temp'] });
    assert.equal(v.days, 30);
    assert.equal(v.note, 'ACME quality team');
    assert.deepEqual(
      (await AccessRequests.of(led).list()).map((r) => r.id),
      [v.id],
    );
    assert.equal(await records(), 1);
  });

  it('one per requester: the same request again changes nothing, an older one is E_REPLAY, a newer one replaces it', async () => {
    const store = AccessRequests.of(led);
    const events: string[] = [];
    const stop = store.onChange((c) => events.push(`${c.type}:${c.why ?? ''}`));
    const env = ask(other, { ...ASK, note: 'first' });
    const first = (await send(env)).access as AccessView;
    assert.deepEqual(events, ['added:']);
    const again = (await send(env)).access as AccessView; // e.g. an MQTT QoS 1 redelivery
    assert.deepEqual(again, first);
    assert.deepEqual(events, ['added:'], 'a duplicate changes nothing');
    await expectCode(send(ask(other, { ...ASK, note: 'older' }, 0)), 'E_REPLAY');
    assert.equal((await store.get(first.id))?.note, 'first');
    const newer = (await send(ask(other, { ...ASK, note: 'second', days: 7 }))).access as AccessView;
    assert.notEqual(newer.id, first.id);
    assert.equal(await store.get(first.id), undefined);
    assert.equal((await store.list()).filter((r) => r.requester === other.did).length, 1);
    assert.deepEqual(events, ['added:', 'removed:replaced', 'added:']);
    stop();
  });

  it('refusals change nothing: signature, freshness, size, malformed asks, kind, rate, an owner without its key', async () => {
    const store = AccessRequests.of(led);
    const before = JSON.stringify(await store.list());
    const n = await records();
    const stranger = Identity.generate();
    const forged = { ...(ask(stranger).toJSON() as unknown as Record<string, unknown>), signer: partner.did };
    await expectCode(send({ toJSON: () => forged }), 'E_SIGNATURE');
    await expectCode(send(ask(stranger, ASK, 1, Date.now() - 10 * 60_000)), 'E_REPLAY');
    await expectCode(send(ask(stranger, { ...ASK, note: 'x'.repeat(281) })), 'E_QUERY');
    await expectCode(send(ask(stranger, { ...ASK, note: 'bell\u0007' })), 'E_QUERY');
    await expectCode(send(ask(stranger, { ...ASK, actions: ['delete'] })), 'E_QUERY');
    await expectCode(send(ask(stranger, { ...ASK, actions: [] })), 'E_QUERY');
    await expectCode(send(ask(stranger, { ...ASK, days: 0 })), 'E_QUERY');
    await expectCode(send(ask(stranger, { ...ASK, days: 1.5 })), 'E_QUERY');
    await expectCode(send(ask(stranger, { ...ASK, scope: { signers: '*', topics: ['a/#/b'] } })), 'E_QUERY');
    await expectCode(send(ask(stranger, { ...ASK, grant: 'x' })), 'E_QUERY');
    await expectCode(send(ask(stranger, { ...ASK, scope: { signers: Array.from({ length: 200 }, () => Identity.generate().did) } })), 'E_TOO_LARGE');
    await expectCode(send(ask(op)), 'E_QUERY'); // the operator itself
    const reading = signEnvelope(stranger, { kind: 'reading', seq: 5, ts: Date.now(), payload: ASK as never });
    await expectCode(send(reading), 'E_ENVELOPE');
    await expectCode(send(ask(stranger), { receiptCheckpoint: undefined }), 'E_KEY');
    const limiter = new RateLimiter({ total: 1, perSigner: 0 });
    await send(ask(partner), { rateLimiter: limiter }).catch(() => undefined); // takes the only token
    await expectCode(send(ask(stranger), { rateLimiter: limiter }), 'E_RATE');
    const perSigner = new RateLimiter({ total: 0, perSigner: 1 });
    const s2 = Identity.generate();
    await send(ask(s2, ASK, 1), { rateLimiter: perSigner });
    await expectCode(send(ask(s2, ASK, 2), { rateLimiter: perSigner }), 'E_RATE');
    // s2's first request is the one change above; everything refused left nothing.
    const after = (await store.list()).filter((r) => r.requester !== s2.did && r.requester !== partner.did);
    assert.deepEqual(
      after.map((r) => r.requester),
      JSON.parse(before)
        .filter((r: AccessView) => r.requester !== partner.did)
        .map((r: AccessView) => r.requester),
    );
    assert.ok(!(await store.list()).some((r) => r.requester === stranger.did));
    assert.equal(await records(), n + 1);
    await store.decline((await store.list()).find((r) => r.requester === s2.did)!.id);
  });

  it('approval issues the grant with the request id, narrowed if the operator chooses (never wider); the partner then reads', async () => {
    const store = AccessRequests.of(led);
    const pending = (await store.list()).find((r) => r.requester === partner.did)!;
    const n = await records();
    await expectCode(store.approve(pending.id, op, nextOp, { actions: ['read', 'append'] }), 'E_SCOPE');
    await expectCode(store.approve(pending.id, op, nextOp, { scope: { signers: '*', topics: ['plant/#'] } }), 'E_SCOPE');
    await expectCode(store.approve(pending.id, op, nextOp, { days: 31 }), 'E_SCOPE');
    await expectCode(store.approve('nope', op, nextOp), 'E_NOT_FOUND');
    assert.equal(await records(), n, 'a refused approval changes nothing');
    assert.equal(await GrantIndex.of(led).get(pending.id), undefined);
    const { terms, receipt } = await store.approve(pending.id, op, nextOp, { scope: { signers: '*', topics: ['plant/1/temp'] }, days: 10 });
    assert.equal(terms.id, pending.id);
    assert.equal(terms.subject, partner.did);
    assert.deepEqual(terms.scope.topics, ['plant/1/temp']);
    assert.ok(terms.expires - Date.now() <= 10 * 86_400_000 && terms.expires - Date.now() > 9 * 86_400_000);
    assert.ok(receipt.index >= 3);
    assert.equal(await store.get(pending.id), undefined);
    assert.equal(await records(), n - 1);
    await expectCode(store.approve(pending.id, op, nextOp), 'E_NOT_FOUND');
    const read = (await answerRequest(server(), makeRequest(partner, seq++, { op: 'read', grant: pending.id }).toJSON())) as ReadAnswer;
    assert.deepEqual(
      read.entries.map((e) => (e.leaf as { topic: string }).topic),
      ['plant/1/temp'],
    );
  });

  it('access-status: pending, approved with the operator-signed grant, declined; unknown for anyone else', async () => {
    const store = AccessRequests.of(led);
    const status = async (who: Identity, id: string): Promise<AccessAnswer['access']> => (await send(ask(who, { op: 'access-status', id }))).access;
    const approved = (await GrantIndex.of(led).list()).find((g) => g.subject === partner.did)!;
    const s = await status(partner, approved.id);
    assert.equal(s.status, 'approved');
    const g = (s as { grant?: unknown }).grant as { kind: string; signer: string };
    assert.equal(g.kind, 'grant');
    assert.equal(g.signer, op.did);
    assert.equal((await status(other, approved.id)).status, 'unknown', 'not the requester: nothing leaks');
    const otherPending = (await store.list()).find((r) => r.requester === other.did)!;
    assert.equal((await status(other, otherPending.id)).status, 'pending');
    assert.equal((await status(partner, otherPending.id)).status, 'unknown');
    await store.decline(otherPending.id);
    assert.equal((await status(other, otherPending.id)).status, 'declined');
    await expectCode(send(ask(other, { op: 'access-status', id: 'short' })), 'E_QUERY');
  });

  it('a replayed declined request is refused (E_REPLAY) and does not come back', async () => {
    const store = AccessRequests.of(led);
    const who = Identity.generate();
    const env = ask(who, ASK, 10);
    const v = (await send(env)).access as AccessView;
    await store.decline(v.id);
    await expectCode(send(env), 'E_REPLAY');
    assert.equal(await store.get(v.id), undefined);
  });

  it('arbitrary asks (fast-check): a typed answer or a typed refusal, and a refusal stores nothing', async () => {
    const store = AccessRequests.of(led);
    const field = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.constantFrom(['read'], ['append', 'read'], { signers: '*' }, { signers: '*', topics: ['a/+'] }, 30, 1, 36500, 'note'),
    );
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.constantFrom('actions', 'scope', 'days', 'note', 'grant', 'x'), field, { maxKeys: 5 }), async (extra) => {
        const who = Identity.generate();
        const before = (await store.list()).length;
        const records0 = await records();
        try {
          const v = (await send(ask(who, { op: 'access', ...extra }))).access as AccessView;
          assert.equal(v.requester, who.did);
          assert.ok((await store.list()).some((r) => r.id === v.id));
        } catch (err) {
          assert.ok(isBotError(err), `not a typed error: ${String(err)}`);
          assert.equal((await store.list()).length, before);
          assert.equal(await records(), records0);
        }
      }),
      { numRuns: 60 },
    );
    for (const r of await store.list()) await store.decline(r.id);
  });

  it(`bounded: at most ${MAX_PENDING} pending (the oldest pushed out, its record deleted); they survive a restart`, async () => {
    const store = AccessRequests.of(led);
    const first = Identity.generate();
    const firstView = (await send(ask(first))).access as AccessView;
    for (let i = 0; i < MAX_PENDING; i++) await send(ask(Identity.generate()));
    assert.equal((await store.list()).length, MAX_PENDING);
    assert.equal(await store.get(firstView.id), undefined, 'the oldest was pushed out');
    assert.equal(await records(), MAX_PENDING);
    const kept = (await store.list()).map((r) => r.id).sort();
    await led.close();
    led = await Ledger.open({ dir: t.dir, identity: op });
    const reopened = AccessRequests.of(led);
    assert.deepEqual((await reopened.list()).map((r) => r.id).sort(), kept);
    // Newest first, as the sidebar shows them.
    const list = await reopened.list();
    assert.ok(list[0].received >= list[list.length - 1].received);
  });
});

describe('access requests: the partner side (lib/access/access-client.ts)', function () {
  this.timeout(20000);
  const t = tmpDir('bot-access-client-');
  let led: Ledger;
  let seq = 1;
  let opSeq = 100;
  const me = Identity.generate();
  const owner = { origin: ORIGIN, operator: op.did };
  let forge: ((answer: unknown) => unknown) | undefined;
  const transport: PartnerTransport = async (request, accept) => {
    const real = await answerRequest(
      {
        ledger: led,
        checkpoint: async () => led.checkpoint().then((c) => c ?? led.latestCheckpoint()),
        receiptCheckpoint: async () => led.latestCheckpoint(),
      },
      request,
    ).catch((err: BotError) => ({ error: { code: err.code, message: err.message } }));
    if (forge && accept) {
      // An answer someone else published on the reply topic first: it must be ignored.
      const fake = forge(real);
      if (accept(fake)) return fake;
    }
    return real;
  };
  const opts = { owner, identity: me, nextSeq: () => seq++, transport };

  before(async () => {
    led = await Ledger.open({ dir: t.dir, origin: ORIGIN, identity: op });
  });
  after(async () => {
    await led.close();
    t.cleanup();
  });

  it('asks, is pending, is approved: the grant is checked against the operator key before it is believed', async () => {
    const v = await requestAccess(opts, { actions: ['read'], scope: { signers: '*', topics: ['plant/#'] }, days: 5, note: 'hello' });
    assert.equal(v.status, 'pending');
    assert.equal((await accessStatus(opts, v.id)).status, 'pending');
    await AccessRequests.of(led).approve(v.id, op, () => opSeq++);
    // A forged approval (a grant signed by another key) is ignored; the owner's is taken.
    const stranger = Identity.generate();
    forge = (real) => {
      const g = signEnvelope(
        stranger,
        grantInput(
          { id: v.id, subject: me.did, ledger: ORIGIN, actions: ['read', 'append'], scope: { signers: '*' }, expires: Date.now() + 1e9 },
          1,
          Date.now(),
        ),
      );
      return { access: { ...(real as AccessAnswer).access, grant: g.toJSON() } };
    };
    const s = await accessStatus(opts, v.id);
    forge = undefined;
    assert.equal(s.status, 'approved');
    assert.deepEqual(s.grant?.actions, ['read']);
    assert.deepEqual(s.grant?.scope, { signers: '*', topics: ['plant/#'] });
  });

  it("checks the ask before sending (E_QUERY) and throws the owner's refusals as typed errors", async () => {
    await expectCode(requestAccess(opts, { actions: ['fly'] }), 'E_QUERY');
    await expectCode(requestAccess({ ...opts, identity: op }, { actions: ['read'] }), 'E_QUERY');
  });
});

describe('access requests: MQTT topic filter containment for narrowing', () => {
  it('filterCovers follows MQTT 3.1.1 §4.7', () => {
    const yes: [string, string][] = [
      ['plant/#', 'plant/1/temp'],
      ['plant/#', 'plant'],
      ['plant/+/temp', 'plant/1/temp'],
      ['plant/+/temp', 'plant/+/temp'],
      ['#', 'a/b'],
      ['+/+', 'a/+'],
      ['plant/#', 'plant/+/temp'],
      ['plant/#', 'plant/#'],
    ];
    const no: [string, string][] = [
      ['plant/+/temp', 'plant/#'],
      ['plant/1/temp', 'plant/+/temp'],
      ['plant/+', 'plant/1/temp'],
      ['#', '$SYS/x'],
      ['+/x', '$SYS/x'],
      ['plant/+/temp', 'plant/1'],
      ['plant', 'plant/#'],
      ['a/b', 'a/c'],
    ];
    for (const [o, i] of yes) assert.ok(filterCovers(o, i), `${o} covers ${i}`);
    for (const [o, i] of no) assert.ok(!filterCovers(o, i), `${o} does not cover ${i}`);
  });

  it('scopeWithin and narrowAsk: signers, topics, time range, days, actions', async () => {
    const a = Identity.generate().did as never;
    const b = Identity.generate().did as never;
    assert.ok(scopeWithin({ signers: '*' }, { signers: [a], topics: ['x'] }));
    assert.ok(!scopeWithin({ signers: [a] }, { signers: '*' }));
    assert.ok(!scopeWithin({ signers: [a] }, { signers: [a, b] }));
    assert.ok(!scopeWithin({ signers: '*', topics: ['x/#'] }, { signers: '*' }));
    assert.ok(scopeWithin({ signers: '*', from: 10, until: 20 }, { signers: '*', from: 12, until: 20 }));
    assert.ok(!scopeWithin({ signers: '*', from: 10 }, { signers: '*' }));
    const asked = { actions: ['read', 'append'] as never, scope: { signers: '*' as const }, days: 30 };
    assert.deepEqual(narrowAsk(asked, { actions: ['read'], days: 3 }).actions, ['read']);
    await expectCode(() => narrowAsk(asked, { actions: ['witness'] }), 'E_SCOPE');
  });
});
