/**
 * The "one paste to connect a partner" admin endpoints under Node-RED's adminAuth (a real
 * Node-RED 4 runtime in its own process): listing access requests needs bot-ledger.read;
 * approving, declining, creating an invitation and the partner-side ask/check need
 * bot-ledger.write; the QR code module is public browser code, like the verifier.
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { parseInvitation } from '../../lib/access/invitation';
import { type RedRuntime, startRed } from '../browser/harness';

describe('access request and invitation endpoints under adminAuth', function () {
  this.timeout(60000);
  let red: RedRuntime;
  let viewer = '';
  let admin = '';

  async function login(username: string, password: string, scope = '*'): Promise<string> {
    const r = await fetch(`${red.url}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: 'node-red-editor', grant_type: 'password', scope, username, password }),
    });
    assert.equal(r.status, 200, await r.clone().text());
    return ((await r.json()) as { access_token: string }).access_token;
  }
  const call = (p: string, token: string, body?: unknown): Promise<Response> =>
    fetch(`${red.url}${p}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  before(async () => {
    const bcrypt = require(require.resolve('bcryptjs', { paths: [path.dirname(require.resolve('node-red/package.json'))] })) as {
      hashSync(p: string, r: number): string;
    };
    red = await startRed({
      settings: {
        adminAuth: {
          type: 'credentials',
          users: [
            { username: 'viewer', password: bcrypt.hashSync('viewer-pass', 4), permissions: 'read' },
            { username: 'admin', password: bcrypt.hashSync('admin-pass', 4), permissions: '*' },
          ],
        },
      },
    });
    admin = await login('admin', 'admin-pass');
    viewer = await login('viewer', 'viewer-pass', 'read');
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
    const r = await fetch(`${red.url}/flows`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json', 'Node-RED-API-Version': 'v2', 'Node-RED-Deployment-Type': 'full' },
      body: JSON.stringify({ flows }),
    });
    assert.equal(r.status, 200, await r.text());
  });
  after(async () => {
    await red?.stop();
  });

  it('reads need bot-ledger.read; approve, decline, invitation and the partner endpoints need bot-ledger.write', async () => {
    assert.equal((await fetch(`${red.url}/bot-ledger/view/ledgers/led/access`)).status, 401, 'no token');
    let r = await call('/bot-ledger/view/ledgers/led/access', viewer);
    for (let i = 0; i < 50 && r.status !== 200; i++) {
      await new Promise((res) => setTimeout(res, 100));
      r = await call('/bot-ledger/view/ledgers/led/access', viewer);
    }
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), []);
    for (const p of [
      '/bot-ledger/view/ledgers/led/access/AAAAAAAAAAAAAAAAAAAAAA/approve',
      '/bot-ledger/view/ledgers/led/access/AAAAAAAAAAAAAAAAAAAAAA/decline',
      '/bot-ledger/view/ledgers/led/invitation',
      '/bot-ledger/partner/access',
      '/bot-ledger/partner/access-status',
    ]) {
      assert.equal((await call(p, viewer, {})).status, 401, `${p} by a reader`);
    }
    const missing = await call('/bot-ledger/view/ledgers/led/access/AAAAAAAAAAAAAAAAAAAAAA/approve', admin, {});
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { code: string }).code, 'E_NOT_FOUND');
    const bad = await call('/bot-ledger/view/ledgers/led/invitation', admin, { broker: 'mqtt://user:pw@broker.example' });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { code: string }).code, 'E_INVITATION');
    const inv = await call('/bot-ledger/view/ledgers/led/invitation', admin, { url: 'https://owner.example/bot/request' });
    assert.equal(inv.status, 200);
    const parsed = parseInvitation(((await inv.json()) as { invitation: string }).invitation);
    assert.deepEqual([parsed.origin, parsed.url], ['example.com/P', 'https://owner.example/bot/request']);
    // The QR code module is public browser code (it holds no data), served from the package's dependency.
    const qr = await fetch(`${red.url}/bot-ledger/view/vendor/qrcode/qrcode.mjs`);
    assert.equal(qr.status, 200);
    assert.match(await qr.text(), /export default qrcode/);
    assert.equal((await fetch(`${red.url}/bot-ledger/view/vendor/qrcode/..%2Fpackage.json`)).status, 404);
  });
});
