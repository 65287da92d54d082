import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { auditLedger } from '../../lib/store/audit';
import { fromBase64, toBase64 } from '../../lib/format/bytes';
import { type Envelope, signEnvelope } from '../../lib/format/envelope';
import { Identity } from '../../lib/format/identity';
import { canonicalBytes } from '../../lib/format/jcs';
import { Ledger, type Receipt } from '../../lib/store/ledger';
import { leafHash, verifyInclusion } from '../../lib/format/merkle';
import { NoteVerifier, openNote, parseCheckpoint } from '../../lib/format/note';
import { openLedgers } from '../../lib/store/registry';
import { ALL_NODES, type FlowNode, freshUserDir, helper, type Msg, nextMessage, nextMessages, noMessage, statuses, until } from './util';

const DEVICE = Identity.generate();
const OPERATOR = Identity.generate();
const ORIGIN = 'test.example/append';
const seed = (id: Identity): string => id.exportSeed().toString('hex');
const CREDS = { dev: { secretKey: seed(DEVICE) }, op: { secretKey: seed(OPERATOR) } };

let seqNo = 1;
function envelope(over: { seq?: number; payload?: unknown; topic?: string } = {}): Envelope {
  const e = signEnvelope(
    DEVICE,
    {
      kind: 'reading',
      seq: over.seq ?? seqNo++,
      ts: Date.now(),
      payload: (over.payload ?? { t: 1 }) as never,
      topic: over.topic,
    },
    { maxBytes: 1 << 20 },
  );
  return JSON.parse(e.bytes.toString()) as Envelope;
}

function flow(dir: string, ledger: Record<string, unknown> = {}, extra: FlowNode[] = []): FlowNode[] {
  return [
    { id: 't1', type: 'tab', label: 'append' },
    { id: 'dev', type: 'bot-identity', name: 'device' },
    { id: 'op', type: 'bot-identity', name: 'operator' },
    { id: 'L1', type: 'bot-ledger', name: 'main', origin: ORIGIN, identity: 'op', dir, checkpointMs: 0, checkpointEntries: 0, maxEntryBytes: 65536, ...ledger },
    { id: 's1', type: 'bot-sign', z: 't1', identity: 'dev', name: '', wires: [['a1']] },
    { id: 'a1', type: 'bot-append', z: 't1', ledger: 'L1', name: '', wires: [['out']] },
    { id: 'out', type: 'helper', z: 't1' },
    {
      id: 'q1',
      type: 'bot-query',
      z: 't1',
      ledger: 'L1',
      name: '',
      from: '',
      to: '',
      signer: '',
      topic: '',
      since: '',
      until: '',
      limit: 100,
      wires: [['qout']],
    },
    { id: 'qout', type: 'helper', z: 't1' },
    { id: 'c1', type: 'catch', z: 't1', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 't1' },
    ...extra,
  ];
}

const ledgerOf = (id = 'L1'): Promise<Ledger> => (helper.getNode(id) as unknown as { lease: { ledger: Promise<Ledger> } }).lease.ledger;

/** Sign n readings through s1 → a1 and return their receipts. */
async function pump(n: number, topic?: (i: number) => string): Promise<Msg[]> {
  const got = nextMessages(helper.getNode('out'), n, 10000);
  for (let i = 0; i < n; i++) helper.getNode('s1').receive({ payload: { i }, topic: topic?.(i) });
  return got;
}

