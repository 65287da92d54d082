/**
 * The admin HTTP endpoints of the deployed ledgers (registered once per runtime), and the
 * registry of live bot-ledger config nodes they (and the editor sidebar) read.
 *
 *   GET /bot-ledger/ledgers                       → [{id,name,origin,did,treeSize,checkpoint}]
 *       (+ {witnesses,quorum,confirmedSize,confirmedCheckpoint,mirrors} when a broker is configured)
 *   GET /bot-ledger/ledgers/:id/entries?from=&limit= → {treeSize, entries:[{index,leafHash,leaf}]}
 *
 * Every endpoint needs the `bot-ledger.read` permission. The partner-side access endpoints
 * (nodes/access-admin.ts, `bot-ledger.write`) are registered with them.
 */
import { toBase64 } from '../lib/format/bytes';
import type { Consortium } from '../lib/consortium/consortium';
import { BotError } from '../lib/errors';
import type { Ledger } from '../lib/store/ledger';
import type { QuorumPolicy } from '../lib/consortium/quorum';
import { registerAccessAdmin } from './access-admin';
import { type AdminRequest, type AdminResponse, type BotLedgerNode, type NodeAPI, openOrThrow } from './red';

const MAX_LIST = 1000;

/** Live bot-ledger config nodes of this runtime, for the admin endpoints. */
export const liveLedgers = new Map<string, BotLedgerNode>();
const registered = new WeakSet<object>();

/** What GET /bot-ledger/ledgers shows of one ledger node (no secrets: origin, did:key, sizes, checkpoints). */
export async function describeLedger(n: BotLedgerNode): Promise<Record<string, unknown>> {
  let l: Ledger | undefined;
  let error: string | undefined;
  try {
    l = await n.lease.ledger;
  } catch (err) {
    error = (err as Error).message;
  }
  if (l?.closed) {
    l = undefined;
    error = 'the ledger is closed';
  }
  const out: Record<string, unknown> = {
    id: n.id,
    name: n.name ?? '',
    origin: l?.origin ?? n.origin,
    did: l?.operator.did ?? null,
    treeSize: l?.size ?? null,
    checkpoint: l?.latestCheckpoint()?.note ?? null,
  };
  if (n.synced) {
    let info: Awaited<ReturnType<Consortium['info']>> | undefined;
    try {
      info = await n.consortium?.info();
    } catch {
      info = undefined;
    }
    let policy: QuorumPolicy | undefined;
    try {
      policy = l ? await n.policy() : undefined;
    } catch {
      policy = undefined;
    }
    out.witnesses = info?.witnesses ?? policy?.witnesses.map((w) => w.did) ?? null;
    out.quorum = info?.quorum ?? policy?.quorum ?? null;
    out.confirmedSize = info?.confirmedSize ?? null;
    out.confirmedCheckpoint = info?.confirmedCheckpoint ?? null;
    out.mirrors = n.mirrors();
  }
  if (error !== undefined) out.error = error;
  return out;
}

/** A non-negative integer query parameter: fallback when absent, NaN when malformed. */
export function queryInt<T extends number | undefined>(v: unknown, fallback: T): number | T {
  if (v === undefined || v === '') return fallback;
  if (typeof v !== 'string' || !/^(0|[1-9][0-9]{0,15})$/.test(v)) return NaN;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : NaN;
}

/** Register the admin endpoints on this runtime's admin app (once). */
export function registerLedgerAdmin(RED: NodeAPI): void {
  registerAccessAdmin(RED);
  const http = RED.httpAdmin;
  if (http && !registered.has(http)) {
    registered.add(http);
    const perm = RED.auth?.needsPermission('bot-ledger.read') ?? ((_q, _s, next) => next());
    http.get('/bot-ledger/ledgers', perm, (_req: AdminRequest, res: AdminResponse) => {
      Promise.all([...liveLedgers.values()].map(describeLedger)).then(
        (list) => res.json(list),
        (err: unknown) => {
          res.status(500).json({ error: (err as Error).message });
        },
      );
    });
    http.get('/bot-ledger/ledgers/:id/entries', perm, (req: AdminRequest, res: AdminResponse) => {
      const n = liveLedgers.get(req.params.id ?? '');
      if (!n) {
        res.status(404).json({ error: 'no deployed bot-ledger with that id' });
        return;
      }
      const from = queryInt(req.query.from, 0);
      const limit = queryInt(req.query.limit, 100);
      if (Number.isNaN(from) || Number.isNaN(limit) || limit < 1 || limit > MAX_LIST) {
        res.status(400).json({ error: `from must be a non-negative integer and limit an integer from 1 to ${MAX_LIST}` });
        return;
      }
      (async () => {
        const l = openOrThrow(await n.lease.ledger);
        const treeSize = l.size;
        const entries: { index: number; leafHash: string; leaf: unknown }[] = [];
        for await (const e of l.entries(from, Math.min(treeSize, from + limit))) {
          entries.push({ index: e.index, leafHash: toBase64(e.leafHash), leaf: JSON.parse(e.leaf.toString('utf8')) as unknown });
        }
        return { treeSize, entries };
      })().then(
        (body) => res.json(body),
        (err: unknown) => {
          const code = err instanceof BotError && err.code === 'E_CLOSED' ? 409 : 500;
          res.status(code).json({ error: (err as Error).message, code: (err as BotError).code });
        },
      );
    });
  }
}
