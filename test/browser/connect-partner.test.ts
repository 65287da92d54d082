/**
 * One paste to connect a partner (README "Partner access › One paste to connect a partner"),
 * end to end across two real Node-RED 4 runtimes, a real Mosquitto broker and real Chromium
 * editors: the owner creates an invitation in its Ledger sidebar (string and QR code); the
 * partner pastes a tampered copy into bot-partner (refused, with the reason), then the real one
 * (every field filled, the signature checked in the browser), asks for access with one click
 * and deploys; the owner approves the request in its sidebar (the QR code is read back by an
 * independent decoder, @paulmillr/qr, to the invitation string); the partner's bot-query then reads
 * verified entries inside the approved scope over MQTT.
 */
import { strict as assert } from 'node:assert';
import type { Page } from 'playwright-core';
import { decodeQR } from '@paulmillr/qr/decode.js';
import { Identity } from '../../lib/format/identity';
import { INVITATION_PREFIX, parseInvitation } from '../../lib/access/invitation';
import { Mosquitto } from '../mosquitto';
import { type EditorSession, openEditor, type RedRuntime, startRed } from './harness';

const OWNER = 'owner.example/plant-1';
const PARTNER = 'partner.example/b';

interface RedWindow {
  RED: { sidebar: { show(id: string): void }; editor: { editConfig(name: string, type: string, id: string): void } };
}

function ownerFlow(broker: string): object[] {
  return [
    { id: 'tab', type: 'tab', label: 'owner' },
    { id: 'op', type: 'bot-identity', name: 'operator' },
    { id: 'dev', type: 'bot-identity', name: 'device' },
    {
      id: 'led-a',
      type: 'bot-ledger',
      name: 'plant',
      origin: OWNER,
      identity: 'op',
      dir: '',
      checkpointMs: 300,
      checkpointEntries: 0,
      maxEntryBytes: 65536,
      broker,
      clientId: '',
      witnesses: '',
      quorum: '',
      witnessed: '',
    },
    ...['plant/1/temp', 'office/temp'].flatMap((topic, i) => [
      {
        id: `inj-${i}`,
        type: 'inject',
        z: 'tab',
        name: topic,
        x: 120,
        y: 60 + 60 * i,
        repeat: '',
        once: false,
        topic,
        payload: '{"celsius":21.5}',
        payloadType: 'json',
        props: [{ p: 'payload' }, { p: 'topic', vt: 'str' }],
        wires: [[`sign-${i}`]],
      },
      { id: `sign-${i}`, type: 'bot-sign', z: 'tab', x: 300, y: 60 + 60 * i, identity: 'dev', wires: [[`app-${i}`]] },
      { id: `app-${i}`, type: 'bot-append', z: 'tab', x: 480, y: 60 + 60 * i, ledger: 'led-a', wires: [[]] },
    ]),
  ];
}

function partnerFlow(broker: string): object[] {
  return [
    { id: 'tab', type: 'tab', label: 'partner' },
    { id: 'me', type: 'bot-identity', name: 'partner key' },
    {
      id: 'p-led',
      type: 'bot-ledger',
      name: 'mine',
      origin: PARTNER,
      identity: 'me',
      dir: '',
      checkpointMs: 0,
      checkpointEntries: 0,
      maxEntryBytes: 65536,
      broker,
      clientId: '',
      witnesses: '',
      quorum: '',
      witnessed: '',
    },
    // Empty until the invitation is pasted: the editor marks it, the runtime says why it cannot be used.
    {
      id: 'p-owner',
      type: 'bot-partner',
      name: 'the owner',
      origin: '',
      operator: '',
      grant: '',
      identity: 'me',
      via: 'mqtt',
      ledger: 'p-led',
      url: '',
      witnesses: '',
      quorum: '',
      timeoutMs: 8000,
      invitation: '',
    },
    { id: 'hin', type: 'http in', z: 'tab', url: '/read', method: 'post', upload: false, x: 120, y: 60, wires: [['q']] },
    { id: 'q', type: 'bot-query', z: 'tab', mode: 'partner', partner: 'p-owner', name: 'read the owner', x: 300, y: 60, wires: [['hres']] },
    { id: 'hres', type: 'http response', z: 'tab', statusCode: '', headers: {}, x: 480, y: 60 },
  ];
}

async function inject(red: RedRuntime, id: string): Promise<void> {
  const end = Date.now() + 10000;
  let r = await fetch(`${red.url}/inject/${id}`, { method: 'POST' });
  while (r.status === 404 && Date.now() < end) {
    await new Promise((res) => setTimeout(res, 100));
    r = await fetch(`${red.url}/inject/${id}`, { method: 'POST' });
  }
  assert.equal(r.status, 200, await r.text());
}

/** Type text into a field as a paste would arrive (one input event), then leave the field. */
async function paste(page: Page, selector: string, text: string): Promise<void> {
  await page.locator(selector).fill(text);
  await page.locator(selector).dispatchEvent('change');
}

