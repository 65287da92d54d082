/**
 * Confidential entries in a real Node-RED runtime (issue 13;
 * docs/design.md "Confidential entries"): a bot-ledger marks `plant/#` confidential; bot-append seals a reading on it before
 * it is appended (the LevelDB files hold no plaintext of it, while a plain reading's marker is
 * there); the owner's bot-query opens it; bot-grant wraps the keys to a partner's encryption
 * key (from its bot-partner node, also through the access-request endpoint and approve); the
 * partner's bot-query reads it opened, both signatures verified; revoking rotates the scope:
 * the revoked partner holds no key of entries sealed after (E_NO_KEY), while another partner
 * reads them without any action. The dialog's scope lines and the runtime's parser agree.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { signEnvelope, verifyEnvelope } from '../../lib/format/envelope';
import { Identity } from '../../lib/format/identity';
import type { Ledger } from '../../lib/store/ledger';
import { KeyEpochs, Keyring } from '../../lib/confidential/keys';
import { openWith } from '../../lib/confidential/owner';
import { loadOrCreateEncryptionKey } from '../../lib/service/encryption-key';
import type { AccessView } from '../../lib/access/access-requests';
import { freePort } from '../helpers';
import type { FlowNode, Msg } from './util';
import { ALL_NODES, freshUserDir, helper, nextMessage } from './util';
import { parseConfidentialScopes, parseReadPlaces } from '../../nodes/setting-lines';
import { readExample } from './examples';

const botGrant = require('../../nodes/bot-grant') as unknown;
const botPartner = require('../../nodes/bot-partner') as unknown;
const httpIn = require('@node-red/nodes/core/network/21-httpin.js') as unknown;

const OPERATOR = Identity.generate();
const DEVICE = Identity.generate();
const PARTNER = Identity.generate();
const PARTNER2 = Identity.generate();
const ORIGIN = 'test.example/confidential';
const seed = (id: Identity): string => id.exportSeed().toString('hex');
const CREDS = { op: { secretKey: seed(OPERATOR) }, me: { secretKey: seed(PARTNER) }, me2: { secretKey: seed(PARTNER2) } };

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
const inject = require('@node-red/nodes/core/common/20-inject.js') as unknown;
const debug = require('@node-red/nodes/core/common/21-debug.js') as unknown;
const comment = require('@node-red/nodes/core/common/90-comment.js') as unknown;
const catchNode = require('@node-red/nodes/core/common/25-catch.js') as unknown;
const NODES = [...ALL_NODES, botGrant, botPartner, httpIn, exposeHttp, inject, debug, comment, catchNode];

/** Whether any file under dir holds the bytes (LevelDB's log and tables keep values as written). */
function grep(dir: string, needle: string): boolean {
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && fs.readFileSync(path.join(e.parentPath ?? e.path, e.name)).includes(needle)) return true;
  }
  return false;
}

function flow(dir: string, url: string): FlowNode[] {
  const partner = (id: string, identity: string, grant: string): FlowNode => ({
    id,
    type: 'bot-partner',
    origin: ORIGIN,
    operator: OPERATOR.did,
    grant,
    identity,
    via: 'http',
    url,
    timeoutMs: 5000,
  });
  return [
    { id: 't1', type: 'tab', label: 'confidential' },
    { id: 'op', type: 'bot-identity', name: 'operator' },
    { id: 'me', type: 'bot-identity', name: 'partner' },
    { id: 'me2', type: 'bot-identity', name: 'partner 2' },
    { id: 'L1', type: 'bot-ledger', name: 'owner', origin: ORIGIN, identity: 'op', dir, checkpointMs: 0, confidential: 'plant plant/#' },
    { id: 'x', type: 'expose-http', z: 't1' },
    { id: 'a1', type: 'bot-append', z: 't1', ledger: 'L1', wires: [['aout']] },
    { id: 'aout', type: 'helper', z: 't1' },
    { id: 'g1', type: 'bot-grant', z: 't1', ledger: 'L1', actions: 'read', validDays: 30, wires: [['gout']] },
    { id: 'gout', type: 'helper', z: 't1' },
    { id: 'q1', type: 'bot-query', z: 't1', ledger: 'L1', mode: 'local', wires: [['qout']] },
    { id: 'qout', type: 'helper', z: 't1' },
    { id: 'hin', type: 'http in', z: 't1', url: '/bot/request', method: 'post', upload: false, wires: [['qh']] },
    { id: 'qh', type: 'bot-query', z: 't1', ledger: 'L1', mode: 'serve', wires: [['hres']] },
    { id: 'hres', type: 'http response', z: 't1', statusCode: '', headers: {} },
    partner('P1', 'me', 'gp1'),
    partner('P2', 'me2', 'gp2'),
    { id: 'pq1', type: 'bot-query', z: 't1', mode: 'partner', partner: 'P1', wires: [['pout1']] },
    { id: 'pout1', type: 'helper', z: 't1' },
    { id: 'pq2', type: 'bot-query', z: 't1', mode: 'partner', partner: 'P2', wires: [['pout2']] },
    { id: 'pout2', type: 'helper', z: 't1' },
    { id: 'c1', type: 'catch', z: 't1', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 't1' },
  ];
}