describe('bot-append and bot-query (Node-RED)', function () {
  this.timeout(20000);
  let userDir: string;
  let dir: string;
  beforeEach(() => {
    userDir = freshUserDir();
    dir = path.join(userDir, 'ledger');
  });
  afterEach(async () => {
    await helper.unload();
    fs.rmSync(userDir, { recursive: true, force: true });
  });

  it('appends signed readings and passes on the receipt once durable', async () => {
    await helper.load(ALL_NODES, flow(dir), CREDS);
    const msgs = await pump(5);
    const l = await ledgerOf();
    assert.equal(l.size, 5);
    msgs.forEach((m, i) => {
      const r = m.ledger as Receipt;
      assert.equal(r.origin, ORIGIN);
      assert.equal(r.index, i);
      assert.ok(r.treeSize >= i + 1 && r.treeSize <= 5);
      assert.equal(r.leafHash, toBase64(leafHash(canonicalBytes(m.payload))));
    });
  });

  it('accepts the next message before the last append is durable (group commit) and keeps the order', async () => {
    await helper.load(ALL_NODES, flow(dir), CREDS);
    const st = statuses(helper.getNode('a1'));
    const n = 400;
    const msgs = await pump(n);
    const l = await ledgerOf();
    assert.deepEqual(
      msgs.map((m) => (m.ledger as Receipt).index),
      [...Array(n).keys()],
    );
    assert.ok(l.stats.commits < n / 4, `${l.stats.commits} commits for ${n} appends`);
    await until(() => st.some((s) => /^#\d+ · \d+ msg\/s$/.test(s.text ?? '')), 2000, 'a rate status');
    const texts = st.map((s) => s.text ?? '').filter((t) => t.startsWith('#'));
    assert.ok(texts.length <= 3, `status updated ${texts.length} times for ${n} messages`);
  });

  it('sends bad envelopes to Catch with their code and writes nothing for them', async () => {
    await helper.load(ALL_NODES, flow(dir, { maxEntryBytes: 1024 }), CREDS);
    await pump(2);
    const a1 = helper.getNode('a1');
    const tampered = envelope();
    tampered.ts += 1;
    const dup = envelope();
    const cases: [unknown, string][] = [
      ['not an envelope', 'E_ENVELOPE'],
      [{}, 'E_ENVELOPE'],
      [undefined, 'E_ENVELOPE'],
      [{ ...envelope(), signer: 'did:key:z6MkNope' }, 'E_DID'],
      [tampered, 'E_SIGNATURE'],
      [envelope({ payload: 'x'.repeat(2000) }), 'E_TOO_LARGE'],
      [envelope({ seq: 0 }), 'E_REPLAY'],
    ];
    const errs = nextMessages(helper.getNode('caught'), cases.length + 1);
    const ok = nextMessages(helper.getNode('out'), 1);
    for (const [payload] of cases) a1.receive({ payload });
    a1.receive({ payload: dup });
    a1.receive({ payload: dup });
    const got = await errs;
    await ok;
    assert.deepEqual(
      got.map((e) => e.error?.code),
      [...cases.map(([, c]) => c), 'E_REPLAY'],
    );
    for (const e of got) assert.equal(e.error?.source?.id, 'a1');
    const l = await ledgerOf();
    assert.equal(l.size, 3, 'only the two pumped and one dup were written');
    const audit = await auditLedger(l, { workers: 0 });
    assert.equal(audit.ok, true);
  });

  it('reports a missing or unusable ledger configuration through Catch', async () => {
    const d = (i: number): string => path.join(userDir, `ledger-${i}`);
    const variants: FlowNode[][] = [
      flow(d(0)).map((n) => (n.id === 'a1' ? { ...n, ledger: '' } : n)),
      flow(d(1)).map((n) => (n.id === 'a1' ? { ...n, ledger: 'gone' } : n)),
      flow(d(2), { identity: '' }), // a new ledger needs its operator key
      flow(d(3), { origin: 'bad origin' }),
      flow(d(4), { maxEntryBytes: 10 }),
      flow(d(5), { checkpointMs: 'soon' }),
    ];
    const codes: string[] = [];
    for (const f of variants) {
      await helper.load(ALL_NODES, f, CREDS);
      const err = nextMessage(helper.getNode('caught'));
      helper.getNode('a1').receive({ payload: envelope() });
      codes.push(String((await err.catch((e: Error) => ({ error: { code: e.message } }))).error?.code));
      await helper.unload();
    }
    assert.deepEqual(codes, ['E_NOT_FOUND', 'E_NOT_FOUND', 'E_KEY', 'E_NOTE', 'E_RANGE', 'E_RANGE']);
    for (const i of [2, 3, 4, 5]) assert.equal(fs.existsSync(d(i)), false, 'nothing was created');
  });

  it('reports a ledger closed mid-flow (E_CLOSED) and recovers on redeploy', async () => {
    const f = flow(dir);
    await helper.load(ALL_NODES, f, CREDS);
    await pump(3);
    const l = await ledgerOf();
    const st = statuses(helper.getNode('a1'));
    // Close it while appends are on their way: those accepted finish, the later ones fail.
    const errs = nextMessages(helper.getNode('caught'), 2);
    helper.getNode('s1').receive({ payload: 'in flight' });
    await l.close();
    helper.getNode('s1').receive({ payload: 'late 1' });
    helper.getNode('s1').receive({ payload: 'late 2' });
    for (const e of await errs) assert.equal(e.error?.code, 'E_CLOSED');
    await until(() => st.some((s) => s.fill === 'red'), 2000, 'a red status');
    await helper.setFlows(f, 'full', CREDS);
    const l2 = await ledgerOf();
    assert.notEqual(l2, l);
    assert.ok(l2.size === 3 || l2.size === 4);
    await pump(2);
    assert.equal((await auditLedger(l2, { workers: 0 })).ok, true);
  });

  it('answers queries with inclusion proofs against a freshly signed checkpoint', async () => {
    await helper.load(ALL_NODES, flow(dir), CREDS);
    await pump(9, (i) => `plant/${i % 3}/${i % 2 ? 'temp' : 'hum'}`);
    const q = async (payload: unknown): Promise<{ checkpoint: string; treeSize: number; entries: { index: number; leaf: Envelope; proof: string[] }[] }> => {
      const m = nextMessage(helper.getNode('qout'));
      helper.getNode('q1').receive({ payload });
      return (await m).payload as never;
    };
    const all = await q({});
    assert.equal(all.treeSize, 9);
    const note = openNote(all.checkpoint, [NoteVerifier.ed25519(ORIGIN, OPERATOR.publicKey)]);
    const cp = parseCheckpoint(note.text);
    assert.equal(cp.size, 9);
    assert.equal(cp.origin, ORIGIN);
    assert.equal(all.entries.length, 9);
    for (const e of all.entries) {
      verifyInclusion(
        e.index,
        cp.size,
        leafHash(canonicalBytes(e.leaf)),
        e.proof.map((p) => fromBase64(p)),
        cp.root,
      );
    }
    assert.deepEqual(
      (await q({ topic: 'plant/+/temp' })).entries.map((e) => e.index),
      [1, 3, 5, 7],
    );
    assert.deepEqual(
      (await q({ topic: 'plant/1/#' })).entries.map((e) => e.index),
      [1, 4, 7],
    );
    assert.deepEqual(
      (await q({ from: 2, to: 5 })).entries.map((e) => e.index),
      [2, 3, 4],
    );
    assert.deepEqual(
      (await q({ from: 2, limit: 2 })).entries.map((e) => e.index),
      [2, 3],
    );
    assert.equal((await q({ signer: OPERATOR.did })).entries.length, 0);
    assert.equal((await q({ signer: DEVICE.did, since: 0, until: Date.now() + 1000 })).entries.length, 9);
    assert.equal((await q('inject timestamp')).entries.length, 9, 'a non-object payload runs the settings');
    // New entries are sealed by a new checkpoint before they are answered.
    await pump(2);
    const more = await q({ from: 9 });
    assert.equal(more.treeSize, 11);
    assert.deepEqual(
      more.entries.map((e) => e.index),
      [9, 10],
    );
  });

  it('without the operator key, leaves out entries beyond the latest checkpoint', async () => {
    await helper.load(ALL_NODES, flow(dir), CREDS);
    await pump(4);
    await (helper.getNode('L1') as unknown as { checkpointNow(): Promise<unknown> }).checkpointNow();
    await pump(3);
    await helper.unload();
    await helper.load(ALL_NODES, flow(dir, { identity: '', origin: '' }), CREDS);
    const m = nextMessage(helper.getNode('qout'));
    helper.getNode('q1').receive({ payload: {} });
    const r = (await m).payload as { treeSize: number; entries: unknown[] };
    assert.equal(r.treeSize, 4);
    assert.equal(r.entries.length, 4);
    assert.equal((await ledgerOf()).size, 7);
    // Appending still works without the operator key.
    await pump(1);
    assert.equal((await ledgerOf()).size, 8);
  });

  it('answers "no checkpoint yet" without the operator key on a ledger never checkpointed', async () => {
    await helper.load(ALL_NODES, flow(dir), CREDS);
    await pump(2);
    await helper.unload();
    await helper.load(ALL_NODES, flow(dir, { identity: '' }), CREDS);
    const m = nextMessage(helper.getNode('qout'));
    helper.getNode('q1').receive({ payload: {} });
    assert.deepEqual((await m).payload, { checkpoint: null, entries: [], treeSize: 0 });
  });

  it('runs an audit with progress in the status', async () => {
    await helper.load(ALL_NODES, flow(dir), CREDS);
    await pump(20);
    const st = statuses(helper.getNode('q1'));
    const m = nextMessage(helper.getNode('qout'));
    helper.getNode('q1').receive({ payload: { op: 'audit' } });
    const r = (await m).payload as { ok: boolean; size: number };
    assert.equal(r.ok, true);
    assert.equal(r.size, 20);
    await until(() => st.some((s) => /^audit ok/.test(s.text ?? '')), 2000, 'the audit status');
    assert.ok(
      st.some((s) => /^audit \d+\/20$/.test(s.text ?? '')),
      'progress was shown',
    );
  });

  it('sends bad queries to Catch with E_QUERY', async () => {
    await helper.load(ALL_NODES, flow(dir), CREDS);
    await pump(1);
    const bad = [{ limit: 0 }, { topic: 'a/#/b' }, { op: 'drop' }, { since: 'not a date' }, { from: -1 }, { signer: 'did:key:zX' }];
    const errs = nextMessages(helper.getNode('caught'), bad.length);
    const none = noMessage(helper.getNode('qout'), 300);
    for (const payload of bad) helper.getNode('q1').receive({ payload });
    const codes = (await errs).map((e) => e.error?.code);
    assert.deepEqual(codes, ['E_QUERY', 'E_QUERY', 'E_QUERY', 'E_QUERY', 'E_QUERY', 'E_DID']);
    await none;
  });

  it('releases every ledger when the flows stop', async () => {
    await helper.load(ALL_NODES, flow(dir), CREDS);
    await pump(1);
    assert.deepEqual(
      openLedgers().filter((o) => o.dir === dir),
      [{ dir, users: 3 }],
    );
    await helper.unload();
    assert.equal(
      openLedgers().some((o) => o.dir === dir),
      false,
    );
    const l = await Ledger.open({ dir });
    assert.equal(l.size, 1);
    await l.close();
    await helper.load(ALL_NODES, flow(dir), CREDS); // for afterEach
  });
});
