import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { auditLedger } from '../../lib/store/audit';
import { fromBase64 } from '../../lib/format/bytes';
import { type Envelope, verifyEnvelope } from '../../lib/format/envelope';
import { Identity } from '../../lib/format/identity';
import { canonicalBytes } from '../../lib/format/jcs';
import { Ledger, type Receipt } from '../../lib/store/ledger';
import { leafHash } from '../../lib/format/merkle';
import { openLedgers } from '../../lib/store/registry';
import { forgetSharedSequences } from '../../lib/store/sequence';
import { editorDefinitions, editorVerdict } from './editor';
import { ALL_NODES, type FlowNode, freshUserDir, helper, type Msg, nextMessages, sleep, until } from './util';

const DEVICE = Identity.generate();
const OP_SECRET = crypto.randomBytes(32);
const OPERATOR = Identity.fromSeed(OP_SECRET);
const CREDS = { dev: { secretKey: DEVICE.exportSeed().toString('hex') }, op: { secretKey: OP_SECRET.toString('base64') } };

function flow(ledger: Record<string, unknown> = {}, extra: FlowNode[] = []): FlowNode[] {
  return [
    { id: 't1', type: 'tab', label: 'ledger' },
    { id: 'dev', type: 'bot-identity', name: 'device' },
    { id: 'op', type: 'bot-identity', name: 'operator' },
    {
      id: 'L1',
      type: 'bot-ledger',
      name: 'Plant 1',
      origin: '',
      identity: 'op',
      dir: '',
      checkpointMs: 0,
      checkpointEntries: 0,
      maxEntryBytes: 65536,
      ...ledger,
    },
    { id: 's1', type: 'bot-sign', z: 't1', identity: 'dev', name: '', wires: [['v1']] },
    { id: 'v1', type: 'bot-verify', z: 't1', name: '', trusted: DEVICE.did, ledger: 'L1', maxSkewMs: 300000, wires: [['a1'], ['rej']] },
    { id: 'a1', type: 'bot-append', z: 't1', ledger: 'L1', name: '', wires: [['out']] },
    { id: 'out', type: 'helper', z: 't1' },
    { id: 'rej', type: 'helper', z: 't1' },
    { id: 'c1', type: 'catch', z: 't1', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 't1' },
    ...extra,
  ];
}

interface LedgerConfig {
  lease: { ledger: Promise<Ledger> };
  dir: string;
  origin: string;
}
const config = (id = 'L1'): LedgerConfig => helper.getNode(id) as unknown as LedgerConfig;

async function pump(n: number): Promise<Msg[]> {
  const got = nextMessages(helper.getNode('out'), n, 10000);
  for (let i = 0; i < n; i++) helper.getNode('s1').receive({ payload: { i }, topic: 'plant/1/temp' });
  return got;
}

