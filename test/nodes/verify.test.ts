import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Envelope, signEnvelope } from '../../lib/format/envelope';
import { Identity } from '../../lib/format/identity';
import { type Ledger } from '../../lib/store/ledger';
import { ALL_NODES, type FlowNode, freshUserDir, helper, type Msg, nextMessage, nextMessages, noMessage, statuses, until } from './util';
import { editorDefinitions, editorVerdict } from './editor';

const DEVICE = Identity.generate();
const OTHER = Identity.generate();
const OPERATOR = Identity.generate();
const seed = (id: Identity): string => id.exportSeed().toString('hex');

let seqNo = 100;
function envelope(id: Identity, over: { seq?: number; ts?: number; payload?: unknown } = {}): Envelope {
  const e = signEnvelope(id, {
    kind: 'reading',
    seq: over.seq ?? seqNo++,
    ts: over.ts ?? Date.now(),
    payload: (over.payload ?? { t: 21.5 }) as never,
  });
  return JSON.parse(e.bytes.toString()) as Envelope;
}

function flow(verify: Record<string, unknown>, extra: FlowNode[] = []): FlowNode[] {
  return [
    { id: 't1', type: 'tab', label: 'verify' },
    { id: 'v1', type: 'bot-verify', z: 't1', name: '', trusted: DEVICE.did, ledger: '', maxSkewMs: 300000, ...verify, wires: [['ok'], ['rej']] },
    { id: 'ok', type: 'helper', z: 't1' },
    { id: 'rej', type: 'helper', z: 't1' },
    { id: 'c1', type: 'catch', z: 't1', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 't1' },
    ...extra,
  ];
}

