/**
 * bot-ledger configurations that cannot work fail alone, at once, with a reason naming what
 * to change (issue 11, defects 4 and 5): a folder on a kernel pseudo-filesystem (/proc) or a
 * key file there, without freezing the runtime (Node's recursive mkdir spins forever there),
 * while the other flows run; two ledger nodes on one folder, named both; and two
 * installations importing the same flow get different default origins.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Identity } from '../../lib/format/identity';
import { isBotError } from '../../lib/errors';
import type { Ledger } from '../../lib/store/ledger';
import { ALL_NODES, type FlowNode, freshUserDir, helper, nextMessages } from './util';

const OP = Identity.generate();
const CREDS = { op: { secretKey: OP.exportSeed().toString('hex') } };
interface LedgerConfig {
  lease: { ledger: Promise<Ledger> };
  origin: string;
}
const config = (id: string): LedgerConfig => helper.getNode(id) as unknown as LedgerConfig;

describe('bot-ledger folders and origins that cannot work (Node-RED)', function () {
  this.timeout(20000);
  let userDir: string;
  beforeEach(() => {
    userDir = freshUserDir();
  });
  afterEach(async () => {
    await helper.unload();
    fs.rmSync(userDir, { recursive: true, force: true });
  });

  it('a ledger folder under /proc fails at once with E_STORE; the other flows start and run', async function () {
    if (!fs.existsSync('/proc/self')) this.skip(); // not Linux
    const flow: FlowNode[] = [
      { id: 't1', type: 'tab', label: 'ledger' },
      { id: 'op', type: 'bot-identity', name: 'operator' },
      { id: 'L1', type: 'bot-ledger', name: 'bad', identity: 'op', dir: '/proc/bot-ledger-test/l', checkpointMs: 0 },
      { id: 'a1', type: 'bot-append', z: 't1', ledger: 'L1', name: '', wires: [[]] },
      { id: 'c1', type: 'catch', z: 't1', scope: null, uncaught: false, wires: [['caught']] },
      { id: 'caught', type: 'helper', z: 't1' },
      { id: 'other', type: 'helper', z: 't1' },
    ];
    const t0 = Date.now();
    await helper.load([...ALL_NODES, require('@node-red/nodes/core/common/25-catch.js') as unknown], flow, CREDS);
    await assert.rejects(config('L1').lease.ledger, (e: unknown) => isBotError(e, 'E_STORE') && /procfs/.test(e.message));
    assert.ok(Date.now() - t0 < 5000, 'no freeze');
    const got = nextMessages(helper.getNode('other'), 1, 2000);
    helper.getNode('other').receive({ payload: 'still running' });
    assert.equal((await got)[0].payload, 'still running');
    const caught = nextMessages(helper.getNode('caught'), 1, 5000);
    helper.getNode('a1').receive({ payload: { v: 1 } });
    assert.equal((await caught)[0].error?.code, 'E_STORE');
  });

  it('a key file under /proc fails with a reason instead of freezing the runtime', async function () {
    if (!fs.existsSync('/proc/self')) this.skip();
    const t0 = Date.now();
    await helper.load(ALL_NODES, [{ id: 'k', type: 'bot-identity', name: 'key', keyFile: '/proc/bot-ledger-test/k.pem' }]);
    assert.ok(Date.now() - t0 < 5000, 'no freeze');
    const errors = helper.log().args.filter((a) => JSON.stringify(a).includes('procfs'));
    assert.ok(errors.length > 0 || (helper.getNode('k') as unknown as { configError?: unknown }).configError !== undefined, 'the failure is reported');
  });

  it('two ledger nodes on one folder: the second fails with E_LOCKED naming both', async () => {
    const flow: FlowNode[] = [
      { id: 'op', type: 'bot-identity', name: 'operator' },
      { id: 'L1', type: 'bot-ledger', name: 'Plant', identity: 'op', dir: '', checkpointMs: 0 },
      { id: 'L2', type: 'bot-ledger', name: 'Plant', identity: 'op', dir: '', checkpointMs: 0 },
    ];
    await helper.load(ALL_NODES, flow, CREDS);
    const results = await Promise.allSettled([config('L1').lease.ledger, config('L2').lease.ledger]);
    const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    assert.equal(failed.length, 1, 'exactly one of the two opens the folder');
    assert.ok(isBotError(failed[0].reason, 'E_LOCKED'));
    assert.match(
      String((failed[0].reason as Error).message),
      /bot-ledger "Plant" \(L1\) and bot-ledger "Plant" \(L2\)|bot-ledger "Plant" \(L2\) and bot-ledger "Plant" \(L1\)/,
    );
  });

  it('the same flow imported into two installations gets two default origins', async () => {
    const flow: FlowNode[] = [
      { id: 'op', type: 'bot-identity', name: 'operator' },
      { id: 'ex1-ledger', type: 'bot-ledger', name: 'example', identity: 'op', dir: '', checkpointMs: 0 },
    ];
    await helper.load(ALL_NODES, flow, CREDS);
    const first = (await config('ex1-ledger').lease.ledger).origin;
    await helper.unload();
    const second = freshUserDir();
    try {
      await helper.load(ALL_NODES, flow, CREDS);
      const other = (await config('ex1-ledger').lease.ledger).origin;
      assert.notEqual(first, other);
      assert.match(first, /^bot\.local\/[0-9a-f]{16}\/ex1-ledger$/);
      await helper.unload();
      // The same installation keeps its id (and so its default origins) across restarts.
      helper.settings({ userDir });
      await helper.load(ALL_NODES, flow, CREDS);
      assert.equal((await config('ex1-ledger').lease.ledger).origin, first);
    } finally {
      fs.rmSync(second, { recursive: true, force: true });
    }
  });
});
