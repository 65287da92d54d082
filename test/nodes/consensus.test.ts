/**
 * bot-ledger synced over MQTT and bot-consensus (docs/design.md "Nodes", "Sync over MQTT"), against
 * a real Mosquitto: the Node-RED ledger A and two kernel partners B and C (Consortium
 * instances in this process) witness each other; an entry of A is confirmed at 2 of 3.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Consortium } from '../../lib/consortium/consortium';
import { signEnvelope } from '../../lib/format/envelope';
import { Identity } from '../../lib/format/identity';
import { Ledger } from '../../lib/store/ledger';
import { MqttLink } from '../../lib/consortium/mqtt-link';
import { QuorumPolicy } from '../../lib/consortium/quorum';
import { Mosquitto } from '../mosquitto';
import { ALL_NODES, type FlowNode, freshUserDir, helper, type Msg, nextMessage, nextMessages, sleep, statuses, type TestNode, until } from './util';
import { editorDefinitions, editorVerdict } from './editor';

const botConsensus = require('../../nodes/bot-consensus') as unknown;
const NODES = [...ALL_NODES, botConsensus];

const origin = (n: string): string => `example.com/${n}`;
const OP = Identity.generate();
const DEV = Identity.generate();
const seed = (id: Identity): string => id.exportSeed().toString('hex');
const CREDS = { op: { secretKey: seed(OP) }, dev: { secretKey: seed(DEV) } };

interface Partner {
  name: string;
  id: Identity;
  ledger?: Ledger;
  link?: MqttLink;
  cons?: Consortium;
}

interface Status {
  status: string;
  index: number;
  treeSize: number;
  confirmations: number;
  quorum: number;
  witnesses: { did: string }[];
}

async function startPartner(p: Partner, others: { name: string; did: string }[], url: string, dir: string): Promise<void> {
  p.ledger = await Ledger.open({ dir, origin: origin(p.name), identity: p.id });
  p.link = new MqttLink({ url, reconnectMs: 100, maxReconnectMs: 500 });
  p.link.on('error', () => undefined);
  const policy = QuorumPolicy.create({ origin: origin(p.name), operator: p.id.did, witnesses: others.map((o) => ({ name: origin(o.name), key: o.did })) });
  p.cons = new Consortium({
    ledger: p.ledger,
    identity: p.id,
    link: p.link,
    policy,
    retryMs: 300,
    rpcTimeoutMs: 2000,
    witnessed: others.map((o) => ({ origin: origin(o.name), did: o.did })),
  });
  await p.cons.start();
}

async function stopPartner(p: Partner): Promise<void> {
  await p.cons?.stop();
  await p.link?.close();
  await p.ledger?.close();
  p.cons = undefined;
  p.link = undefined;
  p.ledger = undefined;
}

describe('bot-ledger over MQTT and bot-consensus (real MQTT broker, kernel partners)', function () {
  this.timeout(60000);
  let broker: Mosquitto;
  let userDir: string;
  const B: Partner = { name: 'B', id: Identity.generate() };
  const C: Partner = { name: 'C', id: Identity.generate() };
  const A = { name: 'A', did: OP.did };

  const flow = (): FlowNode[] => [
    { id: 't1', type: 'tab', label: 'consensus' },
    { id: 'op', type: 'bot-identity', name: 'operator' },
    { id: 'dev', type: 'bot-identity', name: 'device' },
    {
      id: 'L1',
      type: 'bot-ledger',
      name: 'A',
      origin: origin('A'),
      identity: 'op',
      dir: path.join(userDir, 'A'),
      checkpointMs: 0,
      checkpointEntries: 0,
      maxEntryBytes: 65536,
      broker: broker.url,
      clientId: '',
      // B by did and name; C by did only: its name is taken from the witnessed list.
      witnesses: `${B.id.did} ${origin('B')}\n${C.id.did}\n`,
      quorum: '',
      witnessed: `${origin('B')} ${B.id.did}\n# a comment\n${origin('C')} ${C.id.did}`,
      mirrored: `${origin('B')} ${B.id.did}`,
    },
    { id: 's1', type: 'bot-sign', z: 't1', identity: 'dev', name: '', wires: [['a1']] },
    { id: 'a1', type: 'bot-append', z: 't1', ledger: 'L1', name: '', wires: [['appended']] },
    { id: 'appended', type: 'helper', z: 't1' },
    { id: 'w1', type: 'bot-consensus', z: 't1', ledger: 'L1', mode: 'wait', timeoutMs: 15000, name: '', wires: [['ok'], ['fail']] },
    { id: 'w2', type: 'bot-consensus', z: 't1', ledger: 'L1', mode: 'wait', timeoutMs: 1500, name: '', wires: [['ok'], ['fail']] },
    { id: 'st', type: 'bot-consensus', z: 't1', ledger: 'L1', mode: 'status', name: '', wires: [['sout']] },
    { id: 'ok', type: 'helper', z: 't1' },
    { id: 'fail', type: 'helper', z: 't1' },
    { id: 'sout', type: 'helper', z: 't1' },
    { id: 'c1', type: 'catch', z: 't1', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 't1' },
  ];

  const node = (id: string): TestNode => helper.getNode(id);
  const checkpointNow = (): Promise<unknown> => (node('L1') as unknown as { checkpointNow(): Promise<unknown> }).checkpointNow();

  /** Sign and append one reading; its bot-append message (with msg.ledger). */
  async function append(): Promise<Msg> {
    const got = nextMessage(node('appended'));
    node('s1').receive({ payload: { t: 21.5 } });
    return got;
  }

  async function statusOf(m: Msg): Promise<Status> {
    const got = nextMessage(node('sout'));
    node('st').receive({ ...m });
    return (await got).consensus as Status;
  }

  before(async () => {
    broker = await Mosquitto.start();
    userDir = freshUserDir();
    await startPartner(B, [A, { name: 'C', did: C.id.did }], broker.url, path.join(userDir, 'B'));
    await startPartner(C, [A, { name: 'B', did: B.id.did }], broker.url, path.join(userDir, 'C'));
    await helper.load(NODES, flow(), { ...CREDS, L1: { username: 'partner-a', password: 'mqtt-secret-a' } });
    await (node('L1') as unknown as { consensus: Promise<unknown> }).consensus;
  });

  after(async () => {
    await helper.unload();
    await stopPartner(B);
    await stopPartner(C);
    await broker?.close();
    if (userDir) fs.rmSync(userDir, { recursive: true, force: true });
  });

  it('reports the partner connection state to the nodes that use the ledger', async () => {
    const l1 = node('L1') as unknown as { onLinkState(fn: (s: string) => void): () => void };
    // The link may still be (re)connecting when the consortium has started (seen with the aedes broker): wait for it.
    let state = '';
    const watch = l1.onLinkState((s) => (state = s));
    await until(() => state === 'connected', 5000, 'the link connected');
    watch();
    // A listener that subscribes late is told the current state at once.
    const seen: string[] = [];
    const off = l1.onLinkState((s) => seen.push(s));
    off();
    assert.deepEqual(seen, ['connected']);
  });

  it('waits until an appended entry is confirmed at 2 of 3 (output 1)', async () => {
    const st = statuses(node('w1'));
    const m = await append();
    const ok = nextMessage(node('ok'), 15000);
    node('w1').receive(m);
    await checkpointNow();
    const got = await ok;
    const s = got.consensus as Status;
    const index = (m.ledger as { index: number }).index;
    assert.equal(s.status, 'confirmed');
    assert.equal(s.index, index);
    assert.equal(s.quorum, 2);
    assert.ok(s.confirmations >= 2);
    assert.ok(s.witnesses.every((w) => w.did === B.id.did || w.did === C.id.did));
    assert.equal(got.error, undefined);
    await until(() => st.some((x) => new RegExp(`^confirmed [23]/3 · #${index}$`).test(x.text ?? '')), 2000, 'a confirmed status text');
  });

  it('keeps many waits in flight at once', async () => {
    const ms = [await append(), await append(), await append()];
    const ok = nextMessages(node('ok'), 3, 15000);
    for (const m of ms) node('w1').receive(m);
    await checkpointNow();
    const got = await ok;
    assert.deepEqual(got.map((g) => (g.consensus as Status).index).sort(), ms.map((m) => (m.ledger as { index: number }).index).sort());
    assert.ok(got.every((g) => (g.consensus as Status).status === 'confirmed'));
  });

  it('reports pending, sealed and confirmed in status mode, by receipt or msg.payload.index', async () => {
    const m = await append();
    const index = (m.ledger as { index: number }).index;
    assert.equal((await statusOf(m)).status, 'pending');
    await checkpointNow();
    const s = await statusOf({ payload: { index } });
    assert.ok(s.status === 'sealed' || s.status === 'confirmed', s.status);
    if (s.status === 'sealed') assert.equal(s.confirmations >= 1, true);
    let last: Status | undefined;
    await until(async () => (last = await statusOf(m)).status === 'confirmed', 15000, 'confirmed status');
    assert.equal(last?.quorum, 2);
  });

  it('sends a message without an index or for a missing entry to Catch, with a red status', async () => {
    const stSt = statuses(node('st'));
    const w1St = statuses(node('w1'));
    const caught = nextMessage(node('caught'));
    node('st').receive({ payload: 'no index' });
    assert.equal((await caught).error?.code, 'E_RANGE');
    assert.equal(stSt.at(-1)?.fill, 'red');
    const caught2 = nextMessage(node('caught'));
    node('w1').receive({ payload: { index: 1e6 } });
    assert.equal((await caught2).error?.code, 'E_RANGE');
    assert.equal(w1St.at(-1)?.fill, 'red');
  });

  it('shows witnesses, quorum and the confirmed size on GET /bot-ledger/ledgers', async () => {
    const r = await helper.request().get('/bot-ledger/ledgers');
    assert.equal(r.status, 200);
    const l1 = (r.body as Record<string, unknown>[]).find((x) => x.id === 'L1')!;
    assert.deepEqual(new Set(l1.witnesses as string[]), new Set([B.id.did, C.id.did]));
    assert.equal(l1.quorum, 2);
    assert.ok(Number(l1.confirmedSize) >= 2);
    assert.match(String(l1.confirmedCheckpoint), /^example\.com\/A\n/);
    assert.ok(!JSON.stringify(r.body).includes('mqtt-secret-a'));
  });

  it('mirrors a partner ledger, proven against its checkpoints, shown on GET /bot-ledger/ledgers', async () => {
    const b = B.ledger!;
    for (let i = 0; i < 70; i++) await b.append(signEnvelope(B.id, { kind: 'reading', seq: 1000 + i, ts: Date.now(), payload: { i } }));
    const cp = await b.checkpoint();
    const mirrorOf = async (): Promise<{ origin: string; size: number; checkpointSize: number; error?: unknown } | undefined> => {
      const r = await helper.request().get('/bot-ledger/ledgers');
      const l1 = (r.body as Record<string, unknown>[]).find((x) => x.id === 'L1')!;
      return (l1.mirrors as { origin: string; size: number; checkpointSize: number; error?: unknown }[])[0];
    };
    const end = Date.now() + 15000;
    let m = await mirrorOf();
    while (Date.now() < end && !(m && m.checkpointSize === cp!.size)) {
      await new Promise((r) => setTimeout(r, 200));
      m = await mirrorOf();
    }
    assert.equal(m?.origin, origin('B'));
    assert.equal(m?.checkpointSize, cp!.size);
    assert.equal(m?.size, cp!.size);
    assert.equal(m?.error, undefined);
  });

  it('times out to output 2 when the partners are stopped', async () => {
    await stopPartner(B);
    await stopPartner(C);
    const m = await append();
    await checkpointNow();
    const fail = nextMessage(node('fail'), 10000);
    const t0 = Date.now();
    node('w2').receive(m);
    const got = await fail;
    assert.ok(Date.now() - t0 >= 1400);
    assert.equal(got.error?.code, 'E_TIMEOUT');
    assert.equal((got.consensus as Status).status, 'sealed');
    assert.equal((got.consensus as Status).confirmations, 1);
  });

  it('ends the waits in flight on output 2 with E_CLOSED when the flow stops', async () => {
    const m = await append();
    await checkpointNow();
    const got: Msg[] = [];
    // The flow is stopping, so the messages are checked as bot-consensus sends them.
    node('w1').on('call:send', (call: { args: unknown[] }) => {
      const out = call.args[0] as (Msg | null)[];
      if (Array.isArray(out) && out[0] === null && out[1]) got.push(out[1]);
    });
    node('w1').receive(m);
    node('w1').receive({ ...m });
    await sleep(100);
    await helper.unload();
    await until(() => got.length === 2, 2000, 'two E_CLOSED messages');
    assert.deepEqual(
      got.map((g) => g.error?.code),
      ['E_CLOSED', 'E_CLOSED'],
    );
  });
});

