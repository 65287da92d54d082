/**
 * bot-ledger (config node): one local ledger (LevelDB directory, origin, operator identity,
 * checkpoint policy). The open Ledger is shared through lib/registry.ts by every node that
 * uses it; this node holds one lease for its checkpoint timer and the admin endpoints, and
 * releases it (after stopping the timer) when it closes.
 *
 * Admin endpoints (registered once per runtime):
 *   GET /bot-ledger/ledgers                       → [{id,name,origin,did,treeSize,checkpoint}]
 *   GET /bot-ledger/ledgers/:id/entries?from=&limit= → {treeSize, entries:[{index,leafHash,leaf}]}
 */
import { toBase64 } from '../lib/bytes';
import { BotError } from '../lib/errors';
import { checkOrigin, Ledger, Receipt, StoredCheckpoint } from '../lib/ledger';
import { AcquireOptions, acquireLedger, failedLease, LedgerLease } from '../lib/registry';
import {
  AdminRequest, AdminResponse, BotLedgerNode, configError, identityOf, intSetting, NodeAPI, NodeDef, openOrThrow, userPath,
} from './red';

interface BotLedgerDef extends NodeDef {
  name?: string;
  origin?: string;
  identity?: string;
  dir?: string;
  checkpointMs?: number | string;
  checkpointEntries?: number | string;
  maxEntryBytes?: number | string;
}

const MAX_ENTRY_LIMIT = 16 * 1024 * 1024;
const MAX_LIST = 1000;

/** A directory name from a node name: letters, digits, '.', '_' and '-' only, never '.' or '..'. */
function dirName(name: string | undefined, id: string): string {
  const s = (name ?? '').trim().replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.+/, '_').slice(0, 64);
  return s === '' || s === '_' ? id.replace(/[^A-Za-z0-9._-]+/g, '_') : s;
}

/** Live bot-ledger config nodes of this runtime, for the admin endpoints. */
const live = new Map<string, BotLedgerNode>();
const registered = new WeakSet<object>();

async function describe(n: BotLedgerNode): Promise<Record<string, unknown>> {
  let l: Ledger | undefined;
  let error: string | undefined;
  try { l = await n.lease.ledger; } catch (err) { error = (err as Error).message; }
  if (l?.closed) { l = undefined; error = 'the ledger is closed'; }
  const out: Record<string, unknown> = {
    id: n.id,
    name: n.name ?? '',
    origin: l?.origin ?? n.origin,
    did: l?.operator.did ?? null,
    treeSize: l?.size ?? null,
    checkpoint: l?.latestCheckpoint()?.note ?? null,
  };
  if (error !== undefined) out.error = error;
  return out;
}

function queryInt(v: unknown, fallback: number): number {
  if (v === undefined || v === '') return fallback;
  if (typeof v !== 'string' || !/^(0|[1-9][0-9]{0,15})$/.test(v)) return NaN;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : NaN;
}

