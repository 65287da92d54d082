/**
 * The consortium in separate processes over a real Mosquitto (docs/design.md
 * "The model"): partners A, B, C each run a ledger (test/consensus-child.ts) and witness the
 * other two. An entry is confirmed at 2 of 3; it survives a partner's SIGKILL, stays sealed
 * without quorum, is confirmed once the partners restart, survives a broker restart, and
 * an operator that signs a fork is shown as `conflict` by both witnesses.
 */
import { strict as assert } from 'node:assert';
import { MqttLink } from '../../lib/consortium/mqtt-link';
import { ledgerTopics } from '../../lib/consortium/publisher';
import { Mosquitto } from '../mosquitto';
import { tmpDir } from '../helpers';
import { call, kill, newPartner, type Partner as ChildPartner, spawnPartner } from '../consensus-partner';

const NAMES = ['A', 'B', 'C'] as const;
type Name = (typeof NAMES)[number];
type Partner = ChildPartner<Name>;

interface Status {
  status: string;
  index: number;
  treeSize: number;
  confirmations: number;
  quorum: number;
  witnesses: { did: string }[];
}

async function statusOf(p: Partner, index: number): Promise<Status> {
  return (await call(p, 'status', { index })) as Status;
}

async function waitStatus(p: Partner, index: number, want: string, ms = 15000): Promise<Status> {
  const end = Date.now() + ms;
  let last: Status | undefined;
  for (;;) {
    last = await statusOf(p, index);
    if (last.status === want) return last;
    if (Date.now() > end) throw new Error(`entry ${index} of ${p.name} is ${last.status}, not ${want}, after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function append(p: Partner, n = 1): Promise<number[]> {
  return (await call(p, 'append', { n })) as number[];
}

describe('consortium of three partners in separate processes (real MQTT broker)', function () {
  this.timeout(60000);
  let broker: Mosquitto;
  let t: ReturnType<typeof tmpDir>;
  let partners: Partner[] = [];
  let sealedIndex = -1;
  const P = (n: Name): Partner => partners.find((p) => p.name === n)!;

  before(async () => {
    broker = await Mosquitto.start();
    t = tmpDir('bot-consensus-');
    partners = NAMES.map((name) => newPartner(name, t.dir));
    await Promise.all(partners.map((p) => spawnPartner(p, partners, broker.url)));
  });

  after(async () => {
    await Promise.all(partners.map((p) => kill(p)));
    await broker?.close();
    t?.cleanup();
  });

  it('confirms an entry at 2 of 3 cosignatures', async () => {
    const [i] = await append(P('A'));
    const s = await waitStatus(P('A'), i, 'confirmed');
    assert.equal(s.quorum, 2);
    assert.ok(s.confirmations >= 2);
    assert.ok(s.treeSize > i);
    assert.ok(s.witnesses.every((w) => w.did === P('B').did || w.did === P('C').did));
    const info = (await call(P('A'), 'info')) as { witnesses: string[]; quorum: number; confirmedSize: number; confirmedCheckpoint: string };
    assert.deepEqual(new Set(info.witnesses), new Set([P('B').did, P('C').did]));
    assert.ok(info.confirmedSize > i);
    assert.match(info.confirmedCheckpoint, /^example\.com\/A\n/);
    // Every partner confirms its own entries too.
    const [b] = await append(P('B'));
    await waitStatus(P('B'), b, 'confirmed');
  });

  it('still confirms with C killed, stays sealed with B killed too', async () => {
    await kill(P('C'));
    const [i] = await append(P('A'));
    const s = await waitStatus(P('A'), i, 'confirmed');
    assert.deepEqual(
      s.witnesses.map((w) => w.did),
      [P('B').did],
    );
    await kill(P('B'));
    const [j] = await append(P('A'));
    await waitStatus(P('A'), j, 'sealed');
    await assert.rejects(call(P('A'), 'wait', { index: j, ms: 1500 }), { code: 'E_TIMEOUT' });
    const s2 = await statusOf(P('A'), j);
    assert.equal(s2.status, 'sealed');
    assert.equal(s2.confirmations, 1);
    sealedIndex = j;
  });

  it('confirms once B and C restart (same dirs and keys), with no manual action', async () => {
    assert.ok(sealedIndex >= 0);
    const waited = call(P('A'), 'wait', { index: sealedIndex, ms: 20000 }, 25000) as Promise<Status>;
    await Promise.all([spawnPartner(P('B'), partners, broker.url), spawnPartner(P('C'), partners, broker.url)]);
    const s = await waited;
    assert.equal(s.status, 'confirmed');
    assert.ok(s.treeSize > sealedIndex);
    await waitStatus(P('A'), sealedIndex, 'confirmed', 20000);
  });

  it('survives a broker restart', async () => {
    await broker.restart();
    // The witnesses republish their retained cosignatures on reconnect (the broker kept none).
    const watcher = new MqttLink({ url: broker.url, reconnectMs: 100 });
    watcher.on('error', () => undefined);
    const seen = new Set<string>();
    watcher.subscribe(ledgerTopics(P('A').ledgerId!).cosignatures, (topic, payload) => {
      if (payload.toString().startsWith('example.com/A\n')) seen.add(topic.split('/').pop()!);
    });
    watcher.start();
    try {
      // Junk on A's cosignature topics and on B's checkpoint topic changes nothing.
      const topicsA = ledgerTopics(P('A').ledgerId!);
      const topicsB = ledgerTopics(P('B').ledgerId!);
      const end0 = Date.now() + 10000;
      while (watcher.state !== 'connected') {
        if (Date.now() > end0) throw new Error('watcher did not connect');
        await new Promise((r) => setTimeout(r, 50));
      }
      await watcher.publish(topicsA.cosignature('0123456789abcdef'), 'not a note');
      await watcher.publish(topicsA.cosignature('0123456789abcdef'), Buffer.alloc(200 * 1024, 0x41));
      await watcher.publish(
        topicsA.cosignature('0123456789abcdef'),
        'example.com/A\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u2014 example.com/B AAAA\n',
      );
      await watcher.publish(topicsB.checkpoint, 'example.com/B\n999\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u2014 example.com/B AAAA\n');
      await watcher.publish(topicsB.conflict, '{"v":1,"kind":"fork","origin":"example.com/B","a":"x","b":"y","proof":[]}');
      const end = Date.now() + 15000;
      while (!(seen.has(P('B').ledgerId!) && seen.has(P('C').ledgerId!))) {
        if (Date.now() > end) throw new Error(`cosignatures of A republished: ${[...seen].join(', ')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await watcher.close();
    }
    const [i] = await append(P('A'));
    await waitStatus(P('A'), i, 'confirmed', 20000);
    const [c] = await append(P('C'));
    await waitStatus(P('C'), c, 'confirmed', 20000);
  });

  it('shows an operator that signs a fork as conflict at both witnesses', async () => {
    for (const w of [P('A'), P('C')]) {
      const st = (await call(w, 'witnessState', { origin: 'example.com/B' })) as { status: string; size: number };
      assert.equal(st.status, 'ok', `${w.name} holds B as ${st.status}`);
    }
    // Make sure both witnesses hold B's latest checkpoint before B forges at that size.
    const [b] = await append(P('B'));
    await waitStatus(P('B'), b, 'confirmed');
    const size = ((await call(P('B'), 'info')) as { confirmedSize: number }).confirmedSize;
    for (const w of [P('A'), P('C')]) {
      const end = Date.now() + 10000;
      while (((await call(w, 'witnessState', { origin: 'example.com/B' })) as { size: number }).size < size) {
        if (Date.now() > end) throw new Error(`${w.name} did not cosign size ${size} of B`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const forged = (await call(P('B'), 'forge')) as { size: number };
    assert.equal(forged.size, size);
    for (const w of [P('A'), P('C')]) {
      const end = Date.now() + 10000;
      for (;;) {
        const s = (await call(w, 'witnessState', { origin: 'example.com/B' })) as { status: string; evidence: number };
        if (s.status === 'conflict') {
          assert.ok(s.evidence >= 1);
          break;
        }
        if (Date.now() > end) throw new Error(`${w.name} does not show B in conflict`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    // B learns of its own proven equivocation from the retained conflict topic.
    await waitStatus(P('B'), b, 'conflict', 10000);
    const [b2] = await append(P('B'));
    await assert.rejects(call(P('B'), 'wait', { index: b2, ms: 5000 }), { code: 'E_CONFLICT' });
    // A is unaffected.
    const [a] = await append(P('A'));
    await waitStatus(P('A'), a, 'confirmed');
  });

  it('stop() leaves nothing running: the child exits by itself', async () => {
    const p = P('C');
    const proc = p.proc!;
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    assert.equal(await call(p, 'stop'), true);
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      exited,
      new Promise<string>((r) => {
        timer = setTimeout(() => r('still running'), 8000);
      }),
    ]);
    clearTimeout(timer);
    assert.equal(code, 0);
    p.proc = undefined;
  });
});