describe('bot-consensus on a standalone bot-ledger (no broker)', function () {
  this.timeout(20000);
  let userDir: string;
  beforeEach(() => {
    userDir = freshUserDir();
  });
  afterEach(async () => {
    await helper.unload();
    fs.rmSync(userDir, { recursive: true, force: true });
  });

  const flow = (ledger: Record<string, unknown>): FlowNode[] => [
    { id: 't1', type: 'tab', label: 'standalone' },
    { id: 'op', type: 'bot-identity', name: 'operator' },
    { id: 'dev', type: 'bot-identity', name: 'device' },
    {
      id: 'L1',
      type: 'bot-ledger',
      name: 'S',
      origin: origin('S'),
      identity: 'op',
      dir: path.join(userDir, 'S'),
      checkpointMs: 0,
      checkpointEntries: 0,
      maxEntryBytes: 65536,
      ...ledger,
    },
    { id: 's1', type: 'bot-sign', z: 't1', identity: 'dev', name: '', wires: [['a1']] },
    { id: 'a1', type: 'bot-append', z: 't1', ledger: 'L1', name: '', wires: [['appended']] },
    { id: 'appended', type: 'helper', z: 't1' },
    { id: 'st', type: 'bot-consensus', z: 't1', ledger: 'L1', mode: 'status', name: '', wires: [['sout']] },
    { id: 'w1', type: 'bot-consensus', z: 't1', ledger: 'L1', mode: 'wait', timeoutMs: 300, name: '', wires: [['ok'], ['fail']] },
    { id: 'sout', type: 'helper', z: 't1' },
    { id: 'ok', type: 'helper', z: 't1' },
    { id: 'fail', type: 'helper', z: 't1' },
  ];

  async function run(ledger: Record<string, unknown>): Promise<{ before: Status; after: Status; wait: Msg }> {
    await helper.load(NODES, flow(ledger), CREDS);
    const appended = nextMessage(helper.getNode('appended'));
    helper.getNode('s1').receive({ payload: 1 });
    const m = await appended;
    const ask = async (): Promise<Status> => {
      const got = nextMessage(helper.getNode('sout'));
      helper.getNode('st').receive({ ...m });
      return (await got).consensus as Status;
    };
    const before = await ask();
    const waited = Promise.race([nextMessage(helper.getNode('ok')), nextMessage(helper.getNode('fail'))]);
    helper.getNode('w1').receive({ ...m });
    await (helper.getNode('L1') as unknown as { checkpointNow(): Promise<unknown> }).checkpointNow();
    const wait = await waited;
    return { before, after: await ask(), wait };
  }

  it('without witnesses: sealed by the operator checkpoint, never confirmed; a wait ends at once with E_NO_WITNESS', async () => {
    const r = await run({});
    assert.equal(r.before.status, 'pending');
    assert.deepEqual([r.after.status, r.after.confirmations, r.after.quorum], ['sealed', 1, 1]);
    assert.equal(r.wait.error?.code, 'E_NO_WITNESS');
    assert.match(String(r.wait.error?.message), /no witnesses/);
  });

  it('with witnesses but no broker: sealed, and a wait times out', async () => {
    const r = await run({ witnesses: `${Identity.generate().did} example.com/X\n${Identity.generate().did} example.com/Y` });
    assert.equal(r.before.status, 'pending');
    assert.deepEqual([r.after.status, r.after.confirmations, r.after.quorum], ['sealed', 1, 2]);
    assert.equal(r.wait.error?.code, 'E_TIMEOUT');
    assert.equal((r.wait.consensus as Status).status, 'sealed');
  });
});

