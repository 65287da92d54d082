/**
 * Partner access in one Node-RED runtime (docs/design.md "Partner access"): bot-grant issues,
 * lists and revokes grants; bot-query answers partners' signed requests (serve mode), also
 * behind `http in`; bot-query and bot-append in partner mode read from and supply to that
 * ledger through a bot-partner over HTTP.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { makeRequest, verifyReadAnswer } from '../../lib/access/access';
import { signEnvelope } from '../../lib/format/envelope';
import type { GrantView } from '../../lib/access/grants';
import { Identity } from '../../lib/format/identity';
import { type Ledger, type Receipt } from '../../lib/store/ledger';
import { freePort } from '../helpers';
import { ALL_NODES, type FlowNode, freshUserDir, helper, type Msg, nextMessage, nextMessages, noMessage, statuses, type TestNode } from './util';

const botGrant = require('../../nodes/bot-grant') as unknown;
const botPartner = require('../../nodes/bot-partner') as unknown;
const httpIn = require('@node-red/nodes/core/network/21-httpin.js') as unknown;

const OPERATOR = Identity.generate();
const DEVICE = Identity.generate();
const PARTNER = Identity.generate();
const ORIGIN = 'test.example/grant';
const seed = (id: Identity): string => id.exportSeed().toString('hex');
const CREDS = { op: { secretKey: seed(OPERATOR) }, dev: { secretKey: seed(DEVICE) }, me: { secretKey: seed(PARTNER) } };
/** Every text form of the secrets a leak could take. */
const SECRETS = [OPERATOR, PARTNER].flatMap((id) => {
  const s = id.exportSeed();
  return [s.toString('hex'), s.toString('base64'), s.toString('base64url'), s.toString('hex').slice(0, 24)];
});

/* The HTTP server of the test: serves the runtime's httpNode app (the helper does not listen for it). */
let httpNode: ((req: http.IncomingMessage, res: http.ServerResponse) => void) | undefined;
const exposeHttp = (RED: {
  nodes: { createNode(n: unknown, d: unknown): void; registerType(t: string, f: unknown): void };
  httpNode: typeof httpNode;
}): void => {
  RED.nodes.registerType('expose-http', function (this: unknown, def: unknown) {
    RED.nodes.createNode(this, def);
    httpNode = RED.httpNode;
  });
};
const NODES = [...ALL_NODES, botGrant, botPartner, httpIn, exposeHttp];

function flow(dir: string, base: string, opts: { ledger?: Record<string, unknown>; grant?: string; partner?: Record<string, unknown> } = {}): FlowNode[] {
  return [
    { id: 't1', type: 'tab', label: 'grants' },
    { id: 'op', type: 'bot-identity', name: 'operator' },
    { id: 'dev', type: 'bot-identity', name: 'device' },
    { id: 'me', type: 'bot-identity', name: 'partner' },
    {
      id: 'L1',
      type: 'bot-ledger',
      name: 'owner',
      origin: ORIGIN,
      identity: 'op',
      dir,
      checkpointMs: 0,
      checkpointEntries: 0,
      maxEntryBytes: 65536,
      ...opts.ledger,
    },
    {
      id: 'P1',
      type: 'bot-partner',
      name: 'owner over http',
      origin: ORIGIN,
      operator: OPERATOR.did,
      grant: opts.grant ?? 'g-1',
      identity: 'me',
      via: 'http',
      url: `${base}/bot/request`,
      timeoutMs: 5000,
      ...opts.partner,
    },
    { id: 'x', type: 'expose-http', z: 't1' },
    // owner: readings and grants
    { id: 's1', type: 'bot-sign', z: 't1', identity: 'dev', name: '', wires: [['a1']] },
    { id: 'a1', type: 'bot-append', z: 't1', ledger: 'L1', name: '', wires: [['out']] },
    { id: 'out', type: 'helper', z: 't1' },
    { id: 'g1', type: 'bot-grant', z: 't1', ledger: 'L1', name: '', subject: '', actions: 'read', signers: '', topics: '', validDays: 30, wires: [['gout']] },
    { id: 'gout', type: 'helper', z: 't1' },
    { id: 'qs', type: 'bot-query', z: 't1', ledger: 'L1', mode: 'serve', name: '', wires: [['qsout']] },
    { id: 'qsout', type: 'helper', z: 't1' },
    // owner: the HTTP endpoint partners call
    { id: 'hin', type: 'http in', z: 't1', url: '/bot/request', method: 'post', upload: false, wires: [['qh']] },
    { id: 'qh', type: 'bot-query', z: 't1', ledger: 'L1', mode: 'serve', name: '', wires: [['hres']] },
    { id: 'hres', type: 'http response', z: 't1', statusCode: '', headers: {} },
    // partner: read and supply through P1
    { id: 'pq', type: 'bot-query', z: 't1', mode: 'partner', partner: 'P1', name: '', wires: [['pqout']] },
    { id: 'pqout', type: 'helper', z: 't1' },
    { id: 'ps', type: 'bot-sign', z: 't1', identity: 'me', name: '', wires: [['pa']] },
    { id: 'pa', type: 'bot-append', z: 't1', mode: 'partner', partner: 'P1', name: '', wires: [['paout']] },
    { id: 'paout', type: 'helper', z: 't1' },
    { id: 'c1', type: 'catch', z: 't1', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 't1' },
  ];
}

