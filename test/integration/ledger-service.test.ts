/**
 * LedgerService (lib/service/ledger-service.ts) without Node-RED: a real LevelDB in a temp
 * folder, and the real broker of test/mosquitto.ts for the consortium cases. It opens through
 * the registry, signs checkpoints every N committed entries (whoever appended) and on its
 * timer, seals what is pending when it closes, and closes in order (consortium and mirrors,
 * link, lease).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BotError } from '../../lib/errors';
import { signEnvelope } from '../../lib/format/envelope';
import { Identity } from '../../lib/format/identity';
import { sharedSignPool } from '../../lib/format/sign-pool';
import { EncryptionKey } from '../../lib/confidential/hpke';
import { LedgerService, type LedgerServiceOptions } from '../../lib/service/ledger-service';
import { Ledger, type Receipt } from '../../lib/store/ledger';
import { openLedgers, settledLedgers } from '../../lib/store/registry';
import { Mosquitto } from '../mosquitto';
import { tmpDir, until } from '../helpers';

describe('LedgerService (real LevelDB, real broker)', function () {
  this.timeout(20000);
  const op = Identity.generate();
  const dev = Identity.generate();
  let t: ReturnType<typeof tmpDir>;
  let n = 0;
  let seq = 0;
  const services: LedgerService[] = [];
  before(() => {
    t = tmpDir('bot-service-');
  });
  afterEach(async () => {
    await Promise.all(services.splice(0).map((s) => s.close()));
    await settledLedgers();
  });
  after(() => t.cleanup());

  /** A started service on a fresh folder; its errors are collected. */
  const service = (opts: Partial<LedgerServiceOptions> = {}): { s: LedgerService; dir: string; errors: unknown[] } => {
    const dir = opts.dir ?? path.join(t.dir, `l${++n}`);
    const s = new LedgerService({ origin: `example.com/service-${n}`, identity: op, ...opts, dir });
    const errors: unknown[] = [];
    s.on('error', (err) => errors.push(err));
    services.push(s);
    s.start();
    return { s, dir, errors };
  };
  const reading = (): ReturnType<typeof signEnvelope> => signEnvelope(dev, { kind: 'reading', seq: ++seq, ts: Date.now(), payload: { seq } });
  const append = (l: Ledger, k: number): Promise<Receipt[]> => Promise.all(Array.from({ length: k }, () => l.append(reading())));

  it('opens through the registry, takes the ledger origin, and releases the lease on close', async () => {
    const { s, dir, errors } = service({ origin: undefined, defaultOrigin: 'bot.local/service/default' });
    let opened: Ledger | undefined;
    s.on('open', (l) => {
      opened = l;
    });
    const l = await s.lease.ledger;
    assert.equal(s.origin, 'bot.local/service/default');
    assert.equal(l.origin, s.origin);
    await until('open event', () => opened);
    assert.equal(s.synced, false);
    assert.equal(await s.consensus, undefined);
    assert.ok(openLedgers().some((o) => o.dir === path.resolve(dir)));
    await s.close();
    await s.close(); // idempotent
    assert.ok(!openLedgers().some((o) => o.dir === path.resolve(dir)), 'the lease was released');
    assert.equal(l.closed, true);
    assert.deepEqual(errors, []);
  });

  it('signs a checkpoint once N entries were committed since the last one, from the commits of any writer', async () => {
    const { s, errors } = service({ checkpointMs: 0, checkpointEntries: 5 });
    const own = await s.lease.ledger;
    // A user's lease (as bot-append holds one): its appends count too, no one tells the service.
    const user = s.acquire();
    const l = await user.ledger;
    assert.equal(l, own);
    await append(l, 4);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(l.latestCheckpoint(), undefined, 'no checkpoint below N');
    await append(l, 1);
    await until('checkpoint at 5', () => l.latestCheckpoint()?.size === 5);
    // One commit of several entries (a partner's supply request): one checkpoint over all of them.
    await l.appendAll(Array.from({ length: 7 }, () => reading()));
    await until('checkpoint at 12', () => l.latestCheckpoint()?.size === 12);
    await user.release();
    assert.deepEqual(errors, []);
  });

  it('signs nothing on commits with N = 0, or without the operator key', async () => {
    const { s } = service({ checkpointMs: 0, checkpointEntries: 0 });
    const l = await s.lease.ledger;
    await append(l, 3);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(l.latestCheckpoint(), undefined);
    await s.close();
    // The same ledger run without its operator key: appends are taken, checkpoints never signed.
    const { s: keyless } = service({ dir: l.dir, origin: l.origin, identity: undefined, checkpointEntries: 1 });
    assert.equal(keyless.canSign, false);
    const k = await keyless.lease.ledger;
    await append(k, 2);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(k.latestCheckpoint(), undefined);
    assert.equal(await keyless.checkpointNow(), undefined);
  });

  it('signs on its timer', async () => {
    const { s, errors } = service({ checkpointMs: 40, checkpointEntries: 0 });
    const l = await s.lease.ledger;
    await append(l, 3);
    await until('timed checkpoint', () => l.latestCheckpoint()?.size === 3);
    await append(l, 2);
    await until('next timed checkpoint', () => l.latestCheckpoint()?.size === 5);
    assert.deepEqual(errors, []);
  });

  it('closes in order: what was appended since the last checkpoint is sealed before the lease is released', async () => {
    const { s, dir } = service({ checkpointMs: 60000, checkpointEntries: 100 });
    const l = await s.lease.ledger;
    await append(l, 3);
    assert.equal(l.latestCheckpoint(), undefined);
    await s.close();
    assert.equal(l.closed, true);
    const again = await Ledger.open({ dir });
    try {
      assert.equal(again.latestCheckpoint()?.size, 3, 'the pending entries were sealed on close');
    } finally {
      await again.close();
    }
  });

  it('without a checkpoint policy, close signs nothing; checkpointNow signs on demand', async () => {
    const { s, dir } = service({ checkpointMs: 0, checkpointEntries: 0 });
    const l = await s.lease.ledger;
    await append(l, 2);
    assert.equal((await s.checkpointNow())?.size, 2);
    await append(l, 1);
    await s.close();
    const again = await Ledger.open({ dir });
    try {
      assert.equal(again.latestCheckpoint()?.size, 2);
    } finally {
      await again.close();
    }
  });

  it("seals with its identity's one shared signing pool (the one its bot-sign nodes use: one seq counter, one call order)", async () => {
    let opSeq = 0;
    const lease = sharedSignPool(op);
    try {
      const { s } = service({
        checkpointMs: 0,
        checkpointEntries: 0,
        confidential: { scopes: [{ scope: 'plant', topics: ['plant/#'] }], nextSeq: () => opSeq++, encryptionKey: () => EncryptionKey.generate() },
      });
      await s.confidential();
      const before = lease.pool.stats.inline + lease.pool.stats.pooled;
      const r = signEnvelope(dev, { kind: 'reading', seq: ++seq, ts: Date.now(), topic: 'plant/line1/temp', payload: { c: 20 } });
      await s.append(r.toJSON());
      assert.equal(lease.pool.stats.inline + lease.pool.stats.pooled, before + 1, 'the sealed envelope was not signed by the shared pool');
      await s.close();
    } finally {
      await lease.release();
    }
  });

  it('an unusable configuration: its error once, every request refused with it, nothing runs', async () => {
    const err = new BotError('E_RANGE', 'quorum 5 is impossible with the operator and 1 witness(es)');
    const s = LedgerService.unusable(err, { dir: path.join(t.dir, 'unusable'), origin: 'example.com/unusable' });
    const errors: unknown[] = [];
    s.on('error', (e) => errors.push(e));
    services.push(s);
    s.start();
    assert.equal(s.synced, false);
    assert.equal(s.origin, 'example.com/unusable');
    await assert.rejects(s.acquire().ledger, { code: 'E_RANGE' });
    await assert.rejects(s.policy(), { code: 'E_RANGE' });
    await assert.rejects(s.checkpointNow(), { code: 'E_RANGE' });
    await assert.rejects(s.answerRequest({}), { code: 'E_RANGE' });
    assert.equal(await s.consensus, undefined);
    assert.deepEqual(s.mirrors(), []);
    await s.close();
    assert.deepEqual(errors, [err]);
    assert.ok(!fs.existsSync(path.join(t.dir, 'unusable')));
  });

  describe('over MQTT', () => {
    let broker: Mosquitto;
    before(async () => {
      broker = await Mosquitto.start();
    });
    after(async () => {
      await broker?.close();
    });

    it('runs the consortium over the link, logs and tells the link state, and closes in bounded time', async () => {
      const { s, errors } = service({ checkpointMs: 0, checkpointEntries: 1, link: { url: broker.url } });
      const lines: string[] = [];
      s.on('log', (line) => lines.push(line));
      assert.equal(s.synced, true);
      const cons = await s.consensus;
      assert.ok(cons, 'the consortium started');
      assert.equal(s.consortium, cons);
      await until('connected logged', () => lines.includes(`MQTT ${broker.url}: connected`));
      // A late listener is told the current state at once.
      const states: string[] = [];
      s.on('linkState', (st) => states.push(st));
      assert.deepEqual(states, ['connected']);
      const l = await s.lease.ledger;
      await append(l, 2);
      await until('checkpoint of the commits', () => l.latestCheckpoint()?.size === 2);
      const info = await cons.info();
      assert.deepEqual(info.witnesses, []);
      const started = Date.now();
      await s.close();
      assert.ok(Date.now() - started < 3000, `closed in ${Date.now() - started} ms`);
      assert.equal(s.consortium, undefined);
      assert.ok(states.includes('closed'), `link states: ${states.join(', ')}`);
      await assert.rejects(cons.waitConfirmed(0, 500), { code: 'E_CLOSED' }, 'the consortium was stopped');
      assert.equal(l.closed, true);
      assert.deepEqual(errors, []);
    });

    it('syncing without the operator identity fails the sync (E_KEY), not the ledger', async () => {
      const other = Identity.generate();
      const dir = path.join(t.dir, 'no-key');
      const seed = await Ledger.open({ dir, origin: 'example.com/no-key', identity: other });
      await seed.close();
      const { s, errors } = service({ dir, origin: 'example.com/no-key', identity: undefined, link: { url: broker.url } });
      await assert.rejects(s.consensus, { code: 'E_KEY', message: 'syncing over MQTT needs the operator identity' });
      await s.lease.ledger;
      await until('error reported', () => errors.length === 1);
    });

    it('stops a consortium that started when a mirror then failed to open (defect: it ran on after close)', async () => {
      const { s, dir, errors } = service({
        checkpointMs: 0,
        link: { url: broker.url },
        mirrored: [{ origin: 'example.com/partner', did: Identity.generate().did }],
      });
      // The mirrors' folder cannot be created: a file stands where it goes.
      fs.writeFileSync(`${dir}-mirrors`, 'not a folder');
      await assert.rejects(s.consensus, { code: 'E_STORE' });
      const cons = s.consortium;
      assert.ok(cons, 'the consortium had started before the mirror failed');
      await until('the failure reported', () => errors.some((e) => (e as BotError).code === 'E_STORE'));
      await s.close();
      await assert.rejects(cons.waitConfirmed(0, 500), { code: 'E_CLOSED' }, 'the consortium was stopped on close');
    });
  });
});
