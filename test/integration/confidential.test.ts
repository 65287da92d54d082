/**
 * Confidential entries over a real Mosquitto (issue 13): the owner seals a scope, a mirror
 * replicates it, the owner goes offline, and a partner reads the scope from the mirror (after
 * its read from the owner times out), decrypts and verifies both signatures; the mirror's
 * LevelDB holds no plaintext of a marked reading; the audit passes without any key. Then the
 * same with owner, mirror and partner in separate processes (test/confidential-child.ts), each
 * running what bot-ledger runs (LedgerService: sealed appends, mirrors serving as "m1"): the
 * owner's process is killed and the partner reads from the mirror.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { auditLedger, cosignLine, formatNote, Identity, Ledger, ledgerId, parseNote, QuorumPolicy, signEnvelope } from '../../lib';
import type { MqttLink } from '../../lib/consortium/mqtt-link';
import { LedgerPublisher, ledgerTopics } from '../../lib/consortium/publisher';
import { Mirror } from '../../lib/consortium/mirror';
import { type GrantTerms, issueGrant, newGrantId } from '../../lib/access/grants';
import { fallbackTransport, mirrorTransport, mqttTransport, PartnerClient } from '../../lib/access/partner';
import { EncryptionKey } from '../../lib/confidential/hpke';
import { encryptionKeyInput } from '../../lib/confidential/keys';
import { ConfidentialOwner } from '../../lib/confidential/owner';
import { mqttFixture } from '../mqtt-fixture';
import { type ChildProcess, fork } from 'node:child_process';
import { until } from '../helpers';
import { type ChildCall, childRpc } from '../child-rpc';

/** Whether any file under dir contains the bytes (LevelDB's log and table files; values are stored raw, uncompressed or Snappy-compressed short strings stay readable). */
function grep(dir: string, needle: string): boolean {
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && fs.readFileSync(path.join(e.parentPath ?? e.path, e.name)).includes(needle)) return true;
  }
  return false;
}