describe('bot-ledger config node (Node-RED)', function () {
  this.timeout(20000);
  let userDir: string;
  beforeEach(() => {
    userDir = freshUserDir();
  });
  afterEach(async () => {
    await helper.unload();
    fs.rmSync(userDir, { recursive: true, force: true });
  });

  it('defaults to <userDir>/bot-ledgers/<sanitized name> and origin bot.local/<installation id>/<node id>', async () => {
    await helper.load(ALL_NODES, flow({ name: '../Plant 1/ü' }), CREDS);
    const c = config();
    const l = await c.lease.ledger;
    assert.equal(c.dir, path.join(userDir, 'bot-ledgers', '__Plant_1_'));
    const install = fs.readFileSync(path.join(userDir, 'bot-ledgers', 'installation-id'), 'utf8').trim();
    assert.match(install, /^[0-9a-f]{16}$/);
    assert.equal(l.origin, `bot.local/${install}/L1`);
    assert.equal(l.operator.did, OPERATOR.did);
    await helper.unload();
    await helper.load(ALL_NODES, flow({ name: '' }), CREDS);
    assert.equal(config().dir, path.join(userDir, 'bot-ledgers', 'L1'));
  });

  it('keeps the stored origin of an existing ledger when none is configured', async () => {
    const dir = path.join(userDir, 'l');
    await helper.load(ALL_NODES, flow({ dir, origin: 'example.com/plant' }), CREDS);
    await pump(1);
    await helper.unload();
    await helper.load(ALL_NODES, flow({ dir, origin: '' }), CREDS);
    assert.equal((await config().lease.ledger).origin, 'example.com/plant');
    await helper.unload();
    await helper.load(ALL_NODES, flow({ dir, origin: 'example.com/other' }), CREDS);
    let err = nextMessages(helper.getNode('caught'), 1);
    helper.getNode('a1').receive({ payload: {} });
    assert.equal((await err)[0]?.error?.code, 'E_NOTE');
    await helper.unload();
    // The wrong operator key for this ledger.
    await helper.load(ALL_NODES, flow({ dir, identity: 'dev' }), CREDS);
    err = nextMessages(helper.getNode('caught'), 1);
    helper.getNode('a1').receive({ payload: {} });
    assert.equal((await err)[0]?.error?.code, 'E_KEY');
  });

  it('signs checkpoints on its timer, and every N entries', async () => {
    await helper.load(ALL_NODES, flow({ checkpointMs: 40 }), CREDS);
    await pump(3);
    const l = await config().lease.ledger;
    await until(() => l.latestCheckpoint()?.size === 3, 2000, 'a timed checkpoint');
    await helper.unload();
    await helper.load(ALL_NODES, flow({ checkpointMs: 0, checkpointEntries: 5 }), CREDS);
    const l2 = await config().lease.ledger;
    await pump(4);
    await sleep(100);
    assert.equal(l2.latestCheckpoint()?.size, 3, 'not yet: 4 new entries');
    await pump(1);
    await until(() => (l2.latestCheckpoint()?.size ?? 0) >= 8, 2000, 'a checkpoint after 5 entries');
  });

  it('survives redeploys (full, modified nodes, with appends in flight) and restarts intact, seq monotonic', async () => {
    const dir = path.join(userDir, 'ledger');
    const f = flow({ dir, origin: 'example.com/redeploy', checkpointMs: 30 });
    await helper.load(ALL_NODES, f, CREDS);
    const receipts: Receipt[] = [];
    const keep = (ms: Msg[]): void => {
      for (const m of ms) receipts.push(m.ledger as Receipt);
    };
    /** Receipts that arrive at the current 'out' node at any time (also after a redeploy began). */
    const watch = (): void =>
      helper.getNode('out').on('input', (m: Msg) => {
        if (m.inFlight) receipts.push(m.ledger as Receipt);
      });
    watch();
    keep(await pump(20));
    for (let i = 0; i < 3; i++) {
      // Messages on their way when the redeploy starts: appends already accepted finish before
      // the ledger closes; the others are dropped with the old flow. Nothing is half-written.
      for (let j = 0; j < 10; j++) helper.getNode('s1').receive({ payload: { j }, inFlight: true });
      await sleep(1);
      await helper.setFlows(f, 'full', CREDS);
      watch();
      keep(await pump(5));
    }
    await helper.setFlows(
      f.map((n) => (n.id === 'a1' ? { ...n, name: 'renamed' } : n)),
      'nodes',
      CREDS,
    );
    watch();
    keep(await pump(5));
    await helper.unload();
    forgetSharedSequences(); // restart
    await helper.load(ALL_NODES, f, CREDS);
    keep(await pump(5));
    await helper.unload();

    const l = await Ledger.open({ dir });
    try {
      assert.ok(receipts.length >= 20 + 3 * 5 + 5 + 5);
      assert.ok(l.size >= receipts.length && l.size <= receipts.length + 30, `${l.size} entries, ${receipts.length} receipts`);
      for (const r of receipts) {
        const e = await l.get(r.index);
        assert.equal(leafHash(e.leaf).equals(fromBase64(r.leafHash)), true, 'every acknowledged entry is there');
      }
      let last = -1;
      for await (const e of l.entries()) {
        const env = verifyEnvelope(e.leaf).envelope;
        assert.equal(env.signer, DEVICE.did);
        assert.ok(env.seq > last, 'seq strictly increasing');
        last = env.seq;
      }
      const audit = await auditLedger(l, { workers: 0 });
      assert.equal(audit.ok, true, JSON.stringify(audit));
      assert.ok((l.latestCheckpoint()?.size ?? 0) > 0);
    } finally {
      await l.close();
    }
    await helper.load(ALL_NODES, f, CREDS); // for afterEach
  });

  it('shares one open ledger among its users and closes it with the last', async () => {
    const dir = path.join(userDir, 'shared');
    const f = flow({ dir, origin: 'example.com/shared' }, [{ id: 'a2', type: 'bot-append', z: 't1', ledger: 'L1', name: 'second', wires: [['out']] }]);
    await helper.load(ALL_NODES, f, CREDS);
    assert.deepEqual(
      openLedgers().filter((o) => o.dir === dir),
      [{ dir, users: 4 }],
    ); // config, verify, two appends
    const l = await config().lease.ledger;
    // Remove a2 only (modified-nodes deploy): the ledger stays open for the others.
    await helper.setFlows(flow({ dir, origin: 'example.com/shared' }), 'nodes', CREDS);
    assert.equal(l.closed, false);
    assert.deepEqual(
      openLedgers().filter((o) => o.dir === dir),
      [{ dir, users: 3 }],
    );
    await helper.unload();
    assert.equal(l.closed, true);
    assert.equal(
      openLedgers().some((o) => o.dir === dir),
      false,
    );
    await helper.load(ALL_NODES, f, CREDS);
  });

  it('never shows the operator secret in the log, flows, messages or statuses', async () => {
    await helper.load(ALL_NODES, flow({ checkpointMs: 20 }), CREDS);
    const msgs = await pump(3);
    await sleep(60);
    const forms = [OP_SECRET.toString('hex'), OP_SECRET.toString('base64'), OP_SECRET.toString('base64url')];
    const texts = [JSON.stringify(msgs), JSON.stringify(helper._redNodes.getFlows()), JSON.stringify(helper.log().args)];
    for (const t of texts) for (const s of forms) assert.ok(!t.includes(s));
  });

  describe('admin endpoints', () => {
    it('GET /bot-ledger/ledgers lists the deployed ledgers', async () => {
      const dir = path.join(userDir, 'admin');
      await helper.load(
        ALL_NODES,
        flow({ dir, origin: 'example.com/admin' }, [
          {
            id: 'L2',
            type: 'bot-ledger',
            name: 'broken',
            origin: 'bad origin',
            identity: 'op',
            dir: '',
            checkpointMs: 0,
            checkpointEntries: 0,
            maxEntryBytes: 65536,
          },
        ]),
        CREDS,
      );
      await pump(3);
      await (helper.getNode('L1') as unknown as { checkpointNow(): Promise<unknown> }).checkpointNow();
      const r = await helper.request().get('/bot-ledger/ledgers');
      assert.equal(r.status, 200);
      const list = r.body as Record<string, unknown>[];
      const l1 = list.find((x) => x.id === 'L1');
      assert.deepEqual(Object.keys(l1 ?? {}).sort(), ['checkpoint', 'did', 'id', 'name', 'origin', 'treeSize']);
      assert.equal(l1?.name, 'Plant 1');
      assert.equal(l1?.origin, 'example.com/admin');
      assert.equal(l1?.did, OPERATOR.did);
      assert.equal(l1?.treeSize, 3);
      assert.match(String(l1?.checkpoint), /^example\.com\/admin\n3\n/);
      const l2 = list.find((x) => x.id === 'L2');
      assert.equal(l2?.did, null);
      assert.equal(typeof l2?.error, 'string');
      assert.ok(!JSON.stringify(list).includes(OP_SECRET.toString('base64')));
    });

    it('GET /bot-ledger/ledgers/:id/entries pages through entries', async () => {
      const dir = path.join(userDir, 'admin');
      await helper.load(ALL_NODES, flow({ dir, origin: 'example.com/admin' }), CREDS);
      await pump(5);
      const r = await helper.request().get('/bot-ledger/ledgers/L1/entries?from=1&limit=3');
      assert.equal(r.status, 200);
      const body = r.body as { treeSize: number; entries: { index: number; leafHash: string; leaf: Envelope }[] };
      assert.equal(body.treeSize, 5);
      assert.deepEqual(
        body.entries.map((e) => e.index),
        [1, 2, 3],
      );
      for (const e of body.entries) {
        verifyEnvelope(e.leaf);
        assert.equal(e.leafHash, leafHash(canonicalBytes(e.leaf)).toString('base64'));
      }
      const all = (await helper.request().get('/bot-ledger/ledgers/L1/entries')).body as { entries: unknown[] };
      assert.equal(all.entries.length, 5);
      const past = (await helper.request().get('/bot-ledger/ledgers/L1/entries?from=10')).body as { entries: unknown[] };
      assert.deepEqual(past.entries, []);
      for (const q of ['from=-1', 'limit=0', 'limit=5000', 'from=abc', 'limit=1.5']) {
        assert.equal((await helper.request().get(`/bot-ledger/ledgers/L1/entries?${q}`)).status, 400, q);
      }
      assert.equal((await helper.request().get('/bot-ledger/ledgers/nope/entries')).status, 404);
      assert.equal((await helper.request().get('/bot-ledger/ledgers/a1/entries')).status, 404);
    });
  });
});

