/**
 * `bot-ledger verify DIR --devices` and `bot-ledger devices DIR` (issue 14 part 1, docs/design.md
 * "Devices"): from the ledger alone, each reading's signer was enrolled for its topic at its
 * index; a reading after a revocation, from a stranger or for another topic fails, with exit 1.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { signEnvelope } from '../../lib/format/envelope';
import { Identity } from '../../lib/format/identity';
import { Ledger } from '../../lib/store/ledger';
import { endDevice, enrolDevice, rotateDevice } from '../../lib/devices/device-registry';
import { rotateInput } from '../../lib/devices/device-terms';
import { main } from '../../bin/cli';
import { tmpDir } from '../helpers';

const CLI = path.resolve(__dirname, '../../bin/bot-ledger.js');
const ORIGIN = 'example.com/cli-devices';

/** Run main in this process; its status and output. */
async function inProcess(args: string[]): Promise<{ status: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '',
    err = '';
  stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const status = await main(args, { stdout, stderr, env: {} });
  return { status, out, err };
}

describe('bot-ledger verify --devices and devices', function () {
  this.timeout(20000);
  const t = tmpDir('bot-cli-devices-');
  after(() => t.cleanup());
  const op = Identity.generate();
  const a = Identity.generate();
  const b = Identity.generate();
  const b2 = Identity.generate();
  let opSeq = 0;
  const nextSeq = (): number => opSeq++;
  const seqs = new Map<string, number>();
  const reading = (id: Identity, topic: string) => {
    const s = seqs.get(id.did) ?? 0;
    seqs.set(id.did, s + 1);
    return signEnvelope(id, { kind: 'reading', seq: s, ts: Date.now(), topic, payload: { v: s } });
  };

  /** A ledger with two devices, readings, a rotation and a revocation; `bad` adds readings that must fail. */
  async function build(dir: string, bad: boolean): Promise<void> {
    const l = await Ledger.open({ dir, origin: ORIGIN, identity: op });
    try {
      await enrolDevice(l, op, nextSeq, { ledger: ORIGIN, device: a.did, name: 'a', topics: ['plant/1/#'] } as never);
      await enrolDevice(l, op, nextSeq, { ledger: ORIGIN, device: b.did, name: 'b', topics: ['plant/2/+'] } as never);
      for (let i = 0; i < 5; i++) await l.append(reading(a, `plant/1/s${i}`));
      await l.append(reading(b, 'plant/2/x'));
      await rotateDevice(l, signEnvelope(b, rotateInput(ORIGIN, b2.did, seqs.get(b.did) ?? 0, Date.now())));
      seqs.set(b.did, (seqs.get(b.did) ?? 0) + 1);
      await l.append(reading(b2, 'plant/2/y'));
      await endDevice(l, op, nextSeq, 'revoke', a.did, 'stolen');
      await l.append(signEnvelope(op, { kind: 'reading', seq: nextSeq(), ts: Date.now(), payload: 'operator note' }));
      if (bad) {
        await l.append(reading(a, 'plant/1/late')); // after its revocation
        await l.append(reading(b2, 'plant/3/x')); // outside its topics
        await l.append(reading(Identity.generate(), 'plant/1/x')); // never enrolled
        await l.append(reading(b, 'plant/2/z')); // its old key after the rotation
      }
      await l.checkpoint();
    } finally {
      await l.close();
    }
  }

  it('passes when every reading came from a device enrolled for its topic at its index', async () => {
    const dir = path.join(t.dir, 'good');
    await build(dir, false);
    const r = await inProcess(['verify', dir, '--devices']);
    assert.equal(r.status, 0, r.err);
    const lines = r.out
      .trim()
      .split('\n')
      .map((x) => JSON.parse(x) as Record<string, unknown>);
    assert.equal(lines[0].ok, true);
    assert.deepEqual(lines[1], { devices: { ok: true, readings: 7, devices: 2, failed: 0, failures: [] } });
    const d = await inProcess(['devices', dir]);
    assert.equal(d.status, 0, d.err);
    const devs = d.out
      .trim()
      .split('\n')
      .map((x) => JSON.parse(x) as { name: string; status: string; key: string; keys: string[] });
    assert.deepEqual(
      devs.map((x) => [x.name, x.status, x.key]),
      [
        ['b', 'active', b2.did],
        ['a', 'revoked', a.did],
      ],
    );
  });

  it('fails (exit 1, one stderr line) naming each refused reading with its typed reason', async () => {
    const dir = path.join(t.dir, 'bad');
    await build(dir, true);
    const r = await new Promise<{ status: number | null; out: string; err: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, 'verify', dir, '--devices'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '',
        err = '';
      child.stdout.setEncoding('utf8').on('data', (x: string) => (out += x));
      child.stderr.setEncoding('utf8').on('data', (x: string) => (err += x));
      child.on('error', reject);
      child.on('close', (status) => resolve({ status, out, err }));
    });
    assert.equal(r.status, 1);
    assert.match(r.err, /^bot-ledger: 4 reading\(s\) not from a device enrolled for its topic, first at entry \d+: .* \(revoked\)\n$/);
    const res = JSON.parse(r.out.trim().split('\n')[1]) as { devices: { ok: boolean; failed: number; failures: { code: string; topic: string }[] } };
    assert.equal(res.devices.ok, false);
    assert.deepEqual(
      res.devices.failures.map((f) => [f.code, f.topic]),
      [
        ['revoked', 'plant/1/late'],
        ['topic-not-allowed', 'plant/3/x'],
        ['unknown-signer', 'plant/1/x'],
        ['rotated', 'plant/2/z'],
      ],
    );
    // Without --devices the same ledger is sound: the devices check is an extra question.
    const plain = await inProcess(['verify', dir]);
    assert.equal(plain.status, 0, plain.err);
  });
});
