/**
 * The nodes' editor dialogs in a real browser (Debian's Chromium driven by playwright-core)
 * against a real Node-RED 4 runtime loading this package: every node of package.json
 * `node-red.nodes` loaded and in the palette (config nodes registered), the bot-sign and
 * bot-consensus dialogs with their typed inputs, bot-ledger's configuration dialog, invalid
 * values marked with their reason shown on hover, valid ones accepted, Done saving the node,
 * and the saved settings deployed and used by the runtime. Issue 11 defect 11: the Ledger
 * sidebar tab's own icon and the ▼ menu, its live entry list held still under the pointer,
 * the identity dialog's did:key as text with a copy button, validation reasons written under
 * the fields, and the grant dialog's "Subject (partner did:key)".
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { Identity } from '../../lib/format/identity';
import { type EditorSession, findChromium, openEditor, type RedRuntime, startRed } from './harness';

const root = path.resolve(__dirname, '../../..');
const PKG = '@blockchain-of-things/node-red';
const DEVICE = Identity.generate();

function flows(userDir: string): object[] {
  return [
    { id: 'tab', type: 'tab', label: 'Dialogs test' },
    { id: 'key', type: 'bot-identity', name: 'device' },
    {
      id: 'led',
      type: 'bot-ledger',
      name: 'plant',
      origin: 'example.com/plant-1',
      identity: 'key',
      dir: path.join(userDir, 'ledger-plant'),
      checkpointMs: 1000,
      checkpointEntries: 0,
      maxEntryBytes: 65536,
    },
    // A bot-sign saved before the typed inputs existed (no property/topic/kind fields).
    {
      id: 'inj',
      type: 'inject',
      z: 'tab',
      name: 'reading',
      props: [{ p: 'payload' }, { p: 'plant', v: '{"topic":"plant/1/temp"}', vt: 'json' }],
      repeat: '',
      once: false,
      payload: '{"celsius":21.5}',
      payloadType: 'json',
      x: 80,
      y: 40,
      wires: [['sign']],
    },
    { id: 'sign', type: 'bot-sign', z: 'tab', name: '', identity: 'key', x: 200, y: 80, wires: [['app']] },
    { id: 'app', type: 'bot-append', z: 'tab', name: '', ledger: 'led', x: 380, y: 80, wires: [[]] },
    { id: 'ver', type: 'bot-verify', z: 'tab', name: '', trusted: '', ledger: '', maxSkewMs: 300000, x: 200, y: 280, wires: [[], []] },
    { id: 'cons', type: 'bot-consensus', z: 'tab', name: '', ledger: 'led', mode: 'status', timeoutMs: 30000, outputs: 1, x: 200, y: 180, wires: [[]] },
    // For the sidebar's live list: readings into a ledger of their own, injected through the admin API.
    {
      id: 'led2',
      type: 'bot-ledger',
      name: 'live',
      origin: 'example.com/live',
      identity: 'key',
      dir: path.join(userDir, 'ledger-live'),
      checkpointMs: 500,
      checkpointEntries: 0,
      maxEntryBytes: 65536,
    },
    {
      id: 'inj2',
      type: 'inject',
      z: 'tab',
      name: 'live reading',
      props: [{ p: 'payload' }, { p: 'topic', vt: 'str' }],
      repeat: '',
      once: false,
      topic: 'plant/2/temp',
      payload: '{"celsius":20}',
      payloadType: 'json',
      x: 80,
      y: 360,
      wires: [['sign2']],
    },
    { id: 'sign2', type: 'bot-sign', z: 'tab', name: '', identity: 'key', x: 240, y: 360, wires: [['app2']] },
    { id: 'app2', type: 'bot-append', z: 'tab', name: '', ledger: 'led2', x: 400, y: 360, wires: [[]] },
    {
      id: 'grant',
      type: 'bot-grant',
      z: 'tab',
      name: '',
      ledger: 'led2',
      subject: '',
      actions: 'read',
      signers: '',
      topics: '',
      validDays: 30,
      x: 240,
      y: 440,
      wires: [[]],
    },
  ];
}

/** The visible text field of a typed input. */
const typed = (page: Page, id: string): Locator => page.locator(`#${id} + .red-ui-typedInput-container input.red-ui-typedInput-input`);
const typedBox = (page: Page, id: string): Locator => page.locator(`#${id} + .red-ui-typedInput-container`);

