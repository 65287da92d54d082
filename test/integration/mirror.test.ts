/** Mirrors over a real Mosquitto: catch-up in pages, restart after downtime, tampered remotes. */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { auditLedger, Identity, Ledger, ledgerId, signCheckpoint, signEnvelope } from '../../lib';
import type { MqttLink } from '../../lib/consortium/mqtt-link';
import { answerLedgerRpc, LedgerPublisher, ledgerTopics } from '../../lib/consortium/publisher';
import { Mirror } from '../../lib/consortium/mirror';
import { mqttFixture } from '../mqtt-fixture';
import { until } from '../helpers';

describe('mirror (real MQTT broker)', function () {
  this.timeout(60000);
  const f = mqttFixture('bot-mirror-');
  const link = (): MqttLink => f.link();

  const fill = async (led: Ledger, dev: Identity, from: number, n: number, tag = 'x'): Promise<void> => {
    await Promise.all(
      Array.from({ length: n }, (_, i) => led.append(signEnvelope(dev, { kind: 'reading', seq: from + i, ts: Date.now(), payload: { tag, i: from + i } }))),
    );
  };

  it('catches up in pages, audits clean, and catches up again after downtime', async () => {
    const op = Identity.generate();
    const dev = Identity.generate();
    const origin = 'example.com/mirrored';
    const owner = await Ledger.open({ dir: path.join(f.dir, 'owner'), origin, identity: op });
    const pubLink = link();
    const publisher = new LedgerPublisher(owner, pubLink, ledgerId(origin, op.did));
    publisher.start();
    await fill(owner, dev, 0, 2500);
    await owner.checkpoint();

    const local = await Ledger.open({ dir: path.join(f.dir, 'copy'), origin, operator: op.did });
    assert.equal(local.operator.did, op.did);
    await assert.rejects(local.checkpoint(), { code: 'E_KEY' });
    const mLink = link();
    let mirror = new Mirror({ ledger: local, link: mLink, origin, did: op.did });
    mirror.start();
    await until('mirror caught up', () => mirror.state().checkpointSize === 2500 || mirror.state().error);
    assert.deepEqual(mirror.state(), { size: 2500, checkpointSize: 2500, remoteSize: 2500, behind: false });
    assert.ok(local.root().equals(await owner.rootAt(2500)));
    assert.equal(local.latestCheckpoint()?.note, owner.latestCheckpoint()?.note);
    const audit = await auditLedger(local, { workers: 0 });
    assert.ok(audit.ok && audit.size === 2500 && audit.checkpoints === 1, JSON.stringify(audit));

    // Downtime: the mirror stops, the owner goes on, a new Mirror on the same copy catches up.
    await mirror.stop();
    await fill(owner, dev, 2500, 1200);
    await owner.checkpoint();
    await fill(owner, dev, 3700, 5); // not yet checkpointed: not mirrored
    assert.equal(local.size, 2500);
    mirror = new Mirror({ ledger: local, link: mLink, origin, did: op.did, retryMs: 200 });
    mirror.start();
    await until('mirror caught up again', () => mirror.state().checkpointSize === 3700 || mirror.state().error);
    assert.deepEqual(mirror.state(), { size: 3700, checkpointSize: 3700, remoteSize: 3700, behind: false });
    assert.ok(local.root().equals(await owner.rootAt(3700)));
    const audit2 = await auditLedger(local, { workers: 0 });
    assert.ok(audit2.ok && audit2.size === 3700 && audit2.checkpoints === 2, JSON.stringify(audit2));

    // storeCheckpoint refuses what the copy does not hold or what the operator did not sign.
    await owner.checkpoint();
    await assert.rejects(local.storeCheckpoint(owner.latestCheckpoint()!.note), { code: 'E_RANGE' });
    await assert.rejects(local.storeCheckpoint(signCheckpoint(origin, 10, await local.rootAt(10), Identity.generate())), { code: 'E_SIGNATURE' });
    await assert.rejects(local.storeCheckpoint(signCheckpoint(origin, 10, await local.rootAt(11), op)), { code: 'E_CHECKPOINT' });
    await until('live checkpoint mirrored', () => mirror.state().checkpointSize === 3705);

    await mirror.stop();
    publisher.stop();
    await Promise.all([local.close(), owner.close()]);
  });

  it('appends nothing from a remote that serves tampered entries or a forged checkpoint', async () => {
    const op = Identity.generate();
    const dev = Identity.generate();
    const origin = 'example.com/tampered';
    const real = await Ledger.open({ dir: path.join(f.dir, 'real'), origin, identity: op });
    const fake = await Ledger.open({ dir: path.join(f.dir, 'fake'), origin, identity: op });
    await fill(real, dev, 0, 1500, 'real');
    await fill(fake, dev, 0, 1500, 'fake'); // validly signed envelopes, different from the real ones
    const cp = (await real.checkpoint())!;
    const topics = ledgerTopics(ledgerId(origin, op.did));
    const evil = link();
    // The evil publisher answers with the fake ledger's entries and proofs.
    evil.serve(topics.rpc, (method, p) => answerLedgerRpc(fake, method, p));
    await until('evil connected', () => evil.state === 'connected');
    await evil.publish(topics.checkpoint, signCheckpoint(origin, 1500, real.root(), Identity.generate()), { retain: true });

    const local = await Ledger.open({ dir: path.join(f.dir, 'victim'), origin, operator: op.did });
    const mirror = new Mirror({ ledger: local, link: link(), origin, did: op.did, retryMs: 200 });
    mirror.start();
    await until('forged checkpoint refused', () => mirror.state().error);
    assert.equal(mirror.state().error?.code, 'E_SIGNATURE');
    assert.equal(mirror.state().behind, false);

    await evil.publish(topics.checkpoint, cp.note, { retain: true });
    await until('tampered entries refused', () => mirror.state().error?.code === 'E_PROOF' && mirror.state().remoteSize === 1500);
    await new Promise((r) => setTimeout(r, 500)); // retries fail the same way
    const s = mirror.state();
    assert.equal(s.size, 0);
    assert.equal(s.checkpointSize, 0);
    assert.equal(s.behind, true);
    assert.equal(s.error?.code, 'E_PROOF');
    assert.match(s.error?.message ?? '', /does not cover/);
    assert.equal(local.size, 0);
    assert.equal(local.latestCheckpoint(), undefined);

    // An honest publisher replaces the evil one: the mirror recovers on its retry timer.
    const honestLink = link();
    const honest = new LedgerPublisher(real, honestLink, ledgerId(origin, op.did));
    await evil.close();
    honest.start();
    await until('recovered', () => mirror.state().checkpointSize === 1500);
    assert.equal(mirror.state().error, undefined);
    assert.ok(local.root().equals(real.root()));

    // A smaller checkpoint than one the remote published before is a conflict.
    await honestLink.publish(topics.checkpoint, signCheckpoint(origin, 1000, await real.rootAt(1000), op), { retain: true });
    await until('conflict', () => mirror.state().error?.code === 'E_CONFLICT');
    assert.equal(local.size, 1500);
    await mirror.stop();
    honest.stop();
    await Promise.all([local.close(), real.close(), fake.close()]);
  });
});
