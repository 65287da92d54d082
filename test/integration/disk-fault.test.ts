/**
 * A failing disk never loses an acknowledged entry (issue 10, defect 2; README "Storage and
 * durability"). After a failed LevelDB write the ledger is fail-stop: every later write is
 * refused with StoreError E_STORE until it is reopened, and a reopened ledger holds exactly
 * what was acknowledged, its checkpoints never contradicted (no two roots at one size).
 *
 * - On a real full filesystem: a 2 MiB tmpfs filled until ENOSPC (the test is skipped, with
 *   the reason printed, only when not root; a failed mount as root fails it).
 * - With injected failures (ENOSPC, EIO) at each write of the ledger, before and after the
 *   write reached the store (test/faults.ts).
 * - Through the registry, which reopens a failed shared ledger by itself, and in Node-RED,
 *   where bot-append shows "store failed: <reason> — reopening" and recovers.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fromTrustedLeaf, signEnvelope, type SignedEnvelope } from '../../lib/format/envelope';
import { isBotError, type StoreError } from '../../lib/errors';
import { Identity } from '../../lib/format/identity';
import { Ledger } from '../../lib/store/ledger';
import { acquireLedger, settledLedgers, type StoreHealth } from '../../lib/store/registry';
import { Acks, assertStoreFailure, type Errno, injectFaults, type Injector, mountTmpfs, type Phase, type Tmpfs } from '../faults';
import { tmpDir, until } from '../helpers';
import { ALL_NODES, helper, type Msg, statuses } from '../nodes/util';

const ORIGIN = 'test.example/disk-fault';
const op = Identity.generate();
const dev = Identity.generate();
let seq = 0;
const env = (pad = 40): SignedEnvelope => signEnvelope(dev, { kind: 'reading', seq: seq++, ts: Date.now(), payload: { pad: 'x'.repeat(pad) } });
const CAUSE: Record<Errno, RegExp> = { ENOSPC: /No space left on device/, EIO: /Input\/output error/ };

/** Each promise rejects with the ledger's E_STORE naming the cause. */
async function allRefused(ps: Promise<unknown>[], cause: RegExp): Promise<void> {
  for (const r of await Promise.allSettled(ps)) {
    assert.equal(r.status, 'rejected', 'a write was accepted by a failed ledger');
    assertStoreFailure((r as PromiseRejectedResult).reason, cause);
  }
}

/** Append n entries at once (one group commit) and record their receipts. */
async function appendMany(l: Ledger, acks: Acks, n: number, pad = 40): Promise<void> {
  for (const r of await Promise.all(Array.from({ length: n }, () => l.append(env(pad))))) acks.receipt(r);
}

/** Append one at a time until the store refuses (a write may still fit in a page already allocated). */
async function appendUntilRefused(l: Ledger, acks: Acks, pad: number): Promise<unknown> {
  for (let i = 0; i < 500; i++) {
    try {
      acks.receipt(await l.append(env(pad)));
    } catch (err) {
      return err;
    }
  }
  throw new Error('the full disk accepted 500 appends');
}

