/**
 * The editor's "Ledger" sidebar in a real browser (Debian's Chromium) against a real Node-RED 4
 * runtime loading this package, real LevelDB ledgers and a real MQTT broker (Mosquitto):
 * ledgers listed, entries growing live over comms, an entry's proof verified by the browser
 * (and refused when its bytes are altered), the consensus strip with a partner's
 * cosignatures, a real equivocation shown as an alert, the audit finding a tampered ledger
 * after a restart, theme colours, and the permissions of the endpoints.
 */
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import { Level } from 'level';
import type { Page } from 'playwright-core';
import { forkEvidence, evidenceToJson } from '../../lib/format/equivocation';
import { Identity } from '../../lib/format/identity';
import { CHUNK, decodeLeaves, encodeLeaves, entryKey } from '../../lib/store/layout';
import { MqttLink } from '../../lib/consortium/mqtt-link';
import { NoteVerifier, signCheckpoint } from '../../lib/format/note';
import { ledgerId } from '../../lib/consortium/quorum';
import { ledgerTopics } from '../../lib/consortium/publisher';
import { tmpDir, until, vector } from '../helpers';
import { Mosquitto } from '../mosquitto';
import { type EditorSession, openEditor, type RedRuntime, startRed } from './harness';

const A = 'example.com/A';
const B = 'example.com/B';
const S = 'example.com/S';

/** A flow with a standalone ledger S and two ledgers A and B witnessing each other over broker. */
function sidebarFlow(userDir: string, broker: string, a: Identity, b: Identity, partner: Identity): object[] {
  const ledger = (id: string, name: string, origin: string, key: string, extra: object = {}): object => ({
    id,
    type: 'bot-ledger',
    name,
    origin,
    identity: key,
    dir: path.join(userDir, `ledger-${name}`),
    checkpointMs: 300,
    checkpointEntries: 0,
    maxEntryBytes: 65536,
    ...extra,
  });
  const chain = (id: string, y: number, topic: string, key: string, led: string): object[] => [
    {
      id: `inj-${id}`,
      type: 'inject',
      z: 'tab',
      name: `${id} reading`,
      x: 140,
      y,
      repeat: '',
      once: false,
      topic,
      payload: '{"celsius":21.5}',
      payloadType: 'json',
      props: [{ p: 'payload' }, { p: 'topic', vt: 'str' }],
      wires: [[`sign-${id}`]],
    },
    { id: `sign-${id}`, type: 'bot-sign', z: 'tab', x: 340, y, identity: key, wires: [[`app-${id}`]] },
    { id: `app-${id}`, type: 'bot-append', z: 'tab', x: 520, y, ledger: led, wires: [[]] },
  ];
  return [
    { id: 'tab', type: 'tab', label: 'Ledger sidebar test' },
    { id: 'key-a', type: 'bot-identity', name: 'A operator' },
    { id: 'key-b', type: 'bot-identity', name: 'B operator' },
    ledger('led-s', 's', S, 'key-a'),
    ledger('led-a', 'a', A, 'key-a', { broker, witnesses: `${b.did} ${B}`, witnessed: `${B} ${b.did}` }),
    ledger('led-b', 'b', B, 'key-b', { broker, witnesses: `${a.did} ${A}`, witnessed: `${A} ${a.did}` }),
    ...chain('s', 80, 'plant/1/temp', 'key-a', 'led-s'),
    ...chain('s2', 160, 'plant/2/temp', 'key-b', 'led-s'),
    ...chain('a', 240, 'plant/a/temp', 'key-a', 'led-a'),
    // Grants of ledger B to a partner: active, expired, and one revoked.
    { id: 'grant-b', type: 'bot-grant', z: 'tab', name: 'grants of B', x: 340, y: 320, ledger: 'led-b', wires: [[]] },
    ...(
      [
        [
          'active',
          {
            op: 'grant',
            id: 'g-active',
            subject: partner.did,
            actions: ['read'],
            scope: { signers: '*', topics: ['plant/#'] },
            expires: Date.now() + 86_400_000,
          },
        ],
        ['expired', { op: 'grant', id: 'g-expired', subject: partner.did, actions: ['read'], scope: { signers: [a.did] }, notBefore: 1, expires: 2 }],
        [
          'revoked',
          { op: 'grant', id: 'g-revoked', subject: partner.did, actions: ['read', 'append'], scope: { signers: '*' }, expires: Date.now() + 86_400_000 },
        ],
        ['revoke', { op: 'revoke', grant: 'g-revoked' }],
      ] as const
    ).map(([name, payload], i) => ({
      id: `inj-grant-${name}`,
      type: 'inject',
      z: 'tab',
      name,
      x: 140,
      y: 320 + 40 * i,
      repeat: '',
      once: false,
      topic: '',
      payload: JSON.stringify(payload),
      payloadType: 'json',
      props: [{ p: 'payload' }],
      wires: [['grant-b']],
    })),
  ];
}

