import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { verifyEnvelope } from '../../lib/format/envelope';
import { Identity } from '../../lib/format/identity';
import { forgetSharedSequences } from '../../lib/store/sequence';
import { ALL_NODES, type FlowNode, freshUserDir, helper, type Msg, nextMessage, nextMessages, noMessage, statuses, until } from './util';
import { editorDefinitions, editorVerdict } from './editor';

const SECRET = crypto.randomBytes(32);
const SECRET_HEX = SECRET.toString('hex');
const DEVICE = Identity.import(SECRET_HEX);
/** Every text form of the secret a leak could take. */
const SECRET_FORMS = [
  SECRET_HEX,
  SECRET_HEX.toUpperCase(),
  SECRET.toString('base64'),
  SECRET.toString('base64url'),
  SECRET.toString('base64').slice(0, 20),
  SECRET_HEX.slice(0, 24),
];

function flow(extra: FlowNode[] = [], identity = 'id1'): FlowNode[] {
  return [
    { id: 't1', type: 'tab', label: 'sign' },
    { id: 'id1', type: 'bot-identity', name: 'device' },
    { id: 's1', type: 'bot-sign', z: 't1', identity, name: '', wires: [['out']] },
    { id: 'out', type: 'helper', z: 't1' },
    { id: 'c1', type: 'catch', z: 't1', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 't1' },
    ...extra,
  ];
}
const CREDS = { id1: { secretKey: SECRET_HEX } };

function assertNoSecret(where: string, value: unknown): void {
  const text = typeof value === 'string' ? value : JSON.stringify(value, (_k, v: unknown) => (v instanceof Error ? { message: v.message, stack: v.stack } : v));
  for (const s of SECRET_FORMS) assert.ok(!(text ?? '').includes(s), `the secret leaked into ${where}`);
}

