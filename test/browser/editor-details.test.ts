/**
 * Issue 11 defect 11, in a real browser (Debian's Chromium) against a real Node-RED 4 runtime
 * loading this package: the Ledger sidebar tab has its own icon and opens from the sidebar's ▼
 * menu; its live entry list holds still while the pointer is over it and catches up after;
 * the identity dialog shows the did:key as text with a working copy button; a field's
 * validation reason is written under it (not only in a hover tooltip), for the shared checks
 * (resources/bot-editor.js) and a node's own; the grant dialog says "Subject (partner did:key)".
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { Identity } from '../../lib/identity';
import { EditorSession, findChromium, openEditor, RedRuntime, startRed } from './harness';

const DEVICE = Identity.generate();

function flows(userDir: string): object[] {
  return [
    { id: 'tab', type: 'tab', label: 'Editor details' },
    { id: 'key', type: 'bot-identity', name: 'device' },
    { id: 'led', type: 'bot-ledger', name: 'plant', origin: 'example.com/details', identity: 'key', dir: path.join(userDir, 'ledger-details'), checkpointMs: 500, checkpointEntries: 0, maxEntryBytes: 65536 },
    // A reading every 0.4 s: the live list keeps growing.
    { id: 'inj', type: 'inject', z: 'tab', name: 'reading', props: [{ p: 'payload' }, { p: 'topic', vt: 'str' }], repeat: '0.4', once: true, onceDelay: '0.1', topic: 'plant/1/temp', payload: '{"celsius":21.5}', payloadType: 'json', x: 100, y: 40, wires: [['sign']] },
    { id: 'sign', type: 'bot-sign', z: 'tab', name: '', identity: 'key', x: 260, y: 40, wires: [['app']] },
    { id: 'app', type: 'bot-append', z: 'tab', name: '', ledger: 'led', x: 420, y: 40, wires: [[]] },
    { id: 'grant', type: 'bot-grant', z: 'tab', name: '', ledger: 'led', subject: '', actions: 'read', signers: '', topics: '', validDays: 30, x: 260, y: 120, wires: [[]] },
  ];
}

/** The index of the first (newest) row of the ledger's entry list, or -1. */
async function topIndex(page: Page): Promise<number> {
  return page.evaluate(() => Number(document.querySelector('.bot-ledger-section[data-id="led"] .bot-entry')?.getAttribute('data-index') ?? -1));
}

/** Type into a field as a user does (select all, type), then leave it. */
async function fill(page: Page, selector: string, text: string): Promise<void> {
  const l = page.locator(selector);
  await l.click();
  await l.press('ControlOrMeta+a');
  await l.pressSequentially(text, { delay: 0 });
  await l.press('Tab');
}

