/**
 * Access requests in a Node-RED runtime (README "One paste to connect a partner"): a partner's
 * request reaches the owner over HTTP (http in → bot-query answering partners), bot-grant
 * announces it as a message, lists, approves (narrowed) and declines requests; the partner-side
 * admin endpoint (nodes/admin-routes.ts) asks and checks; a bot-partner whose invitation no
 * longer matches its settings is refused at deploy.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { AccessView } from '../../lib/access/access-requests';
import { accessStatus, requestAccess } from '../../lib/access/access-client';
import { signEnvelope } from '../../lib/format/envelope';
import { Identity } from '../../lib/format/identity';
import { createInvitation } from '../../lib/access/invitation';
import { httpTransport, PartnerClient } from '../../lib/access/partner';
import { freePort } from '../helpers';
import type { FlowNode, Msg } from './util';
import { ALL_NODES, freshUserDir, helper, nextMessage, noMessage } from './util';

const botGrant = require('../../nodes/bot-grant') as unknown;
const botPartner = require('../../nodes/bot-partner') as unknown;
const httpIn = require('@node-red/nodes/core/network/21-httpin.js') as unknown;

const OPERATOR = Identity.generate();
const DEVICE = Identity.generate();
const PARTNER = Identity.generate();
const ORIGIN = 'test.example/access';
const seed = (id: Identity): string => id.exportSeed().toString('hex');
const CREDS = { op: { secretKey: seed(OPERATOR) }, me: { secretKey: seed(PARTNER) } };

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

function flow(dir: string, extra: FlowNode[] = []): FlowNode[] {
  return [
    { id: 't1', type: 'tab', label: 'access' },
    { id: 'op', type: 'bot-identity', name: 'operator' },
    { id: 'me', type: 'bot-identity', name: 'partner' },
    { id: 'L1', type: 'bot-ledger', name: 'owner', origin: ORIGIN, identity: 'op', dir, checkpointMs: 0, checkpointEntries: 0, maxEntryBytes: 65536 },
    { id: 'x', type: 'expose-http', z: 't1' },
    { id: 'a1', type: 'bot-append', z: 't1', ledger: 'L1', name: '', wires: [['aout']] },
    { id: 'aout', type: 'helper', z: 't1' },
    {
      id: 'g1',
      type: 'bot-grant',
      z: 't1',
      ledger: 'L1',
      name: '',
      subject: '',
      actions: 'read',
      signers: '',
      topics: '',
      validDays: 30,
      announce: true,
      wires: [['gout']],
    },
    { id: 'gout', type: 'helper', z: 't1' },
    { id: 'hin', type: 'http in', z: 't1', url: '/bot/request', method: 'post', upload: false, wires: [['qh']] },
    { id: 'qh', type: 'bot-query', z: 't1', ledger: 'L1', mode: 'serve', name: '', wires: [['hres']] },
    { id: 'hres', type: 'http response', z: 't1', statusCode: '', headers: {} },
    { id: 'c1', type: 'catch', z: 't1', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 't1' },
    ...extra,
  ];
}

async function call(node: string, payload: unknown, at = 'gout'): Promise<Msg> {
  const m = nextMessage(helper.getNode(at), 10000);
  helper.getNode(node).receive({ payload });
  return m;
}

describe('access requests in Node-RED: bot-grant ops, announcements, the partner endpoint', function () {
  this.timeout(30000);
  let userDir: string;
  let server: http.Server;
  let base: string;
  let seq = 1;

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
    httpNode = undefined;
  });
  afterEach(async () => {
    await helper.unload();
    fs.rmSync(userDir, { recursive: true, force: true });
  });

  const client = () => ({
    owner: { origin: ORIGIN, operator: OPERATOR.did },
    identity: PARTNER,
    nextSeq: () => seq++,
    transport: httpTransport(`${base}/bot/request`, 5000),
  });

  it('a request over HTTP is announced by bot-grant, listed, approved narrowed; the partner sees the grant and reads', async () => {
    await helper.load(NODES, flow(path.join(userDir, 'ledger')), CREDS);
    for (const topic of ['plant/1/temp', 'plant/2/temp', 'office/temp']) {
      const done = nextMessage(helper.getNode('aout'), 5000);
      helper.getNode('a1').receive({ payload: signEnvelope(DEVICE, { kind: 'reading', seq: seq++, ts: Date.now(), topic, payload: { c: 20 } }).toJSON() });
      await done;
    }
    const announced = nextMessage(helper.getNode('gout'), 10000);
    const v = await requestAccess(client(), { actions: ['read'], scope: { signers: '*', topics: ['plant/#'] }, days: 30, note: 'quality team' });
    const a = await announced;
    assert.equal(a.topic, 'access-request');
    assert.deepEqual((a.payload as AccessView).id, v.id);
    assert.equal((a.payload as AccessView).requester, PARTNER.did);
    const list = (await call('g1', { op: 'requests' })).payload as AccessView[];
    assert.deepEqual(
      list.map((r) => r.id),
      [v.id],
    );
    // Wider than asked: refused to Catch, nothing written.
    const caught = nextMessage(helper.getNode('caught'), 5000);
    helper.getNode('g1').receive({ payload: { op: 'approve', request: v.id, actions: ['read', 'append'] } });
    assert.equal((await caught).error?.code, 'E_SCOPE');
    const ok = await call('g1', { op: 'approve', request: v.id, scope: { signers: '*', topics: ['plant/1/#'] }, days: 2 });
    assert.equal((ok.grant as { id: string }).id, v.id);
    assert.equal((ok.payload as { kind: string }).kind, 'grant');
    const s = await accessStatus(client(), v.id);
    assert.equal(s.status, 'approved');
    assert.deepEqual(s.grant?.scope, { signers: '*', topics: ['plant/1/#'] });
    const read = await new PartnerClient({ ...client(), grant: v.id }).read({});
    assert.deepEqual(
      read.entries.map((e) => e.leaf.topic),
      ['plant/1/temp'],
    );
  });

  it('decline; refusals answered over HTTP with their status; the partner admin endpoint asks and checks', async () => {
    await helper.load(NODES, flow(path.join(userDir, 'ledger')), CREDS);
    const other = { ...client(), identity: Identity.generate() };
    const v = await requestAccess(other, { actions: ['read'] });
    const d = await call('g1', { op: 'decline', request: v.id });
    assert.equal((d.payload as { status: string }).status, 'declined');
    assert.equal((await accessStatus(other, v.id)).status, 'declined');
    const res = await fetch(`${base}/bot/request`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'request', payload: { op: 'access' } }),
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'E_ENVELOPE');

    // The bot-partner dialog's endpoint: signs with the deployed identity "me", sends over HTTP.
    const body = {
      origin: ORIGIN,
      operator: OPERATOR.did,
      identity: 'me',
      via: 'http',
      url: `${base}/bot/request`,
      actions: ['read'],
      scope: { signers: '*', topics: ['plant/+/temp'] },
      days: 7,
      note: 'from the dialog',
    };
    const r = await helper.request().post('/bot-ledger/partner/access').send(body);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const access = (r.body as { access: AccessView }).access;
    assert.equal(access.requester, PARTNER.did);
    assert.equal(access.days, 7);
    const st = await helper
      .request()
      .post('/bot-ledger/partner/access-status')
      .send({ ...body, id: access.id });
    assert.deepEqual((st.body as { access: unknown }).access, { id: access.id, status: 'pending' });
    const bad = await helper
      .request()
      .post('/bot-ledger/partner/access')
      .send({ ...body, identity: 'nobody' });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /E_KEY/);
    await noMessage(helper.getNode('caught'), 50);
  });

  it('a bot-partner whose settings no longer match its invitation is refused at deploy (E_INVITATION), a matching one is not', async () => {
    const inv = createInvitation(OPERATOR, 1, { origin: ORIGIN, url: 'https://owner.example/bot/request' });
    const partner = (id: string, over: Record<string, unknown>): FlowNode => ({
      id,
      type: 'bot-partner',
      origin: ORIGIN,
      operator: OPERATOR.did,
      grant: 'g-1',
      identity: 'me',
      via: 'http',
      url: 'https://owner.example/bot/request',
      invitation: inv,
      ...over,
    });
    await helper.load(
      NODES,
      flow(path.join(userDir, 'ledger'), [
        partner('P-ok', {}),
        partner('P-url', { url: 'https://elsewhere.example/bot' }),
        partner('P-tampered', { invitation: inv.slice(0, -3) + (inv.endsWith('A') ? 'BBB' : 'AAA') }),
      ]),
      CREDS,
    );
    const err = (id: string): { code?: string; message?: string } | undefined =>
      (helper.getNode(id) as unknown as { configError?: { code: string; message: string } }).configError;
    assert.equal(err('P-ok'), undefined);
    assert.equal(err('P-url')?.code, 'E_INVITATION');
    assert.match(err('P-url')?.message ?? '', /endpoint/);
    assert.ok(['E_SIGNATURE', 'E_INVITATION'].includes(err('P-tampered')?.code ?? ''), JSON.stringify(err('P-tampered')));
  });
});
