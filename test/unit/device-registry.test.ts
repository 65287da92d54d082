/**
 * lib/devices (issue 14 part 1) over a real LevelDB ledger: enrolment with topic filters and
 * expiry, retirement and revocation effective from their append, rotation by the current key
 * (forged and replayed rotations refused), live following of commits, and the state rebuilt
 * from a fresh copy of the ledger equal to the live one.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { signEnvelope } from '../../lib/format/envelope';
import { Identity } from '../../lib/format/identity';
import { Ledger } from '../../lib/store/ledger';
import { DeviceRegistry, type DeviceState, endDevice, enrolDevice, rotateDevice } from '../../lib/devices/device-registry';
import { DEVICE_KINDS, enrolInput, ROTATE_TOPIC, rotateInput } from '../../lib/devices/device-terms';
import { DeviceActivity, lastEntryBy } from '../../lib/devices/device-activity';
import { tmpDir } from '../helpers';

const ORIGIN = 'example.com/devices-test';

describe('device registry', function () {
  this.timeout(20000);
  let t: { dir: string; cleanup: () => void };
  let led: Ledger;
  const op = Identity.generate();
  let opSeq = 0;
  const nextSeq = (): number => opSeq++;
  const seqs = new Map<string, number>();
  const nextOf = (id: Identity): number => {
    const s = seqs.get(id.did) ?? 0;
    seqs.set(id.did, s + 1);
    return s;
  };
  const reading = (id: Identity, topic: string | undefined, ts = Date.now()) =>
    signEnvelope(id, { kind: 'reading', seq: nextOf(id), ts, ...(topic === undefined ? {} : { topic }), payload: { t: 21 } });
  const enrol = (id: Identity, over: Record<string, unknown> = {}) =>
    enrolDevice(led, op, nextSeq, { ledger: ORIGIN, device: id.did, name: 'sensor', topics: ['plant/1/+/temp', 'plant/1/door/#'], ...over } as never);
  const reg = (): DeviceRegistry => DeviceRegistry.of(led);

  beforeEach(async () => {
    t = tmpDir('bot-devices-');
    led = await Ledger.open({ dir: path.join(t.dir, 'l'), origin: ORIGIN, identity: op });
    opSeq = 0;
  });
  afterEach(async () => {
    if (!led.closed) await led.close();
    t.cleanup();
  });

  it('enrols a device for its topic filters (MQTT 3.1.1 §4.7) and names every other case', async () => {
    const dev = Identity.generate();
    const stranger = Identity.generate();
    const { receipt, device } = await enrol(dev, { meta: { model: 'TH-1', location: 'hall 3' } });
    assert.equal(device.id, dev.did);
    assert.deepEqual(device.meta, { model: 'TH-1', location: 'hall 3' });
    const at = { index: led.size, ts: Date.now() };
    const s = reg().state;
    assert.equal(s.check(dev.did, 'plant/1/a/temp', at).ok, true);
    assert.equal(s.check(dev.did, 'plant/1/door', at).ok, true, '# matches the parent level');
    assert.equal(s.check(dev.did, 'plant/1/door/x/y', at).ok, true);
    for (const topic of ['plant/2/a/temp', 'plant/1/a/b/temp', undefined]) {
      const r = s.check(dev.did, topic, at);
      assert.equal(r.ok ? 'ok' : r.code, 'topic-not-allowed', String(topic));
    }
    const u = s.check(stranger.did, 'plant/1/a/temp', at);
    assert.equal(u.ok ? 'ok' : u.code, 'unknown-signer');
    // Before its enrolment was appended, the key was unknown.
    const before = s.check(dev.did, 'plant/1/a/temp', { index: receipt.index, ts: Date.now() });
    assert.equal(before.ok ? 'ok' : before.code, 'unknown-signer');
    assert.deepEqual(
      (await reg().list()).map((d) => [d.name, d.status]),
      [['sensor', 'active']],
    );
  });

  it('refuses bad terms, another ledger, the operator key and reused keys (E_DEVICE)', async () => {
    const dev = Identity.generate();
    await assert.rejects(enrol(dev, { topics: ['a/#/b'] }), { code: 'E_DEVICE' });
    await assert.rejects(enrol(dev, { topics: [] }), { code: 'E_DEVICE' });
    await assert.rejects(enrol(dev, { ledger: 'other.example/l' }), { code: 'E_DEVICE' });
    await assert.rejects(enrol(dev, { extra: 1 }), { code: 'E_DEVICE' });
    await assert.rejects(enrol(op), { code: 'E_DEVICE' });
    await enrol(dev);
    await endDevice(led, op, nextSeq, 'retire', dev.did);
    await assert.rejects(enrol(dev), /keys are not reused/);
    await assert.rejects(endDevice(led, op, nextSeq, 'revoke', dev.did), /already retired/);
    await assert.rejects(endDevice(led, op, nextSeq, 'revoke', Identity.generate().did), { code: 'E_DEVICE' });
  });

  it('ignores device entries not signed by the operator', async () => {
    const mallory = Identity.generate();
    await led.append(signEnvelope(mallory, enrolInput({ ledger: ORIGIN, device: mallory.did, name: 'me', topics: ['#'] } as never, 0, Date.now())));
    const r = reg().state.check(mallory.did, 'a', { index: led.size, ts: Date.now() });
    assert.equal(r.ok ? 'ok' : r.code, 'unknown-signer');
    assert.equal(reg().state.size, 0);
  });

  it('expires an enrolment at its expiry time', async () => {
    const dev = Identity.generate();
    const expires = Date.now() + 60_000;
    await enrol(dev, { expires });
    const s = reg().state;
    assert.equal(s.check(dev.did, 'plant/1/a/temp', { index: led.size, ts: expires }).ok, true);
    const r = s.check(dev.did, 'plant/1/a/temp', { index: led.size, ts: expires + 1 });
    assert.equal(r.ok ? 'ok' : r.code, 'expired');
    assert.equal((await reg().list(expires + 1))[0].status, 'expired');
  });

  it('retires and revokes from their append on, not before; amends the terms of an active key', async () => {
    const a = Identity.generate();
    const b = Identity.generate();
    await enrol(a);
    await enrol(b);
    const r1 = await led.append(reading(a, 'plant/1/x/temp'));
    // Amend: b may now sign plant/2/# too.
    await enrol(b, { topics: ['plant/2/#'], name: 'sensor b' });
    const s = reg().state;
    assert.equal(s.check(b.did, 'plant/2/x', { index: led.size, ts: Date.now() }).ok, true);
    const old = s.check(b.did, 'plant/2/x', { index: r1.index, ts: Date.now() });
    assert.equal(old.ok ? 'ok' : old.code, 'topic-not-allowed', 'the amendment applies from its append');
    const ret = await endDevice(led, op, nextSeq, 'retire', a.did, 'replaced');
    const rev = await endDevice(led, op, nextSeq, 'revoke', b.did, 'stolen');
    assert.deepEqual(ret.device.ended, { how: 'retired', index: ret.receipt.index, reason: 'replaced' });
    const now = { index: led.size, ts: Date.now() };
    const ra = s.check(a.did, 'plant/1/x/temp', now);
    const rb = s.check(b.did, 'plant/2/x', now);
    assert.deepEqual([ra.ok ? 'ok' : ra.code, rb.ok ? 'ok' : rb.code], ['retired', 'revoked']);
    assert.equal(s.check(a.did, 'plant/1/x/temp', { index: r1.index, ts: Date.now() }).ok, true, 'an earlier reading stays valid');
    assert.equal(s.check(b.did, 'plant/2/x', { index: rev.receipt.index - 1, ts: Date.now() }).ok, true);
    assert.deepEqual(
      (await reg().list()).map((d) => d.status),
      ['revoked', 'retired'],
    );
  });

  it('rotates a key with an envelope of its current key; refuses forged and replayed rotations', async () => {
    const dev = Identity.generate();
    const next = Identity.generate();
    const third = Identity.generate();
    const mallory = Identity.generate();
    await enrol(dev);
    const before = await led.append(reading(dev, 'plant/1/a/temp'));
    // Forged: signed by a key that is not the device's.
    const forged = signEnvelope(mallory, rotateInput(ORIGIN, next.did, 0, Date.now()));
    await assert.rejects(rotateDevice(led, forged.toJSON()), { code: 'E_DEVICE' });
    // Appended anyway (e.g. through bot-append): the registry ignores it.
    await led.append(forged);
    assert.equal(reg().state.knows(next.did), false);
    // For another ledger, or naming the operator: refused.
    await assert.rejects(rotateDevice(led, signEnvelope(dev, rotateInput('other.example/x', next.did, nextOf(dev), Date.now()))), { code: 'E_DEVICE' });
    await assert.rejects(rotateDevice(led, signEnvelope(dev, rotateInput(ORIGIN, op.did, nextOf(dev), Date.now()))), { code: 'E_DEVICE' });
    // A tampered envelope does not verify.
    const good = signEnvelope(dev, rotateInput(ORIGIN, next.did, nextOf(dev), Date.now()));
    const tampered = { ...good.toJSON(), payload: { ledger: ORIGIN, key: third.did } };
    await assert.rejects(rotateDevice(led, tampered), { code: 'E_SIGNATURE' });
    const { device, receipt } = await rotateDevice(led, good.toJSON());
    assert.deepEqual([device.id, device.key, device.keys], [dev.did, next.did, [dev.did, next.did]]);
    // Replayed: the ledger's seq rule refuses it; the old key can no longer rotate.
    await assert.rejects(rotateDevice(led, good.toJSON()), { code: 'E_DEVICE' });
    await assert.rejects(led.append(good), { code: 'E_REPLAY' });
    await assert.rejects(rotateDevice(led, signEnvelope(dev, rotateInput(ORIGIN, third.did, nextOf(dev), Date.now()))), { code: 'E_DEVICE' });
    const s = reg().state;
    const now = { index: led.size, ts: Date.now() };
    const oldKey = s.check(dev.did, 'plant/1/a/temp', now);
    assert.equal(oldKey.ok ? 'ok' : oldKey.code, 'rotated');
    assert.equal(s.check(next.did, 'plant/1/a/temp', now).ok, true);
    assert.equal(s.check(dev.did, 'plant/1/a/temp', { index: before.index, ts: Date.now() }).ok, true);
    const early = s.check(next.did, 'plant/1/a/temp', { index: receipt.index, ts: Date.now() });
    assert.equal(early.ok ? 'ok' : early.code, 'unknown-signer');
    // A revocation by the device's id ends its current key.
    await endDevice(led, op, nextSeq, 'revoke', dev.did);
    const r = s.check(next.did, 'plant/1/a/temp', { index: led.size, ts: Date.now() });
    assert.equal(r.ok ? 'ok' : r.code, 'revoked');
    // A revoked device cannot rotate out of it.
    await assert.rejects(rotateDevice(led, signEnvelope(next, rotateInput(ORIGIN, third.did, 0, Date.now()))), { code: 'E_DEVICE' });
    await led.append(signEnvelope(next, rotateInput(ORIGIN, third.did, 1, Date.now())));
    assert.equal(s.knows(third.did), false);
    assert.equal(ROTATE_TOPIC, good.envelope.topic);
    assert.equal(DEVICE_KINDS.rotate, good.envelope.kind);
  });

  it('follows commits: a revocation applies to the very next check, without a sync', async () => {
    const dev = Identity.generate();
    await enrol(dev);
    const r = reg();
    await r.sync();
    await endDevice(led, op, nextSeq, 'revoke', dev.did);
    assert.equal(r.current, true);
    const c = r.state.check(dev.did, 'plant/1/a/temp', { index: led.size, ts: Date.now() });
    assert.equal(c.ok ? 'ok' : c.code, 'revoked');
  });

  it('rebuilds the same state from a fresh copy of the ledger alone', async () => {
    const devs = [Identity.generate(), Identity.generate(), Identity.generate()];
    const newKey = Identity.generate();
    for (const d of devs) await enrol(d, { expires: Date.now() + 3_600_000 });
    for (let i = 0; i < 30; i++) await led.append(reading(devs[i % 3], i % 5 === 0 ? 'plant/9/x' : 'plant/1/a/temp'));
    await rotateDevice(led, signEnvelope(devs[0], rotateInput(ORIGIN, newKey.did, nextOf(devs[0]), Date.now())));
    await endDevice(led, op, nextSeq, 'revoke', devs[1].did);
    for (let i = 0; i < 10; i++) await led.append(reading(i % 2 ? newKey : devs[2], 'plant/1/b/temp'));
    await endDevice(led, op, nextSeq, 'retire', devs[2].did);
    const now = Date.now();
    const live = await reg().list(now);
    const verdicts = async (l: Ledger, s: DeviceState): Promise<string[]> => {
      const out: string[] = [];
      for await (const e of l.entries()) {
        const env = JSON.parse(e.leaf.toString()) as { kind: string; signer: string; topic?: string; ts: number };
        if (env.kind !== 'reading') continue;
        const c = s.check(env.signer, env.topic, { index: e.index, ts: env.ts });
        out.push(c.ok ? 'ok' : c.code);
      }
      return out;
    };
    const liveVerdicts = await verdicts(led, reg().state);
    await led.close();
    const copy = path.join(t.dir, 'copy');
    fs.cpSync(path.join(t.dir, 'l'), copy, { recursive: true });
    const other = await Ledger.open({ dir: copy, create: false });
    try {
      const rebuilt = DeviceRegistry.of(other);
      assert.deepEqual(await rebuilt.list(now), live);
      assert.deepEqual(await verdicts(other, rebuilt.state), liveVerdicts);
      assert.deepEqual(
        [...new Set(liveVerdicts)].sort(),
        ['ok', 'topic-not-allowed'],
        'every reading was checked at its own index, before the revocation and retirement',
      );
      // Activity: last seq and last seen from the postings.
      const rows = await DeviceActivity.of(other).rows(now, 60_000);
      const byName = new Map(rows.map((r) => [r.key, r]));
      assert.equal(byName.get(newKey.did)?.lastSeq, 4);
      assert.equal(byName.get(newKey.did)?.silent, false);
      assert.deepEqual(await lastEntryBy(other, Identity.generate().did), undefined);
    } finally {
      await other.close();
    }
  });

  it('counts live activity and flags a silent device', async () => {
    const a = Identity.generate();
    const b = Identity.generate();
    await enrol(a);
    await enrol(b);
    const act = DeviceActivity.of(led);
    for (let i = 0; i < 3; i++) await led.append(reading(a, 'plant/1/a/temp'));
    const rows = await act.rows(Date.now(), 60_000);
    const ra = rows.find((r) => r.key === a.did);
    const rb = rows.find((r) => r.key === b.did);
    assert.equal(ra?.lastSeq, 2);
    assert.equal(ra?.silent, false);
    assert.ok((ra?.perMinute ?? 0) > 0);
    assert.deepEqual([rb?.lastSeen, rb?.silent], [null, true]);
    act.close();
  });
});