/** The reason the editor shows in a tooltip when the pointer is over `target`. */
async function reasonOnHover(page: Page, target: Locator): Promise<string> {
  await page.mouse.move(0, 0);
  // The previous field's tooltip first goes away.
  await page.waitForFunction(() => [...document.querySelectorAll('.red-ui-popover')].every((e) => (e as HTMLElement).offsetParent === null), undefined, {
    timeout: 5000,
  });
  await target.hover();
  const tip = page.locator('.red-ui-popover:visible .red-ui-popover-content').last();
  await tip.waitFor({ state: 'visible', timeout: 5000 });
  return (await tip.textContent()) ?? '';
}

async function hasClass(l: Locator, cls: string): Promise<boolean> {
  return l.evaluate((el, c) => el.classList.contains(c), cls);
}

/** Type into a field as a user does (select all, type), then leave it. */
async function fill(l: Locator, text: string): Promise<void> {
  await l.click();
  await l.press('ControlOrMeta+a');
  if (text === '') await l.press('Backspace');
  else await l.pressSequentially(text, { delay: 0 });
  await l.press('Tab');
}

/** The node's saved settings in the editor. */
async function nodeProps(page: Page, id: string): Promise<Record<string, unknown>> {
  return page.evaluate((nid) => {
    const n = (window as unknown as { RED: { nodes: { node(id: string): Record<string, unknown> } } }).RED.nodes.node(nid);
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(n)) if (typeof n[k] !== 'object' || n[k] === null) out[k] = n[k];
    return out;
  }, id);
}