export = function (RED: NodeAPI): void {
  function BotLedgerConfig(this: BotLedgerNode, def: BotLedgerDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    node.name = def.name;
    node.configError = undefined;
    node.canSign = false;
    node.dir = '';
    node.origin = (def.origin ?? '').trim() || `bot.local/${node.id}`;
    let opts: AcquireOptions | undefined;
    let checkpointMs = 0;
    let checkpointEntries = 0;
    try {
      const origin = (def.origin ?? '').trim() || undefined;
      if (origin !== undefined) checkOrigin(origin);
      const identity = def.identity ? identityOf(RED, def.identity, 'operator identity') : undefined;
      node.dir = (def.dir ?? '').trim() || userPath(RED, 'bot-ledgers', dirName(def.name, node.id));
      checkpointMs = intSetting(def.checkpointMs, 1000);
      checkpointEntries = intSetting(def.checkpointEntries, 0);
      const maxEntryBytes = intSetting(def.maxEntryBytes, 65536);
      if (Number.isNaN(checkpointMs)) throw configError('E_RANGE', 'checkpoint interval must be a whole number of milliseconds (0 = off)');
      if (Number.isNaN(checkpointEntries)) throw configError('E_RANGE', 'checkpoint every N entries must be a whole number (0 = off)');
      if (Number.isNaN(maxEntryBytes) || maxEntryBytes < 256 || maxEntryBytes > MAX_ENTRY_LIMIT) {
        throw configError('E_RANGE', `largest entry must be from 256 to ${MAX_ENTRY_LIMIT} bytes`);
      }
      node.canSign = identity !== undefined;
      opts = { dir: node.dir, origin, defaultOrigin: `bot.local/${node.id}`, identity, maxEntryBytes };
    } catch (err) {
      node.configError = err instanceof BotError ? err : configError('E_STORE', (err as Error).message);
    }

    node.acquire = (): LedgerLease => (opts ? acquireLedger(opts) : failedLease(node.configError as BotError, node.dir));
    node.lease = node.acquire();
    live.set(node.id, node);
    node.lease.ledger.then((l) => { node.origin = l.origin; }, (err: unknown) => node.error(err));

    let signing: Promise<StoredCheckpoint | undefined> | undefined;
    let closed = false;
    /** Sign a checkpoint if the tree grew; one at a time; errors are the node's, not a message's. */
    const sign = (): Promise<StoredCheckpoint | undefined> => {
      const l = node.lease.current;
      if (!l || l.closed || closed) return Promise.resolve(l?.latestCheckpoint());
      if (!node.canSign) return Promise.resolve(l.latestCheckpoint());
      const latest = l.latestCheckpoint();
      if (latest && latest.size >= l.size) return Promise.resolve(latest);
      if (!signing) {
        signing = l.checkpoint().then((cp) => cp ?? l.latestCheckpoint()).finally(() => { signing = undefined; });
      }
      return signing;
    };
    let lastError = '';
    /** A timed checkpoint; a failure is logged once, not every tick, until one succeeds again. */
    const tick = (): void => {
      sign().then(() => { lastError = ''; }, (err: unknown) => {
        const m = (err as Error).message;
        if (m !== lastError) node.error(err);
        lastError = m;
      });
    };

    node.checkpointNow = async (): Promise<StoredCheckpoint | undefined> => {
      const l = await node.lease.ledger;
      if (!node.canSign) return l.latestCheckpoint();
      // sign() may hand back a checkpoint already in flight that predates the appends made
      // before this call: then sign once more, which covers them.
      const size = l.size;
      let cp = await sign();
      if (!cp || cp.size < size) cp = await sign();
      return cp;
    };
    node.appended = (r: Receipt): void => {
      if (checkpointEntries <= 0 || !node.canSign) return;
      const l = node.lease.current;
      const at = l?.latestCheckpoint()?.size ?? 0;
      if (r.treeSize - at >= checkpointEntries) tick();
    };

    const timer = opts && checkpointMs > 0 ? setInterval(tick, checkpointMs) : undefined;

    this.on('close', (_removed: boolean, done: () => void) => {
      if (timer) clearInterval(timer);
      if (live.get(node.id) === node) live.delete(node.id);
      // With a checkpoint policy, seal what was appended since the last checkpoint before stopping.
      const last = opts && (checkpointMs > 0 || checkpointEntries > 0) ? sign() : (signing ?? Promise.resolve());
      closed = true;
      last.catch((err: unknown) => node.error(err))
        .then(() => node.lease.release())
        .catch((err: unknown) => node.error(err))
        .finally(() => done());
    });
  }

  RED.nodes.registerType('bot-ledger', BotLedgerConfig);

  const http = RED.httpAdmin;
  if (http && !registered.has(http)) {
    registered.add(http);
    const perm = RED.auth?.needsPermission('bot-ledger.read') ?? ((_q, _s, next) => next());
    http.get('/bot-ledger/ledgers', perm, (_req: AdminRequest, res: AdminResponse) => {
      Promise.all([...live.values()].map(describe)).then((list) => res.json(list), (err: unknown) => {
        res.status(500).json({ error: (err as Error).message });
      });
    });
    http.get('/bot-ledger/ledgers/:id/entries', perm, (req: AdminRequest, res: AdminResponse) => {
      const n = live.get(req.params.id ?? '');
      if (!n) { res.status(404).json({ error: 'no deployed bot-ledger with that id' }); return; }
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
      })().then((body) => res.json(body), (err: unknown) => {
        const code = err instanceof BotError && err.code === 'E_CLOSED' ? 409 : 500;
        res.status(code).json({ error: (err as Error).message, code: (err as BotError).code });
      });
    });
  }
};