describe('editor details in a real browser (Chromium, Node-RED 4): sidebar icon and pause, did:key copy, reasons under fields', function () {
  this.timeout(60000);
  let red: RedRuntime | undefined;
  let ed: EditorSession | undefined;
  let page: Page;

  before(async function () {
    await findChromium(); // fails (never skips) when no browser can be found
    red = await startRed();
    await red.deploy(flows(red.userDir), { key: { secretKey: DEVICE.exportSeed().toString('hex') } });
    ed = await openEditor(red.url);
    page = ed.page;
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: red.url });
    await page.waitForSelector('[id="sign"] .red-ui-flow-node', { timeout: 20000 });
  });

  afterEach(async () => {
    for (let i = 0; i < 3 && page && (await page.locator('.red-ui-tray').count()) > 0; i++) {
      await page.evaluate(() => (window as unknown as { RED: { tray: { close(): void } } }).RED.tray.close());
      await page.waitForTimeout(300);
    }
  });

  after(async () => {
    await ed?.close();
    await red?.stop();
  });

  it('the Ledger tab has its own icon (not Help\'s book) and opens from the sidebar\'s ▼ menu', async () => {
    const icon = (id: string): Promise<string> => page.locator(`#red-ui-tab-${id}-link-button i`).first().getAttribute('class').then((c) => c ?? '');
    assert.match(await icon('bot-ledger'), /\bfa-chain\b/);
    assert.match(await icon('help'), /\bfa-book\b/);
    await page.click('#red-ui-sidebar .red-ui-tab-link-button-menu');
    await page.click('#red-ui-tabs-menu-option-bot-ledger');
    await page.locator('.bot-ledger-section[data-id="led"]').waitFor({ state: 'visible', timeout: 10000 });
    assert.ok(await page.locator('#red-ui-tab-bot-ledger-link-button').evaluate((el) => el.classList.contains('selected')), 'the Ledger tab is the selected one');
  });

  it('live entries pause while the pointer is over the list, and come in when it leaves', async () => {
    await page.waitForFunction(() => document.querySelectorAll('.bot-ledger-section[data-id="led"] .bot-entry').length >= 3, undefined, { timeout: 15000 });
    await page.hover('.bot-ledger-section[data-id="led"] .bot-entry >> nth=1');
    const held = await topIndex(page);
    const paused = page.locator('.bot-ledger-section[data-id="led"] .bot-paused');
    await paused.waitFor({ state: 'visible', timeout: 5000 });
    await page.waitForTimeout(1200);
    assert.equal(await topIndex(page), held, 'the list did not move under the pointer');
    assert.match((await paused.textContent()) ?? '', /paused while the pointer is over the list · \d+ new/);
    await page.mouse.move(5, 5);
    await page.waitForFunction((h) => Number(document.querySelector('.bot-ledger-section[data-id="led"] .bot-entry')?.getAttribute('data-index')) > h, held, { timeout: 5000 });
    assert.ok(!(await paused.isVisible()), 'the pause line is gone');
  });

  it('bot-identity: the did:key is text with a copy button that copies it; a bad secret key\'s reason is under the field', async () => {
    await page.dblclick('[id="sign"] .red-ui-flow-node');
    await page.click('#node-input-btn-identity-edit');
    const did = page.locator('#bot-identity-did');
    await page.waitForFunction((want) => document.querySelector('#bot-identity-did')?.textContent === want, DEVICE.did, { timeout: 10000 });
    assert.notEqual(await did.evaluate((el) => el.tagName), 'INPUT', 'not a field that looks like a placeholder');
    await page.click('#bot-identity-copy');
    await page.waitForFunction((want) => navigator.clipboard.readText().then((t) => t === want), DEVICE.did, { timeout: 5000 });

    const reason = page.locator('.bot-reason[data-for="secretKey"]');
    await fill(page, '#node-config-input-secretKey', 'not-a-key');
    await reason.waitFor({ state: 'visible', timeout: 5000 });
    assert.match((await reason.textContent()) ?? '', /secret key must be a 32-byte seed/);
    await fill(page, '#node-config-input-secretKey', DEVICE.exportSeed().toString('hex'));
    await reason.waitFor({ state: 'detached', timeout: 5000 });
    await page.click('#node-config-dialog-cancel');
    await page.click('#node-dialog-cancel');
  });

  it('bot-grant: "Subject (partner did:key)"; a bad did:key\'s reason (shared check) is under the field and goes when fixed', async () => {
    await page.dblclick('[id="grant"] .red-ui-flow-node');
    const label = page.locator('label[for="node-input-subject"]');
    await label.waitFor({ state: 'visible', timeout: 10000 });
    assert.match(((await label.textContent()) ?? '').replace(/\s+/g, ' '), /Subject \(partner did:key\)/);
    const reason = page.locator('.bot-reason[data-for="subject"]');
    await fill(page, '#node-input-subject', 'did:key:z6MkNotAKey');
    await reason.waitFor({ state: 'visible', timeout: 5000 });
    assert.match((await reason.textContent()) ?? '', /did:key/);
    const box = await reason.boundingBox();
    const field = await page.locator('#node-input-subject').boundingBox();
    assert.ok(box && field && box.y >= field.y + field.height - 1, 'the reason is under the field');
    await fill(page, '#node-input-subject', DEVICE.did);
    await reason.waitFor({ state: 'detached', timeout: 5000 });
    await page.click('#node-dialog-cancel');
    assert.deepEqual(ed!.errors.filter((e) => !/favicon|Failed to load resource/.test(e)), [], 'no errors in the page');
  });
});