describe('bot-consensus editor typed inputs (index and timeout; standalone ledger)', function () {
  this.timeout(20000);
  let userDir: string;
  beforeEach(() => {
    userDir = freshUserDir();
  });
  afterEach(async () => {
    await helper.unload();
    fs.rmSync(userDir, { recursive: true, force: true });
  });

  const flow = (nodes: FlowNode[], ledger: Record<string, unknown> = {}): FlowNode[] => [
    { id: 't1', type: 'tab', label: 'typed' },
    { id: 'op', type: 'bot-identity', name: 'operator' },
    { id: 'dev', type: 'bot-identity', name: 'device' },
    {
      id: 'L1',
      type: 'bot-ledger',
      name: 'T',
      origin: origin('T'),
      identity: 'op',
      dir: path.join(userDir, 'T'),
      checkpointMs: 0,
      checkpointEntries: 0,
      maxEntryBytes: 65536,
      ...ledger,
    },
    { id: 's1', type: 'bot-sign', z: 't1', identity: 'dev', name: '', wires: [['a1']] },
    { id: 'a1', type: 'bot-append', z: 't1', ledger: 'L1', name: '', wires: [['appended']] },
    { id: 'appended', type: 'helper', z: 't1' },
    { id: 'sout', type: 'helper', z: 't1' },
    { id: 'ok', type: 'helper', z: 't1' },
    { id: 'fail', type: 'helper', z: 't1' },
    { id: 'c1', type: 'catch', z: 't1', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 't1' },
    ...nodes.map((n) => ({ z: 't1', ledger: 'L1', name: '', ...n })),
  ];

  async function appendTwo(): Promise<void> {
    const appended = nextMessages(helper.getNode('appended'), 2);
    helper.getNode('s1').receive({ payload: 1 });
    helper.getNode('s1').receive({ payload: 2 });
    await appended;
    await (helper.getNode('L1') as unknown as { checkpointNow(): Promise<unknown> }).checkpointNow();
  }

  it('takes the index from a msg property, flow context or a fixed number; a flow without indexType reads the receipt', async () => {
    await helper.load(
      NODES,
      flow([
        { id: 'byMsg', type: 'bot-consensus', mode: 'status', index: 'entry.n', indexType: 'msg', wires: [['sout']] },
        { id: 'byFlow', type: 'bot-consensus', mode: 'status', index: 'lastIndex', indexType: 'flow', wires: [['sout']] },
        { id: 'byNum', type: 'bot-consensus', mode: 'status', index: '0', indexType: 'num', wires: [['sout']] },
        { id: 'old', type: 'bot-consensus', mode: 'status', wires: [['sout']] },
      ]),
      CREDS,
    );
    await appendTwo();
    const ask = async (id: string, msg: Msg): Promise<Status> => {
      const got = nextMessage(helper.getNode('sout'));
      helper.getNode(id).receive(msg);
      return (await got).consensus as Status;
    };
    assert.equal((await ask('byMsg', { entry: { n: 1 }, ledger: { index: 0 } })).index, 1);
    assert.equal((await ask('byMsg', { entry: { n: '0' } })).index, 0, 'decimal text is accepted');
    (helper.getNode('byFlow') as unknown as { context(): { flow: { set(k: string, v: unknown): void } } }).context().flow.set('lastIndex', 1);
    assert.equal((await ask('byFlow', { payload: { index: 0 } })).index, 1);
    assert.equal((await ask('byNum', { ledger: { index: 1 } })).index, 0);
    const old = await ask('old', { ledger: { index: 1 }, payload: { index: 0 } });
    assert.deepEqual([old.index, old.status], [1, 'sealed']);

    const errs = nextMessages(helper.getNode('caught'), 3);
    helper.getNode('byMsg').receive({ entry: { n: -1 } });
    helper.getNode('byMsg').receive({ payload: { index: 1 } });
    helper.getNode('byMsg').receive({ entry: { n: 9 } });
    const e = await errs;
    assert.deepEqual(
      e.map((m) => m.error?.code),
      ['E_RANGE', 'E_RANGE', 'E_RANGE'],
    );
    assert.match(String(e[0]?.error?.message), /entry index \(msg\.entry\.n\) must be a non-negative integer/);
    assert.match(String(e[2]?.error?.message), /no entry 9/);
  });

  it('takes the wait timeout from a msg property; an invalid one goes to Catch; a fixed timeout still applies', async () => {
    const witnesses = `${Identity.generate().did} example.com/X`; // no broker: never confirmed
    await helper.load(
      NODES,
      flow(
        [
          { id: 'wMsg', type: 'bot-consensus', mode: 'wait', timeoutMs: 'timeout', timeoutType: 'msg', wires: [['ok'], ['fail']] },
          { id: 'wOld', type: 'bot-consensus', mode: 'wait', timeoutMs: 200, wires: [['ok'], ['fail']] },
        ],
        { witnesses },
      ),
      CREDS,
    );
    await appendTwo();
    const t0 = Date.now();
    const failed = nextMessages(helper.getNode('fail'), 2, 5000);
    helper.getNode('wMsg').receive({ ledger: { index: 0 }, timeout: 150 });
    helper.getNode('wOld').receive({ ledger: { index: 1 }, timeout: 60000 });
    const f = await failed;
    assert.ok(Date.now() - t0 < 3000, 'both waits ended on their short timeouts');
    assert.deepEqual(f.map((m) => m.error?.code).sort(), ['E_TIMEOUT', 'E_TIMEOUT']);
    assert.ok(f.some((m) => /within 150 ms/.test(String(m.error?.message))));
    assert.ok(f.some((m) => /within 200 ms/.test(String(m.error?.message))));

    const errs = nextMessages(helper.getNode('caught'), 2);
    helper.getNode('wMsg').receive({ ledger: { index: 0 } });
    helper.getNode('wMsg').receive({ ledger: { index: 0 }, timeout: 86400001 });
    const e = await errs;
    assert.deepEqual(
      e.map((m) => m.error?.code),
      ['E_RANGE', 'E_RANGE'],
    );
    assert.match(String(e[0]?.error?.message), /timeout \(msg\.timeout\) must be a whole number of milliseconds/);
  });

  it('the editor marks exactly the fixed timeouts and entry numbers the runtime refuses, with the reason', async () => {
    const def = editorDefinitions('bot-consensus')['bot-consensus']!;
    const timeouts: unknown[] = ['1', 30000, '86400000', '', '0', '86400001', '1.5', 'soon', '-5'];
    const indexes = ['0', '42', ' 7 ', '-1', '1.5', 'x'];
    await helper.load(
      NODES,
      flow([
        ...timeouts.map((t, i) => ({ id: `tm${i}`, type: 'bot-consensus', mode: 'wait', timeoutMs: t, timeoutType: 'num', wires: [['ok'], ['fail']] })),
        ...indexes.map((x, i) => ({ id: `x${i}`, type: 'bot-consensus', mode: 'status', index: x, indexType: 'num', wires: [['sout']] })),
      ]),
      CREDS,
    );
    const outcome = async (id: string): Promise<string> => {
      const got = Promise.race([
        nextMessage(helper.getNode('caught')).then((m) => String(m.error?.message)),
        nextMessage(helper.getNode('sout')).then(() => 'answered'),
      ]);
      helper.getNode(id).receive({ ledger: { index: 999 } });
      const r = await got;
      helper.getNode('caught').removeAllListeners('input');
      helper.getNode('sout').removeAllListeners('input');
      return r;
    };
    for (const [i, t] of timeouts.entries()) {
      const runtime = await outcome(`tm${i}`); // the ledger is empty: a valid node answers "no entry 999"
      const editor = editorVerdict(def, 'timeoutMs', t, { timeoutType: 'num' });
      if (/no entry 999/.test(runtime)) assert.equal(editor, true, `timeout ${JSON.stringify(t)}: valid at runtime, the editor says ${editor}`);
      else assert.match(String(editor), /^The timeout must be a whole number of milliseconds from 1 to 86400000/, `timeout ${JSON.stringify(t)}: ${runtime}`);
    }
    for (const [i, x] of indexes.entries()) {
      const runtime = await outcome(`x${i}`);
      const editor = editorVerdict(def, 'index', x, { indexType: 'num' });
      if (/no entry/.test(runtime)) assert.equal(editor, true, `index ${JSON.stringify(x)}: valid at runtime, the editor says ${editor}`);
      else assert.match(String(editor), /^The entry index must be a whole number of at least 0/, `index ${JSON.stringify(x)}: ${runtime}`);
    }
    assert.equal(editorVerdict(def, 'index', '', {}), true, 'a flow saved before the option (no indexType) reads the receipt');
  });
});