describe('disk faults: a failing store never loses an acknowledged entry', function () {
  this.timeout(20000);

  describe('a real full filesystem (2 MiB tmpfs)', () => {
    let disk: Tmpfs | undefined;
    before(function () {
      const m = mountTmpfs(2048);
      if (typeof m === 'string') {
        console.warn(`      SKIPPED (real full filesystem): ${m}`);
        this.skip();
      }
      disk = m as Tmpfs;
    });
    after(async () => {
      await settledLedgers();
      disk?.unmount();
    });

    it('refuses writes once the disk is full, and after space is freed, until reopened; then holds exactly what was acknowledged', async () => {
      const d = disk as Tmpfs;
      const dir = path.join(d.dir, 'direct');
      const acks = new Acks();
      let l = await Ledger.open({ dir, origin: ORIGIN, identity: op });
      acks.follow(l);
      const failures: (StoreError | undefined)[] = [];
      l.onFailure((f) => failures.push(f));
      for (let i = 0; i < 5; i++) await appendMany(l, acks, 10, 200);
      assert.ok(await l.checkpoint());

      d.fill();
      const err = await appendUntilRefused(l, acks, 200);
      assertStoreFailure(err, /No space left on device/);
      assert.equal(l.failure, err);
      assert.deepEqual(failures, [err]);
      // Everything after the failure is refused: queued appends, checkpoint, aux records.
      await allRefused(
        [l.append(env()), l.append(env()), l.append(env()), l.checkpoint(), l.aux.batch([{ key: 'k', value: Buffer.from('v') }])],
        /No space left on device/,
      );
      // Reads go on from the committed state.
      const size = l.size;
      assert.equal((await l.get(size - 1)).index, size - 1);
      // Reopening on a disk that is still full fails (typed); the ledger stays failed.
      await assert.rejects(l.reopen(), (e: Error) => isBotError(e, 'E_STORE'));
      assert.ok(l.failure);
      await assert.rejects(l.get(0), (e: Error) => isBotError(e, 'E_STORE') && /reopened/.test(e.message));

      // Space is back, but what LevelDB wrote after its failed write is not trusted: still refused.
      d.free();
      await allRefused([l.append(env()), l.checkpoint()], /No space left on device/);

      await l.reopen();
      assert.equal(l.failure, undefined);
      assert.deepEqual(failures, [err, undefined]);
      await acks.check(l, 'reopened in place');
      await appendMany(l, acks, 20, 200);
      const cp = await l.checkpoint();
      assert.ok(cp && cp.size === l.size);
      await l.close();
      l = await Ledger.open({ dir, create: false });
      await acks.check(l, 'restarted');
      await l.close();
    });

    it('the registry reopens a failed shared ledger with back-off, by itself, once space is freed', async () => {
      const d = disk as Tmpfs;
      const dir = path.join(d.dir, 'shared');
      const acks = new Acks();
      const lease = acquireLedger({ dir, origin: ORIGIN, identity: op, reopenMinMs: 100, reopenMaxMs: 300 });
      try {
        const l = await lease.ledger;
        acks.follow(l);
        const seen: StoreHealth[] = [];
        lease.onHealth((h) => seen.push(h));
        await appendMany(l, acks, 30, 200);
        assert.ok(await l.checkpoint());
        d.fill();
        const err = await appendUntilRefused(l, acks, 200);
        assertStoreFailure(err, /No space left on device/);
        assert.equal(lease.health.failure, err);
        assert.equal(lease.health.reason, 'No space left on device');
        // While the disk is full, the attempts fail (typed) and back off; writes stay refused.
        await until('two failed reopen attempts', () => lease.health.attempts >= 2, 5000);
        assert.ok(isBotError(lease.health.lastError, 'E_STORE'));
        assert.ok((lease.health.retryAt ?? 0) > Date.now() - 1000);
        await allRefused([(lease.current as Ledger).append(env())], /No space left on device/);
        d.free();
        await until('the registry to reopen the ledger', () => lease.health.failure === undefined, 5000);
        assert.equal(lease.current, l, 'users of the lease get the reopened ledger');
        assert.equal(await lease.ledger, l);
        assert.equal(l.failure, undefined);
        assert.equal(seen[seen.length - 1].failure, undefined);
        assert.ok(seen.some((h) => h.failure === err && h.attempts >= 1));
        await acks.check(l, 'reopened by the registry');
        await appendMany(l, acks, 5);
        assert.ok(await l.checkpoint());
      } finally {
        d.free();
        await lease.release();
      }
      const l2 = await Ledger.open({ dir, create: false });
      await acks.check(l2, 'restarted');
      await l2.close();
    });

    it('Node-RED: bot-append shows "store failed: <reason> — reopening", and its ledger recovers by itself', async () => {
      const d = disk as Tmpfs;
      const dir = path.join(d.dir, 'node-red');
      const userDir = tmpDir('bot-nr-fault-');
      helper.settings({ userDir: userDir.dir });
      const flow = [
        { id: 't1', type: 'tab', label: 'fault' },
        { id: 'op', type: 'bot-identity', name: 'operator' },
        { id: 'L1', type: 'bot-ledger', name: 'main', origin: ORIGIN, identity: 'op', dir, checkpointMs: 0, checkpointEntries: 0, maxEntryBytes: 65536 },
        { id: 'a1', type: 'bot-append', z: 't1', ledger: 'L1', name: '', wires: [['out']] },
        { id: 'out', type: 'helper', z: 't1' },
        { id: 'c1', type: 'catch', z: 't1', scope: null, uncaught: false, wires: [['caught']] },
        { id: 'caught', type: 'helper', z: 't1' },
      ];
      const send = (pad = 200): Record<string, unknown> => JSON.parse(env(pad).bytes.toString()) as Record<string, unknown>;
      try {
        await helper.load(ALL_NODES, flow, { op: { secretKey: op.exportSeed().toString('hex') } });
        const a1 = helper.getNode('a1');
        const st = statuses(a1);
        const outs: Msg[] = [];
        const errs: Msg[] = [];
        helper.getNode('out').on('input', (m: Msg) => outs.push(m));
        helper.getNode('caught').on('input', (m: Msg) => errs.push(m));
        /** Send one envelope; resolves once it was appended or refused. */
        const one = async (): Promise<void> => {
          const n = outs.length + errs.length;
          a1.receive({ payload: send() });
          await until('the append to finish', () => outs.length + errs.length > n, 5000);
        };
        await one();
        assert.equal((outs[0]?.ledger as { index: number }).index, 0);
        d.fill();
        // Append until one is refused (the Catch node gets the typed error).
        for (let i = 0; i < 200 && errs.length === 0; i++) await one();
        const refused = errs[0];
        assert.ok(refused, 'the full disk never refused an append');
        assert.equal(refused.error?.code, 'E_STORE');
        await until(
          'the store-failed status',
          () => st.some((s) => s.fill === 'red' && /^store failed: No space left on device — reopening/.test(s.text ?? '')),
          3000,
        );
        d.free();
        // The registry reopens after 1 s; the status returns to normal.
        await until(
          'the normal status after the reopen',
          () => {
            const s = st[st.length - 1];
            return s.fill === 'grey' && /^size \d+$/.test(s.text ?? '');
          },
          6000,
        );
        const before = outs.length;
        await one();
        assert.equal(outs.length, before + 1, `refused after the reopen: ${JSON.stringify(errs[errs.length - 1]?.error)}`);
        assert.ok((outs[outs.length - 1].ledger as { index: number }).index >= 1);
      } finally {
        d.free();
        await helper.unload();
        await settledLedgers();
        userDir.cleanup();
      }
    });
  });

  describe('injected write failures (ENOSPC, EIO) at each write of the ledger', () => {
    let t: ReturnType<typeof tmpDir>;
    let inj: Injector;
    before(() => {
      t = tmpDir('bot-fault-');
    });
    after(() => t.cleanup());
    beforeEach(() => {
      inj = injectFaults();
    });
    afterEach(() => inj.restore());

    type Kind = 'append' | 'checkpoint' | 'storeCheckpoint' | 'aux';
    const kinds: Kind[] = ['append', 'checkpoint', 'storeCheckpoint', 'aux'];
    for (const kind of kinds) {
      for (const phase of ['before', 'after'] as Phase[]) {
        for (const errno of ['ENOSPC', 'EIO'] as Errno[]) {
          // Half the cases reopen in place (Ledger.reopen), half close and open again.
          const inPlace = (phase === 'before') === (errno === 'ENOSPC');
          it(`${kind} write fails ${phase} reaching the store (${errno}), ${inPlace ? 'reopen()' : 'close + open'}: refused until reopened, nothing acknowledged lost`, async () => {
            await faultCase(t.dir, inj, kind, phase, errno, inPlace);
          });
        }
      }
    }

    it('an appendAll group is written in one batch (never cut at maxBatch), and refused whole when that write fails', async () => {
      const dir = path.join(t.dir, 'group');
      let l = await Ledger.open({ dir, origin: ORIGIN, identity: op, maxBatch: 4 });
      const acks = new Acks();
      const commits: number[][] = [];
      l.onCommit((c) => commits.push(Array.from({ length: c.leaves.length }, (_, i) => c.from + i)));
      // Three single appends then a group of three, all queued for the same commit: 4 per batch.
      const singles = [l.append(env()), l.append(env()), l.append(env())];
      const group = l.appendAll([env(), env(), env()]);
      for (const r of [...(await Promise.all(singles)), ...(await group)]) acks.receipt(r);
      const groupIdx = (await group).map((r) => r.index);
      assert.ok(
        commits.some((c) => groupIdx.every((i) => c.includes(i))),
        `the group ${groupIdx} was split across commits ${JSON.stringify(commits)}`,
      );
      // The batch holding a group fails: every member is refused, and none is there after a reopen.
      inj.arm('append', 'before', 'EIO', { dir });
      const size = l.size;
      await allRefused([l.appendAll([env(), env()]), l.append(env())], CAUSE.EIO);
      await l.close();
      l = await Ledger.open({ dir, identity: op });
      assert.equal(l.size, size);
      await acks.check(l, 'reopened');
      await l.close();
    });

    for (const phase of ['before', 'after'] as Phase[]) {
      for (const errno of ['ENOSPC', 'EIO'] as Errno[]) {
        it(`creating a ledger fails ${phase} reaching the store (${errno}): typed E_STORE, and the next open creates or finds it`, async () => {
          const dir = path.join(t.dir, `create-${phase}-${errno}`);
          inj.arm('create', phase, errno, { dir });
          await assert.rejects(Ledger.open({ dir, origin: ORIGIN, identity: op }), (e: Error) => assertStoreFailure(e, CAUSE[errno]));
          assert.ok(fs.existsSync(path.join(dir, 'CURRENT')));
          if (phase === 'before') {
            // An empty store is a creation that did not finish: not a ledger yet, nor a corrupt one.
            await assert.rejects(Ledger.open({ dir, create: false }), (e: Error) => isBotError(e, 'E_NOT_FOUND'));
          }
          const l = await Ledger.open({ dir, origin: ORIGIN, identity: op });
          assert.equal(l.origin, ORIGIN);
          const acks = new Acks();
          await appendMany(l, acks, 3);
          acks.note(((await l.checkpoint()) as { note: string }).note, true);
          await acks.check(l, 'created');
          await l.close();
        });
      }
    }
  });
});

