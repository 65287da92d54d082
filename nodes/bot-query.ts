/**
 * bot-query: reads entries of a ledger with inclusion proofs against its latest signed
 * checkpoint, so a reader can check every entry without trusting the sender.
 *
 * msg.payload {from,to,signer,topic,since,until,limit} (each overriding the node's setting) →
 * msg.payload = {checkpoint: <note text>, entries: [{index, leaf: <envelope>, proof: [base64…]}],
 * treeSize: <checkpoint size>}. Entries beyond the checkpoint are first sealed by signing a
 * new checkpoint when this ledger holds the operator key; otherwise they are left out.
 *
 * msg.payload {op: "audit"} → runs the full audit; msg.payload = its result.
 */
import { auditLedger } from '../lib/audit';
import { provenQuery, queryFrom } from '../lib/answer';
import { BotError, FormatError } from '../lib/errors';
import { Ledger } from '../lib/ledger';
import { LedgerLease } from '../lib/registry';
import {
  closeAfterJobs, setupFailed, BotLedgerNode, DoneFn, ledgerNodeOf, NodeAPI, openOrThrow, NodeDef, NodeMessage, RedNode, SendFn, shortMessage, StatusThrottle,
} from './red';

type QueryField = 'from' | 'to' | 'signer' | 'topic' | 'since' | 'until' | 'limit';
const FIELDS: QueryField[] = ['from', 'to', 'signer', 'topic', 'since', 'until', 'limit'];

type BotQueryDef = NodeDef & { name?: string; ledger?: string } & Partial<Record<QueryField, string | number>>;

export = function (RED: NodeAPI): void {
  function BotQuery(this: RedNode, def: BotQueryDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const status = new StatusThrottle(node, 500);
    let ledgerNode: BotLedgerNode | undefined;
    let lease: LedgerLease | undefined;
    let setupError: Error | undefined;
    const defaults: Partial<Record<QueryField, unknown>> = {};
    try {
      for (const f of FIELDS) defaults[f] = def[f];
      queryFrom(defaults); // check the settings once, at deploy
      ledgerNode = ledgerNodeOf(RED, def.ledger);
      lease = ledgerNode.acquire();
    } catch (err) {
      setupError = setupFailed(node, status, err);
    }
    const inflight = new Set<Promise<void>>();

    async function query(l: Ledger, msg: NodeMessage): Promise<void> {
      const q = queryFrom(defaults, msg.payload);
      const cp = ledgerNode?.canSign ? await ledgerNode.checkpointNow() : l.latestCheckpoint();
      if (!cp) {
        msg.payload = { checkpoint: null, entries: [], treeSize: 0 };
        status.now({ fill: 'yellow', shape: 'ring', text: 'no checkpoint yet' });
        return;
      }
      const answer = await provenQuery(l, q, cp);
      msg.payload = answer;
      status.now({ fill: 'green', shape: 'dot', text: `${answer.entries.length} entries @ ${cp.size}` });
    }

    async function audit(l: Ledger, msg: NodeMessage): Promise<void> {
      status.now({ fill: 'blue', shape: 'ring', text: `audit 0/${l.size}` });
      const result = await auditLedger(l, {
        onProgress: (p) => status.update(() => ({ fill: 'blue', shape: 'ring', text: `audit ${p.checked}/${p.size}` })),
      });
      msg.payload = result;
      status.now(result.ok
        ? { fill: 'green', shape: 'dot', text: `audit ok · ${result.size} entries` }
        : { fill: 'red', shape: 'dot', text: `audit failed at #${result.index}: ${result.code}` });
    }

    node.on('input', (msg: NodeMessage, send: SendFn, done: DoneFn) => {
      if (setupError || !lease) { done(setupError ?? new BotError('E_NOT_FOUND', 'no ledger configured')); return; }
      const p = msg.payload as { op?: unknown } | null | undefined;
      const op = p !== null && typeof p === 'object' && 'op' in p ? p.op : undefined;
      const job = lease.ledger.then((l) => {
        openOrThrow(l);
        if (op === 'audit') return audit(l, msg);
        if (op !== undefined && op !== 'query') throw new FormatError('E_QUERY', `unknown op ${JSON.stringify(String(op).slice(0, 40))} (use "query" or "audit")`);
        return query(l, msg);
      }).then(() => { send(msg); done(); }, (err: unknown) => {
        status.now({ fill: 'red', shape: 'ring', text: shortMessage(err) });
        done(err instanceof Error ? err : new BotError('E_STORE', String(err)));
      }).finally(() => { inflight.delete(job); });
      inflight.add(job);
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      closeAfterJobs(node, status, inflight, lease, done);
    });
  }

  RED.nodes.registerType('bot-query', BotQuery);
};
