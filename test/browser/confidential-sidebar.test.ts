/**
 * The "Ledger" sidebar with confidential entries (issue 13) in a real browser against a real
 * Node-RED 4 runtime: the owner's sealed reading is verified in the browser like any entry and
 * shown opened (this instance holds the key), its scope's key epochs and holders are listed; on
 * a ledger without the key, a sealed entry is verified and shown as not readable.
 */
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import type { Page } from 'playwright-core';
import { signEnvelope } from '../../lib/format/envelope';
import { Identity } from '../../lib/format/identity';
import { sealEnvelope } from '../../lib/confidential/seal';
import { tmpDir } from '../helpers';
import { type EditorSession, openEditor, type RedRuntime, startRed } from './harness';

const section = (page: Page, id: string) => page.locator(`.bot-ledger-section[data-id="${id}"]`);

async function inject(red: RedRuntime, id: string): Promise<void> {
  const end = Date.now() + 10000;
  let r = await fetch(`${red.url}/inject/${id}`, { method: 'POST' });
  while (r.status === 404 && Date.now() < end) {
    await new Promise((res) => setTimeout(res, 100));
    r = await fetch(`${red.url}/inject/${id}`, { method: 'POST' });
  }
  assert.equal(r.status, 200, `inject ${id}: ${r.status}`);
}

describe('Ledger sidebar: sealed entries and key epochs (real browser)', function () {
  this.timeout(90000);
  const t = tmpDir('bot-conf-sidebar-');
  const op = Identity.generate();
  const dev = Identity.generate();
  let red: RedRuntime;
  let ed: EditorSession;

  before(async () => {
    // An entry sealed elsewhere (another ledger's key), appended as it is to a ledger that holds no key.
    const inner = signEnvelope(dev, { kind: 'reading', seq: 100, ts: Date.now(), topic: 'plant/9/temp', payload: { celsius: 9.5 } });
    const foreign = sealEnvelope(dev, inner, { origin: 'example.com/other', scope: 'plant', epoch: 0, key: crypto.randomBytes(32) }, 101, Date.now());
    const ledger = (id: string, origin: string, extra: object): object => ({
      id,
      type: 'bot-ledger',
      name: `ledger ${origin}`,
      origin,
      identity: 'key-op',
      dir: `${t.dir}/ledgers/${origin.slice(12)}`,
      checkpointMs: 300,
      ...extra,
    });
    const flows = [
      { id: 'tab', type: 'tab', label: 'confidential' },
      { id: 'key-op', type: 'bot-identity', name: 'operator' },
      { id: 'key-dev', type: 'bot-identity', name: 'device' },
      ledger('led-c', 'example.com/C', { confidential: 'plant plant/#' }),
      ledger('led-n', 'example.com/N', {}),
      {
        id: 'inj-c',
        type: 'inject',
        z: 'tab',
        topic: 'plant/1/temp',
        payload: '{"celsius":21.5}',
        payloadType: 'json',
        props: [{ p: 'payload' }, { p: 'topic', vt: 'str' }],
        wires: [['sign-c']],
      },
      { id: 'sign-c', type: 'bot-sign', z: 'tab', identity: 'key-dev', wires: [['app-c']] },
      { id: 'app-c', type: 'bot-append', z: 'tab', ledger: 'led-c', wires: [[]] },
      { id: 'inj-n', type: 'inject', z: 'tab', payload: JSON.stringify(foreign.toJSON()), payloadType: 'json', props: [{ p: 'payload' }], wires: [['app-n']] },
      { id: 'app-n', type: 'bot-append', z: 'tab', ledger: 'led-n', wires: [[]] },
    ];
    red = await startRed({
      userDir: t.dir,
      flows,
      credentials: { 'key-op': { secretKey: op.exportSeed().toString('hex') }, 'key-dev': { secretKey: dev.exportSeed().toString('hex') } },
    });
    await inject(red, 'inj-c');
    await inject(red, 'inj-n');
    ed = await openEditor(red.url);
    await ed.page.evaluate(() => (window as unknown as { RED: { sidebar: { show(id: string): void } } }).RED.sidebar.show('bot-ledger'));
  });

  after(async () => {
    await ed?.close();
    await red?.stop();
    t.cleanup();
  });

  it("the owner's sealed reading: verified in the browser, opened; the scope's epochs and holders", async () => {
    const page = ed.page;
    const s = section(page, 'led-c');
    // Entries: 0 the epoch, 1 its keywrap to the owner, 2 the sealed reading.
    await page.waitForFunction(
      () => /^size 3, /.test(document.querySelector('.bot-ledger-section[data-id="led-c"] .bot-checkpoint')?.textContent ?? ''),
      undefined,
      {
        timeout: 20000,
      },
    );
    await s.locator('.bot-entry[data-index="2"]').click();
    const detail = s.locator('.bot-entry-detail[data-index="2"]');
    await detail.waitFor();
    assert.equal(await detail.getAttribute('data-verified'), 'true', await detail.innerText());
    assert.equal(await detail.locator('.bot-sealed').getAttribute('data-opened'), 'true');
    assert.match(await detail.locator('.bot-envelope').innerText(), /"kind": "sealed"/);
    assert.doesNotMatch(await detail.locator('.bot-envelope').innerText(), /21\.5/);
    assert.match(await detail.locator('.bot-opened').innerText(), /"celsius": 21\.5/);
    const scope = s.locator('.bot-scope[data-scope="plant"]');
    await scope.waitFor();
    assert.match(await scope.innerText(), /plant \(plant\/#\)/);
    assert.equal(await scope.locator('.bot-epoch').count(), 1);
    assert.equal(await scope.locator('.bot-holder').getAttribute('title'), op.did);
    assert.deepEqual(ed.errors, []);
  });

  it('a sealed entry without the key here: verified, shown as not readable', async () => {
    const page = ed.page;
    const s = section(page, 'led-n');
    await page.waitForFunction(
      () => /^size 1, /.test(document.querySelector('.bot-ledger-section[data-id="led-n"] .bot-checkpoint')?.textContent ?? ''),
      undefined,
      {
        timeout: 20000,
      },
    );
    await s.locator('.bot-entry[data-index="0"]').click();
    const detail = s.locator('.bot-entry-detail[data-index="0"]');
    await detail.waitFor();
    assert.equal(await detail.getAttribute('data-verified'), 'true', await detail.innerText());
    assert.equal(await detail.locator('.bot-sealed').getAttribute('data-opened'), 'false');
    assert.match(await detail.locator('.bot-sealed').innerText(), /not readable here \(E_NO_KEY\)/);
    assert.equal(await detail.locator('.bot-opened').count(), 0);
    assert.equal(await s.locator('.bot-scopes').isVisible(), false);
  });
});