describe('confidential entries (real LevelDB, real MQTT broker)', function () {
  this.timeout(40000);
  const f = mqttFixture('bot-confidential-');
  const link = (): MqttLink => f.link();

  it('a partner reads a sealed scope from a mirror while the owner is offline; the mirror holds no plaintext', async () => {
    const op = Identity.generate();
    const dev = Identity.generate();
    const origin = 'example.com/plant-owner';
    let seq = 0;
    const nextSeq = (): number => seq++;
    const ownerLedger = await Ledger.open({ dir: path.join(f.dir, 'owner'), origin, identity: op });
    const owner = new ConfidentialOwner({ ledger: ownerLedger, operator: op, nextSeq, encryptionKey: await EncryptionKey.generate() });
    await owner.declareScope('plant', ['plant/#']);

    const partner = Identity.generate();
    const pek = await EncryptionKey.generate();
    const grant: GrantTerms = {
      id: newGrantId(),
      subject: partner.did,
      ledger: origin,
      actions: ['read'],
      scope: { signers: '*', topics: ['plant/#'] },
      expires: Date.now() + 3600e3,
    };
    await issueGrant(ownerLedger, op, nextSeq, grant);
    await owner.addReader(grant, signEnvelope(partner, encryptionKeyInput(pek, 0, Date.now())).toJSON());
    const MARK = 'MARKED-READING-7f3a9c';
    for (let i = 0; i < 5; i++) {
      const reading = signEnvelope(dev, { kind: 'reading', seq: i, ts: Date.now(), topic: `plant/line${i}/temp`, payload: { c: 20 + i, tag: MARK } });
      await ownerLedger.append((await owner.seal(reading, op, nextSeq))!);
    }
    await ownerLedger.checkpoint();
    const size = ownerLedger.size;
    const ownerNote = ownerLedger.latestCheckpoint()!.note;

    const ownerLink = link();
    const publisher = new LedgerPublisher(ownerLedger, ownerLink, ledgerId(origin, op.did));
    publisher.start();

    const copy = await Ledger.open({ dir: path.join(f.dir, 'mirror'), origin, operator: op.did });
    const mirror = new Mirror({ ledger: copy, link: link(), origin, did: op.did, serveAs: 'm1', retryMs: 200 });
    mirror.start();
    await until('mirror caught up', () => mirror.state().checkpointSize === size || mirror.state().error);
    assert.equal(mirror.state().checkpointSize, size);

    // The owner goes offline (its retained checkpoint stays on the broker).
    publisher.stop();
    await ownerLink.close();
    await ownerLedger.close();

    const pLink = link();
    const owned = { origin, operator: op.did };
    let pseq = 0;
    const client = new PartnerClient({
      owner: owned,
      grant: grant.id,
      identity: partner,
      nextSeq: () => pseq++,
      encryptionKey: pek,
      transport: fallbackTransport([mqttTransport(pLink, owned, 1000), mirrorTransport(pLink, owned, 'm1', 5000)]),
    });
    const read = await client.readOpen({ topic: 'plant/#' });
    assert.equal(read.entries.length, 5);
    for (const [i, e] of read.entries.entries()) {
      assert.equal(e.leaf.kind, 'sealed');
      assert.equal(e.error, undefined, JSON.stringify(e.error));
      assert.equal(e.opened?.signer, dev.did);
      assert.deepEqual(e.opened?.payload, { c: 20 + i, tag: MARK });
    }
    assert.equal(read.checkpoint.size, size);

    // With witnesses: a partner that requires the owner's quorum reads from the mirror, which
    // carries the witness's retained cosignature on the checkpoint it answers with.
    const w = Identity.generate();
    const policy = QuorumPolicy.create({ origin, operator: op.did, witnesses: [{ name: 'w.example/wit', key: w.did }], quorum: 2 });
    const strict = { origin, operator: op.did, policy };
    const quorumClient = new PartnerClient({
      owner: strict,
      grant: grant.id,
      identity: partner,
      nextSeq: () => pseq++,
      encryptionKey: pek,
      transport: mirrorTransport(pLink, strict, 'm1', 1000),
    });
    // No cosignature yet: the mirror's answer does not verify under the quorum and is ignored.
    await assert.rejects(
      quorumClient.readOpen({ topic: 'plant/#' }),
      (e: Error & { code?: string }) => e.code === 'E_TIMEOUT' && /E_CHECKPOINT/.test(e.message),
    );
    const parsed = parseNote(ownerNote);
    // The mirror carries other lines unverified (it does not know the witnesses), but only short
    // ones: 24 notes each with one 48 KB line would make the note it serves above 1 MiB, and every answer a refusal.
    const topics = ledgerTopics(ledgerId(origin, op.did));
    for (let i = 0; i < 24; i++) {
      const junk = `— junk.example/${i} ${Buffer.alloc(36 * 1024, i + 1).toString('base64')}`;
      await pLink.publish(
        topics.cosignature((0xb0 + i).toString(16).padStart(16, '0')),
        formatNote(parsed.text, [...parsed.signatures.map((x) => x.line), junk]),
      );
    }
    const cosigned = formatNote(parsed.text, [
      ...parsed.signatures.map((x) => x.line),
      cosignLine(parsed.text, 'w.example/wit', w, Math.floor(Date.now() / 1000)),
    ]);
    await pLink.publish(topics.cosignature('00000000000000aa'), cosigned, { retain: true });
    let confirmed: Awaited<ReturnType<PartnerClient['readOpen']>> | undefined;
    for (let i = 0; i < 50 && !confirmed; i++) {
      confirmed = await quorumClient.readOpen({ topic: 'plant/#' }).catch(() => undefined);
      if (!confirmed) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(confirmed, 'a cosigned answer from the mirror');
    assert.equal(confirmed.confirmations?.confirmed, true);
    assert.deepEqual(
      confirmed.entries.map((e) => (e.opened?.payload as { c: number }).c),
      [20, 21, 22, 23, 24],
    );

    // The mirror learned nothing of the content: its files do not hold the marked text; the owner's do not either.
    await mirror.stop();
    assert.equal(grep(path.join(f.dir, 'mirror'), MARK), false);
    assert.equal(grep(path.join(f.dir, 'owner'), MARK), false);
    const audit = await auditLedger(copy, { workers: 0 });
    assert.ok(audit.ok && audit.size === size, JSON.stringify(audit));
    await copy.close();
    // Control: the same check finds the text in a ledger holding it unsealed.
    const control = await Ledger.open({ dir: path.join(f.dir, 'control'), origin, identity: op });
    await control.append(signEnvelope(dev, { kind: 'reading', seq: 0, ts: Date.now(), topic: 'plant/x', payload: { tag: MARK } }));
    await control.close();
    assert.equal(grep(path.join(f.dir, 'control'), MARK), true);
  });

  it('owner, mirror and partner in separate processes: the owner is killed, the partner reads the sealed scope from the mirror', async () => {
    const CHILD = path.resolve(__dirname, '../confidential-child.js');
    const procs: ChildProcess[] = [];
    const start = (name: string): ChildCall => {
      const proc = fork(CHILD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      procs.push(proc);
      return childRpc(proc, name, 15000);
    };
    const seed = (): string => Identity.generate().exportSeed().toString('hex');
    const origin = 'example.com/plant-owner-mp';
    const MARK = 'MP-MARKED-READING-51c2';
    try {
      const owner = start('owner');
      const mirror = start('mirror');
      const partner = start('partner');
      const { did } = (await owner('owner', { seed: seed(), dir: path.join(f.dir, 'mp-owner'), url: f.broker.url, origin })) as { did: string };
      await mirror('mirror', { seed: seed(), dir: path.join(f.dir, 'mp-mirror'), url: f.broker.url, origin, did });
      const pseed = Identity.generate();
      const enckey = await partner('partner', { seed: pseed.exportSeed().toString('hex'), url: f.broker.url, origin, did });
      const { grant, keys } = (await owner('grant', { subject: pseed.did, enckey })) as { grant: string; keys: number };
      assert.equal(keys, 1);
      await owner('append', { seed: seed(), from: 0, n: 4, marker: MARK });
      const size = (await owner('checkpoint')) as number;
      // The partner reads from the owner first (while it is up).
      const first = (await partner('read', { grant })) as { entries: { opened: { payload: { tag: string } } | null }[] };
      assert.equal(first.entries.length, 4);
      for (let i = 0; ; i++) {
        const st = (await mirror('mirrorState')) as { checkpointSize?: number } | null;
        if (st?.checkpointSize === size) break;
        if (i > 100) assert.fail(`the mirror did not catch up: ${JSON.stringify(st)}`);
        await new Promise((r) => setTimeout(r, 100));
      }

      procs[0].kill('SIGKILL');
      await new Promise((r) => procs[0].once('exit', r));

      const read = (await partner('read', { grant }, 20000)) as {
        size: number;
        entries: { kind: string; opened: { payload: { c: number; tag: string } } | null; error: unknown }[];
      };
      assert.equal(read.size, size);
      assert.deepEqual(
        read.entries.map((e) => [e.kind, e.error, e.opened?.payload.c, e.opened?.payload.tag]),
        [0, 1, 2, 3].map((i) => ['sealed', null, 20 + i, MARK]),
      );
      assert.equal(grep(path.join(f.dir, 'mp-mirror-mirrors'), MARK), false);
      assert.equal(grep(path.join(f.dir, 'mp-owner'), MARK), false);
    } finally {
      for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    }
  });
});