/** The entry endpoint of entry 2 of ledger S (jQuery adds a cache-busting query). */
const ENTRY_2 = /\/bot-ledger\/view\/ledgers\/led-s\/entries\/2(\?|$)/;

const section = (page: Page, id: string) => page.locator(`.bot-ledger-section[data-id="${id}"]`);

/** Inject n messages through an inject node (admin API), one at a time. */
async function inject(red: RedRuntime, id: string, n = 1): Promise<void> {
  for (let i = 0; i < n; i++) {
    // Just after a (re)start the inject route can answer 404 for a moment: retry that for 10 s.
    const end = Date.now() + 10000;
    let r = await fetch(`${red.url}/inject/${id}`, { method: 'POST' });
    while (r.status === 404 && Date.now() < end) {
      await new Promise((res) => setTimeout(res, 100));
      r = await fetch(`${red.url}/inject/${id}`, { method: 'POST' });
    }
    assert.equal(r.status, 200, `inject ${id}: ${r.status} ${await r.text()}\n${red.output()}`);
  }
}

interface SummaryJson {
  id: string;
  treeSize: number;
  checkpoint: { size: number; note: string } | null;
}
async function summaries(red: RedRuntime): Promise<SummaryJson[]> {
  return (await (await fetch(`${red.url}/bot-ledger/view/ledgers`)).json()) as SummaryJson[];
}