const ledgerOf = (): Promise<Ledger> => (helper.getNode('L1') as unknown as { lease: { ledger: Promise<Ledger> } }).lease.ledger;

/** Send msg to a node and wait for what comes out at `at`. */
async function call(node: string, payload: unknown, at: string, extra: Msg = {}): Promise<Msg> {
  const m = nextMessage(helper.getNode(at), 10000);
  helper.getNode(node).receive({ payload, ...extra });
  return m;
}

/** Sign n device readings on the topics given and append them to the owner's ledger. */
async function pump(topics: string[]): Promise<void> {
  const got = nextMessages(helper.getNode('out'), topics.length, 10000);
  for (const [i, topic] of topics.entries()) helper.getNode('s1').receive({ payload: { i }, topic });
  await got;
}

/** Watch every message and status of some nodes, for the secret check. */
function watch(ids: string[]): unknown[] {
  const seen: unknown[] = [];
  for (const id of ids) {
    const n: TestNode = helper.getNode(id);
    n.on('input', (m: Msg) => seen.push(m));
    seen.push(statuses(n));
  }
  return seen;
}

function assertNoSecret(where: string, value: unknown): void {
  const text =
    typeof value === 'string'
      ? value
      : JSON.stringify(value, (k, v: unknown) => (k === 'req' || k === 'res' ? undefined : v instanceof Error ? { message: v.message, stack: v.stack } : v));
  for (const s of SECRETS) assert.ok(!(text ?? '').includes(s), `a secret leaked into ${where}`);
}

