/**
 * Every admin HTTP endpoint of the nodes (registered once per runtime, by whichever of
 * bot-identity and bot-ledger loads first), and the registry of live bot-ledger config nodes
 * they (and the editor sidebar, plugins/bot-sidebar.ts) read. Each route says its method,
 * path, permission, work and how its errors read; `serve` is the one place that checks the
 * permission and answers (200 with the work's body, another status when the work says so,
 * the route's error answer when it throws).
 *
 *   POST /bot-identity/did {secretKey} | {id} → {did}                         (bot-identity.read)
 *       the did:key of a key typed or generated in the browser, or of a deployed bot-identity
 *   GET  /bot-ledger/ledgers                       → [{id,name,origin,did,treeSize,checkpoint}]
 *       (+ {witnesses,quorum,confirmedSize,confirmedCheckpoint,mirrors} when a broker is configured)
 *   GET  /bot-ledger/ledgers/:id/entries?from=&limit= → {treeSize, entries:[{index,leafHash,leaf}]}
 *                                                                              (bot-ledger.read)
 *   GET  /bot-ledger/ledgers/:id/tiles/<C2SP tlog-tiles path>  (nodes/tiles-route.ts) (bot-ledger.read)
 *   POST /bot-ledger/partner/access        {origin, operator, identity, via, ledger|url, timeoutMs?,
 *                                           actions, scope?, days?, note?} → {access: <pending request>}
 *   POST /bot-ledger/partner/access-status {origin, operator, identity, via, ledger|url, timeoutMs?, id}
 *                                         → {access: {id, status, grant?: <verified grant terms>}}
 *                                                                              (bot-ledger.write)
 *
 * The two partner-side endpoints are "one paste to connect a partner" (README "Partner access ›
 * One paste to connect a partner"), used by the bot-partner dialog: ask an owner for access,
 * and ask how that request stands, signed with a deployed bot-identity and sent the way the
 * dialog says (the owner's MQTT rpc topic through a deployed bot-ledger's broker, or its HTTP
 * endpoint). They need `bot-ledger.write` (they sign with this runtime's key and reach out);
 * their refusals are {error: {code, message}} with the status of lib/access/access.ts
 * refusalStatus (else 400, 504 for E_TIMEOUT, 502 for an answer that did not verify).
 */
import { refusal, refusalStatus } from '../lib/access/access';
import { accessStatus, type AccessClientOptions, requestAccess } from '../lib/access/access-client';
import { httpTransport, mqttTransport, OwnerCheck, type PartnerTransport } from '../lib/access/partner';
import type { Consortium } from '../lib/consortium/consortium';
import type { QuorumPolicy } from '../lib/consortium/quorum';
import { BotError, FormatError } from '../lib/errors';
import { toBase64 } from '../lib/format/bytes';
import { Identity, PublicKey } from '../lib/format/identity';
import type { JsonValue } from '../lib/format/jcs';
import { checkOrigin, type Ledger } from '../lib/store/ledger';
import { type BotIdentityNode, type BotLedgerNode, type BotPartnerNode, configError, identityOf, ledgerNodeOf, seqCounter } from './config-nodes';
import { openOrThrow } from './jobs';
import { registerTilesRoute } from './tiles-route';
import type { AdminHandler, AdminRequest, AdminResponse, HttpAdmin, NodeAPI } from './red-api';

const MAX_LIST = 1000;

/** Live bot-ledger config nodes of this runtime, for the admin endpoints and the sidebar. */
export const liveLedgers = new Map<string, BotLedgerNode>();
const registered = new WeakSet<object>();

/** An answer other than 200 with the work's body: a status and its JSON body. */
class Answer {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {}
}

/** The permissions the admin endpoints need (Node-RED adminAuth). */
type Permission = 'bot-identity.read' | 'bot-ledger.read' | 'bot-ledger.write';

/** One admin endpoint: its work's result is the 200 body (or an Answer); a thrown error is answered by `refuse`. */
interface Route {
  method: 'get' | 'post';
  path: string;
  permission: Permission;
  work(req: AdminRequest): unknown;
  refuse(err: unknown): Answer;
}

