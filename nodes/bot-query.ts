/**
 * bot-query: reads entries of a ledger with inclusion proofs against its latest signed
 * checkpoint, so a reader can check every entry without trusting the sender.
 *
 * msg.payload {from,to,signer,topic,since,until,limit} (each overriding the node's setting) →
 * msg.payload = {checkpoint: <note text>, entries: [{index, leaf: <envelope>, proof: [base64…]}],
 * treeSize: <checkpoint size>}; with `order: "desc"` the newest matching entries, newest first
 * (lib/access/answer.ts provenQueryLatest). Behind `http in` (msg.res), a failure is answered with msg.statusCode
 * and {error:{code,message}} on the output instead of going to Catch (nodes/http-answer.ts). Entries beyond the checkpoint are first sealed by signing a
 * new checkpoint when this ledger holds the operator key; otherwise they are left out.
 *
 * msg.payload {op: "audit"} → runs the full audit; msg.payload = its result.
 *
 * Mode "serve" (answer partner requests, docs/design.md "Partner access"): msg.payload is a
 * partner's signed request envelope (e.g. from `http in`) → msg.payload = the answer, or the
 * refusal {error:{code,message}}, with msg.statusCode for an `http response` node (and, over
 * a rate limit, 429 with a Retry-After header, RFC 6585 §4). A refusal is an answer, not a
 * flow error: it goes out on the output and shows on the status.
 *
 * Mode "partner" (read an owner's ledger under a grant, through a bot-partner config node):
 * msg.payload {from,to,signer,topic,since,until,limit} → msg.payload = {checkpoint:{origin,
 * size,root,note}, entries:[{index, leaf, leafHash}], next?} after every signature and
 * inclusion proof verified; a refusal or a failed check is an error (Catch nodes) naming it.
 *
 * Confidential entries (docs/design.md "Confidential entries"): in local mode, on a ledger with
 * confidential scopes, each sealed entry gets `sealed: {scope, epoch}` and `opened: <the
 * device's envelope>` (the owner holds every key), or `error: {code, message}` when it does
 * not open; the leaf and its proof are those of the sealed envelope. In partner mode, sealed
 * entries are opened with this partner's keys (PartnerClient.readOpen): `opened` when both the
 * sealer's and the device's signatures verified, else `sealed` with the reason (`error`, e.g.
 * E_NO_KEY for entries sealed after a revocation).
 */
import { auditLedger } from '../lib/store/audit';
import { refusal, refusalStatus } from '../lib/access/access';
import { provenQuery, provenQueryLatest, queryFrom, queryOrder } from '../lib/access/answer';
import { BotError, FormatError } from '../lib/errors';
import { type Ledger } from '../lib/store/ledger';
import { openSealedEntries } from '../lib/confidential/owner';
import { type LedgerLease } from '../lib/store/registry';
import { answeringDone } from './http-answer';

import type { DoneFn, NodeAPI, NodeDef, NodeMessage, RedNode, SendFn } from './red-api';
import { type BotPartnerNode, partnerNodeOf, type BotLedgerNode, ledgerNodeOf } from './config-nodes';
import { setupFailed, StatusThrottle } from './node-status';
import { tr, useI18n } from './i18n';
import { closeAfterJobs, runMessageJob, showOwnerLink, openOrThrow, showStoreHealth } from './jobs';

type QueryField = 'from' | 'to' | 'signer' | 'topic' | 'since' | 'until' | 'limit';
const FIELDS: QueryField[] = ['from', 'to', 'signer', 'topic', 'since', 'until', 'limit'];

type BotQueryDef = NodeDef & { name?: string; ledger?: string; mode?: 'local' | 'serve' | 'partner'; partner?: string } & Partial<
    Record<QueryField, string | number>
  >;