describe('bot-ledger editor dialog: its validators agree with the runtime', function () {
  this.timeout(30000);
  let userDir: string;
  before(() => {
    userDir = freshUserDir();
  });
  after(() => fs.rmSync(userDir, { recursive: true, force: true }));
  const def = editorDefinitions('bot-ledger')['bot-ledger']!;
  /** The same dialog in the other languages the package ships: the same verdicts, reasons in that language. */
  const translated = ['zh-CN', 'ja'].map((lang) => ({ lang, def: editorDefinitions('bot-ledger', lang)['bot-ledger']! }));
  const B = Identity.generate().did;
  const C = Identity.generate().did;
  const NOT_ED25519 = 'did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme'; // secp256k1
  type Case = [prop: string, value: unknown, others?: Record<string, unknown>];
  const cases: Case[] = [
    ['origin', 'example.com/plant-1'],
    ['origin', ''],
    ['origin', 'é.example/ü'],
    ['origin', 'x'.repeat(255)],
    ['origin', 'example.com/plant 1'],
    ['origin', 'a+b'],
    ['origin', 'x'.repeat(256)],
    ['origin', 'a\u00a0b'],
    ['origin', 'a\u3000b'],
    ['origin', 'tab\tx'],
    ['origin', 'nul\u0001x'],
    ['checkpointMs', '0'],
    ['checkpointMs', 1000],
    ['checkpointMs', ''],
    ['checkpointMs', ' 250 '],
    ['checkpointMs', '1e3'],
    ['checkpointMs', '-1'],
    ['checkpointMs', '1.5'],
    ['checkpointMs', 'soon'],
    ['checkpointMs', '9007199254740992'],
    ['checkpointEntries', '100'],
    ['checkpointEntries', '-5'],
    ['checkpointEntries', 'x'],
    ['maxEntryBytes', '256'],
    ['maxEntryBytes', '16777216'],
    ['maxEntryBytes', ''],
    ['maxEntryBytes', '255'],
    ['maxEntryBytes', '16777217'],
    ['maxEntryBytes', '64k'],
    ['broker', 'mqtt://broker.example.com:1883'],
    ['broker', 'mqtts://b'],
    ['broker', 'ws://b/mqtt'],
    ['broker', 'wss://b'],
    ['broker', ''],
    ['broker', 'http://b'],
    ['broker', 'broker.example.com:1883'],
    ['broker', 'mqtt:/b'],
    ['witnessed', `example.com/b ${B}`],
    ['witnessed', `${B} example.com/b`],
    ['witnessed', `# partners\n\nexample.com/b ${B}\n  example.com/c ${C}  `],
    ['witnessed', 'example.com/b'],
    ['witnessed', `example.com/b ${B}\nexample.com/b ${C}`],
    ['witnessed', `bad+origin ${B}`],
    ['witnessed', 'example.com/b did:key:zBad0'],
    ['witnessed', `example.com/b ${B} extra`],
    ['witnessed', `example.com/b ${NOT_ED25519}`],
    ['witnessed', `example.com/b ${B.slice(0, -1)}`],
    ['mirrored', `example.com/b ${B}`],
    ['mirrored', `example.com/b ${B} x`],
    ['mirrored', `example.com/b ${NOT_ED25519}`],
    ['witnesses', `${B} example.com/b`],
    ['witnesses', B, { witnessed: `example.com/b ${B}` }],
    ['witnesses', B],
    ['witnesses', `${B} example.com/b extra`],
    ['witnesses', 'did:key:z6MkBAD example.com/b'],
    ['witnesses', `# none\n`],
    ['quorum', '2', { witnesses: `${B} example.com/b` }],
    ['quorum', '0'],
    ['quorum', ''],
    ['quorum', '3', { witnesses: `${B} example.com/b` }],
    ['quorum', '2'],
    ['quorum', '-1'],
    ['quorum', 'two'],
  ];

  it(`gives the runtime's verdict on ${cases.length} values (origins, numbers, broker URLs, did:key lines), with a reason for each refusal`, async () => {
    for (const [prop, value, others] of cases) {
      const settings = { ...others, [prop]: value };
      const editor = editorVerdict(def, prop, value, settings);
      await helper.load(
        ALL_NODES,
        [
          { id: 'op', type: 'bot-identity', name: 'operator' },
          { id: 'L1', type: 'bot-ledger', name: 'V', identity: 'op', dir: path.join(userDir, 'v'), checkpointMs: 0, ...settings },
        ],
        CREDS,
      );
      const runtime = (helper.getNode('L1') as unknown as { configError?: Error }).configError;
      await helper.unload();
      const what = `${prop} = ${JSON.stringify(value)}`;
      if (runtime) {
        assert.equal(typeof editor, 'string', `${what}: the runtime refuses it (${runtime.message}) but the editor accepts it`);
        assert.ok((editor as string).length > 15, `${what}: a reason, not just "invalid": ${editor}`);
      } else {
        assert.equal(editor, true, `${what}: the runtime accepts it but the editor says: ${editor}`);
      }
      for (const t of translated) {
        const v = editorVerdict(t.def, prop, value, settings);
        if (editor === true) assert.equal(v, true, `${t.lang} ${what}: accepted as in en-US, but: ${v}`);
        else assert.match(String(v), /[\u3040-\u30ff\u3400-\u9fff]/, `${t.lang} ${what}: refused with a reason in ${t.lang}: ${v}`);
      }
    }
  });

  it('names each property in its reason and the line of a bad line, with an example', () => {
    assert.match(String(editorVerdict(def, 'origin', 'a b')), /^The origin must be 1-255 characters without spaces or "\+".*e\.g\. example\.com\/plant-1/);
    assert.match(String(editorVerdict(def, 'witnessed', `example.com/b ${B}\nexample.com/c`)), /^line 2 must be "<origin> <did:key>", e\.g\./);
    assert.match(String(editorVerdict(def, 'witnesses', `${B} x\ndid:key:z6MkBAD`)), /^line 2: did:key is not an Ed25519 key/);
    assert.match(String(editorVerdict(def, 'broker', 'http://b')), /must start with mqtt:\/\/, mqtts:\/\/, ws:\/\/ or wss:\/\//);
    assert.match(String(editorVerdict(def, 'quorum', '3', { witnesses: B })), /impossible with the operator and 1 witness\(es\): at most 2/);
    assert.match(String(editorVerdict(def, 'maxEntryBytes', '10')), /from 256 to 16777216/);
  });

  it('keeps sensible defaults: standalone, checkpoint every second, entries up to 65535 bytes (tlog-tiles bundle lengths are uint16)', () => {
    const d = Object.fromEntries(Object.entries(def.defaults).map(([k, v]) => [k, v.value]));
    assert.deepEqual([d.origin, d.broker, d.checkpointMs, d.checkpointEntries, d.maxEntryBytes, d.quorum], ['', '', 1000, 0, 65535, '']);
    for (const [k, p] of Object.entries(def.defaults)) {
      if (p.validate) assert.equal(editorVerdict(def, k, p.value), true, `the default of ${k} is valid`);
    }
  });
});
