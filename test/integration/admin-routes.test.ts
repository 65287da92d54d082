/**
 * Every admin endpoint of the nodes (nodes/admin-routes.ts) under Node-RED's adminAuth, in a
 * real Node-RED 4 runtime in its own process: each needs its own permission and nothing else
 * (a user holding only another one is refused), and answers with the same statuses and bodies
 * as before the routes moved into one module (the did of a key, the ledger list and entries,
 * the partner-side refusals with their statuses, 504 on a timeout).
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import { type AddressInfo } from 'node:net';
import * as path from 'node:path';
import { Identity } from '../../lib/format/identity';
import { type RedRuntime, startRed } from '../browser/harness';

describe('admin endpoints of the nodes: permissions and answers', function () {
  this.timeout(60000);
  let red: RedRuntime;
  const tokens: Record<string, string> = {};
  let hang: http.Server;
  let hangUrl = '';
  const owner = Identity.generate();

  const call = async (p: string, token: string | undefined, body?: unknown): Promise<{ status: number; body: unknown }> => {
    const r = await fetch(`${red.url}${p}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, body: r.headers.get('content-type')?.includes('json') ? (JSON.parse(text) as unknown) : text };
  };

  before(async () => {
    // An owner endpoint that never answers (the partner-side ask times out: 504).
    hang = http.createServer(() => undefined);
    await new Promise<void>((res) => hang.listen(0, '127.0.0.1', res));
    hangUrl = `http://127.0.0.1:${(hang.address() as AddressInfo).port}/bot`;
    const bcrypt = require(require.resolve('bcryptjs', { paths: [path.dirname(require.resolve('node-red/package.json'))] })) as {
      hashSync(p: string, r: number): string;
    };
    const users = { identity: 'bot-identity.read', ledger: 'bot-ledger.read', writer: 'bot-ledger.write', admin: '*' };
    red = await startRed({
      settings: {
        adminAuth: {
          type: 'credentials',
          users: Object.entries(users).map(([username, permissions]) => ({ username, password: bcrypt.hashSync(`${username}-pass`, 4), permissions })),
        },
      },
    });
    for (const [username, scope] of Object.entries(users)) {
      const r = await fetch(`${red.url}/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_id: 'node-red-editor', grant_type: 'password', scope, username, password: `${username}-pass` }),
      });
      assert.equal(r.status, 200, await r.clone().text());
      tokens[username] = ((await r.json()) as { access_token: string }).access_token;
    }
    const flows = [
      { id: 'key', type: 'bot-identity', name: 'op' },
      {
        id: 'led',
        type: 'bot-ledger',
        name: 'p',
        origin: 'example.com/P',
        identity: 'key',
        dir: '',
        checkpointMs: 0,
        checkpointEntries: 0,
        maxEntryBytes: 65536,
      },
    ];
    await red.deploy(flows, undefined, tokens.admin);
  });
  after(async () => {
    await red?.stop();
    hang?.closeAllConnections();
    await new Promise((res) => hang?.close(res));
  });

  it('POST /bot-identity/did needs bot-identity.read and answers the did, 404 and 400', async () => {
    assert.equal((await call('/bot-identity/did', undefined, {})).status, 401, 'no token');
    assert.equal((await call('/bot-identity/did', tokens.ledger, {})).status, 401, 'bot-ledger.read only');
    let deployed = await call('/bot-identity/did', tokens.identity, { id: 'key' });
    for (let i = 0; i < 50 && deployed.status !== 200; i++) {
      await new Promise((res) => setTimeout(res, 100));
      deployed = await call('/bot-identity/did', tokens.identity, { id: 'key' });
    }
    assert.equal(deployed.status, 200, JSON.stringify(deployed.body));
    assert.match((deployed.body as { did: string }).did, /^did:key:z6Mk/);
    const id = Identity.generate();
    assert.deepEqual(await call('/bot-identity/did', tokens.identity, { secretKey: id.exportSeed().toString('hex') }), { status: 200, body: { did: id.did } });
    assert.deepEqual(await call('/bot-identity/did', tokens.identity, { id: 'nope' }), {
      status: 404,
      body: { error: 'no deployed bot-identity with that id' },
    });
    assert.deepEqual(await call('/bot-identity/did', tokens.identity, {}), { status: 400, body: { error: 'send {secretKey} or {id}' } });
    assert.deepEqual(await call('/bot-identity/did', tokens.identity, { secretKey: '__PWRD__' }), { status: 400, body: { error: 'send {secretKey} or {id}' } });
    const bad = await call('/bot-identity/did', tokens.identity, { secretKey: 'not a key' });
    assert.equal(bad.status, 400);
    assert.match((bad.body as { error: string }).error, /^secret key must be a 32-byte seed/);
  });

  it('GET /bot-ledger/ledgers and …/entries need bot-ledger.read and answer the list, a page, 404 and 400', async () => {
    assert.equal((await call('/bot-ledger/ledgers', undefined)).status, 401, 'no token');
    assert.equal((await call('/bot-ledger/ledgers', tokens.identity)).status, 401, 'bot-identity.read only');
    assert.equal((await call('/bot-ledger/ledgers/led/entries', tokens.identity)).status, 401, 'bot-identity.read only');
    let list = await call('/bot-ledger/ledgers', tokens.ledger);
    for (let i = 0; i < 50 && (list.body as { treeSize?: unknown }[])[0]?.treeSize !== 0; i++) {
      await new Promise((res) => setTimeout(res, 100));
      list = await call('/bot-ledger/ledgers', tokens.ledger);
    }
    assert.equal(list.status, 200);
    const [l] = list.body as Record<string, unknown>[];
    assert.deepEqual({ ...l, did: typeof l.did }, { id: 'led', name: 'p', origin: 'example.com/P', did: 'string', treeSize: 0, checkpoint: null });
    assert.deepEqual(await call('/bot-ledger/ledgers/led/entries', tokens.ledger), { status: 200, body: { treeSize: 0, entries: [] } });
    assert.deepEqual(await call('/bot-ledger/ledgers/nope/entries', tokens.ledger), { status: 404, body: { error: 'no deployed bot-ledger with that id' } });
    // The tiles view (nodes/tiles-route.ts) needs the same permission; no checkpoint yet: 404.
    assert.equal((await call('/bot-ledger/ledgers/led/tiles/checkpoint', undefined)).status, 401, 'tiles: no token');
    assert.equal((await call('/bot-ledger/ledgers/led/tiles/checkpoint', tokens.identity)).status, 401, 'tiles: bot-identity.read only');
    assert.deepEqual(await call('/bot-ledger/ledgers/led/tiles/checkpoint', tokens.ledger), { status: 404, body: 'no signed checkpoint yet\n' });
    assert.deepEqual(await call('/bot-ledger/ledgers/led/entries?limit=0', tokens.ledger), {
      status: 400,
      body: { error: 'from must be a non-negative integer and limit an integer from 1 to 1000' },
    });
  });

  it('POST /bot-ledger/partner/access and …/access-status need bot-ledger.write and answer refusals with their statuses', async () => {
    const ask = { origin: 'example.com/O', operator: owner.did, identity: 'key', via: 'http', url: hangUrl, timeoutMs: 100, actions: ['read'] };
    for (const p of ['/bot-ledger/partner/access', '/bot-ledger/partner/access-status']) {
      assert.equal((await call(p, undefined, ask)).status, 401, `${p} without a token`);
      assert.equal((await call(p, tokens.ledger, ask)).status, 401, `${p} by a reader`);
    }
    const noKey = await call('/bot-ledger/partner/access', tokens.writer, { ...ask, identity: '' });
    assert.deepEqual(noKey, { status: 400, body: { error: { code: 'E_KEY', message: 'no partner identity configured' } } });
    const missing = await call('/bot-ledger/partner/access', tokens.writer, { ...ask, identity: 'nope' });
    assert.equal(missing.status, 400);
    assert.deepEqual(missing.body, {
      error: { code: 'E_KEY', message: 'My identity is not deployed yet: deploy it (with this node), then ask again' },
    });
    assert.deepEqual(await call('/bot-ledger/partner/access', tokens.writer, { ...ask, days: 'ten' }), {
      status: 400,
      body: { error: { code: 'E_QUERY', message: 'days must be a number' } },
    });
    const standalone = await call('/bot-ledger/partner/access-status', tokens.writer, { ...ask, via: 'mqtt', ledger: 'led', id: 'x' });
    assert.deepEqual(standalone, {
      status: 503,
      body: { error: { code: 'E_CLOSED', message: 'reaching the owner over MQTT needs a ledger with a broker (or choose HTTP)' } },
    });
    const timedOut = await call('/bot-ledger/partner/access', tokens.writer, ask);
    assert.equal(timedOut.status, 504, JSON.stringify(timedOut.body));
    assert.equal((timedOut.body as { error: { code: string } }).error.code, 'E_TIMEOUT');
  });
});