describe('one paste to connect a partner: invitation, request, approval, verified read (two runtimes, real browsers)', function () {
  this.timeout(60000);
  const op = Identity.generate();
  const dev = Identity.generate();
  const me = Identity.generate();
  let broker: Mosquitto;
  let owner: RedRuntime;
  let partner: RedRuntime;
  let edOwner: EditorSession;
  let pagePartner: Page;
  let invitation = '';

  before(async () => {
    broker = await Mosquitto.start();
    [owner, partner] = await Promise.all([
      startRed({
        flows: ownerFlow(broker.url),
        credentials: { op: { secretKey: op.exportSeed().toString('hex') }, dev: { secretKey: dev.exportSeed().toString('hex') } },
      }),
      startRed({ flows: partnerFlow(broker.url), credentials: { me: { secretKey: me.exportSeed().toString('hex') } } }),
    ]);
    await inject(owner, 'inj-0');
    await inject(owner, 'inj-1');
    edOwner = await openEditor(owner.url);
    // The partner's editor: a second page of the same browser, in its own context (its own session).
    const ctx = await edOwner.browser.newContext({ viewport: { width: 1400, height: 900 } });
    pagePartner = await ctx.newPage();
    pagePartner.on('pageerror', (err) => edOwner.errors.push(`partner page: ${err.message}`));
    await pagePartner.goto(`${partner.url}/`);
    await pagePartner.waitForSelector('#red-ui-palette .red-ui-palette-node', { timeout: 30000 });
  });

  after(async () => {
    await edOwner?.close();
    await Promise.all([owner?.stop(), partner?.stop()]);
    await broker?.close();
  });

  it('the owner creates an invitation in the Ledger sidebar: one string, a copy button and a QR code', async () => {
    const page = edOwner.page;
    await page.evaluate(() => (window as unknown as RedWindow).RED.sidebar.show('bot-ledger'));
    const section = page.locator('.bot-ledger-section[data-id="led-a"]');
    await section.locator('.bot-operator:not(:empty)').waitFor({ timeout: 15000 });
    await section.locator('.bot-invite-btn').click();
    assert.equal(await section.locator('.bot-invite-broker').inputValue(), broker.url, "prefilled with the ledger's broker");
    await section.locator('.bot-invite-create').click();
    const text = section.locator('textarea.bot-invitation-text');
    await text.waitFor({ timeout: 10000 });
    invitation = await text.inputValue();
    assert.ok(invitation.startsWith(INVITATION_PREFIX));
    const inv = parseInvitation(invitation);
    assert.deepEqual([inv.origin, inv.operator, inv.broker, inv.grant], [OWNER, op.did, broker.url, undefined]);
    await section.locator('.bot-qr svg').waitFor({ timeout: 10000 });
    assert.ok(Number(await section.locator('.bot-qr').getAttribute('data-modules')) >= 21, 'a QR code of at least version 1');
    // What a phone would scan: the QR code as drawn in the page, read back by an independent decoder (@paulmillr/qr).
    const N = 320;
    const image = await section.locator('.bot-qr svg').evaluate(async (svg, n) => {
      const img = new Image();
      img.src = `data:image/svg+xml;base64,${btoa(new XMLSerializer().serializeToString(svg))}`;
      await img.decode();
      const c = document.createElement('canvas');
      c.width = n;
      c.height = n;
      const g = c.getContext('2d') as CanvasRenderingContext2D;
      g.fillStyle = '#fff';
      g.fillRect(0, 0, n, n);
      g.imageSmoothingEnabled = false;
      g.drawImage(img, 10, 10, n - 20, n - 20);
      const px = g.getImageData(0, 0, n, n).data;
      let bin = '';
      for (let i = 0; i < px.length; i++) bin += String.fromCharCode(px[i]);
      return btoa(bin);
    }, N);
    const scanned = decodeQR({ width: N, height: N, data: Uint8Array.from(Buffer.from(image, 'base64')) });
    assert.equal(scanned, invitation, 'the QR code scans to the invitation');
    assert.equal(await section.locator('.bot-invite-copy').count(), 1);
  });

  it('the partner pastes it into bot-partner: a tampered copy is refused with the reason, the real one fills every field; one click asks for access', async () => {
    const page = pagePartner;
    await page.evaluate(() => (window as unknown as RedWindow).RED.editor.editConfig('', 'bot-partner', 'p-owner'));
    await page.waitForSelector('#node-config-input-invitation', { timeout: 10000 });
    const msg = page.locator('#bot-partner-invitation-msg');
    // A character changed in the signed part: the browser's Ed25519 check refuses it.
    const i = INVITATION_PREFIX.length + 60;
    const tampered = invitation.slice(0, i) + (invitation[i] === 'A' ? 'B' : 'A') + invitation.slice(i + 1);
    await paste(page, '#node-config-input-invitation', tampered);
    await page.waitForSelector('#bot-partner-invitation-msg[data-ok="false"]', { timeout: 10000 });
    assert.match(await msg.innerText(), /^Refused: the invitation (does not verify|is damaged)/);
    assert.equal(await page.locator('#node-config-input-origin').inputValue(), '', 'nothing filled from a refused invitation');

    await paste(page, '#node-config-input-invitation', `\n  ${invitation.slice(0, 50)}\n${invitation.slice(50)}  `);
    await page.waitForSelector('#bot-partner-invitation-msg[data-ok="true"]', { timeout: 10000 });
    assert.match(await msg.innerText(), /^Verified: signed by the operator of owner\.example\/plant-1/);
    assert.equal(await page.locator('#node-config-input-origin').inputValue(), OWNER);
    assert.equal(await page.locator('#node-config-input-operator').inputValue(), op.did);
    assert.equal(await page.locator('#node-config-input-via').inputValue(), 'mqtt');
    assert.equal(await page.locator('#node-config-input-ledger').inputValue(), 'p-led', "my ledger on the owner's broker is chosen");

    await page.locator('#bot-partner-ask-topics').fill('plant/+/temp');
    await page.locator('#bot-partner-ask-note').fill('ACME quality team');
    await page.locator('#bot-partner-ask').click();
    await page.waitForSelector('#bot-partner-ask-msg[data-ok]', { timeout: 15000 });
    assert.match(await page.locator('#bot-partner-ask-msg').innerText(), /^Asked: pending/);
    const grant = await page.locator('#node-config-input-grant').inputValue();
    assert.match(grant, /^[A-Za-z0-9_-]{22}$/);

    await page.click('#node-config-dialog-ok');
    await page.waitForSelector('#node-config-input-invitation', { state: 'detached', timeout: 10000 });
    const before = partner.output().split('[info] Started flows').length;
    await page.click('#red-ui-header-button-deploy');
    const end = Date.now() + 20000;
    while (partner.output().split('[info] Started flows').length <= before && Date.now() < end) await page.waitForTimeout(100);
    const deployed = (
      (await (await fetch(`${partner.url}/flows`, { headers: { 'Node-RED-API-Version': 'v2' } })).json()) as { flows: Record<string, string>[] }
    ).flows;
    const p = deployed.find((n) => n.id === 'p-owner');
    assert.deepEqual([p?.origin, p?.operator, p?.grant, p?.via], [OWNER, op.did, grant, 'mqtt']);
    assert.equal(parseInvitation(p?.invitation ?? '').operator, op.did, 'the invitation is kept, and checked again at deploy');
  });

  it('the owner approves the request in its sidebar; the partner then reads verified entries inside the scope', async () => {
    const page = edOwner.page;
    const row = page.locator(`.bot-ledger-section[data-id="led-a"] .bot-request[data-requester="${me.did}"]`);
    await row.waitFor({ timeout: 15000 });
    assert.match(await row.locator('.bot-asks').innerText(), /read · any signer · topics plant\/\+\/temp · 30 days/);
    assert.equal(await row.locator('.bot-note').innerText(), 'ACME quality team');
    await row.locator('.bot-approve-days').fill('10');
    await row.locator('.bot-approve').click();
    await row.waitFor({ state: 'detached', timeout: 10000 });
    await page.locator('.bot-ledger-section[data-id="led-a"] .bot-grant[data-status="active"]').waitFor({ timeout: 10000 });

    // The partner's flow: http in → bot-query (partner) → http response; only verified entries come out.
    const end = Date.now() + 20000;
    let last = '';
    let body: { entries?: { leaf: { topic: string; signer: string } }[]; checkpoint?: { origin: string } } = {};
    while (Date.now() < end) {
      const r = await fetch(`${partner.url}/read`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      last = `${r.status} ${await r.clone().text()}`;
      if (r.status === 200) {
        body = (await r.json()) as typeof body;
        if (body.entries && body.entries.length > 0) break;
      }
      await new Promise((res) => setTimeout(res, 300));
    }
    assert.ok(body.entries && body.entries.length > 0, `no verified read: ${last}\n${partner.output().slice(-2000)}`);
    assert.deepEqual(
      body.entries.map((e) => e.leaf.topic),
      ['plant/1/temp'],
      'office/temp is outside the approved scope',
    );
    assert.equal(body.entries[0].leaf.signer, dev.did);
    assert.equal(body.checkpoint?.origin, OWNER);

    // The dialog's Check says approved, with the grant verified under the owner key.
    const pp = pagePartner;
    await pp.evaluate(() => (window as unknown as RedWindow).RED.editor.editConfig('', 'bot-partner', 'p-owner'));
    await pp.waitForSelector('#bot-partner-check', { timeout: 10000 });
    await pp.locator('#bot-partner-check').click();
    await pp.waitForSelector('#bot-partner-ask-msg[data-ok="true"]', { timeout: 15000 });
    assert.match(await pp.locator('#bot-partner-ask-msg').innerText(), /^Approved: read on plant\/\+\/temp until /);
    assert.deepEqual(edOwner.errors, []);
  });
});
