/**
 * The partner-request rate limits a bot-ledger applies (issue 10, defect 7), in a Node-RED
 * runtime: its Rate limit settings, E_RATE refusals with HTTP 429 and Retry-After from a
 * bot-query answering partner requests, and a refused setting at deploy.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeRequest } from '../../lib/access/access';
import { signEnvelope } from '../../lib/format/envelope';
import { grantInput } from '../../lib/access/grants';
import { Identity } from '../../lib/format/identity';
import { type Ledger } from '../../lib/store/ledger';
import { ALL_NODES, type FlowNode, freshUserDir, helper, type Msg, nextMessage } from './util';

const OPERATOR = Identity.generate();
const PARTNER = Identity.generate();
const ORIGIN = 'test.example/limits';
const CREDS = { op: { secretKey: OPERATOR.exportSeed().toString('hex') } };

function flow(dir: string, ledger: Record<string, unknown>): FlowNode[] {
  return [
    { id: 't1', type: 'tab', label: 'limits' },
    { id: 'op', type: 'bot-identity', name: 'operator' },
    {
      id: 'L1',
      type: 'bot-ledger',
      name: 'owner',
      origin: ORIGIN,
      identity: 'op',
      dir,
      checkpointMs: 0,
      checkpointEntries: 0,
      maxEntryBytes: 65536,
      ...ledger,
    },
    { id: 'qs', type: 'bot-query', z: 't1', ledger: 'L1', mode: 'serve', name: '', wires: [['qsout']] },
    { id: 'qsout', type: 'helper', z: 't1' },
  ];
}

describe('bot-ledger rate limits for partner requests (Node-RED)', function () {
  this.timeout(20000);
  let userDir: string;
  beforeEach(() => {
    userDir = freshUserDir();
  });
  afterEach(async () => {
    await helper.unload();
    fs.rmSync(userDir, { recursive: true, force: true });
  });

  it('answers at most "per partner" requests a second: the next is refused E_RATE with HTTP 429 and Retry-After', async () => {
    await helper.load(ALL_NODES, flow(path.join(userDir, 'ledger'), { rateSigner: '2', rateTotal: '100' }), CREDS);
    const l = await (helper.getNode('L1') as unknown as { lease: { ledger: Promise<Ledger> } }).lease.ledger;
    await l.append(
      signEnvelope(
        OPERATOR,
        grantInput(
          { id: 'g-1', subject: PARTNER.did, ledger: ORIGIN, actions: ['read'], scope: { signers: '*' }, expires: Date.now() + 3_600_000 },
          1,
          Date.now(),
        ),
      ),
    );
    const call = async (seq: number): Promise<Msg> => {
      const m = nextMessage(helper.getNode('qsout'), 10000);
      helper.getNode('qs').receive({ payload: makeRequest(PARTNER, seq, { op: 'read', grant: 'g-1' }).toJSON() });
      return m;
    };
    const codes: unknown[] = [];
    for (let seq = 1; seq <= 3; seq++) codes.push((await call(seq)).statusCode);
    assert.deepEqual(codes, [200, 200, 429]);
    const refused = await call(4);
    assert.equal(refused.statusCode, 429);
    assert.equal((refused.payload as { error: { code: string } }).error.code, 'E_RATE');
    assert.equal((refused.headers as Record<string, string>)['Retry-After'], '1');
  });

  it('refuses a rate limit that is not a whole number at deploy (E_RANGE), and 0 means no limit', async () => {
    await helper.load(ALL_NODES, flow(path.join(userDir, 'ledger'), { rateSigner: '2.5' }), CREDS);
    const l = helper.getNode('L1') as unknown as { configError?: { code: string; message: string } };
    assert.equal(l.configError?.code, 'E_RANGE');
    assert.match(l.configError?.message ?? '', /per partner/);
    const m = nextMessage(helper.getNode('qsout'), 5000);
    helper.getNode('qs').receive({ payload: makeRequest(PARTNER, 1, { op: 'read', grant: 'g-1' }).toJSON() });
    assert.equal(((await m).payload as { error: { code: string } }).error.code, 'E_RANGE', 'a ledger with a bad setting answers nothing but its error');
    await helper.unload();
    await helper.load(ALL_NODES, flow(path.join(userDir, 'ledger2'), { rateSigner: '0', rateTotal: '0' }), CREDS);
    const l2 = await (helper.getNode('L1') as unknown as { lease: { ledger: Promise<Ledger> } }).lease.ledger;
    await l2.append(
      signEnvelope(
        OPERATOR,
        grantInput(
          { id: 'g-1', subject: PARTNER.did, ledger: ORIGIN, actions: ['read'], scope: { signers: '*' }, expires: Date.now() + 3_600_000 },
          1,
          Date.now(),
        ),
      ),
    );
    for (let seq = 1; seq <= 30; seq++) {
      const m2 = nextMessage(helper.getNode('qsout'), 10000);
      helper.getNode('qs').receive({ payload: makeRequest(PARTNER, seq, { op: 'read', grant: 'g-1' }).toJSON() });
      assert.equal((await m2).statusCode, 200);
    }
  });
});