export = function (RED: NodeAPI): void {
  useI18n(RED);
  function BotQuery(this: RedNode, def: BotQueryDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const status = new StatusThrottle(node, 500);
    let ledgerNode: BotLedgerNode | undefined;
    let lease: LedgerLease | undefined;
    let partner: BotPartnerNode | undefined;
    let setupError: Error | undefined;
    const mode = def.mode === 'serve' || def.mode === 'partner' ? def.mode : 'local';
    const defaults: Partial<Record<QueryField, unknown>> = {};
    let unsubscribe: (() => void) | undefined;
    try {
      for (const f of FIELDS) defaults[f] = def[f];
      queryFrom(defaults); // check the settings once, at deploy
      if (mode === 'partner') {
        partner = partnerNodeOf(RED, def.partner);
        unsubscribe = showOwnerLink(partner, status);
      } else {
        ledgerNode = ledgerNodeOf(RED, def.ledger);
        lease = ledgerNode.acquire();
        showStoreHealth(lease, status, () => status.now({}));
      }
    } catch (err) {
      setupError = setupFailed(node, status, err);
    }
    const inflight = new Set<Promise<void>>();
    let served = 0;
    let refused = 0;

    /** Answer a partner's request; a refusal is the answer (with its HTTP status), not an error. */
    async function serve(msg: NodeMessage): Promise<void> {
      try {
        msg.payload = await (ledgerNode as BotLedgerNode).answerRequest(msg.payload);
        msg.statusCode = 200;
        served++;
      } catch (err) {
        const body = refusal(err);
        msg.payload = body;
        msg.statusCode = refusalStatus(body.error.code);
        if (msg.statusCode === 429) msg.headers = { ...(msg.headers as Record<string, string> | undefined), 'Retry-After': '1' };
        refused++;
        status.now({ fill: 'yellow', shape: 'dot', text: tr('bot-query.status.refused', { code: body.error.code, served, refused }) });
        return;
      }
      status.update(() => ({ fill: 'green', shape: 'dot', text: tr('bot-query.status.answered', { served, refused }) }));
    }

    /** Read the owner's ledger under the grant and keep only what verified. */
    async function readRemote(msg: NodeMessage): Promise<void> {
      const client = await (partner as BotPartnerNode).client();
      const q = queryFrom(defaults, msg.payload);
      const v = await client.readOpen(q);
      msg.payload = v;
      const sealed = v.entries.filter((e) => e.sealed && !e.opened).length;
      status.now({
        fill: 'green',
        shape: 'dot',
        text: sealed
          ? tr('bot-query.status.verifiedSealed', { n: v.entries.length, size: v.checkpoint.size, sealed })
          : tr('bot-query.status.verified', { n: v.entries.length, size: v.checkpoint.size }),
      });
    }

    async function query(l: Ledger, msg: NodeMessage): Promise<void> {
      const q = queryFrom(defaults, msg.payload);
      const cp = ledgerNode?.canSign ? await ledgerNode.checkpointNow() : l.latestCheckpoint();
      if (!cp) {
        msg.payload = { checkpoint: null, entries: [], treeSize: 0 };
        status.now({ fill: 'yellow', shape: 'ring', text: tr('bot-query.status.noCheckpoint') });
        return;
      }
      // order "desc": the newest matching entries first (lib/access/answer.ts provenQueryLatest).
      const answer = queryOrder(msg.payload) === 'desc' ? await provenQueryLatest(l, q, cp) : await provenQuery(l, q, cp);
      await openSealedEntries(() => (ledgerNode as BotLedgerNode).confidential(), answer.entries);
      msg.payload = answer;
      status.now({ fill: 'green', shape: 'dot', text: tr('bot-query.status.entries', { n: answer.entries.length, size: cp.size }) });
    }

    async function audit(l: Ledger, msg: NodeMessage): Promise<void> {
      status.now({ fill: 'blue', shape: 'ring', text: tr('bot-query.status.audit', { checked: 0, size: l.size }) });
      const result = await auditLedger(l, {
        onProgress: (p) => status.update(() => ({ fill: 'blue', shape: 'ring', text: tr('bot-query.status.audit', { checked: p.checked, size: p.size }) })),
      });
      msg.payload = result;
      status.now(
        result.ok
          ? { fill: 'green', shape: 'dot', text: tr('bot-query.status.auditOk', { size: result.size }) }
          : { fill: 'red', shape: 'dot', text: tr('bot-query.status.auditFailed', { index: result.index, code: result.code }) },
      );
    }

    node.on('input', (msg: NodeMessage, send: SendFn, nodeDone: DoneFn) => {
      // Behind `http in` (msg.res), a failure is the answer, so the request never hangs (nodes/http-answer.ts).
      const done = answeringDone(msg, send, nodeDone, { upstream: mode === 'partner', setup: setupError !== undefined });
      if (setupError) {
        done(setupError);
        return;
      }
      if (mode !== 'local') {
        runMessageJob(inflight, mode === 'serve' ? serve(msg) : readRemote(msg), status, msg, send, done);
        return;
      }
      if (!lease) {
        done(new BotError('E_NOT_FOUND', 'no ledger configured'));
        return;
      }
      const p = msg.payload as { op?: unknown } | null | undefined;
      const op = p !== null && typeof p === 'object' && 'op' in p ? p.op : undefined;
      runMessageJob(
        inflight,
        lease.ledger.then((l) => {
          openOrThrow(l);
          if (op === 'audit') return audit(l, msg);
          if (op !== undefined && op !== 'query')
            throw new FormatError('E_QUERY', `unknown op ${JSON.stringify(String(op).slice(0, 40))} (use "query" or "audit")`);
          return query(l, msg);
        }),
        status,
        msg,
        send,
        done,
      );
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      unsubscribe?.();
      closeAfterJobs(node, status, inflight, lease, done);
    });
  }

  RED.nodes.registerType('bot-query', BotQuery);
};
