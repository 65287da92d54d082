/**
 * Witness traffic of a consortium (docs/design.md "Witness exchange", "Sync over MQTT"): four
 * partners, each witnessing the three others, over a real broker (test/mosquitto.ts), their
 * messages counted by an independent subscriber on `bot/v1/#`. Once the witnesses hold a
 * log's previous checkpoint, a new checkpoint is cosigned from the log's one shared
 * add-checkpoint body: no consistency RPC per witness (before: a request and an answer per
 * witness per checkpoint, 2·n·(n−1) messages an interval), one cosignature per witness. A
 * body anyone may publish cannot stop a witness: a wrong proof sends it to the log's RPC.
 */
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import { Consortium } from '../../lib/consortium/consortium';
import { Identity } from '../../lib/format/identity';
import { Ledger } from '../../lib/store/ledger';
import { MqttLink } from '../../lib/consortium/mqtt-link';
import { QuorumPolicy } from '../../lib/consortium/quorum';
import { signEnvelope } from '../../lib/format/envelope';
import { signCheckpoint } from '../../lib/format/note';
import { formatAddCheckpointRequest } from '../../lib/consortium/witness';
import { Mosquitto } from '../mosquitto';
import { tmpDir } from '../helpers';

const N = 4;
const origin = (i: number): string => `example.com/traffic-${i}`;

interface Member {
  ledger: Ledger;
  link: MqttLink;
  cons: Consortium;
  id: Identity;
}

describe('witness traffic of four partners on one broker', function () {
  this.timeout(30000);
  let broker: Mosquitto;
  let t: ReturnType<typeof tmpDir>;
  const members: Member[] = [];
  let counter: MqttLink;
  let counts: Record<string, number> = {};
  /** When the counter last received a message. */
  let lastMessage = 0;
  let seq = 0;

  before(async () => {
    broker = await Mosquitto.start();
    t = tmpDir('bot-traffic-');
    const ids = Array.from({ length: N }, () => Identity.generate());
    counter = new MqttLink({ url: broker.url, reconnectMs: 100 });
    counter.on('error', () => undefined);
    counter.subscribe('bot/v1/#', (topic, _p, retained) => {
      if (retained) return;
      const parts = topic.split('/');
      const kind = parts[2] === '_reply' ? '_reply' : (parts[3] ?? '?');
      counts[kind] = (counts[kind] ?? 0) + 1;
      lastMessage = Date.now();
    });
    counter.start();
    await counter.connected(10000);
    for (let i = 0; i < N; i++) {
      const ledger = await Ledger.open({ dir: `${t.dir}/${i}`, origin: origin(i), identity: ids[i] });
      const link = new MqttLink({ url: broker.url, reconnectMs: 100 });
      link.on('error', () => undefined);
      const others = ids.map((id, j) => ({ j, id })).filter((x) => x.j !== i);
      const policy = QuorumPolicy.create({ origin: origin(i), operator: ids[i].did, witnesses: others.map((x) => ({ name: origin(x.j), key: x.id.did })) });
      const cons = new Consortium({
        ledger,
        identity: ids[i],
        link,
        policy,
        retryMs: 500,
        witnessed: others.map((x) => ({ origin: origin(x.j), did: x.id.did })),
      });
      await cons.start();
      await link.connected(10000);
      members.push({ ledger, link, cons, id: ids[i] });
    }
  });

  after(async () => {
    for (const m of members) {
      await m.cons.stop();
      await m.link.close();
      await m.ledger.close();
    }
    await counter?.close();
    await broker?.close();
    t?.cleanup();
  });

  /** Every partner appends one entry and signs a checkpoint; resolves once each checkpoint holds all three cosignatures. */
  async function round(): Promise<void> {
    for (const m of members) {
      await m.ledger.append(signEnvelope(m.id, { kind: 'reading', seq: seq++, ts: Date.now(), topic: 't', payload: { seq } }));
      await m.ledger.checkpoint();
    }
    const end = Date.now() + 15000;
    for (const m of members) {
      const size = m.ledger.size;
      while (((await m.cons.confirmations(size))?.count ?? 0) < N) {
        if (Date.now() > end) throw new Error(`${m.ledger.origin} size ${size} not cosigned by all: ${JSON.stringify(await m.cons.confirmations(size))}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  /**
   * Wait (at most 15 s) until `done()` holds and then no message has reached the counter for
   * QUIET_MS. round() returns once each log holds its cosignatures, but the counter is another
   * subscriber: its copies of those messages (and of any late one) may still be in flight. The
   * exact counts asserted include zeros (no rpc, no reply) and no message beyond the expected
   * ones, which only a period with no further message can show; `done()` (the expected messages
   * have all arrived) keeps that period from starting before they did, however loaded the machine.
   */
  async function settled(done: () => boolean): Promise<void> {
    const QUIET_MS = 300;
    const end = Date.now() + 15000;
    while (!done() || Date.now() - lastMessage < QUIET_MS) {
      if (Date.now() > end) throw new Error(`the counted messages did not settle: ${JSON.stringify(counts)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('cosigns later checkpoints from the shared add-checkpoint body: no consistency RPC, one cosignature per witness', async () => {
    const pairs = N * (N - 1);
    await round(); // the witnesses' first checkpoint of each log (old size 0: no proof needed)
    await round();
    // Every warm-up message counted before the counts start again: each round a checkpoint per log
    // and a cosignature per pair, the second round an add-checkpoint body per log.
    await settled(() => (counts.checkpoint ?? 0) >= 2 * N && (counts['add-checkpoint'] ?? 0) >= N && (counts.cosignature ?? 0) >= 2 * pairs);
    counts = {};
    const rounds = 3;
    for (let r = 0; r < rounds; r++) await round();
    await settled(() => (counts.checkpoint ?? 0) >= rounds * N && (counts['add-checkpoint'] ?? 0) >= rounds * N && (counts.cosignature ?? 0) >= rounds * pairs);
    assert.equal(counts.rpc ?? 0, 0, JSON.stringify(counts));
    assert.equal(counts._reply ?? 0, 0, JSON.stringify(counts));
    assert.equal(counts.checkpoint, rounds * N, JSON.stringify(counts));
    assert.equal(counts['add-checkpoint'], rounds * N, JSON.stringify(counts));
    assert.equal(counts.cosignature, rounds * pairs, JSON.stringify(counts));
  });

  it('a forged add-checkpoint body (the real checkpoint, a wrong proof) only costs an RPC: every witness still cosigns, none sees a conflict', async () => {
    const log = members[0];
    const held = log.ledger.size;
    await log.ledger.append(signEnvelope(log.id, { kind: 'reading', seq: seq++, ts: Date.now(), topic: 't', payload: { seq } }));
    // The note the ledger will sign (Ed25519 is deterministic), published by a stranger before the ledger publishes anything.
    const note = signCheckpoint(log.ledger.origin, log.ledger.size, log.ledger.root(), log.id);
    const garbage = Array.from({ length: 2 }, () => crypto.randomBytes(32));
    await counter.publish(log.cons.topics.addCheckpoint, formatAddCheckpointRequest(held, garbage, note), { retain: true });
    const end = Date.now() + 10000;
    for (const w of members.slice(1)) {
      for (;;) {
        const st = await w.cons.witnessState(log.ledger.origin);
        if (st.size === log.ledger.size) {
          assert.equal(st.status, 'ok');
          assert.ok(st.suspects >= 1, 'the failed proof is kept as a suspect record');
          break;
        }
        if (Date.now() > end) throw new Error(`a witness holds ${st.size} (${st.status}), not ${log.ledger.size}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  });
});