describe('the Ledger sidebar in a real browser', function () {
  this.timeout(90000);
  const t = tmpDir('bot-sidebar-');
  const a = Identity.generate();
  const b = Identity.generate();
  const partner = Identity.generate();
  let broker: Mosquitto;
  let red: RedRuntime;
  let ed: EditorSession;

  before(async () => {
    broker = await Mosquitto.start();
    red = await startRed({
      userDir: t.dir,
      flows: sidebarFlow(t.dir, broker.url, a, b, partner),
      credentials: { 'key-a': { secretKey: a.exportSeed().toString('hex') }, 'key-b': { secretKey: b.exportSeed().toString('hex') } },
    });
    await inject(red, 'inj-s', 3);
    await inject(red, 'inj-s2', 2);
    ed = await openEditor(red.url);
    await ed.page.evaluate(() => (window as unknown as { RED: { sidebar: { show(id: string): void } } }).RED.sidebar.show('bot-ledger'));
  });

  after(async () => {
    await ed?.close();
    await red?.stop();
    await broker?.close();
    t.cleanup();
  });

  it('lists every deployed ledger: origin, operator did:key, size, checkpoint and MQTT state', async () => {
    const page = ed.page;
    await page.waitForSelector('.bot-ledger-section[data-id="led-b"] .bot-operator:not(:empty)', { timeout: 15000 });
    assert.equal(await page.locator('.bot-ledger-section').count(), 3);
    const s = section(page, 'led-s');
    await page.waitForFunction(() => document.querySelector('.bot-ledger-section[data-id="led-s"] .bot-size')?.textContent === '5');
    assert.equal(await s.locator('.bot-origin').textContent(), S);
    assert.equal(await s.locator('.bot-operator').getAttribute('title'), a.did);
    assert.equal(await s.locator('.bot-mqtt').textContent(), 'standalone');
    assert.match((await s.locator('.bot-standalone').textContent()) ?? '', /standalone/);
    await page.waitForFunction(() => /^size 5, /.test(document.querySelector('.bot-ledger-section[data-id="led-s"] .bot-checkpoint')?.textContent ?? ''));
    assert.equal(await section(page, 'led-b').locator('.bot-operator').getAttribute('title'), b.did);
    await page.waitForFunction(() => document.querySelector('.bot-ledger-section[data-id="led-a"] .bot-mqtt')?.textContent === 'connected', undefined, {
      timeout: 15000,
    });
    // The copy button copies the did:key (and nothing in the sidebar is a secret key).
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: red.url });
    await s.locator('.bot-copy').click();
    await page.locator('.red-ui-notification', { hasText: 'Copied' }).first().waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), a.did);
    const html = await page.locator('.bot-ledger-sidebar').innerHTML();
    for (const id of [a, b])
      assert.ok(!html.includes(id.exportSeed().toString('hex')) && !html.includes(id.exportSeed().toString('base64')), 'a secret key is shown');
    assert.deepEqual(ed.errors, []);
  });

  it('shows new entries live over comms, without asking the runtime again', async () => {
    const page = ed.page;
    const s = section(page, 'led-s');
    await page.waitForFunction(() => document.querySelectorAll('.bot-ledger-section[data-id="led-s"] .bot-entry').length === 5);
    const requests: string[] = [];
    const onRequest = (r: { url(): string }): void => {
      if (r.url().includes('/bot-ledger/view/')) requests.push(r.url());
    };
    page.on('request', onRequest);
    try {
      await inject(red, 'inj-s', 2);
      await page.waitForFunction(() => document.querySelectorAll('.bot-ledger-section[data-id="led-s"] .bot-entry').length === 7);
      assert.equal(await s.locator('.bot-entry').first().getAttribute('data-index'), '6');
      await page.waitForFunction(() => document.querySelector('.bot-ledger-section[data-id="led-s"] .bot-size')?.textContent === '7');
      assert.deepEqual(requests, [], 'the sidebar polled the runtime');
    } finally {
      page.off('request', onRequest);
    }
    // Filters: by signer (B's key signed entries 3 and 4), and by MQTT topic filter.
    await s.locator('.bot-f-signer').fill(b.did);
    await s.locator('.bot-f-signer').dispatchEvent('change');
    await page.waitForFunction(
      () => [...document.querySelectorAll('.bot-ledger-section[data-id="led-s"] .bot-entry')].map((e) => e.getAttribute('data-index')).join() === '4,3',
    );
    await s.locator('.bot-f-signer').fill('');
    await s.locator('.bot-f-topic').fill('plant/+/temp');
    await s.locator('.bot-f-topic').dispatchEvent('change');
    await page.waitForFunction(() => document.querySelectorAll('.bot-ledger-section[data-id="led-s"] .bot-entry').length === 7);
    await s.locator('.bot-f-topic').fill('plant/2/#');
    await s.locator('.bot-f-topic').dispatchEvent('change');
    await page.waitForFunction(
      () => [...document.querySelectorAll('.bot-ledger-section[data-id="led-s"] .bot-entry')].map((e) => e.getAttribute('data-index')).join() === '4,3',
    );
    await s.locator('.bot-f-topic').fill('');
    await s.locator('.bot-f-topic').dispatchEvent('change');
    await page.waitForFunction(() => document.querySelectorAll('.bot-ledger-section[data-id="led-s"] .bot-entry').length === 7);
  });

  it('verifies an entry in the browser: signature, leaf hash, checkpoint and inclusion proof', async () => {
    const page = ed.page;
    const s = section(page, 'led-s');
    // Wait for a checkpoint covering every entry, so entry 2 is proven against size 7.
    await page.waitForFunction(() => /^size 7, /.test(document.querySelector('.bot-ledger-section[data-id="led-s"] .bot-checkpoint')?.textContent ?? ''));
    await s.locator('.bot-entry[data-index="2"]').click();
    const detail = s.locator('.bot-entry-detail[data-index="2"]');
    await detail.waitFor();
    assert.equal(await detail.getAttribute('data-verified'), 'true', await detail.innerText());
    for (const c of ['envelope', 'signature', 'leaf-hash', 'checkpoint', 'inclusion-proof']) {
      assert.equal(await detail.locator(`.bot-check[data-check="${c}"]`).getAttribute('data-ok'), 'true', c);
    }
    assert.match(await detail.locator('.bot-cp-note').innerText(), /^example\.com\/S\n7\n/);

    // The same check fails in the browser when the bytes it gets do not hold: the verdict is the browser's.
    const tamper = async (change: (d: { leaf: string; proof: string[]; checkpoint: { note: string } }) => void): Promise<void> => {
      await page.route(ENTRY_2, async (route) => {
        const res = await route.fetch();
        const d = (await res.json()) as { leaf: string; proof: string[]; checkpoint: { note: string } };
        change(d);
        await route.fulfill({ response: res, json: d });
      });
      await s.locator('.bot-entry[data-index="1"]').click();
      await s.locator('.bot-entry-detail[data-index="1"]').waitFor();
      await s.locator('.bot-entry[data-index="2"]').click();
      await s.locator('.bot-entry-detail[data-index="2"]').waitFor();
      await page.unroute(ENTRY_2);
    };
    const okOf = async (c: string): Promise<string | null> => detail.locator(`.bot-check[data-check="${c}"]`).getAttribute('data-ok');

    await tamper((d) => {
      const p = Buffer.from(d.proof[0], 'base64');
      p[0] ^= 1;
      d.proof[0] = p.toString('base64');
    });
    assert.equal(await detail.getAttribute('data-verified'), 'false');
    assert.deepEqual([await okOf('signature'), await okOf('checkpoint'), await okOf('inclusion-proof')], ['true', 'true', 'false']);

    await tamper((d) => {
      d.leaf = Buffer.from(Buffer.from(d.leaf, 'base64').toString('utf8').replace('21.5', '99.9')).toString('base64');
    });
    assert.deepEqual([await okOf('signature'), await okOf('leaf-hash'), await okOf('inclusion-proof')], ['false', 'false', 'false']);

    await tamper((d) => {
      d.checkpoint.note = d.checkpoint.note.replace(/\n7\n/, '\n8\n');
    });
    assert.deepEqual([await okOf('signature'), await okOf('checkpoint'), await okOf('inclusion-proof')], ['true', 'false', 'false']);
  });

  it('the browser verifier passes the published RFC 6962, RFC 8785, RFC 8032 and C2SP vectors', async () => {
    const rfc6962 = vector<{
      hasher_kat: Record<string, string>;
      leaves_hex: string[];
      leaf_hashes: string[];
      inclusion_proofs: { leafIdx: number; treeSize: number; leafHash: string; root: string; proof: string[] }[];
    }>('rfc6962-vectors.json');
    const jcs = vector<{ cases: Record<string, { input: string; output: string }> }>('jcs-vectors.json');
    const ed25519 = vector<{ vectors: { public_key: string; message: string; signature: string }[] }>('ed25519-vectors.json');
    const notes = vector<Record<string, { vkey?: string; note?: string }>>('note-vectors.json');
    const failures = await ed.page.evaluate(
      async (v) => {
        const m = (await import(new URL('bot-ledger/view/client/bot-ledger-verify.js', document.baseURI).href)) as Record<string, (...a: unknown[]) => unknown>;
        const hex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g) ?? [], (b) => parseInt(b, 16));
        const toHex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
        const bad: string[] = [];
        const ok = (what: string, cond: boolean): void => {
          if (!cond) bad.push(what);
        };
        ok('HashLeaf KAT', toHex(m.leafHash(new TextEncoder().encode('L123456')) as Uint8Array) === v.rfc6962.hasher_kat['HashLeaf("L123456")']);
        ok(
          'HashChildren KAT',
          toHex(m.nodeHash(new TextEncoder().encode('N123'), new TextEncoder().encode('N456')) as Uint8Array) ===
            v.rfc6962.hasher_kat['HashChildren("N123","N456")'],
        );
        v.rfc6962.leaves_hex.forEach((l, i) => ok(`leaf hash ${i}`, toHex(m.leafHash(hex(l)) as Uint8Array) === v.rfc6962.leaf_hashes[i]));
        for (const p of v.rfc6962.inclusion_proofs) {
          const args = [p.leafIdx, p.treeSize, hex(p.leafHash)];
          ok(`inclusion ${p.leafIdx}/${p.treeSize}`, m.verifyInclusion(...args, p.proof.map(hex), hex(p.root)) === true);
          for (let k = 0; k < p.proof.length; k++) {
            const proof = p.proof.map(hex);
            proof[k][0] ^= 1;
            ok(`tampered inclusion ${p.leafIdx}/${p.treeSize} #${k}`, m.verifyInclusion(...args, proof, hex(p.root)) === false);
          }
          if (p.proof.length > 0)
            ok(`short inclusion ${p.leafIdx}/${p.treeSize}`, m.verifyInclusion(...args, p.proof.slice(1).map(hex), hex(p.root)) === false);
        }
        for (const [name, c] of Object.entries(v.jcs.cases)) ok(`JCS ${name}`, m.canonicalize(JSON.parse(c.input)) === c.output);
        for (const t of v.ed25519.vectors) {
          ok(`Ed25519 ${t.message.length / 2}-byte message`, m.verifyEd25519(hex(t.signature), hex(t.message), hex(t.public_key)) === true);
          const sig = hex(t.signature);
          sig[5] ^= 1;
          ok(`Ed25519 altered signature ${t.message.length / 2}`, m.verifyEd25519(sig, hex(t.message), hex(t.public_key)) === false);
        }
        const ex = v.notes.signed_note_c2sp_example;
        const [name, id, key] = (ex.vkey ?? '').split('+');
        const pub = (m.fromBase64(key) as Uint8Array).slice(1);
        ok('C2SP key ID', toHex(m.noteKeyId(name, pub) as Uint8Array) === id);
        ok('C2SP note', m.verifyNoteSignature(ex.note, name, pub) === 'This is an example message.\n');
        try {
          m.verifyNoteSignature((ex.note ?? '').replace('example message', 'exemplary message'), name, pub);
          bad.push('altered C2SP note verified');
        } catch {
          /* refused */
        }
        return bad;
      },
      { rfc6962, jcs, ed25519, notes },
    );
    assert.deepEqual(failures, []);
  });

  it('draws the consensus strip: checkpoints confirmed by the partner witness, with its last cosignature', async () => {
    const page = ed.page;
    await inject(red, 'inj-a', 3);
    const sa = section(page, 'led-a');
    // The checkpoint covering the three entries, cosigned by B (quorum 2 of 2: operator and B).
    const confirmed = sa.locator('.bot-cp-confirmed[data-size="3"]');
    await confirmed.waitFor({ timeout: 20000 });
    assert.match((await confirmed.getAttribute('title')) ?? '', /^checkpoint of size 3: confirmed 2\/2$/);
    assert.equal(await confirmed.textContent(), '2');
    const w = sa.locator('.bot-witness');
    assert.equal(await w.count(), 1);
    assert.equal(await w.locator('span').first().textContent(), B);
    assert.equal(await w.locator('.bot-mono').getAttribute('title'), b.did);
    await page.waitForFunction(() =>
      /cosigned \d+ s ago/.test(document.querySelector('.bot-ledger-section[data-id="led-a"] .bot-witness .bot-time')?.textContent ?? ''),
    );
    assert.equal(await sa.locator('.bot-conflict-alert').isVisible(), false);
  });

  it("lists the grants of a ledger (active, expired, revoked) with the partner's did:key, live", async () => {
    const page = ed.page;
    const grants = section(page, 'led-b').locator('.bot-grants');
    assert.equal(await grants.isVisible(), false, 'no grants yet');
    // One at a time, each shown live before the next (so their ledger order is known).
    for (const [i, g] of ['active', 'expired', 'revoked'].entries()) {
      await inject(red, `inj-grant-${g}`);
      await page.waitForFunction((n) => document.querySelectorAll('.bot-ledger-section[data-id="led-b"] .bot-grant').length === n, i + 1);
    }
    assert.equal(await grants.locator('.bot-grant[data-id="g-revoked"]').getAttribute('data-status'), 'active');
    await inject(red, 'inj-grant-revoke');
    await page.waitForFunction(
      () => document.querySelector('.bot-ledger-section[data-id="led-b"] .bot-grant[data-id="g-revoked"]')?.getAttribute('data-status') === 'revoked',
    );
    const rows = grants.locator('.bot-grant');
    assert.deepEqual(await rows.evaluateAll((els) => els.map((e) => `${e.getAttribute('data-id')}:${e.getAttribute('data-status')}`)), [
      'g-revoked:revoked',
      'g-expired:expired',
      'g-active:active',
    ]);
    for (const id of ['g-active', 'g-expired', 'g-revoked']) {
      assert.equal(await grants.locator(`.bot-grant[data-id="${id}"] .bot-subject`).getAttribute('title'), partner.did);
    }
    assert.match(await grants.locator('.bot-grant[data-id="g-active"]').innerText(), /read · any signer · topics plant\/#/);
    assert.match(await grants.locator('.bot-grant[data-id="g-revoked"] .bot-grant-status').innerText(), /^revoked \(revocation #3\)$/);
  });

  it('raises an alert with the evidence when the operator signed two conflicting checkpoints', async () => {
    const page = ed.page;
    // A real equivocation: A's operator key signs a second checkpoint at a size it already
    // signed, over another root; the evidence goes where a witness would publish it.
    const all = await summaries(red);
    const held = all.find((x) => x.id === 'led-a')?.checkpoint;
    assert.ok(held && held.size === 3, JSON.stringify(all));
    const forged = signCheckpoint(A, held.size, crypto.randomBytes(32), a);
    const evidence = forkEvidence(held.note, forged, NoteVerifier.ed25519(A, a.publicKey), { witness: B });
    const link = new MqttLink({ url: broker.url });
    link.on('error', () => undefined);
    link.start();
    try {
      await until('the test client to connect', () => link.state === 'connected');
      await link.publish(ledgerTopics(ledgerId(A, a.did)).conflict, evidenceToJson(evidence), { retain: true });
    } finally {
      await link.close();
    }
    const alert = section(page, 'led-a').locator('.bot-conflict-alert');
    await alert.waitFor({ state: 'visible', timeout: 15000 });
    assert.match(await alert.innerText(), /Conflict/);
    assert.equal(await alert.locator('.bot-evidence-a').textContent(), held.note);
    assert.equal(await alert.locator('.bot-evidence-b').textContent(), forged);
    assert.equal(await section(page, 'led-a').locator(`.bot-cp-conflict[data-size="${held.size}"]`).count(), 1);
    await page.locator('.red-ui-notification', { hasText: 'conflicting checkpoints' }).first().waitFor();
    // B is not affected.
    assert.equal(await section(page, 'led-b').locator('.bot-conflict-alert').isVisible(), false);
  });

  it('takes its colours from the editor theme (light and dark)', async () => {
    const page = ed.page;
    const colours = (): Promise<string[]> =>
      page.evaluate(() => {
        const el = document.querySelector('.bot-ledger-section[data-id="led-s"]')!;
        return [getComputedStyle(el).backgroundColor, getComputedStyle(el.querySelector('.bot-size')!).color];
      });
    const light = await colours();
    await page.addStyleTag({ content: ':root { --red-ui-primary-background: rgb(31, 31, 31); --red-ui-primary-text-color: rgb(221, 221, 221); }' });
    const dark = await colours();
    assert.deepEqual(dark, ['rgb(31, 31, 31)', 'rgb(221, 221, 221)']);
    assert.notDeepEqual(light, dark);
  });

  it('runs the audit on the server with progress; after tampering on disk it shows the failure', async () => {
    let page = ed.page;
    await section(page, 'led-s').locator('.bot-verify-btn').click();
    let result = section(page, 'led-s').locator('.bot-audit-result[data-state="done"]');
    await result.waitFor({ timeout: 20000 });
    assert.equal(await result.getAttribute('data-ok'), 'true', await result.innerText());
    assert.match(await result.innerText(), /^Sound: 7 entries/);
    assert.equal(
      await section(page, 'led-s')
        .locator('.bot-progress > div')
        .evaluate((e) => (e as HTMLElement).style.width),
      '100%',
    );

    // Stop the runtime, change one byte of entry 1's payload in its LevelDB, start again.
    await ed.close();
    await red.restart(async () => {
      const db = new Level<string, Buffer>(path.join(t.dir, 'ledger-s'), { keyEncoding: 'utf8', valueEncoding: 'buffer' });
      await db.open();
      try {
        const leaves = decodeLeaves((await db.get(entryKey(0)))!, 0);
        assert.ok(leaves.length <= CHUNK);
        const text = leaves[1].toString('utf8');
        assert.ok(text.includes('"celsius":21.5'));
        leaves[1] = Buffer.from(text.replace('"celsius":21.5', '"celsius":21.6'));
        await db.put(entryKey(0), encodeLeaves(leaves));
      } finally {
        await db.close();
      }
    });
    ed = await openEditor(red.url);
    page = ed.page;
    await page.evaluate(() => (window as unknown as { RED: { sidebar: { show(id: string): void } } }).RED.sidebar.show('bot-ledger'));
    await page.waitForSelector('.bot-ledger-section[data-id="led-s"] .bot-operator:not(:empty)');
    await section(page, 'led-s').locator('.bot-verify-btn').click();
    result = section(page, 'led-s').locator('.bot-audit-result[data-state="done"][data-ok="false"]');
    await result.waitFor({ timeout: 20000 });
    assert.match(await result.innerText(), /^Audit FAILED at entry 1: .*leaf hash/);
    await page.locator('.red-ui-notification', { hasText: 'Ledger audit failed' }).first().waitFor();
  });
});

describe('the Ledger sidebar entry browser, paging back', function () {
  this.timeout(120000);
  const t = tmpDir('bot-sidebar-paging-');
  const a = Identity.generate();
  let red: RedRuntime;
  let ed: EditorSession;

  before(async () => {
    red = await startRed({
      userDir: t.dir,
      flows: [
        { id: 'tab', type: 'tab', label: 'paging' },
        { id: 'key', type: 'bot-identity', name: 'op' },
        {
          id: 'led',
          type: 'bot-ledger',
          name: 'p',
          origin: 'example.com/paging',
          identity: 'key',
          dir: path.join(t.dir, 'ledger-p'),
          checkpointMs: 300,
          checkpointEntries: 0,
          maxEntryBytes: 65536,
        },
        {
          id: 'inj',
          type: 'inject',
          z: 'tab',
          x: 140,
          y: 80,
          repeat: '',
          once: false,
          topic: 'plant/1/temp',
          payload: '1',
          payloadType: 'num',
          props: [{ p: 'payload' }, { p: 'topic', vt: 'str' }],
          wires: [['sign']],
        },
        { id: 'sign', type: 'bot-sign', z: 'tab', x: 340, y: 80, identity: 'key', wires: [['app']] },
        { id: 'app', type: 'bot-append', z: 'tab', x: 520, y: 80, ledger: 'led', wires: [[]] },
      ],
      credentials: { key: { secretKey: a.exportSeed().toString('hex') } },
    });
    await inject(red, 'inj', 120);
    ed = await openEditor(red.url);
    await ed.page.evaluate(() => (window as unknown as { RED: { sidebar: { show(id: string): void } } }).RED.sidebar.show('bot-ledger'));
  });
  after(async () => {
    await ed?.close();
    await red?.stop();
    t.cleanup();
  });

  it('shows the newest 50 entries, then older pages back to entry 0, and Latest again', async () => {
    const page = ed.page;
    const indexes = (): Promise<string> =>
      page.evaluate(() => [...document.querySelectorAll('.bot-ledger-section[data-id="led"] .bot-entry')].map((e) => e.getAttribute('data-index')).join());
    const range = (from: number, to: number): string => Array.from({ length: from - to + 1 }, (_, i) => from - i).join();
    await page.waitForFunction(() => document.querySelector('.bot-ledger-section[data-id="led"] .bot-size')?.textContent === '120');
    await page.waitForFunction(() => document.querySelector('.bot-ledger-section[data-id="led"] .bot-entry')?.getAttribute('data-index') === '119');
    assert.equal(await indexes(), range(119, 70));
    const s = section(page, 'led');
    await s.locator('.bot-older').click();
    await page.waitForFunction(() => document.querySelector('.bot-ledger-section[data-id="led"] .bot-entry')?.getAttribute('data-index') === '69');
    assert.equal(await indexes(), range(69, 20));
    // An older page stays put while entries are appended.
    await inject(red, 'inj', 2);
    await page.waitForFunction(() => document.querySelector('.bot-ledger-section[data-id="led"] .bot-size')?.textContent === '122');
    assert.equal(await indexes(), range(69, 20));
    await s.locator('.bot-older').click();
    await page.waitForFunction(() => document.querySelector('.bot-ledger-section[data-id="led"] .bot-entry')?.getAttribute('data-index') === '19');
    assert.equal(await indexes(), range(19, 0));
    assert.equal(await s.locator('.bot-older').isDisabled(), true);
    await s.locator('.bot-latest').click();
    await page.waitForFunction(() => document.querySelector('.bot-ledger-section[data-id="led"] .bot-entry')?.getAttribute('data-index') === '121');
    // Entry 0, from the last page, verifies in the browser against the latest checkpoint.
    await s.locator('.bot-older').click();
    await page.waitForFunction(() => document.querySelector('.bot-ledger-section[data-id="led"] .bot-entry')?.getAttribute('data-index') === '71');
    await s.locator('.bot-older').click();
    await s.locator('.bot-entry[data-index="0"]').click();
    await page.waitForSelector('.bot-ledger-section[data-id="led"] .bot-entry-detail[data-index="0"]');
    assert.equal(await s.locator('.bot-entry-detail').getAttribute('data-verified'), 'true');
  });
});

describe('the browser tests without Chromium', () => {
  it("fail with a message saying to install Debian's chromium package (no skip, no download)", async () => {
    await assert.rejects(openEditor('http://127.0.0.1:9', { executablePath: '/nonexistent/chromium' }), /apt-get install chromium/);
  });
});

describe('the Ledger sidebar endpoints under adminAuth', function () {
  this.timeout(60000);
  let red: RedRuntime;

  before(async () => {
    // Node-RED's own bcrypt (a dependency of node-red) hashes the test password.
    const bcrypt = require(require.resolve('bcryptjs', { paths: [path.dirname(require.resolve('node-red/package.json'))] })) as {
      hashSync(p: string, r: number): string;
    };
    const hash = bcrypt.hashSync('viewer-pass', 4);
    const admin = bcrypt.hashSync('admin-pass', 4);
    red = await startRed({
      settings: {
        adminAuth: {
          type: 'credentials',
          users: [
            { username: 'viewer', password: hash, permissions: 'read' },
            { username: 'admin', password: admin, permissions: '*' },
          ],
        },
      },
    });
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
    const token = await login('admin', 'admin-pass');
    const r = await fetch(`${red.url}/flows`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'Node-RED-API-Version': 'v2', 'Node-RED-Deployment-Type': 'full' },
      body: JSON.stringify({ flows }),
    });
    assert.equal(r.status, 200, await r.text());
  });
  after(async () => {
    await red?.stop();
  });

  async function login(username: string, password: string, scope = '*'): Promise<string> {
    const r = await fetch(`${red.url}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: 'node-red-editor', grant_type: 'password', scope, username, password }),
    });
    const body = await r.text();
    assert.equal(r.status, 200, body);
    return (JSON.parse(body) as { access_token: string }).access_token;
  }

  it('reads need bot-ledger.read; starting an audit needs bot-ledger.write', async () => {
    const viewer = await login('viewer', 'viewer-pass', 'read');
    const admin = await login('admin', 'admin-pass');
    assert.equal((await fetch(`${red.url}/bot-ledger/view/ledgers`)).status, 401, 'a read without a token');
    const got = await fetch(`${red.url}/bot-ledger/view/ledgers`, { headers: { authorization: `Bearer ${viewer}` } });
    assert.equal(got.status, 200);
    const ids = ((await got.json()) as { id: string }[]).map((x) => x.id);
    assert.deepEqual(ids, ['led']);
    assert.equal((await fetch(`${red.url}/bot-ledger/view/ledgers/led/entries`, { headers: { authorization: `Bearer ${viewer}` } })).status, 200);
    assert.equal(
      (await fetch(`${red.url}/bot-ledger/view/ledgers/led/audit`, { method: 'POST', headers: { authorization: `Bearer ${viewer}` } })).status,
      401,
      'an audit started by a reader',
    );
    assert.equal((await fetch(`${red.url}/bot-ledger/view/ledgers/led/audit`, { method: 'POST', headers: { authorization: `Bearer ${admin}` } })).status, 202);
    // The browser code is public (it holds no data): the editor loads it with import(), which sends no token.
    const js = await fetch(`${red.url}/bot-ledger/view/client/bot-ledger-verify.js`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /javascript/);
    assert.equal((await fetch(`${red.url}/bot-ledger/view/vendor/hashes/sha2.js`)).status, 200);
    assert.equal((await fetch(`${red.url}/bot-ledger/view/vendor/hashes/..%2Fpackage.json`)).status, 404);
    assert.equal((await fetch(`${red.url}/bot-ledger/view/client/bot-sidebar.js`)).status, 404);
  });

  it('shows a reader the ledgers in the editor, without the Verify ledger button', async () => {
    const ed = await openEditor(red.url, { login: { username: 'viewer', password: 'viewer-pass' } });
    const errorsAtLogin = ed.errors.length;
    const unauthorized: string[] = [];
    ed.page.on('response', (r) => {
      if (r.status() === 401) unauthorized.push(r.url());
    });
    try {
      await ed.page.evaluate(() => (window as unknown as { RED: { sidebar: { show(id: string): void } } }).RED.sidebar.show('bot-ledger'));
      await ed.page.waitForSelector('.bot-ledger-section[data-id="led"] .bot-operator:not(:empty)');
      assert.equal(await ed.page.locator('.bot-ledger-section[data-id="led"] .bot-origin').textContent(), 'example.com/P');
      assert.equal(await ed.page.locator('.bot-ledger-section[data-id="led"] .bot-verify-btn').isVisible(), false);
      // Its entry list was read with the reader's token (a refused read would show the error instead).
      await ed.page.waitForSelector('.bot-ledger-section[data-id="led"] .bot-entries .bot-empty');
      assert.equal(await ed.page.locator('.bot-ledger-section[data-id="led"] .bot-entries').innerText(), 'no entries');
      // The editor's own first request before the login is refused; after it, nothing is.
      assert.deepEqual(ed.errors.slice(errorsAtLogin), []);
      assert.deepEqual(unauthorized, [], "the sidebar's requests carry the editor's token");
    } finally {
      await ed.close();
    }
  });
});
