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
import { toBase64 } from '../lib/bytes';
import { BotError, FormatError } from '../lib/errors';
import { Ledger, Query } from '../lib/ledger';
import { LedgerLease } from '../lib/registry';
import {
  BotLedgerNode, DoneFn, ledgerNodeOf, NodeAPI, openOrThrow, NodeDef, NodeMessage, RedNode, SendFn, shortMessage, StatusThrottle,
} from './red';

type QueryField = 'from' | 'to' | 'signer' | 'topic' | 'since' | 'until' | 'limit';
const FIELDS: QueryField[] = ['from', 'to', 'signer', 'topic', 'since', 'until', 'limit'];
const NUMERIC = new Set<QueryField>(['from', 'to', 'limit']);
const TIMES = new Set<QueryField>(['since', 'until']);

type BotQueryDef = NodeDef & { name?: string; ledger?: string } & Partial<Record<QueryField, string | number>>;

/** A query field from a setting or a msg: '' / null / undefined = unset; numbers as numbers. */
function field(name: QueryField, v: unknown): string | number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (NUMERIC.has(name) || TIMES.has(name)) {
    if (typeof v === 'number') return v;
    if (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v)) return Number(v);
    if (TIMES.has(name) && typeof v === 'string' && !Number.isNaN(Date.parse(v))) return Date.parse(v);
    throw new FormatError('E_QUERY', `${name} must be an integer${TIMES.has(name) ? ' (ms since the epoch) or a date' : ''}`);
  }
  if (typeof v !== 'string') throw new FormatError('E_QUERY', `${name} must be a string`);
  return v;
}

function buildQuery(base: Partial<Record<QueryField, unknown>>, over: unknown): Query {
  const q: Record<string, string | number> = {};
  const o = over !== null && typeof over === 'object' && !Array.isArray(over) && !(over instanceof Uint8Array)
    ? (over as Record<string, unknown>) : {};
  for (const f of FIELDS) {
    const v = field(f, f in o ? o[f] : base[f]);
    if (v !== undefined) q[f] = v;
  }
  return q as Query;
}

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
      buildQuery(defaults, undefined); // check the settings once, at deploy
      ledgerNode = ledgerNodeOf(RED, def.ledger);
      lease = ledgerNode.acquire();
    } catch (err) {
      setupError = err as Error;
      node.error(err);
      status.now({ fill: 'red', shape: 'ring', text: shortMessage(err) });
    }
    const inflight = new Set<Promise<void>>();

    async function query(l: Ledger, msg: NodeMessage): Promise<void> {
      const q = buildQuery(defaults, msg.payload);
      const cp = ledgerNode?.canSign ? await ledgerNode.checkpointNow() : l.latestCheckpoint();
      if (!cp) {
        msg.payload = { checkpoint: null, entries: [], treeSize: 0 };
        status.now({ fill: 'yellow', shape: 'ring', text: 'no checkpoint yet' });
        return;
      }
      const to = Math.min(q.to ?? cp.size, cp.size);
      const rows = await l.query({ ...q, to });
      const entries = [];
      for (const r of rows) {
        const proof = await l.inclusionProof(r.index, cp.size);
        entries.push({ index: r.index, leaf: JSON.parse(r.leaf.toString('utf8')) as unknown, proof: proof.map(toBase64) });
      }
      msg.payload = { checkpoint: cp.note, entries, treeSize: cp.size };
      status.now({ fill: 'green', shape: 'dot', text: `${entries.length} entries @ ${cp.size}` });
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
      Promise.allSettled([...inflight])
        .then(() => { status.stop(); return lease?.release(); })
        .catch((err: unknown) => node.error(err))
        .finally(() => done());
    });
  }

  RED.nodes.registerType('bot-query', BotQuery);
};