describe('bot-identity and bot-sign (Node-RED)', function () {
  this.timeout(15000);
  let userDir: string;
  beforeEach(() => {
    userDir = freshUserDir();
  });
  afterEach(async () => {
    await helper.unload();
    fs.rmSync(userDir, { recursive: true, force: true });
  });

  it('exposes the identity of its credential', async () => {
    await helper.load(ALL_NODES, flow(), CREDS);
    const n = helper.getNode('id1') as unknown as { identity?: Identity };
    assert.equal(n.identity?.did, DEVICE.did);
  });

  it('signs every kind of payload as a verifiable envelope of kind reading', async () => {
    await helper.load(ALL_NODES, flow(), CREDS);
    const out = helper.getNode('out');
    const caught = helper.getNode('caught');
    const payloads: unknown[] = [{ a: 1, b: [true, null] }, [1, 'x'], 'text', 42.5, false, null, Buffer.from([1, 2, 3])];
    const got = nextMessages(out, payloads.length);
    const quiet = noMessage(caught, 300);
    const before = Date.now();
    payloads.forEach((payload) => helper.getNode('s1').receive({ payload }));
    const msgs = await got;
    await quiet;
    let lastSeq = -1;
    msgs.forEach((m, i) => {
      // (checked first: verifyEnvelope freezes the object it is given)
      assert.equal(Object.isFrozen(m.payload), false, 'a plain, writable object');
      const env = verifyEnvelope(m.payload).envelope;
      assert.equal(env.kind, 'reading');
      assert.equal(env.signer, DEVICE.did);
      assert.ok(env.seq > lastSeq);
      lastSeq = env.seq;
      assert.ok(env.ts >= before && env.ts <= Date.now());
      assert.equal(env.topic, undefined);
      assert.deepEqual(m.unsigned, payloads[i]);
    });
    const bin = verifyEnvelope(msgs[6]?.payload).envelope;
    assert.equal(bin.enc, 'base64');
    assert.equal(bin.payload, 'AQID');
    assert.deepEqual(verifyEnvelope(msgs[0]?.payload).envelope.payload, { a: 1, b: [true, null] });
  });

  it('signs msg.topic, omits an empty one, and sends an invalid one to Catch', async () => {
    await helper.load(ALL_NODES, flow(), CREDS);
    const s1 = helper.getNode('s1');
    const outs = nextMessages(helper.getNode('out'), 2);
    const errs = nextMessages(helper.getNode('caught'), 3);
    s1.receive({ payload: 1, topic: 'plant/1/temp' });
    s1.receive({ payload: 2, topic: '' });
    s1.receive({ payload: 3, topic: 'plant/+/temp' });
    s1.receive({ payload: 4, topic: 42 });
    s1.receive({ payload: 5, topic: 'a#' });
    const [a, b] = await outs;
    assert.equal(verifyEnvelope(a?.payload).envelope.topic, 'plant/1/temp');
    assert.equal(verifyEnvelope(b?.payload).envelope.topic, undefined);
    for (const e of await errs) {
      assert.equal(e.error?.code, 'E_ENVELOPE');
      assert.equal(e.error?.source?.id, 's1');
      assert.ok(typeof e.payload === 'number', 'the failed msg keeps its payload');
    }
  });

  it('refuses missing, non-JSON and oversized payloads through Catch', async () => {
    await helper.load(ALL_NODES, flow(), CREDS);
    const s1 = helper.getNode('s1');
    const st = statuses(s1);
    const errs = nextMessages(helper.getNode('caught'), 5);
    const none = noMessage(helper.getNode('out'), 400);
    s1.receive({});
    s1.receive({ payload: new Date() });
    s1.receive({ payload: { x: Number.NaN } });
    s1.receive({ payload: { f: () => 1 } });
    s1.receive({ payload: 'x'.repeat(70 * 1024) });
    const codes = (await errs).map((e) => e.error?.code);
    assert.deepEqual(codes, ['E_JSON', 'E_JSON', 'E_JSON', 'E_JSON', 'E_TOO_LARGE']);
    await none;
    await until(() => st.some((s) => s.fill === 'red'), 2000, 'a red status');
  });

  it('without a usable identity: red status, every message an error to Catch, no secret in errors', async () => {
    const bad = SECRET_HEX.slice(0, 62); // 31 bytes: unusable, and must not be echoed
    const loose = path.join(userDir, 'loose.pem');
    fs.writeFileSync(loose, Identity.generate().exportPkcs8Pem(), { mode: 0o644 });
    fs.chmodSync(loose, 0o644);
    for (const [f, creds] of [
      [flow([], ''), CREDS], // no identity selected
      [flow([], 'nope'), CREDS], // identity node missing
      [flow(), { id1: { secretKey: bad } }], // unreadable secret key
      [flow().map((n) => (n.id === 'id1' ? { ...n, keyFile: loose } : n)), {}], // a key file others can read
    ] as [FlowNode[], Record<string, Record<string, string>>][]) {
      await helper.load(ALL_NODES, f, creds);
      const err = nextMessage(helper.getNode('caught'));
      helper.getNode('s1').receive({ payload: 1 });
      const e = await err;
      assert.equal(e.error?.code, 'E_KEY');
      assert.ok(!String(e.error?.message).includes(bad.slice(0, 16)));
      await helper.unload();
    }
    for (const call of helper.log().args) assertNoSecret('the log', call);
  });

  it('without a secret key, generates a key file (0600) once and keeps using it', async () => {
    await helper.load(ALL_NODES, flow(), {});
    const file = path.join(userDir, 'bot-keys', 'id1.pem');
    const did = (helper.getNode('id1') as unknown as { identity?: Identity }).identity?.did;
    assert.ok(did);
    assert.equal(Identity.fromFile(file).did, did);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const out = nextMessage(helper.getNode('out'));
    helper.getNode('s1').receive({ payload: 1 });
    assert.equal(verifyEnvelope((await out).payload).envelope.signer, did);
    assert.ok(helper.log().args.some((a) => JSON.stringify(a).includes(`generated a new key ${did}`)));
    await helper.unload();
    await helper.load(ALL_NODES, flow(), {});
    assert.equal((helper.getNode('id1') as unknown as { identity?: Identity }).identity?.did, did);
    const r = await helper.request().post('/bot-identity/did').send({ id: 'id1' });
    assert.deepEqual(r.body, { did });
    assert.ok(!JSON.stringify(helper.log().args).includes(fs.readFileSync(file, 'utf8').split('\n')[1] as string));
  });

  it('hands out seqs shared by sign nodes of one identity, monotonic across redeploys and restarts', async () => {
    const f = flow([{ id: 's2', type: 'bot-sign', z: 't1', identity: 'id1', name: 'second', wires: [['out']] }]);
    await helper.load(ALL_NODES, f, CREDS);
    const seqs: number[] = [];
    const round = async (n: number): Promise<void> => {
      const got = nextMessages(helper.getNode('out'), n);
      for (let i = 0; i < n; i++) helper.getNode(i % 2 ? 's2' : 's1').receive({ payload: i });
      for (const m of await got) seqs.push(verifyEnvelope(m.payload).envelope.seq);
    };
    await round(10);
    await helper.setFlows(f, 'full', CREDS); // redeploy: same process, counter continues
    await round(6);
    await helper.setFlows(
      f.map((n) => (n.id === 's2' ? { ...n, name: 'renamed' } : n)),
      'nodes',
      CREDS,
    );
    await round(6);
    await helper.unload();
    forgetSharedSequences(); // a restart: the counter is read back from its file
    await helper.load(ALL_NODES, f, CREDS);
    await round(6);
    const sorted = [...seqs].sort((a, b) => a - b);
    assert.equal(new Set(seqs).size, seqs.length, 'no seq is handed out twice');
    assert.deepEqual(seqs.slice(0, 22), sorted.slice(0, 22), 'increasing while the process runs');
    assert.ok(Math.min(...seqs.slice(22)) >= 1000, 'after a restart, above the reserved block');
    const file = path.join(userDir, 'bot-seq', crypto.createHash('sha256').update(DEVICE.did).digest('hex') + '.json');
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).next, 2000);
  });

  it('never shows the secret in the log, flows, messages or statuses', async () => {
    await helper.load(ALL_NODES, flow(), CREDS);
    const seen: unknown[] = [];
    for (const id of ['s1', 'out', 'caught']) {
      helper.getNode(id).on('input', (m: Msg) => seen.push(m));
      seen.push(statuses(helper.getNode(id)));
    }
    const got = nextMessages(helper.getNode('out'), 2);
    const err = nextMessage(helper.getNode('caught'));
    helper.getNode('s1').receive({ payload: { v: 1 }, topic: 't' });
    helper.getNode('s1').receive({ payload: 'x', topic: 'bad/#/t' });
    helper.getNode('s1').receive({ payload: 'y' });
    await got;
    await err;
    assertNoSecret('messages and statuses', seen);
    assertNoSecret('the flows', helper._redNodes.getFlows());
    for (const call of helper.log().args) assertNoSecret('the log', call);
    const node = helper.getNode('id1');
    assertNoSecret('the node object', { identity: node.identity, str: String(node.identity) });
  });

  describe('editor typed inputs (property, topic, kind)', () => {
    const typed = (opts: Record<string, unknown>): FlowNode[] =>
      flow([{ id: 's2', type: 'bot-sign', z: 't1', identity: 'id1', name: '', ...opts, wires: [['out']] }]);

    it('a flow saved before the options signs msg.payload with msg.topic as kind reading', async () => {
      await helper.load(ALL_NODES, typed({}), CREDS);
      const got = nextMessage(helper.getNode('out'));
      helper.getNode('s2').receive({ payload: { c: 1 }, topic: 'plant/1', data: 'untouched' });
      const m = await got;
      const env = verifyEnvelope(m.payload).envelope;
      assert.deepEqual([env.kind, env.topic, env.payload, m.data], ['reading', 'plant/1', { c: 1 }, 'untouched']);
    });

    it('signs another msg property in place, with a fixed topic and the kind from msg', async () => {
      await helper.load(ALL_NODES, typed({ property: 'reading.value', topic: 'plant/2/temp', topicType: 'str', kind: 'kind', kindType: 'msg' }), CREDS);
      const got = nextMessage(helper.getNode('out'));
      helper.getNode('s2').receive({ payload: 'kept', topic: 'ignored', kind: 'alarm', reading: { value: [21.5, 22] } });
      const m = await got;
      assert.equal(m.payload, 'kept');
      assert.deepEqual(m.unsigned, [21.5, 22]);
      const env = verifyEnvelope((m.reading as { value: unknown }).value).envelope;
      assert.deepEqual([env.kind, env.topic, env.payload, env.signer], ['alarm', 'plant/2/temp', [21.5, 22], DEVICE.did]);
    });

    it('takes the topic from flow context and the kind from an environment variable', async () => {
      process.env.BOT_SIGN_TEST_KIND = 'event';
      try {
        await helper.load(ALL_NODES, typed({ topic: 'site.topic', topicType: 'flow', kind: 'BOT_SIGN_TEST_KIND', kindType: 'env' }), CREDS);
        const s2 = helper.getNode('s2') as unknown as { context(): { flow: { set(k: string, v: unknown): void } } } & ReturnType<typeof helper.getNode>;
        s2.context().flow.set('site', { topic: 'site/7/door' });
        const got = nextMessage(helper.getNode('out'));
        s2.receive({ payload: true, topic: 'ignored' });
        const env = verifyEnvelope((await got).payload).envelope;
        assert.deepEqual([env.kind, env.topic, env.payload], ['event', 'site/7/door', true]);
      } finally {
        delete process.env.BOT_SIGN_TEST_KIND;
      }
    });

    it('an empty fixed topic means no topic; a bad kind or a missing property goes to Catch', async () => {
      await helper.load(ALL_NODES, typed({ property: 'data', topic: '', topicType: 'str', kind: 'kind', kindType: 'msg' }), CREDS);
      const out = helper.getNode('out');
      const got = nextMessage(out);
      helper.getNode('s2').receive({ data: 5, topic: 'ignored', kind: 'reading' });
      const env = verifyEnvelope((await got).data).envelope;
      assert.equal(env.topic, undefined);
      const errs = nextMessages(helper.getNode('caught'), 3);
      const none = noMessage(out, 300);
      helper.getNode('s2').receive({ data: 5, kind: 'Not A Kind' });
      helper.getNode('s2').receive({ data: 5, kind: 7 });
      helper.getNode('s2').receive({ payload: 5, kind: 'reading' });
      const e = await errs;
      await none;
      assert.deepEqual(
        e.map((m) => m.error?.code),
        ['E_ENVELOPE', 'E_ENVELOPE', 'E_JSON'],
      );
      assert.match(String(e[2]?.error?.message), /msg\.data is missing/);
    });
  });

  it('the editor marks exactly the fixed kinds and topics the runtime refuses, with the reason', async () => {
    const def = editorDefinitions('bot-sign')['bot-sign']!;
    const cases: [prop: 'kind' | 'topic', value: string][] = [
      ['kind', 'reading'],
      ['kind', 'a'],
      ['kind', 'alarm-2'],
      ['kind', 'a_b'],
      ['kind', 'a'.repeat(32)],
      ['kind', 'a'.repeat(33)],
      ['kind', 'Reading'],
      ['kind', '1a'],
      ['kind', 'a b'],
      ['kind', ''],
      ['topic', 'plant/1/temp'],
      ['topic', ''],
      ['topic', 'x'.repeat(4096)],
      ['topic', 'a/+/b'],
      ['topic', 'a/#'],
      ['topic', 'x'.repeat(4097)],
    ];
    await helper.load(
      ALL_NODES,
      flow(
        cases.map(([prop, value], i) => ({
          id: `k${i}`,
          type: 'bot-sign',
          z: 't1',
          identity: 'id1',
          name: '',
          [prop]: value,
          [`${prop}Type`]: 'str',
          wires: [['out']],
        })),
      ),
      CREDS,
    );
    for (const [i, [prop, value]] of cases.entries()) {
      const editor = editorVerdict(def, prop, value, { [`${prop}Type`]: 'str' });
      const outcome = Promise.race([
        nextMessage(helper.getNode('out')).then(() => 'signed'),
        nextMessage(helper.getNode('caught')).then((m) => `refused: ${m.error?.message}`),
      ]);
      helper.getNode(`k${i}`).receive({ payload: 1, topic: 'ignored' });
      const runtime = await outcome;
      helper.getNode('out').removeAllListeners('input');
      helper.getNode('caught').removeAllListeners('input');
      const what = `${prop} ${JSON.stringify(value.slice(0, 40))}`;
      if (runtime === 'signed') assert.equal(editor, true, `${what}: signed, but the editor says ${editor}`);
      else
        assert.match(
          String(editor),
          prop === 'kind' ? /^The kind must be 1-32 characters.*e\.g\. reading$/ : /^A fixed topic must have no MQTT wildcards/,
          `${what}: ${runtime}`,
        );
    }
    const d = Object.fromEntries(Object.entries(def.defaults).map(([k, v]) => [k, v.value]));
    assert.deepEqual(
      [d.property, d.topic, d.topicType, d.kind, d.kindType],
      ['payload', 'topic', 'msg', 'reading', 'str'],
      'the defaults are the old behaviour',
    );
  });

  describe('admin endpoint POST /bot-identity/did', () => {
    it('returns only the did:key of a typed key or of a deployed node', async () => {
      await helper.load(ALL_NODES, flow(), CREDS);
      const r1 = await helper.request().post('/bot-identity/did').send({ secretKey: SECRET_HEX });
      assert.equal(r1.status, 200);
      assert.deepEqual(r1.body, { did: DEVICE.did });
      const r2 = await helper
        .request()
        .post('/bot-identity/did')
        .send({ secretKey: SECRET.toString('base64url') });
      assert.deepEqual(r2.body, { did: DEVICE.did });
      const r3 = await helper.request().post('/bot-identity/did').send({ id: 'id1' });
      assert.deepEqual(r3.body, { did: DEVICE.did });
      const r4 = await helper.request().post('/bot-identity/did').send({ secretKey: '__PWRD__', id: 'id1' });
      assert.deepEqual(r4.body, { did: DEVICE.did });
    });

    it('refuses bad keys without echoing them, and unknown ids', async () => {
      await helper.load(ALL_NODES, flow(), CREDS);
      const bad = SECRET_HEX.slice(0, 63);
      const r1 = await helper.request().post('/bot-identity/did').send({ secretKey: bad });
      assert.equal(r1.status, 400);
      assert.ok(!JSON.stringify(r1.body).includes(bad.slice(0, 20)));
      assert.equal((await helper.request().post('/bot-identity/did').send({ id: 'nope' })).status, 404);
      assert.equal((await helper.request().post('/bot-identity/did').send({ id: 's1' })).status, 404);
      assert.equal((await helper.request().post('/bot-identity/did').send({})).status, 400);
    });
  });
});