describe('bot-grant, bot-query serve/partner, bot-append partner (Node-RED)', function () {
  this.timeout(30000);
  let userDir: string;
  let dir: string;
  let server: http.Server;
  let base: string;

  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    server = http.createServer((req, res) => {
      if (httpNode) httpNode(req, res);
      else res.writeHead(503).end();
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  beforeEach(() => {
    userDir = freshUserDir();
    dir = path.join(userDir, 'ledger');
    httpNode = undefined;
  });
  afterEach(async () => {
    await helper.unload();
    fs.rmSync(userDir, { recursive: true, force: true });
  });

  it('issues a grant (envelope, terms, receipt), lists it active, revokes it, lists it revoked', async () => {
    await helper.load(NODES, flow(dir, base), CREDS);
    const seen = watch(['g1', 'gout', 'caught']);
    const st = statuses(helper.getNode('g1'));
    const until = Date.now() + 86_400_000;
    const g = await call(
      'g1',
      { op: 'grant', subject: PARTNER.did, actions: ['read'], scope: { signers: [DEVICE.did], topics: ['plant/+/temp'] }, expires: until },
      'gout',
    );
    const env = g.payload as { kind: string; signer: string; payload: { id: string; subject: string; ledger: string } };
    assert.equal(env.kind, 'grant');
    assert.equal(env.signer, OPERATOR.did);
    const terms = g.grant as { id: string; subject: string; ledger: string; actions: string[]; scope: unknown; expires: number };
    assert.match(terms.id, /^[A-Za-z0-9_-]{22}$/, 'a fresh id: 128 random bits, base64url');
    assert.equal(env.payload.id, terms.id);
    assert.deepEqual(terms, {
      id: terms.id,
      subject: PARTNER.did,
      ledger: ORIGIN,
      actions: ['read'],
      scope: { signers: [DEVICE.did], topics: ['plant/+/temp'] },
      expires: until,
    });
    const receipt = g.ledger as Receipt;
    assert.equal(receipt.origin, ORIGIN);
    assert.equal(receipt.index, 0);
    const l = await ledgerOf();
    assert.equal(l.size, 1);
    assert.deepEqual(JSON.parse((await l.get(0)).leaf.toString()), g.payload);

    // Settings of the node fill what msg.payload leaves out (a second grant, from an inject-like msg).
    const g2 = await call('g1', { subject: PARTNER.did, id: 'second.grant' }, 'gout');
    assert.equal((g2.grant as { id: string }).id, 'second.grant');
    assert.deepEqual((g2.grant as { actions: string[] }).actions, ['read']);
    assert.deepEqual((g2.grant as { scope: unknown }).scope, { signers: '*' });
    const days = ((g2.grant as { expires: number }).expires - Date.now()) / 86_400_000;
    assert.ok(days > 29.9 && days <= 30, `valid for ${days} days`);

    let list = (await call('g1', { op: 'list' }, 'gout')).payload as GrantView[];
    assert.deepEqual(
      list.map((v) => [v.id, v.status, v.index]),
      [
        ['second.grant', 'active', 1],
        [terms.id, 'active', 0],
      ],
    );

    const r = await call('g1', { op: 'revoke', grant: terms.id }, 'gout');
    assert.equal((r.payload as { kind: string }).kind, 'revoke');
    assert.deepEqual((r.payload as { payload: unknown }).payload, { grant: terms.id, ledger: ORIGIN });
    assert.equal((r.ledger as Receipt).index, 2);
    list = (await call('g1', { op: 'list' }, 'gout')).payload as GrantView[];
    const revoked = list.find((v) => v.id === terms.id);
    assert.equal(revoked?.status, 'revoked');
    assert.equal(revoked?.revokedIndex, 2);
    assert.equal(list.find((v) => v.id === 'second.grant')?.status, 'active');
    assert.ok(
      st.some((s) => /^granted read · #0$/.test(s.text ?? '')),
      JSON.stringify(st),
    );
    assert.ok(
      st.some((s) => /^revoked /.test(s.text ?? '')),
      JSON.stringify(st),
    );
    assertNoSecret('messages and statuses', seen);
    assertNoSecret('the flows', helper._redNodes.getFlows());
    for (const c of helper.log().args) assertNoSecret('the log', c);
  });

  it('refuses bad input to Catch with its code and writes nothing', async () => {
    await helper.load(NODES, flow(dir, base), CREDS);
    await call('g1', { subject: PARTNER.did, id: 'taken' }, 'gout');
    const cases: [unknown, string][] = [
      [{ op: 'grant' }, 'E_GRANT'], // no subject
      [{ subject: PARTNER.did, id: 'taken' }, 'E_GRANT'], // duplicate id
      [{ subject: PARTNER.did, actions: ['delete'] }, 'E_GRANT'],
      [{ subject: PARTNER.did, scope: { signers: '*', topics: ['a/#/b'] } }, 'E_GRANT'],
      [{ subject: PARTNER.did, id: 'has space' }, 'E_GRANT'],
      [{ subject: PARTNER.did, expires: 'never' }, 'E_GRANT'],
      [{ subject: 'did:key:zNope' }, 'E_DID'], // the kernel's code for a malformed did:key
      [{ op: 'revoke', grant: 'unknown' }, 'E_NO_GRANT'],
      [{ op: 'revoke' }, 'E_NO_GRANT'],
      [{ op: 'drop' }, 'E_QUERY'],
    ];
    const none = noMessage(helper.getNode('gout'), 500);
    const got: Msg[] = [];
    for (const [payload] of cases) {
      const err = nextMessage(helper.getNode('caught'));
      helper.getNode('g1').receive({ payload });
      got.push(await err);
      helper.getNode('caught').removeAllListeners('input');
    }
    await none;
    assert.deepEqual(
      got.map((e) => e.error?.code),
      cases.map(([, c]) => c),
    );
    for (const e of got) assert.equal(e.error?.source?.id, 'g1');
    assert.equal((await ledgerOf()).size, 1, 'only the first grant was written');
  });

  it('without the operator identity on the ledger: E_KEY to Catch, nothing written', async () => {
    await helper.load(NODES, flow(dir, base), CREDS);
    await pump(['plant/1/temp']);
    await helper.unload();
    await helper.load(NODES, flow(dir, base, { ledger: { identity: '' } }), CREDS);
    const err = nextMessage(helper.getNode('caught'));
    const none = noMessage(helper.getNode('gout'), 300);
    helper.getNode('g1').receive({ payload: { subject: PARTNER.did } });
    assert.equal((await err).error?.code, 'E_KEY');
    await none;
    assert.equal((await ledgerOf()).size, 1);
  });

  it('serve mode answers a signed request (200), refuses after revocation (403 E_REVOKED), a replay (409)', async () => {
    await helper.load(NODES, flow(dir, base), CREDS);
    await pump(['plant/1/temp', 'plant/1/hum', 'plant/2/temp']);
    const g = await call('g1', { subject: PARTNER.did, scope: { signers: [DEVICE.did], topics: ['plant/+/temp'] } }, 'gout');
    const id = (g.grant as { id: string }).id;
    let seq = 1;
    const read = makeRequest(PARTNER, seq++, { op: 'read', grant: id, filter: {} });
    const ok = await call('qs', read.toJSON(), 'qsout');
    assert.equal(ok.statusCode, 200);
    const v = verifyReadAnswer(ok.payload, { origin: ORIGIN, operator: OPERATOR.did });
    assert.deepEqual(
      v.entries.map((e) => [e.index, e.leaf.topic]),
      [
        [0, 'plant/1/temp'],
        [2, 'plant/2/temp'],
      ],
    );

    const replay = await call('qs', read.toJSON(), 'qsout');
    assert.equal(replay.statusCode, 409);
    assert.equal((replay.payload as { error: { code: string } }).error.code, 'E_REPLAY');

    const out = await call('qs', makeRequest(PARTNER, seq++, { op: 'read', grant: id, filter: { topic: 'plant/1/hum' } }).toJSON(), 'qsout');
    assert.equal(out.statusCode, 403);
    assert.equal((out.payload as { error: { code: string } }).error.code, 'E_SCOPE');

    const stranger = await call('qs', makeRequest(DEVICE, 100, { op: 'read', grant: id }).toJSON(), 'qsout');
    assert.equal(stranger.statusCode, 403);
    assert.equal((stranger.payload as { error: { code: string } }).error.code, 'E_NO_GRANT');

    const junk = await call('qs', { not: 'an envelope' }, 'qsout');
    assert.equal(junk.statusCode, 400);
    assert.equal((junk.payload as { error: { code: string } }).error.code, 'E_ENVELOPE');

    await call('g1', { op: 'revoke', grant: id }, 'gout');
    const gone = await call('qs', makeRequest(PARTNER, seq++, { op: 'read', grant: id }).toJSON(), 'qsout');
    assert.equal(gone.statusCode, 403);
    assert.deepEqual(Object.keys(gone.payload as object), ['error']);
    assert.equal((gone.payload as { error: { code: string } }).error.code, 'E_REVOKED');
  });

  it('serve mode behind http in: a partner POSTs a request and gets the answer or the refusal with its status', async () => {
    await helper.load(NODES, flow(dir, base), CREDS);
    await pump(['plant/1/temp', 'plant/1/hum']);
    const g = await call('g1', { subject: PARTNER.did, scope: { signers: '*', topics: ['plant/+/temp'] } }, 'gout');
    const id = (g.grant as { id: string }).id;
    const post = async (body: unknown): Promise<{ status: number; body: unknown }> => {
      const r = await fetch(`${base}/bot/request`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: r.status, body: await r.json() };
    };
    const req = makeRequest(PARTNER, 1, { op: 'read', grant: id });
    const ok = await post(req.toJSON());
    assert.equal(ok.status, 200);
    assert.deepEqual(
      verifyReadAnswer(ok.body, { origin: ORIGIN, operator: OPERATOR.did }).entries.map((e) => e.index),
      [0],
    );
    const again = await post(req.toJSON());
    assert.equal(again.status, 409);
    assert.equal((again.body as { error: { code: string } }).error.code, 'E_REPLAY');
  });

  it('partner mode over HTTP reads verified in-scope entries; bot-append partner mode supplies entries', async () => {
    await helper.load(NODES, flow(dir, base, { grant: 'g-1' }), CREDS);
    await pump(['plant/1/temp', 'plant/1/hum', 'plant/2/temp']);
    const seen = watch(['pq', 'pqout', 'pa', 'paout', 'caught', 'qh']);
    // Before the grant exists: refused, the error names the code.
    let err = nextMessage(helper.getNode('caught'), 10000);
    helper.getNode('pq').receive({ payload: {} });
    assert.equal((await err).error?.code, 'E_NO_GRANT');

    await call(
      'g1',
      { subject: PARTNER.did, id: 'g-1', actions: ['read', 'append'], scope: { signers: [DEVICE.did, PARTNER.did], topics: ['plant/+/temp', 'partner/#'] } },
      'gout',
    );
    const r = await call('pq', {}, 'pqout');
    const v = r.payload as {
      checkpoint: { origin: string; size: number };
      entries: { index: number; leaf: { topic: string; signer: string }; leafHash: string }[];
    };
    assert.equal(v.checkpoint.origin, ORIGIN);
    assert.equal(v.checkpoint.size, 4);
    assert.deepEqual(
      v.entries.map((e) => [e.index, e.leaf.topic]),
      [
        [0, 'plant/1/temp'],
        [2, 'plant/2/temp'],
      ],
    );

    // Supply: the partner signs with its own key; the owner appends and returns the receipt.
    const s = await call('ps', { level: 3 }, 'paout', { topic: 'partner/tank' });
    const receipt = s.ledger as Receipt;
    assert.equal(receipt.origin, ORIGIN);
    assert.equal(receipt.index, 4);
    const l = await ledgerOf();
    assert.equal(l.size, 5);
    const stored = JSON.parse((await l.get(4)).leaf.toString()) as { signer: string };
    assert.deepEqual(stored, s.payload);
    assert.equal(stored.signer, PARTNER.did);

    // A list of envelopes goes in one request, with a list of receipts.
    const two = [1, 2].map((i) => signEnvelope(PARTNER, { kind: 'reading', seq: 1000 + i, ts: Date.now(), topic: 'partner/tank', payload: { i } }).toJSON());
    const list = await call('pa', two, 'paout');
    assert.deepEqual(
      (list.ledger as Receipt[]).map((x) => x.index),
      [5, 6],
    );

    // Out of scope supply: refused, nothing appended.
    err = nextMessage(helper.getNode('caught'), 10000);
    const none = noMessage(helper.getNode('paout'), 300);
    helper.getNode('ps').receive({ payload: { level: 4 }, topic: 'elsewhere/tank' });
    assert.equal((await err).error?.code, 'E_SCOPE');
    await none;
    assert.equal(l.size, 7);

    // The partner now reads its own supplied entries too (in scope: partner/#).
    const r2 = await call('pq', { topic: 'partner/#' }, 'pqout');
    assert.deepEqual(
      (r2.payload as { entries: { index: number }[] }).entries.map((e) => e.index),
      [4, 5, 6],
    );

    // After revocation: E_REVOKED to Catch, nothing out.
    await call('g1', { op: 'revoke', grant: 'g-1' }, 'gout');
    err = nextMessage(helper.getNode('caught'), 10000);
    const none2 = noMessage(helper.getNode('pqout'), 300);
    helper.getNode('pq').receive({ payload: {} });
    const e = await err;
    assert.equal(e.error?.code, 'E_REVOKED');
    assert.equal(e.error?.source?.id, 'pq');
    await none2;
    assertNoSecret('messages and statuses', seen);
    for (const c of helper.log().args) assertNoSecret('the log', c);
  });

  it("partner mode with the owner's witnesses listed refuses a checkpoint without the quorum (E_CHECKPOINT)", async () => {
    const witness = Identity.generate();
    await helper.load(NODES, flow(dir, base, { grant: 'g-1', partner: { witnesses: `${witness.did} w.example/witness`, quorum: 2 } }), CREDS);
    await pump(['plant/1/temp']);
    await call('g1', { subject: PARTNER.did, id: 'g-1', actions: ['read'], scope: { signers: '*' } }, 'gout');
    const err = nextMessage(helper.getNode('caught'), 10000);
    const none = noMessage(helper.getNode('pqout'), 300);
    helper.getNode('pq').receive({ payload: {} });
    const e = await err;
    assert.equal(e.error?.code, 'E_CHECKPOINT');
    assert.match(String(e.error?.message), /1 of the 2 confirmations/);
    await none;
  });
});