describe('bot-verify (Node-RED)', function () {
  this.timeout(15000);
  let userDir: string;
  beforeEach(() => {
    userDir = freshUserDir();
  });
  afterEach(async () => {
    await helper.unload();
    fs.rmSync(userDir, { recursive: true, force: true });
  });

  it('passes valid envelopes (object, JSON text, bytes) to output 1 with msg.signer', async () => {
    await helper.load(ALL_NODES, flow({}));
    const got = nextMessages(helper.getNode('ok'), 3);
    const none = noMessage(helper.getNode('rej'), 300);
    const e1 = envelope(DEVICE),
      e2 = envelope(DEVICE),
      e3 = envelope(DEVICE);
    const v1 = helper.getNode('v1');
    v1.receive({ payload: e1 });
    v1.receive({ payload: JSON.stringify(e2) });
    v1.receive({ payload: Buffer.from(JSON.stringify(e3)) });
    const msgs = await got;
    await none;
    assert.deepEqual(
      msgs.map((m) => m.payload),
      [e1, e2, e3],
    );
    for (const m of msgs) assert.equal(m.signer, DEVICE.did);
  });

  it('accepts what bot-sign makes', async () => {
    const f = flow({}, [
      { id: 'id1', type: 'bot-identity', name: 'dev' },
      { id: 's1', type: 'bot-sign', z: 't1', identity: 'id1', name: '', wires: [['v1']] },
    ]);
    await helper.load(ALL_NODES, f, { id1: { secretKey: seed(DEVICE) } });
    const got = nextMessages(helper.getNode('ok'), 3);
    for (let i = 0; i < 3; i++) helper.getNode('s1').receive({ payload: i, topic: 'a/b' });
    const msgs = await got;
    assert.deepEqual(
      msgs.map((m) => (m.payload as Envelope).payload),
      [0, 1, 2],
    );
  });

  it('also trusts the did:key of a configured bot-identity (Also trust)', async () => {
    const f = flow({ trusted: '', trustIdentity: 'id1' }, [
      { id: 'id1', type: 'bot-identity', name: 'dev' },
      { id: 's1', type: 'bot-sign', z: 't1', identity: 'id1', name: '', wires: [['v1']] },
    ]);
    await helper.load(ALL_NODES, f, { id1: { secretKey: seed(OTHER) } });
    const got = nextMessage(helper.getNode('ok'));
    helper.getNode('s1').receive({ payload: 1 });
    assert.equal((await got).signer, OTHER.did);
    const rejected = nextMessage(helper.getNode('rej'));
    helper.getNode('v1').receive({ payload: envelope(DEVICE) });
    assert.equal(((await rejected).error as { code: string }).code, 'unknown-signer');
  });

  it('routes each kind of rejection to output 2 with its code, without a node error', async () => {
    const f = flow({}, [
      {
        id: 'v2',
        type: 'bot-verify',
        z: 't1',
        name: '',
        trusted: `${DEVICE.did}\n# comment\n${OTHER.did}`,
        ledger: '',
        maxSkewMs: 0,
        wires: [['ok'], ['rej']],
      },
    ]);
    await helper.load(ALL_NODES, f);
    const v1 = helper.getNode('v1');
    const st = statuses(v1);
    const noErr = noMessage(helper.getNode('caught'), 500);
    const tampered = envelope(DEVICE);
    (tampered.payload as { t: number }).t = 99;
    const older = envelope(DEVICE); // a lower seq than `replayed`, sent after it
    const replayed = envelope(DEVICE);
    const cases: [unknown, string][] = [
      ['not json', 'malformed'],
      [{ v: 2 }, 'malformed'],
      [[1, 2], 'malformed'],
      [null, 'malformed'],
      [{ ...envelope(DEVICE), extra: 1 }, 'malformed'],
      [{ ...envelope(DEVICE), signer: 'did:key:zNope' }, 'malformed'],
      ['x'.repeat(70 * 1024), 'malformed'],
      [tampered, 'bad-signature'],
      [{ ...envelope(DEVICE), sig: envelope(DEVICE).sig }, 'bad-signature'],
      [envelope(OTHER), 'unknown-signer'],
      [envelope(DEVICE, { ts: Date.now() - 10 * 60 * 1000 }), 'stale'],
      [envelope(DEVICE, { ts: Date.now() + 10 * 60 * 1000 }), 'stale'],
    ];
    const rej = nextMessages(helper.getNode('rej'), cases.length + 2);
    for (const [payload] of cases) v1.receive({ payload });
    // replay: the same envelope twice, then an older seq
    const ok = nextMessages(helper.getNode('ok'), 1);
    v1.receive({ payload: replayed });
    v1.receive({ payload: replayed });
    v1.receive({ payload: older });
    const msgs = await rej;
    await ok;
    assert.deepEqual(
      msgs.map((m) => m.error?.code),
      [...cases.map(([, c]) => c), 'replay', 'replay'],
    );
    for (const m of msgs) assert.equal(typeof m.error?.message, 'string');
    assert.equal(msgs[9]?.signer, OTHER.did);
    assert.equal(msgs[0]?.payload, 'not json', 'a rejected payload is passed on unchanged');
    await noErr;
    await until(() => st.some((s) => /✓ 1 ✗ 14/.test(s.text ?? '')), 2000, 'the status counts');
    // maxSkewMs 0 disables the freshness check; v2 trusts both signers
    const v2ok = nextMessages(helper.getNode('ok'), 2);
    helper.getNode('v2').receive({ payload: envelope(DEVICE, { ts: 1000 }) });
    helper.getNode('v2').receive({ payload: envelope(OTHER) });
    assert.equal((await v2ok).length, 2);
  });

  it("with a ledger: trusts its earlier signers and refuses seqs at or below the ledger's, across redeploys", async () => {
    const ledgerDir = path.join(userDir, 'ledger');
    const f = flow({ trusted: '', ledger: 'L1' }, [
      { id: 'op', type: 'bot-identity', name: 'operator' },
      {
        id: 'L1',
        type: 'bot-ledger',
        name: 'main',
        origin: 'test.example/verify',
        identity: 'op',
        dir: ledgerDir,
        checkpointMs: 0,
        checkpointEntries: 0,
        maxEntryBytes: 65536,
      },
      { id: 'a1', type: 'bot-append', z: 't1', name: '', ledger: 'L1', wires: [['appended']] },
      { id: 'appended', type: 'helper', z: 't1' },
    ]);
    const creds = { op: { secretKey: seed(OPERATOR) } };
    await helper.load(ALL_NODES, f, creds);
    // Before anything is in the ledger, DEVICE is unknown.
    let rej = nextMessage(helper.getNode('rej'));
    helper.getNode('v1').receive({ payload: envelope(DEVICE) });
    assert.equal((await rej).error?.code, 'unknown-signer');
    // Append one envelope of DEVICE (seq 5000) straight to the ledger.
    const first = envelope(DEVICE, { seq: 5000 });
    const app = nextMessage(helper.getNode('appended'));
    helper.getNode('a1').receive({ payload: first });
    await app;
    // Now DEVICE is trusted through the ledger, but only above seq 5000.
    const ok = nextMessage(helper.getNode('ok'));
    helper.getNode('v1').receive({ payload: envelope(DEVICE, { seq: 5001 }) });
    assert.equal((await ok).signer, DEVICE.did);
    rej = nextMessage(helper.getNode('rej'));
    helper.getNode('v1').receive({ payload: envelope(DEVICE, { seq: 4999 }) });
    assert.equal((await rej).error?.code, 'replay');
    // A redeploy forgets the in-memory seqs, not the ledger's.
    await helper.setFlows(f, 'full', creds);
    rej = nextMessage(helper.getNode('rej'));
    helper.getNode('v1').receive({ payload: first });
    assert.equal((await rej).error?.code, 'replay');
    rej = nextMessage(helper.getNode('rej'));
    helper.getNode('v1').receive({ payload: envelope(OTHER) });
    assert.equal((await rej).error?.code, 'unknown-signer');
  });

  it('reports a bad trusted list or missing ledger as a node error', async () => {
    for (const v of [{ trusted: 'did:key:zBad' }, { trusted: '', ledger: 'missing' }, { maxSkewMs: -5 }]) {
      await helper.load(ALL_NODES, flow(v));
      const st = statuses(helper.getNode('v1'));
      const err = nextMessage(helper.getNode('caught'));
      helper.getNode('v1').receive({ payload: envelope(DEVICE) });
      const e: Msg = await err;
      assert.ok(['E_DID', 'E_NOT_FOUND', 'E_RANGE'].includes(String(e.error?.code)), String(e.error?.code));
      await until(() => st.some((x) => x.fill === 'red'), 1000, 'a red status');
      await helper.unload();
    }
  });

  it('reads the envelope from the configured msg property (editor typed input) and writes the checked one back there', async () => {
    await helper.load(ALL_NODES, flow({ property: 'mqtt.body' }));
    const ok = nextMessage(helper.getNode('ok'));
    const e1 = envelope(DEVICE);
    helper.getNode('v1').receive({ payload: 'kept', mqtt: { body: JSON.stringify(e1) } });
    const m = await ok;
    assert.equal(m.payload, 'kept');
    assert.deepEqual((m.mqtt as { body: unknown }).body, e1);
    assert.equal(m.signer, DEVICE.did);
    // The property missing, or an envelope only in msg.payload: rejected as malformed, msg unchanged.
    const rej = nextMessages(helper.getNode('rej'), 2);
    const none = noMessage(helper.getNode('caught'), 300);
    helper.getNode('v1').receive({ payload: envelope(DEVICE) });
    helper.getNode('v1').receive({ payload: 1, mqtt: { body: 'not json' } });
    const r = await rej;
    await none;
    assert.deepEqual(
      r.map((x) => x.error?.code),
      ['malformed', 'malformed'],
    );
    assert.match(String(r[0]?.error?.message), /msg\.mqtt\.body is missing/);
    assert.equal((r[1]?.mqtt as { body: unknown }).body, 'not json');
  });

  it('the editor marks exactly the trusted lists and skews the runtime refuses, naming the line', async () => {
    const def = editorDefinitions('bot-verify')['bot-verify']!;
    const NOT_ED25519 = 'did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme';
    const cases: [prop: string, value: unknown][] = [
      ['trusted', ''],
      ['trusted', DEVICE.did],
      ['trusted', `${DEVICE.did}, ${OTHER.did}  # two\n# none\n\n${OPERATOR.did}`],
      ['trusted', `${DEVICE.did}\ndid:key:zBad0`],
      ['trusted', NOT_ED25519],
      ['trusted', DEVICE.did.slice(0, -2)],
      ['trusted', 'sensor-1'],
      ['maxSkewMs', '0'],
      ['maxSkewMs', 300000],
      ['maxSkewMs', ''],
      ['maxSkewMs', '-1'],
      ['maxSkewMs', '5s'],
      ['maxSkewMs', '1.5'],
    ];
    for (const [prop, value] of cases) {
      const editor = editorVerdict(def, prop, value);
      await helper.load(ALL_NODES, flow({ trusted: DEVICE.did, [prop]: value }));
      const outcome = Promise.race([
        nextMessage(helper.getNode('ok')).then(() => 'accepted'),
        nextMessage(helper.getNode('rej')).then(() => 'accepted'),
        nextMessage(helper.getNode('caught')).then((m) => `refused: ${m.error?.message}`),
      ]);
      helper.getNode('v1').receive({ payload: envelope(DEVICE) });
      const runtime = await outcome;
      await helper.unload();
      const what = `${prop} = ${JSON.stringify(value)}`;
      if (runtime === 'accepted') assert.equal(editor, true, `${what}: accepted by the runtime, but the editor says ${editor}`);
      else assert.equal(typeof editor, 'string', `${what}: ${runtime}, but the editor accepts it`);
    }
    assert.match(String(editorVerdict(def, 'trusted', `${DEVICE.did}\ndid:key:zBad0`)), /^line 2: did:key is not valid base58btc/);
    assert.match(String(editorVerdict(def, 'maxSkewMs', '5s')), /whole number of milliseconds \(0 = no check\), e\.g\. 300000/);
  });

  it('reports a ledger that cannot be read as a node error', async () => {
    const ledgerDir = path.join(userDir, 'ledger');
    const f = flow({ trusted: DEVICE.did, ledger: 'L1' }, [
      { id: 'op', type: 'bot-identity', name: 'operator' },
      {
        id: 'L1',
        type: 'bot-ledger',
        name: 'main',
        origin: 'test.example/v',
        identity: 'op',
        dir: ledgerDir,
        checkpointMs: 0,
        checkpointEntries: 0,
        maxEntryBytes: 65536,
      },
    ]);
    await helper.load(ALL_NODES, f, { op: { secretKey: seed(OPERATOR) } });
    const l = await (helper.getNode('L1') as unknown as { lease: { ledger: Promise<Ledger> } }).lease.ledger;
    await l.close();
    const err = nextMessage(helper.getNode('caught'));
    helper.getNode('v1').receive({ payload: envelope(DEVICE) });
    assert.equal((await err).error?.code, 'E_CLOSED');
  });
});