/** The handler that lets an admin request in with `permission` (Node-RED adminAuth; everyone when it is off). */
function guardOf(RED: NodeAPI, permission: Permission): AdminHandler {
  return RED.auth?.needsPermission(permission) ?? ((_q, _s, next) => next());
}

/** The one place an admin request is let in (the route's permission) and answered. */
function serve(RED: NodeAPI, http: HttpAdmin, route: Route): void {
  const guard = guardOf(RED, route.permission);
  const answer = (res: AdminResponse, a: Answer): void => {
    if (a.status === 200) res.json(a.body);
    else res.status(a.status).json(a.body);
  };
  http[route.method](route.path, guard, (req: AdminRequest, res: AdminResponse) => {
    new Promise<unknown>((resolve) => resolve(route.work(req))).then(
      (body) => answer(res, body instanceof Answer ? body : new Answer(200, body)),
      (err: unknown) => answer(res, route.refuse(err)),
    );
  });
}

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

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function str(v: unknown): string {
  return typeof v === 'string' ? v.trim() : '';
}

/** The partner's key, counter and transport from a dialog's settings (deployed identity and ledger nodes). */
async function clientOf(RED: NodeAPI, b: Record<string, unknown>): Promise<AccessClientOptions & { dispose(): void }> {
  const origin = str(b.origin);
  checkOrigin(origin);
  const operator = PublicKey.fromDid(str(b.operator)).did;
  let identity;
  try {
    identity = identityOf(RED, b.identity, 'partner identity');
  } catch (err) {
    if (err instanceof BotError && /missing/.test(err.message))
      throw configError('E_KEY', 'My identity is not deployed yet: deploy it (with this node), then ask again');
    throw err;
  }
  const timeoutMs = typeof b.timeoutMs === 'number' && b.timeoutMs >= 100 ? Math.min(b.timeoutMs, 60000) : 10000;
  let transport: PartnerTransport;
  let dispose = (): void => undefined;
  if (b.via === 'http') {
    transport = httpTransport(str(b.url), timeoutMs);
  } else {
    let ledgerNode;
    try {
      ledgerNode = ledgerNodeOf(RED, b.ledger);
    } catch {
      throw configError('E_NOT_FOUND', 'My ledger is not deployed yet: deploy it, then ask again (or choose HTTP)');
    }
    if (!ledgerNode.synced) throw configError('E_CLOSED', 'reaching the owner over MQTT needs a ledger with a broker (or choose HTTP)');
    const cons = await ledgerNode.consensus;
    if (!cons) throw new BotError('E_CLOSED', "the ledger's MQTT connection is not running");
    // Is the owner's ledger on this broker at all? Said at once (lib/access/partner.ts OwnerCheck) rather than after the timeout.
    const check = new OwnerCheck(cons.link, { origin, operator });
    dispose = () => check.stop();
    transport = mqttTransport(cons.link, { origin, operator }, timeoutMs, check);
  }
  const counter = seqCounter(RED, identity.did);
  return { owner: { origin, operator }, identity, nextSeq: () => counter.next(), transport, dispose };
}

/** How a partner-side access endpoint refuses: the refusal body, 504 on a timeout, 502 on an answer that did not verify. */
function accessRefusal(err: unknown): Answer {
  const body = refusal(err);
  const code = body.error.code;
  return new Answer(code === 'E_TIMEOUT' ? 504 : code === 'E_GRANT' || code === 'E_SIGNATURE' ? 502 : refusalStatus(code), body);
}