/**
 * One injected failure: a ledger with acknowledged entries and a checkpoint; the chosen write
 * fails (with more work queued behind it at that moment); everything is refused, nothing
 * more reaches LevelDB; reopen; every acknowledged entry and checkpoint holds, signing again
 * at the failed checkpoint's size gives the same root, and after a restart too.
 */
async function faultCase(
  base: string,
  inj: Injector,
  kind: 'append' | 'checkpoint' | 'storeCheckpoint' | 'aux',
  phase: Phase,
  errno: Errno,
  inPlace: boolean,
): Promise<void> {
  const cause = CAUSE[errno];
  const dir = path.join(base, `${kind}-${phase}-${errno}`);
  const main = await Ledger.open({ dir, origin: ORIGIN, identity: op });
  const mainAcks = new Acks();
  mainAcks.follow(main);
  await appendMany(main, mainAcks, 20);
  mainAcks.note(((await main.checkpoint()) as { note: string }).note, true);
  await appendMany(main, mainAcks, 5);

  // The ledger under test: the main one, or (storeCheckpoint) a read-only copy of it.
  let l = main;
  let acks = mainAcks;
  let tdir = dir;
  if (kind === 'storeCheckpoint') {
    tdir = `${dir}-mirror`;
    l = await Ledger.open({ dir: tdir, origin: ORIGIN, operator: op.did });
    acks = new Acks();
    acks.follow(l);
    for await (const e of main.entries()) acks.receipt(await l.append(fromTrustedLeaf(e.leaf)));
    acks.note((await l.storeCheckpoint((main.latestCheckpoint() as { note: string }).note)).note, true);
  }
  const failures: (StoreError | undefined)[] = [];
  l.onFailure((f) => failures.push(f));

  // Work queued at the moment of the failure, behind the failing write.
  const queued: Promise<unknown>[] = [];
  const onFault = (): void => {
    queued.push(l.append(env()), l.aux.batch([{ key: 'queued', value: Buffer.from('1') }]));
  };
  const wantSize = kind === 'storeCheckpoint' ? main.size : l.size;
  const wantRoot = kind === 'storeCheckpoint' ? main.root() : l.root();
  if (kind === 'storeCheckpoint') assert.ok(await main.checkpoint());
  inj.arm(kind === 'storeCheckpoint' ? 'checkpoint' : kind, phase, errno, { dir: tdir, onFault });
  let failed: Promise<unknown>;
  switch (kind) {
    case 'append':
      failed = Promise.all([l.append(env()), l.append(env())]);
      break;
    case 'checkpoint':
      failed = l.checkpoint();
      break;
    case 'storeCheckpoint':
      failed = l.storeCheckpoint((main.latestCheckpoint() as { note: string }).note);
      break;
    case 'aux':
      failed = l.aux.batch([{ key: 'state', value: Buffer.from('x') }]);
      break;
  }
  await assert.rejects(failed, (e: Error) => assertStoreFailure(e, cause));
  assert.ok(inj.fired, 'the fault was not injected');
  assert.ok(l.failure && assertStoreFailure(l.failure, cause));
  assert.deepEqual(failures, [l.failure]);
  assert.equal(queued.length, 2);
  await allRefused(queued, cause);
  // Every write is refused, and none reaches LevelDB, until the ledger is reopened.
  await allRefused(
    [
      l.append(env()),
      l.checkpoint(),
      l.aux.batch([{ key: 'later', value: Buffer.from('1') }]),
      l.storeCheckpoint((main.latestCheckpoint() as { note: string }).note),
    ],
    cause,
  );
  assert.equal(inj.writesAfterFault, 0, 'a write reached LevelDB after the store failed');
  // Reads go on.
  assert.equal((await l.get(0)).index, 0);
  assert.ok((await l.inclusionProof(0)).length > 0);

  if (inPlace) {
    await l.reopen();
    assert.deepEqual(failures.slice(1), [undefined]);
  } else {
    await l.close();
    l = await Ledger.open({ dir: tdir, identity: kind === 'storeCheckpoint' ? undefined : op });
    acks.follow(l);
  }
  assert.equal(l.failure, undefined);
  await acks.check(l, 'reopened');
  // The failed checkpoint signed (or stored) again at that size: the same root.
  if (kind === 'checkpoint' || kind === 'storeCheckpoint') {
    const cp =
      kind === 'checkpoint' ? ((await l.checkpoint()) ?? l.latestCheckpoint()) : await l.storeCheckpoint((main.latestCheckpoint() as { note: string }).note);
    assert.ok(cp);
    acks.note(cp.note, true);
    assert.equal(cp.size, wantSize);
    assert.ok((await l.rootAt(wantSize)).equals(wantRoot));
  }
  // It works again, and a restart finds the same.
  if (kind !== 'storeCheckpoint') {
    await appendMany(l, acks, 5);
    acks.note(((await l.checkpoint()) as { note: string }).note, true);
  } else {
    await l.aux.batch([{ key: 'after', value: Buffer.from('1') }]);
  }
  await l.close();
  const again = await Ledger.open({ dir: tdir });
  await acks.check(again, 'restarted');
  await again.close();
  if (main !== l) await main.close();
}
