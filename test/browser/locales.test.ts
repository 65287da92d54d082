/**
 * The editor in Chinese (issue 12 §5): a real Node-RED 4 runtime loading this package (its catalogs found in
 * dist/nodes/locales/, beside the node files) and Chromium with its language set to zh-CN — Node-RED 4's editor has no
 * `?lang=` parameter; it takes the browser's language (navigator.language) or the user's choice in its settings. The
 * palette label, the help in the Help sidebar, a dialog's labels and a validation reason, and the Ledger sidebar (a
 * plugin: its catalog is plugins/locales/) are in Chinese; with the runtime's `lang` set to zh-CN, so is a node's status.
 */
import { strict as assert } from 'node:assert';
import type { Page } from 'playwright-core';
import { Identity } from '../../lib/format/identity';
import { type EditorSession, findChromium, openEditor, type RedRuntime, startRed } from './harness';

const KEY = Identity.generate();
const FLOWS = [
  { id: 'tab', type: 'tab', label: 'zh-CN' },
  { id: 'key', type: 'bot-identity', name: 'device' },
  { id: 'sign', type: 'bot-sign', z: 'tab', name: '', identity: 'key', x: 200, y: 80, wires: [[]] },
  {
    id: 'led',
    type: 'bot-ledger',
    name: 'plant',
    origin: 'example.com/plant-1',
    identity: 'key',
    checkpointMs: 1000,
    checkpointEntries: 0,
    maxEntryBytes: 65536,
  },
];

/** The text of the first visible element matching selector, once it contains `want`. */
async function textWith(page: Page, selector: string, want: string): Promise<string> {
  await page.waitForFunction(
    ([sel, w]) =>
      [...document.querySelectorAll(sel as string)].some((e) => (e as HTMLElement).offsetParent !== null && (e.textContent ?? '').includes(w as string)),
    [selector, want],
    { timeout: 15000 },
  );
  return page.locator(selector).filter({ hasText: want }).first().innerText();
}

describe('the editor in zh-CN (Chromium, Node-RED 4)', function () {
  this.timeout(90000);
  let red: RedRuntime | undefined;
  let ed: EditorSession | undefined;
  let page: Page;

  before(async function () {
    await findChromium(); // fails (never skips) when no browser can be found
    // The runtime in Chinese too (settings.js `lang`): node statuses come from its zh-CN catalogs.
    red = await startRed({ flows: FLOWS, credentials: { key: { secretKey: KEY.exportSeed().toString('hex') } }, settings: { lang: 'zh-CN' } });
    ed = await openEditor(red.url, { locale: 'zh-CN' });
    page = ed.page;
    await page.waitForSelector('[id="sign"] .red-ui-flow-node', { timeout: 20000 });
  });

  after(async () => {
    await ed?.close();
    await red?.stop();
  });

  it('the runtime serves the zh-CN catalogs of every node set', async () => {
    const r = await fetch(`${red!.url}/nodes/messages?lng=zh-CN`, { headers: { accept: 'application/json' } });
    const all = (await r.json()) as Record<string, Record<string, { paletteLabel?: string }>>;
    assert.equal(all['@blockchain-of-things/node-red/bot-sign']?.['bot-sign']?.paletteLabel, '签名');
    assert.equal(all['@blockchain-of-things/node-red/bot-ledger']?.['bot-ledger']?.paletteLabel, 'bot 账本');
  });

  it("shows a node's status in the runtime's language", async () => {
    const label = page.locator('[id="sign"] .red-ui-flow-node-status-label'); // SVG text
    await page.waitForFunction(() => /下一个 seq/.test(document.querySelector('[id="sign"] .red-ui-flow-node-status-label')?.textContent ?? ''), undefined, {
      timeout: 15000,
    });
    assert.match((await label.textContent()) ?? '', /^下一个 seq \d+$/);
  });

  it('shows the node in the palette, its help in the Help sidebar and its dialog in Chinese', async () => {
    assert.equal(await page.evaluate(() => (window as unknown as { RED: { i18n: { lang(): string } } }).RED.i18n.lang()), 'zh-CN');
    assert.equal((await page.locator('.red-ui-palette-node[data-palette-type="bot-sign"] .red-ui-palette-label').innerText()).trim(), '签名');

    // Help: open the Help tab, then select the node (as a user does).
    await page.evaluate(() => (window as unknown as { RED: { sidebar: { show(id: string): void } } }).RED.sidebar.show('help'));
    await page.locator('[id="sign"] .red-ui-flow-node').click();
    const help = await textWith(page, '.red-ui-help', '对消息的一个属性进行签名');
    assert.match(help, /输入/);
    assert.match(help, /详细/);
    assert.doesNotMatch(help, /Signs a message property/, 'not the English help');

    // The dialog: labels, the tip and a validation reason, from the zh-CN catalog.
    await page.locator('[id="sign"] .red-ui-flow-node').dblclick();
    await page.waitForSelector('#node-input-kind', { state: 'attached', timeout: 15000 });
    assert.equal((await page.locator('label[for="node-input-identity"]').innerText()).trim(), '身份');
    assert.equal((await page.locator('label[for="node-input-kind"]').innerText()).trim(), '类型');
    assert.match(await page.locator('.red-ui-tray .form-tips').innerText(), /私钥只保存在身份的凭据或密钥文件中/);
    const kind = page.locator('#node-input-kind + .red-ui-typedInput-container input.red-ui-typedInput-input');
    await kind.click();
    await kind.press('ControlOrMeta+a');
    await kind.pressSequentially('Bad Kind', { delay: 0 });
    await kind.press('Tab');
    const reason = await textWith(page, '.red-ui-tray .bot-reason', '类型 (kind) 必须为 1-32 个字符');
    assert.match(reason, /例如 reading/);
    await page.evaluate(() => (window as unknown as { RED: { tray: { close(): void } } }).RED.tray.close());

    // The Ledger sidebar (the plugin's own catalog).
    await page.evaluate(() => (window as unknown as { RED: { sidebar: { show(id: string): void } } }).RED.sidebar.show('bot-ledger'));
    const section = page.locator('.bot-ledger-section[data-id="led"]');
    assert.match(await textWith(page, '.bot-ledger-section[data-id="led"] .bot-standalone', '独立运行'), /无 MQTT 代理/);
    assert.equal((await section.locator('.bot-consensus > .bot-title').innerText()).trim(), '共识');
    assert.match(await section.locator('.bot-kv').innerText(), /运营方[\s\S]*树大小[\s\S]*检查点/);
    assert.match(await section.locator('.bot-verify-btn').innerText(), /验证账本/);
    assert.deepEqual(
      ed!.errors.filter((e) => !/favicon/.test(e)),
      [],
      'no errors in the page',
    );
  });
});