async function call(node: string, payload: unknown, at: string): Promise<Msg> {
  const m = nextMessage(helper.getNode(at), 10000);
  helper.getNode(node).receive({ payload });
  return m;
}

type Entry = {
  index: number;
  leaf: { kind: string; topic?: string };
  sealed?: { scope: string; epoch: number };
  opened?: { payload: unknown };
  error?: { code: string };
};

describe('confidential entries in Node-RED: sealed append, owner and partner reads, grants wrap keys, revocation rotates', function () {
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
    userDir = freshUserDir();
  });
  after(async () => {
    await helper.unload();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    fs.rmSync(userDir, { recursive: true, force: true });
  });

  const reading = (topic: string, marker: string): unknown =>
    signEnvelope(DEVICE, { kind: 'reading', seq: seq++, ts: Date.now(), topic, payload: { marker } }).toJSON();

  it('end to end: no plaintext on disk, owner and partners read opened, a revoked partner holds no later key', async () => {
    const dir = path.join(userDir, 'ledger');
    await helper.load(NODES, flow(dir, `${base}/bot/request`), CREDS);
    await call('a1', reading('plant/1/temp', 'PLAINTEXT-MARKER-0001'), 'aout');
    await call('a1', reading('office/temp', 'OFFICE-MARKER-0001'), 'aout');
    // The plain reading is on disk as written (the grep works); the confidential one is not.
    assert.ok(grep(dir, 'OFFICE-MARKER-0001'));
    assert.equal(grep(dir, 'PLAINTEXT-MARKER-0001'), false);

    // The owner's query opens its sealed entries.
    const own = (await call('q1', {}, 'qout')).payload as { entries: Entry[] };
    const sealedOwn = own.entries.filter((e) => e.leaf.kind === 'sealed');
    assert.equal(sealedOwn.length, 1);
    assert.deepEqual(sealedOwn[0].sealed, { scope: 'plant', epoch: 0 });
    assert.deepEqual(sealedOwn[0].opened?.payload, { marker: 'PLAINTEXT-MARKER-0001' });

    // Grants with the partners' encryption keys (each bot-partner signs its own).
    const p1 = helper.getNode('P1') as unknown as { enckey(): Promise<unknown> };
    const p2 = helper.getNode('P2') as unknown as { enckey(): Promise<unknown> };
    const g1 = await call('g1', { op: 'grant', id: 'gp1', subject: PARTNER.did, actions: ['read'], enckey: await p1.enckey() }, 'gout');
    assert.equal(g1.keys, 1);
    const g2 = await call('g1', { op: 'grant', id: 'gp2', subject: PARTNER2.did, actions: ['read'], enckey: await p2.enckey() }, 'gout');
    assert.equal(g2.keys, 1);

    // The partner reads the sealed reading opened (sealer's and device's signatures verified).
    const r1 = (await call('pq1', { topic: 'plant/#' }, 'pout1')).payload as { entries: Entry[] };
    assert.equal(r1.entries.length, 1);
    assert.deepEqual(r1.entries[0].opened?.payload, { marker: 'PLAINTEXT-MARKER-0001' });

    // Revocation rotates the scope; the next reading is sealed under epoch 1.
    const rv = await call('g1', { op: 'revoke', grant: 'gp1' }, 'gout');
    assert.deepEqual(rv.rotated, ['plant']);
    await call('a1', reading('plant/2/temp', 'PLAINTEXT-MARKER-0002'), 'aout');
    assert.equal(grep(dir, 'PLAINTEXT-MARKER-0002'), false);

    // The other partner reads both epochs without any action.
    const r2 = (await call('pq2', { topic: 'plant/#' }, 'pout2')).payload as { entries: Entry[] };
    assert.deepEqual(
      r2.entries.map((e) => [e.sealed?.epoch, (e.opened?.payload as { marker: string }).marker]),
      [
        [0, 'PLAINTEXT-MARKER-0001'],
        [1, 'PLAINTEXT-MARKER-0002'],
      ],
    );
    // The revoked partner: its reads are refused, and with the whole ledger (as a mirror holds it)
    // and its own encryption key it opens epoch 0 but holds no key of epoch 1.
    const refused = nextMessage(helper.getNode('caught'), 10000);
    helper.getNode('pq1').receive({ payload: { topic: 'plant/#' } });
    assert.match(String((await refused).error?.code), /^E_(GRANT|REVOKED|NO_GRANT)/);
    const { key } = await loadOrCreateEncryptionKey(path.join(userDir, 'bot-keys', 'P1.enckey.json'));
    const owner = await (helper.getNode('L1') as unknown as { lease: { ledger: Promise<Ledger> } }).lease.ledger;
    const rows: { index: number; leaf: Buffer }[] = [];
    for await (const e of owner.entries(0, owner.size)) rows.push({ index: e.index, leaf: e.leaf });
    const ring = new Keyring(new KeyEpochs(ORIGIN, OPERATOR.did), PARTNER.did, key);
    const sealed = [];
    for (const r of rows) {
      const env = verifyEnvelope(r.leaf);
      ring.epochs.apply(env, r.index);
      if (env.envelope.kind === 'sealed') sealed.push(env);
    }
    assert.equal(sealed.length, 2);
    assert.deepEqual((await openWith(ring, sealed[0])).envelope.payload, { marker: 'PLAINTEXT-MARKER-0001' });
    await assert.rejects(openWith(ring, sealed[1]), (e: Error & { code?: string }) => e.code === 'E_NO_KEY');
  });

  it('an access request from the bot-partner dialog carries its encryption key; approve wraps the keys to it', async () => {
    const body = { origin: ORIGIN, operator: OPERATOR.did, identity: 'me', via: 'http', url: `${base}/bot/request`, partner: 'P1', actions: ['read'], days: 7 };
    const r = await helper.request().post('/bot-ledger/partner/access').send(body);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const access = (r.body as { access: AccessView }).access;
    const ok = await call('g1', { op: 'approve', request: access.id }, 'gout');
    // Epoch 0 it holds already; epoch 1 revoked it, so it is granted again through a new epoch 2.
    assert.equal(ok.keys, 1);
    const scopes = (await call('g1', { op: 'scopes' }, 'gout')).payload as { scope: string; epochs: { holders: string[]; revoked: string[] }[] }[];
    assert.equal(scopes[0].scope, 'plant');
    assert.ok(scopes[0].epochs[0].holders.includes(PARTNER.did));
    assert.deepEqual(scopes[0].epochs[1].revoked, [PARTNER.did]);
    assert.ok(scopes[0].epochs[2].holders.includes(PARTNER.did) && scopes[0].epochs[2].holders.includes(PARTNER2.did));
  });

  it('the example "Confidential - owner" seals plant/# and its query opens it (no broker needed to append)', async () => {
    await helper.unload();
    const dir = path.join(userDir, 'example');
    process.env.BOT_MQTT_URL = 'mqtt://127.0.0.1:9';
    try {
      const flow = readExample('Confidential - owner').map((n) =>
        n.type === 'inject' ? { ...n, repeat: '', once: false } : n.type === 'bot-ledger' ? { ...n, dir } : n.type === 'debug' ? { ...n, type: 'helper' } : n,
      );
      await helper.load(NODES, flow, { 'co-key': { secretKey: seed(OPERATOR) }, 'co-device': { secretKey: seed(DEVICE) } });
      const appended = new Promise<void>((resolve) => {
        const l = helper.getNode('co-ledger') as unknown as { lease: { ledger: Promise<Ledger> } };
        void l.lease.ledger.then((led) => led.onCommit((c) => c.size >= 3 && resolve()));
      });
      helper.getNode('co-feed').receive({});
      helper.getNode('co-office').receive({});
      await appended;
      assert.equal(grep(dir, '21.5'), false);
      const got = nextMessage(helper.getNode('co-query-out'), 10000);
      helper.getNode('co-query-in').receive({});
      const entries = ((await got).payload as { entries: Entry[] }).entries;
      assert.equal(entries.length, 1);
      assert.deepEqual(entries[0].opened?.payload, { celsius: 21.5 });
    } finally {
      delete process.env.BOT_MQTT_URL;
    }
  });

  it('the settings: scope lines and read-from lines parse as the dialog checks them', () => {
    assert.deepEqual(parseConfidentialScopes('plant plant/# factory/+/temp\n# a comment\nhr hr/#'), [
      { scope: 'plant', topics: ['plant/#', 'factory/+/temp'] },
      { scope: 'hr', topics: ['hr/#'] },
    ]);
    for (const bad of ['plant', 'plant a/#/b', 'plant a/# a/#', 'p a/#\np b/#', 'bad!id a/#'])
      assert.throws(
        () => parseConfidentialScopes(bad),
        (e: Error & { code?: string }) => e.code === 'E_SCOPE',
        bad,
      );
    assert.deepEqual(parseReadPlaces(''), [{ owner: true }]);
    assert.deepEqual(parseReadPlaces('owner\nmirror m-1'), [{ owner: true }, { mirror: 'm-1' }]);
    for (const bad of ['owner\nowner', 'mirror', 'mirror a/b', 'somewhere']) assert.throws(() => parseReadPlaces(bad), bad);
  });
});