/** The admin endpoints of this runtime (see the top of this file). */
function routes(RED: NodeAPI): Route[] {
  return [
    {
      method: 'post',
      path: '/bot-identity/did',
      permission: 'bot-identity.read',
      work: (req) => {
        const body = (req.body ?? {}) as { secretKey?: unknown; id?: unknown };
        if (typeof body.secretKey === 'string' && body.secretKey !== '' && body.secretKey !== '__PWRD__') {
          return { did: Identity.import(body.secretKey).did };
        }
        if (typeof body.id === 'string' && body.id !== '') {
          const n = RED.nodes.getNode(body.id) as Partial<BotIdentityNode> | null;
          if (!n || n.type !== 'bot-identity') return new Answer(404, { error: 'no deployed bot-identity with that id' });
          if (!n.identity) return new Answer(409, { error: n.configError?.message ?? 'the deployed identity has no usable key' });
          return { did: n.identity.did };
        }
        return new Answer(400, { error: 'send {secretKey} or {id}' });
      },
      refuse: (err) => new Answer(400, { error: err instanceof BotError ? err.message : 'the secret key cannot be read' }),
    },
    {
      method: 'get',
      path: '/bot-ledger/ledgers',
      permission: 'bot-ledger.read',
      work: () => Promise.all([...liveLedgers.values()].map(describeLedger)),
      refuse: (err) => new Answer(500, { error: (err as Error).message }),
    },
    {
      method: 'get',
      path: '/bot-ledger/ledgers/:id/entries',
      permission: 'bot-ledger.read',
      work: async (req) => {
        const n = liveLedgers.get(req.params.id ?? '');
        if (!n) return new Answer(404, { error: 'no deployed bot-ledger with that id' });
        const from = queryInt(req.query.from, 0);
        const limit = queryInt(req.query.limit, 100);
        if (Number.isNaN(from) || Number.isNaN(limit) || limit < 1 || limit > MAX_LIST) {
          return new Answer(400, { error: `from must be a non-negative integer and limit an integer from 1 to ${MAX_LIST}` });
        }
        const l = openOrThrow(await n.lease.ledger);
        const treeSize = l.size;
        const entries: { index: number; leafHash: string; leaf: unknown }[] = [];
        for await (const e of l.entries(from, Math.min(treeSize, from + limit))) {
          entries.push({ index: e.index, leafHash: toBase64(e.leafHash), leaf: JSON.parse(e.leaf.toString('utf8')) as unknown });
        }
        return { treeSize, entries };
      },
      refuse: (err) =>
        new Answer(err instanceof BotError && err.code === 'E_CLOSED' ? 409 : 500, { error: (err as Error).message, code: (err as BotError).code }),
    },
    {
      method: 'post',
      path: '/bot-ledger/partner/access',
      permission: 'bot-ledger.write',
      work: async (req) => {
        const b = isObject(req.body) ? req.body : {};
        const ask = {
          actions: Array.isArray(b.actions) ? b.actions.map(String) : [],
          scope: b.scope as JsonValue | undefined,
          days: b.days as number | undefined,
          note: typeof b.note === 'string' ? b.note : undefined,
        };
        if (ask.days !== undefined && typeof ask.days !== 'number') throw new FormatError('E_QUERY', 'days must be a number');
        const c = await clientOf(RED, b);
        try {
          // The deployed bot-partner's encryption key (signed by the same identity), so the owner can wrap confidential scopes' keys to it.
          const pn = typeof b.partner === 'string' ? (RED.nodes.getNode(b.partner) as Partial<BotPartnerNode> | null) : null;
          const enckey = pn?.type === 'bot-partner' && pn.enckey ? ((await pn.enckey().catch(() => undefined)) as JsonValue | undefined) : undefined;
          if (enckey !== undefined && (enckey as { signer?: unknown }).signer === c.identity.did) (ask as { enckey?: JsonValue }).enckey = enckey;
          return { access: await requestAccess(c, ask) };
        } finally {
          c.dispose();
        }
      },
      refuse: accessRefusal,
    },
    {
      method: 'post',
      path: '/bot-ledger/partner/access-status',
      permission: 'bot-ledger.write',
      work: async (req) => {
        const b = isObject(req.body) ? req.body : {};
        const c = await clientOf(RED, b);
        try {
          return { access: await accessStatus(c, str(b.id)) };
        } finally {
          c.dispose();
        }
      },
      refuse: accessRefusal,
    },
  ];
}

/** Register every admin endpoint on this runtime's admin app (once; called by the bot-identity and bot-ledger modules). */
export function registerAdminRoutes(RED: NodeAPI): void {
  const http = RED.httpAdmin;
  if (!http || registered.has(http)) return;
  registered.add(http);
  for (const route of routes(RED)) serve(RED, http, route);
  // The tiles are bytes, not JSON: their own handler, behind the same permission as the entries endpoint.
  registerTilesRoute(http, guardOf(RED, 'bot-ledger.read'), (id) => liveLedgers.get(id));
}