describe('bot-ledger TLS settings', function () {
  this.timeout(20000);
  let userDir: string;
  beforeEach(() => {
    userDir = freshUserDir();
  });
  afterEach(async () => {
    await helper.unload();
    fs.rmSync(userDir, { recursive: true, force: true });
  });

  it('refuses a TLS key file that others can read, with an error naming the file, not its content', async () => {
    const keyFile = path.join(userDir, 'client.key');
    fs.writeFileSync(keyFile, 'not-a-real-key-but-secret-looking', { mode: 0o644 });
    fs.chmodSync(keyFile, 0o644);
    await helper.load(
      NODES,
      [
        { id: 't1', type: 'tab', label: 'tls' },
        { id: 'op', type: 'bot-identity', name: 'operator' },
        {
          id: 'L1',
          type: 'bot-ledger',
          name: 'T',
          origin: origin('T'),
          identity: 'op',
          dir: path.join(userDir, 'T'),
          checkpointMs: 0,
          checkpointEntries: 0,
          maxEntryBytes: 65536,
          broker: 'mqtts://127.0.0.1:1',
          tlsKey: keyFile,
        },
      ],
      CREDS,
    );
    const ledgerNode = helper.getNode('L1') as unknown as { consensus: Promise<unknown> };
    await assert.rejects(
      ledgerNode.consensus,
      (err: Error & { code: string }) => err.code === 'E_KEY' && err.message.includes(keyFile) && !err.message.includes('secret-looking'),
    );
  });
});