describe('editor dialogs in a real browser (Chromium, Node-RED 4)', function () {
  this.timeout(90000);
  let red: RedRuntime | undefined;
  let ed: EditorSession | undefined;
  let page: Page;

  before(async function () {
    await findChromium(); // fails (never skips) when no browser can be found
    red = await startRed();
    await red.deploy(flows(red.userDir), { key: { secretKey: DEVICE.exportSeed().toString('hex') } });
    ed = await openEditor(red.url);
    page = ed.page;
    await page.waitForSelector('[id="sign"] .red-ui-flow-node', { timeout: 20000 });
  });

  // A failed step must not leave its dialog open over the next test's.
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

  it('loads every node set of package.json and shows each flow node in the palette', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { 'node-red': { nodes: Record<string, string> } };
    const expected = Object.keys(pkg['node-red'].nodes).sort();
    const r = await fetch(`${red!.url}/nodes`, { headers: { accept: 'application/json' } });
    const sets = ((await r.json()) as { module: string; name: string; types: string[]; enabled: boolean; loaded?: boolean; err?: string }[]).filter(
      (s) => s.module === PKG,
    );
    assert.deepEqual(sets.map((s) => s.name).sort(), expected, 'one node set per package.json entry');
    for (const s of sets) assert.ok(s.enabled && !s.err, `${s.name} loaded: ${s.err ?? ''}`);
    const types = sets.flatMap((s) => s.types);
    const seen = await page.evaluate(
      (ts) =>
        ts.map((t) => {
          const def = (
            window as unknown as { RED: { nodes: { getType(t: string): { category: string; paletteLabel?: unknown } | undefined } } }
          ).RED.nodes.getType(t);
          const el = document.querySelector(`.red-ui-palette-node[data-palette-type="${t}"]`);
          return { t, registered: !!def, config: def?.category === 'config', inPalette: !!el, label: el?.textContent?.trim() ?? '' };
        }),
      types,
    );
    for (const s of seen) {
      assert.ok(s.registered, `${s.t} is registered in the editor`);
      if (s.config) continue; // config nodes live in the configuration nodes sidebar, not the palette
      assert.ok(s.inPalette, `${s.t} is in the palette`);
      assert.ok(s.label !== '' && !/undefined/.test(s.label), `${s.t} has a palette label (${s.label})`);
    }
    assert.ok(seen.filter((s) => !s.config).length >= 5, 'the flow nodes are there');
    assert.ok(seen.some((s) => s.t === 'bot-ledger' && s.config) && seen.some((s) => s.t === 'bot-identity' && s.config));
  });

  it('bot-sign: typed inputs with the old defaults, a bad kind marked with its reason, a good one saved by Done', async () => {
    await page.dblclick('[id="sign"] .red-ui-flow-node');
    await page.waitForSelector('#node-input-kind + .red-ui-typedInput-container', { timeout: 10000 });
    // A flow saved before the options: it shows what it does (msg.payload, msg.topic, "reading").
    assert.equal(await typed(page, 'node-input-property').inputValue(), 'payload');
    assert.equal(await typed(page, 'node-input-topic').inputValue(), 'topic');
    assert.equal(await page.locator('#node-input-topicType').inputValue(), 'msg');
    assert.equal(await typed(page, 'node-input-kind').inputValue(), 'reading');
    assert.equal(await page.locator('#node-input-kindType').inputValue(), 'str');

    const kind = typed(page, 'node-input-kind');
    await fill(kind, 'Not A Kind');
    assert.ok(await hasClass(typedBox(page, 'node-input-kind'), 'input-error'), 'the bad kind is marked');
    assert.match(await reasonOnHover(page, kind), /kind must be 1-32 characters: a lower-case letter.*e\.g\. reading/);

    await fill(kind, 'alarm');
    assert.ok(!(await hasClass(typedBox(page, 'node-input-kind'), 'input-error')), 'a good kind is accepted');
    const topic = typed(page, 'node-input-topic');
    await fill(topic, 'plant.topic');
    await page.click('#node-dialog-ok');
    await page.waitForSelector('#node-input-kind', { state: 'detached', timeout: 10000 });
    const saved = await nodeProps(page, 'sign');
    assert.deepEqual(
      [saved.property, saved.topic, saved.topicType, saved.kind, saved.kindType, saved.valid],
      ['payload', 'plant.topic', 'msg', 'alarm', 'str', true],
    );
  });

  it("bot-identity: the deployed key's did:key shown, a bad secret key marked with its reason, Generate gives a valid one", async () => {
    await page.dblclick('[id="sign"] .red-ui-flow-node');
    await page.click('#node-input-btn-identity-edit');
    const did = page.locator('#bot-identity-did');
    await did.waitFor({ state: 'visible', timeout: 10000 });
    await page
      .waitForFunction((want) => document.querySelector('#bot-identity-did')?.textContent === want, DEVICE.did, { timeout: 10000 })
      .catch(async (err: Error) => {
        throw new Error(
          `${err.message}: did:key field ${JSON.stringify(await did.textContent())}, message ${JSON.stringify(await page.locator('#bot-identity-did-msg').textContent())}`,
        );
      });
    const key = page.locator('#node-config-input-secretKey');
    await fill(key, 'not-a-key');
    assert.ok(await hasClass(key, 'input-error'));
    assert.match(await reasonOnHover(page, key), /secret key must be a 32-byte seed \(64 hex characters, or 43 base64 \/ base64url characters\)/);
    // Replacing a key asks first.
    await page.click('#bot-identity-generate');
    const ask = page.locator('.red-ui-notification').filter({ hasText: 'Replace the current secret key' });
    await ask.waitFor({ state: 'visible', timeout: 5000 });
    await ask.locator('button', { hasText: 'Replace' }).click();
    await page.waitForFunction(
      (old) =>
        /^did:key:z6Mk/.test(document.querySelector('#bot-identity-did')?.textContent ?? '') &&
        document.querySelector('#bot-identity-did')?.textContent !== old,
      DEVICE.did,
      { timeout: 10000 },
    );
    assert.ok(!(await hasClass(key, 'input-error')), 'a generated key is accepted');
    // Keep the deployed key: cancel both dialogs.
    await page.click('#node-config-dialog-cancel');
    await key.waitFor({ state: 'detached', timeout: 10000 });
    await page.click('#node-dialog-cancel');
    await page.waitForSelector('#node-input-kind', { state: 'detached', timeout: 10000 });
  });

  it('bot-verify: a trusted list with a bad line marked with the line and reason, a good one saved', async () => {
    await page.dblclick('[id="ver"] .red-ui-flow-node');
    const trusted = page.locator('#node-input-trusted');
    await trusted.waitFor({ state: 'visible', timeout: 10000 });
    assert.equal(await typed(page, 'node-input-property').inputValue(), 'payload', 'a flow without the option reads msg.payload');
    await trusted.fill(`${DEVICE.did}  # sensor-1\nsensor-2`);
    await trusted.dispatchEvent('change');
    assert.ok(await hasClass(trusted, 'input-error'));
    assert.match(await reasonOnHover(page, trusted), /^line 2: "sensor-2" is not an Ed25519 did:key/);
    await trusted.fill(`${DEVICE.did}  # sensor-1`);
    await trusted.dispatchEvent('change');
    assert.ok(!(await hasClass(trusted, 'input-error')));
    await fill(typed(page, 'node-input-property'), 'mqtt.body');
    await page.click('#node-dialog-ok');
    await page.waitForSelector('#node-input-trusted', { state: 'detached', timeout: 10000 });
    const saved = await nodeProps(page, 'ver');
    assert.deepEqual([saved.trusted, saved.property, saved.valid], [`${DEVICE.did}  # sensor-1`, 'mqtt.body', true]);
  });

  it('bot-consensus: a bad timeout marked with its reason, wait mode saved with two outputs', async () => {
    await page.dblclick('[id="cons"] .red-ui-flow-node');
    await page.waitForSelector('#node-input-timeoutMs + .red-ui-typedInput-container', { state: 'attached', timeout: 10000 });
    assert.ok(!(await page.locator('#bot-consensus-timeout-row').isVisible()), 'no timeout in status mode');
    assert.equal(await page.locator('#node-input-indexType').inputValue(), 'receipt', 'a flow without indexType reads the receipt');
    await page.selectOption('#node-input-mode', 'wait');
    const timeout = typed(page, 'node-input-timeoutMs');
    await fill(timeout, '0');
    assert.ok(await hasClass(typedBox(page, 'node-input-timeoutMs'), 'input-error'));
    assert.match(await reasonOnHover(page, timeout), /timeout must be a whole number of milliseconds from 1 to 86400000/);
    await fill(timeout, '5000');
    assert.ok(!(await hasClass(typedBox(page, 'node-input-timeoutMs'), 'input-error')));
    await page.click('#node-dialog-ok');
    await page.waitForSelector('#node-input-timeoutMs', { state: 'detached', timeout: 10000 });
    const saved = await nodeProps(page, 'cons');
    assert.deepEqual([saved.mode, saved.outputs, saved.timeoutMs, saved.timeoutType, saved.valid], ['wait', 2, '5000', 'num', true]);
  });

  it('bot-ledger configuration: an origin with a space marked with its reason, a valid one saved', async () => {
    await page.dblclick('[id="cons"] .red-ui-flow-node');
    await page.click('#node-input-btn-ledger-edit');
    const origin = page.locator('#node-config-input-origin');
    await origin.waitFor({ state: 'visible', timeout: 10000 });
    assert.equal(await origin.inputValue(), 'example.com/plant-1');
    assert.equal(await page.locator('#bot-ledger-tabs li').count(), 4, 'Ledger, Partners, TLS and Confidential tabs');

    await fill(origin, 'example.com/plant 1');
    assert.ok(await hasClass(origin, 'input-error'), 'the origin with a space is marked');
    assert.match(await reasonOnHover(page, origin), /origin must be 1-255 characters without spaces or "\+"/);

    // On the Partners tab: a broker URL with the wrong scheme, and a witness line that is not a did:key.
    await page.click('#bot-ledger-tabs a[href="#bot-ledger-tab-partners"]');
    const broker = page.locator('#node-config-input-broker');
    await fill(broker, 'http://broker.example.com');
    assert.ok(await hasClass(broker, 'input-error'));
    assert.match(await reasonOnHover(page, broker), /must start with mqtt:\/\/, mqtts:\/\/, ws:\/\/ or wss:\/\//);
    const witnesses = page.locator('#node-config-input-witnesses');
    await witnesses.fill(`${DEVICE.did} example.com/partner-b\ndid:key:z6MkNotAKey`);
    await witnesses.dispatchEvent('change');
    assert.ok(await hasClass(witnesses, 'input-error'));
    assert.match(await reasonOnHover(page, witnesses), /^line 2: did:key is not/);

    await fill(broker, '');
    await witnesses.fill('');
    await witnesses.dispatchEvent('change');
    await page.click('#bot-ledger-tabs a[href="#bot-ledger-tab-ledger"]');
    await fill(origin, 'example.com/plant-1');
    assert.ok(!(await hasClass(origin, 'input-error')), 'the valid origin is accepted');
    await page.locator('#node-config-input-maxEntryBytes').fill('131072');
    await page.click('#node-config-dialog-ok');
    await origin.waitFor({ state: 'detached', timeout: 10000 });
    await page.click('#node-dialog-ok');
    await page.waitForSelector('#node-input-mode', { state: 'detached', timeout: 10000 });
    const saved = await nodeProps(page, 'led');
    assert.deepEqual([saved.origin, saved.maxEntryBytes, saved.broker, saved.valid], ['example.com/plant-1', '131072', '', true]);
  });

  it('deploys what the dialogs saved, and the runtime signs with it', async () => {
    await page.click('#red-ui-header-button-deploy');
    await page
      .locator('.red-ui-notification')
      .filter({ hasText: /deployed/i })
      .first()
      .waitFor({ timeout: 15000 });
    const r = await fetch(`${red!.url}/flows`, { headers: { 'Node-RED-API-Version': 'v2' } });
    const deployed = ((await r.json()) as { flows: Record<string, unknown>[] }).flows;
    const sign = deployed.find((n) => n.id === 'sign');
    const cons = deployed.find((n) => n.id === 'cons');
    assert.deepEqual([sign?.kind, sign?.kindType, sign?.topic, sign?.topicType], ['alarm', 'str', 'plant.topic', 'msg']);
    assert.deepEqual([cons?.mode, cons?.timeoutMs, cons?.timeoutType], ['wait', '5000', 'num']);
    assert.equal(deployed.find((n) => n.id === 'ver')?.property, 'mqtt.body');
    assert.equal(deployed.find((n) => n.id === 'key')?.type, 'bot-identity');
    const ledgers = (await (await fetch(`${red!.url}/bot-ledger/ledgers`)).json()) as { id: string; origin: string; error?: string }[];
    const led = ledgers.find((l) => l.id === 'led');
    assert.equal(led?.origin, 'example.com/plant-1');
    assert.equal(led?.error, undefined);
    // The runtime signs with what the bot-sign dialog saved: kind "alarm", topic from msg.plant.topic.
    assert.equal((await fetch(`${red!.url}/inject/inj`, { method: 'POST' })).status, 200);
    let entries: { leaf: { kind: string; topic?: string; payload: unknown; signer: string } }[] = [];
    for (let i = 0; i < 100 && entries.length === 0; i++) {
      const r2 = await fetch(`${red!.url}/bot-ledger/ledgers/led/entries`);
      if (r2.ok) entries = ((await r2.json()) as { entries: typeof entries }).entries;
      if (entries.length === 0) await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(entries.length, 1, 'the injected reading was signed and appended');
    assert.deepEqual(
      [entries[0]!.leaf.kind, entries[0]!.leaf.topic, entries[0]!.leaf.payload, entries[0]!.leaf.signer],
      ['alarm', 'plant/1/temp', { celsius: 21.5 }, DEVICE.did],
    );
    assert.deepEqual(
      ed!.errors.filter((e) => !/favicon|Failed to load resource/.test(e)),
      [],
      'no errors in the page',
    );
  });

  // ---------------------------------------------------------------- issue 11 defect 11

  /** POST an inject node's button (admin API) n times. */
  async function injectLive(n: number): Promise<void> {
    for (let i = 0; i < n; i++) assert.equal((await fetch(`${red!.url}/inject/inj2`, { method: 'POST' })).status, 200);
  }
  /** The index of the first (newest) row of the live ledger's entry list, or -1. */
  const topIndex = (): Promise<number> =>
    page.evaluate(() => Number(document.querySelector('.bot-ledger-section[data-id="led2"] .bot-entry')?.getAttribute('data-index') ?? -1));

  it("the Ledger tab has its own icon (not Help's book) and opens from the sidebar's ▼ menu", async () => {
    const icon = (id: string): Promise<string> =>
      page
        .locator(`#red-ui-tab-${id}-link-button i`)
        .first()
        .getAttribute('class')
        .then((c) => c ?? '');
    assert.match(await icon('bot-ledger'), /\bfa-chain\b/);
    assert.match(await icon('help'), /\bfa-book\b/);
    await page.click('#red-ui-sidebar .red-ui-tab-link-button-menu');
    await page.click('#red-ui-tabs-menu-option-bot-ledger');
    await page.locator('.bot-ledger-section[data-id="led2"]').waitFor({ state: 'visible', timeout: 10000 });
    assert.ok(
      await page.locator('#red-ui-tab-bot-ledger-link-button').evaluate((el) => el.classList.contains('selected')),
      'the Ledger tab is the selected one',
    );
  });

  it('the live entry list holds still while the pointer is over it, and catches up when it leaves', async () => {
    await injectLive(3);
    await page.waitForFunction(() => document.querySelectorAll('.bot-ledger-section[data-id="led2"] .bot-entry').length >= 3, undefined, { timeout: 10000 });
    await page.hover('.bot-ledger-section[data-id="led2"] .bot-entry >> nth=1');
    const held = await topIndex();
    await injectLive(2);
    const paused = page.locator('.bot-ledger-section[data-id="led2"] .bot-paused');
    await page.waitForFunction(() => /· 2 new$/.test(document.querySelector('.bot-ledger-section[data-id="led2"] .bot-paused')?.textContent ?? ''), undefined, {
      timeout: 5000,
    });
    assert.ok(await paused.isVisible());
    assert.equal(await topIndex(), held, 'the list did not move under the pointer');
    await page.mouse.move(5, 5);
    await page.waitForFunction(
      (h) => Number(document.querySelector('.bot-ledger-section[data-id="led2"] .bot-entry')?.getAttribute('data-index')) === h + 2,
      held,
      { timeout: 5000 },
    );
    assert.ok(!(await paused.isVisible()), 'the pause line is gone');
  });

  it("bot-identity: the did:key is text with a copy button that copies it; a bad secret key's reason is written under the field", async () => {
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: red!.url });
    await page.dblclick('[id="sign"] .red-ui-flow-node');
    await page.click('#node-input-btn-identity-edit');
    const did = page.locator('#bot-identity-did');
    await page.waitForFunction((want) => document.querySelector('#bot-identity-did')?.textContent === want, DEVICE.did, { timeout: 10000 });
    assert.notEqual(await did.evaluate((el) => el.tagName), 'INPUT', 'not a field that looks like a placeholder');
    await page.click('#bot-identity-copy');
    await page.waitForFunction((want) => navigator.clipboard.readText().then((t) => t === want), DEVICE.did, { timeout: 5000 });
    const key = page.locator('#node-config-input-secretKey');
    const reason = page.locator('.bot-reason[data-for="secretKey"]');
    await fill(key, 'not-a-key');
    await reason.waitFor({ state: 'visible', timeout: 5000 });
    assert.match((await reason.textContent()) ?? '', /secret key must be a 32-byte seed/);
    await fill(key, DEVICE.exportSeed().toString('hex'));
    await reason.waitFor({ state: 'detached', timeout: 5000 });
    await page.click('#node-config-dialog-cancel');
    await key.waitFor({ state: 'detached', timeout: 10000 });
    await page.click('#node-dialog-cancel');
  });

  it('bot-grant: "Subject (partner did:key)"; a bad did:key\'s reason (a shared check) is written under the field and goes when fixed', async () => {
    await page.dblclick('[id="grant"] .red-ui-flow-node');
    const label = page.locator('label[for="node-input-subject"]');
    await label.waitFor({ state: 'visible', timeout: 10000 });
    assert.match(((await label.textContent()) ?? '').replace(/\s+/g, ' '), /Subject \(partner did:key\)/);
    const subject = page.locator('#node-input-subject');
    const reason = page.locator('.bot-reason[data-for="subject"]');
    await fill(subject, 'did:key:z6MkNotAKey');
    await reason.waitFor({ state: 'visible', timeout: 5000 });
    assert.match((await reason.textContent()) ?? '', /did:key/);
    const box = await reason.boundingBox();
    const field = await subject.boundingBox();
    assert.ok(box && field && box.y >= field.y + field.height - 1, 'the reason is under the field');
    await fill(subject, DEVICE.did);
    await reason.waitFor({ state: 'detached', timeout: 5000 });
    await page.click('#node-dialog-cancel');
    assert.deepEqual(
      ed!.errors.filter((e) => !/favicon|Failed to load resource/.test(e)),
      [],
      'no errors in the page',
    );
  });
});
