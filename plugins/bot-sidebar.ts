/**
 * The "Ledger" editor sidebar plugin, server side: admin endpoints with the data of the
 * deployed ledgers, live updates over the editor's comms channel, the audit run on demand,
 * and the browser-side verifier with its two libraries (@noble/hashes, @noble/ed25519).
 * The tab itself is bot-sidebar.html beside this file (loaded by Node-RED into the editor).
 *
 *   GET  /bot-ledger/view/ledgers                      → [{id, name, …LedgerSummary} | {id, name, error}]
 *   GET  /bot-ledger/view/ledgers/:id/entries?before=&limit=&signer=&topic=&since=&until= → EntryPage
 *   GET  /bot-ledger/view/ledgers/:id/entries/:index   → EntryDetail (+ consensus status when synced; a sealed entry
 *                                                        also {sealed:{scope, epoch}}, and opened: the device's envelope
 *                                                        when this instance holds its key, docs/design.md "Confidential entries")
 *   GET  /bot-ledger/view/ledgers/:id/grants           → [GrantView] (lib/access/grants.ts), newest first
 *   GET  /bot-ledger/view/ledgers/:id/scopes           → the confidential scopes: [{scope, topics, epochs:[{epoch, ts, index, holders, revoked}]}]
 *   GET  /bot-ledger/view/ledgers/:id/devices?silentMs= → [DeviceRow] (lib/devices/device-activity.ts), newest enrolment first
 *   POST /bot-ledger/view/ledgers/:id/audit            → 202; progress and result on comms
 *   GET  /bot-ledger/view/ledgers/:id/access           → [AccessView] pending access requests, newest first
 *   POST /bot-ledger/view/ledgers/:id/access/:rid/approve {actions?, scope?, days?} → {grant, index} (lib/access/access-requests.ts)
 *   POST /bot-ledger/view/ledgers/:id/access/:rid/decline → {declined}
 *   POST /bot-ledger/view/ledgers/:id/invitation {broker?, url?, grant?} → {invitation, terms} (lib/access/invitation.ts)
 *   GET  /bot-ledger/view/client/:file, /vendor/:pkg/:file → public browser code (no data)
 *
 * Comms topics (retained where it says so): `bot-ledger/ledgers` (retained: [{id, name}]),
 * `bot-ledger/ledger/<id>` (retained: summary, ≤ 4/s), `bot-ledger/entries/<id>` (new
 * entries, newest first, with the summary), `bot-ledger/grants/<id>` (retained: the grants,
 * when grants or revocations were appended), `bot-ledger/audit/<id>` (retained: progress and result),
 * `bot-ledger/access/<id>` (retained: the pending access requests, on every change),
 * `bot-ledger/devices/<id>` (retained: the devices with their activity, with the summary, when the ledger has any).
 *
 * Data endpoints need `bot-ledger.read`; starting an audit, approving or declining an access
 * request and creating an invitation need `bot-ledger.write`.
 * Nothing here reads or returns secret keys.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AccessRequests } from '../lib/access/access-requests';
import { auditLedger, type AuditResult } from '../lib/store/audit';
import { BotError } from '../lib/errors';
import { GrantIndex } from '../lib/access/grants';
import { createInvitation, type InvitationTerms } from '../lib/access/invitation';
import type { Ledger } from '../lib/store/ledger';
import { deviceRows, entryDetail, entryPage, type EntryFilter, LedgerWatch, Throttle } from '../lib/view/ledger-view';
import { DeviceRegistry } from '../lib/devices/device-registry';
import { scopeSummaries, wrapKeysForGrant } from '../lib/confidential/owner';
import { isSealed, sealedScope } from '../lib/confidential/seal';
import { verifyEnvelope } from '../lib/format/envelope';
import { liveLedgers, queryInt } from '../nodes/admin-routes';
import type { AdminHandler, AdminRequest, NodeAPI } from '../nodes/red-api';
import { seqCounter, type BotLedgerNode } from '../nodes/config-nodes';

/**
 * What the sidebar shows of a sealed leaf (base64 leaf bytes): its scope and epoch, and the
 * device's envelope when this instance holds the epoch's key (the owner); else why not.
 */
async function sealedView(n: BotLedgerNode, leafB64: string): Promise<{ sealed?: { scope: string; epoch: number }; opened?: unknown; closed?: string }> {
  const bytes = Buffer.from(leafB64, 'base64');
  if (!bytes.includes('"kind":"sealed"')) return {};
  try {
    const outer = verifyEnvelope(bytes);
    if (!isSealed(outer)) return {};
    const sealed = sealedScope(outer);
    try {
      const owner = await n.confidential();
      if (!owner) return { sealed, closed: 'E_NO_KEY' };
      return { sealed, opened: (await owner.open(outer)).envelope };
    } catch (err) {
      return { sealed, closed: err instanceof BotError ? err.code : 'E_NO_KEY' };
    }
  } catch {
    return {};
  }
}

/** The parts of the plugin API (RED) this plugin uses beyond a node's. */
interface PluginAPI extends NodeAPI {
  plugins: { registerPlugin(id: string, def: { type: string; onadd?: () => void }): void };
  comms: { publish(topic: string, data: unknown, retain?: boolean): void };
  events: { on(event: string, fn: () => void): void; removeListener(event: string, fn: () => void): void };
  log: { warn(m: string): void };
}

/** An Express response, as far as this plugin uses it. */
interface Response {
  status(code: number): Response;
  json(body: unknown): void;
  set(field: string, value: string): Response;
  send(body: Buffer | string): void;
}
type Handler = (req: AdminRequest, res: Response) => void;
interface Http {
  get(route: string, guard: AdminHandler, h: Handler): void;
  get(route: string, h: Handler): void;
  post(route: string, guard: AdminHandler, h: Handler): void;
}

const BASE = '/bot-ledger/view';
/** Browser modules served from the packages' own folders (resolved once). */
const VENDOR: Record<string, string> = {
  hashes: path.dirname(require.resolve('@noble/hashes/sha2.js')),
  ed25519: path.dirname(require.resolve('@noble/ed25519')),
  // qrcode-generator (MIT, no dependencies): its ES module dist/qrcode.mjs draws the invitation's QR code.
  qrcode: path.dirname(require.resolve('qrcode-generator')),
};
const CLIENT_DIR = __dirname;
/** The browser files of this plugin (beside its compiled module). */
const CLIENT_FILES = new Set(['bot-ledger-verify.js']);
const FILE = /^[a-z0-9_-]+\.m?js$/;

interface Watched {
  node: BotLedgerNode;
  watch?: LedgerWatch;
  stops: (() => void)[];
  closed: boolean;
}

function strParam(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function fail(res: Response, err: unknown): void {
  const code = err instanceof BotError ? err.code : undefined;
  const status =
    code !== undefined && ['E_RANGE', 'E_QUERY', 'E_SCOPE', 'E_GRANT', 'E_INVITATION', 'E_DID', 'E_KEY', 'E_TOO_LARGE'].includes(code)
      ? 400
      : code === 'E_CLOSED'
        ? 409
        : code === 'E_NOT_FOUND'
          ? 404
          : 500;
  res.status(status).json({ error: (err as Error).message, code });
}

export = function (RED: PluginAPI): void {
  const watched = new Map<string, Watched>();
  const audits = new Map<string, Promise<AuditResult>>();
  const publish = (topic: string, data: unknown, retain = false): void => RED.comms.publish(topic, data, retain);

  const ledgerOf = async (id: string): Promise<{ n: BotLedgerNode; l: Ledger }> => {
    const n = liveLedgers.get(id);
    if (!n) throw new BotError('E_NOT_FOUND', 'no deployed bot-ledger with that id');
    const l = await n.lease.ledger;
    if (l.closed) throw new BotError('E_CLOSED', 'the ledger is closed');
    return { n, l };
  };

  const publishSummary = (id: string, w: Watched): void => {
    if (!w.watch || w.closed) return;
    const rows = w.watch.drainRows();
    if (w.watch.grantsChanged()) {
      const l = w.watch.ledger;
      GrantIndex.of(l)
        .list(Date.now())
        .then(
          (g) => {
            if (!w.closed) publish(`bot-ledger/grants/${id}`, { id, grants: g }, true);
          },
          () => undefined,
        );
    }
    const reg = DeviceRegistry.of(w.watch.ledger);
    if (reg.state.size > 0 || !reg.current) {
      deviceRows(w.watch.ledger).then(
        (devices) => {
          if (!w.closed && devices.length > 0) publish(`bot-ledger/devices/${id}`, { id, devices }, true);
        },
        () => undefined,
      );
    }
    w.watch.summary().then(
      (s) => {
        if (w.closed) return;
        const data = { id, name: w.node.name ?? '', ...s };
        publish(`bot-ledger/ledger/${id}`, data, true);
        if (rows.length > 0) publish(`bot-ledger/entries/${id}`, { id, treeSize: s.treeSize, entries: rows });
      },
      () => undefined,
    );
  };

  /** Publish a ledger's pending access requests (retained), after each change. */
  const publishAccess = (id: string, w: Watched): void => {
    if (!w.watch || w.closed) return;
    AccessRequests.of(w.watch.ledger)
      .list()
      .then(
        (requests) => {
          if (!w.closed) publish(`bot-ledger/access/${id}`, { id, requests }, true);
        },
        () => undefined,
      );
  };

  /** Start watching a ledger node: its ledger once open, its consortium once started, its MQTT state. */
  const watchNode = (id: string, n: BotLedgerNode): void => {
    const w: Watched = { node: n, stops: [], closed: false };
    watched.set(id, w);
    n.lease.ledger.then(
      (l) => {
        if (w.closed) return;
        w.watch = new LedgerWatch({ ledger: l, onChange: () => publishSummary(id, w), maxPerSecond: 4 });
        w.stops.push(AccessRequests.of(l).onChange(() => publishAccess(id, w)));
        publishAccess(id, w);
        if (n.synced) {
          w.watch.setMqttState('connecting');
          w.stops.push(n.onLinkState((st) => w.watch?.setMqttState(st)));
          n.consensus.then(
            (c) => {
              if (c && !w.closed) w.watch?.attachConsortium(c);
            },
            () => undefined,
          );
        }
        w.watch.changed();
      },
      (err: unknown) => {
        if (!w.closed) publish(`bot-ledger/ledger/${id}`, { id, name: n.name ?? '', error: (err as Error).message }, true);
      },
    );
  };

  const unwatch = (id: string): void => {
    const w = watched.get(id);
    if (!w) return;
    w.closed = true;
    w.watch?.close();
    for (const s of w.stops.splice(0)) s();
    watched.delete(id);
    publish(`bot-ledger/ledger/${id}`, { id, removed: true }, false); // drops the retained summary
    publish(`bot-ledger/grants/${id}`, { id, removed: true }, false);
    publish(`bot-ledger/audit/${id}`, { id, removed: true }, false);
    publish(`bot-ledger/access/${id}`, { id, removed: true }, false);
    publish(`bot-ledger/devices/${id}`, { id, removed: true }, false);
  };

  /** After a deployment: follow the new ledger nodes, drop the removed ones, publish the list. */
  const sync = (): void => {
    for (const [id, w] of watched) if (liveLedgers.get(id) !== w.node) unwatch(id);
    for (const [id, n] of liveLedgers) if (!watched.has(id)) watchNode(id, n);
    publish(
      'bot-ledger/ledgers',
      [...liveLedgers.values()].map((n) => ({ id: n.id, name: n.name ?? '' })),
      true,
    );
  };

  RED.plugins.registerPlugin('bot-ledger-sidebar', {
    type: 'bot-ledger-sidebar',
    onadd() {
      RED.events.on('flows:started', sync);
      sync();
    },
  });

  const http = RED.httpAdmin as unknown as Http | undefined;
  if (!http) return;
  const pass: AdminHandler = (_q, _s, next) => next();
  const read = RED.auth?.needsPermission('bot-ledger.read') ?? pass;
  const write = RED.auth?.needsPermission('bot-ledger.write') ?? pass;

  http.get(`${BASE}/ledgers`, read, (_req, res) => {
    Promise.all(
      [...liveLedgers.values()].map(async (n) => {
        try {
          const w = watched.get(n.id);
          if (w?.watch) return { id: n.id, name: n.name ?? '', ...(await w.watch.summary()) };
          await n.lease.ledger;
          return { id: n.id, name: n.name ?? '', starting: true };
        } catch (err) {
          return { id: n.id, name: n.name ?? '', error: (err as Error).message };
        }
      }),
    ).then(
      (list) => res.json(list),
      (err: unknown) => fail(res, err),
    );
  });

  http.get(`${BASE}/ledgers/:id/entries`, read, (req, res) => {
    const q = req.query;
    const f: EntryFilter = {
      before: queryInt(q.before, undefined),
      limit: queryInt(q.limit, undefined),
      since: queryInt(q.since, undefined),
      until: queryInt(q.until, undefined),
      signer: strParam(q.signer),
      topic: strParam(q.topic),
    };
    if ([f.before, f.limit, f.since, f.until].some((v) => Number.isNaN(v))) {
      res.status(400).json({ error: 'before, limit, since and until must be non-negative integers', code: 'E_RANGE' });
      return;
    }
    ledgerOf(req.params.id ?? '')
      .then(({ l }) => entryPage(l, f))
      .then(
        (p) => res.json(p),
        (err: unknown) => fail(res, err),
      );
  });

  http.get(`${BASE}/ledgers/:id/entries/:index`, read, (req, res) => {
    const index = queryInt(req.params.index, undefined);
    if (index === undefined || Number.isNaN(index)) {
      res.status(400).json({ error: 'index must be a non-negative integer', code: 'E_RANGE' });
      return;
    }
    (async () => {
      const { n, l } = await ledgerOf(req.params.id ?? '');
      const detail = await entryDetail(l, index);
      const cons = n.consortium;
      const consensus = cons ? await cons.status(index).catch(() => null) : null;
      return { ...detail, consensus, ...(await sealedView(n, detail.leaf)) };
    })().then(
      (d) => res.json(d),
      (err: unknown) => fail(res, err),
    );
  });

  http.get(`${BASE}/ledgers/:id/scopes`, read, (req, res) => {
    ledgerOf(req.params.id ?? '')
      .then(({ l }) => scopeSummaries(l))
      .then(
        (v) => res.json(v),
        (err: unknown) => fail(res, err),
      );
  });

  http.get(`${BASE}/ledgers/:id/grants`, read, (req, res) => {
    ledgerOf(req.params.id ?? '')
      .then(({ l }) => GrantIndex.of(l).list(Date.now()))
      .then(
        (g) => res.json(g),
        (err: unknown) => fail(res, err),
      );
  });

  http.get(`${BASE}/ledgers/:id/devices`, read, (req, res) => {
    const silentMs = queryInt(req.query.silentMs, undefined);
    if (silentMs !== undefined && Number.isNaN(silentMs)) {
      res.status(400).json({ error: 'silentMs must be a non-negative integer (ms)', code: 'E_RANGE' });
      return;
    }
    ledgerOf(req.params.id ?? '')
      .then(({ l }) => deviceRows(l, Date.now(), silentMs))
      .then(
        (d) => res.json(d),
        (err: unknown) => fail(res, err),
      );
  });

  http.post(`${BASE}/ledgers/:id/audit`, write, (req, res) => {
    const id = req.params.id ?? '';
    if (audits.has(id)) {
      res.status(409).json({ error: 'an audit of this ledger is running', code: 'E_BUSY' });
      return;
    }
    ledgerOf(id).then(
      ({ l }) => {
        const topic = `bot-ledger/audit/${id}`;
        let progress = { checked: 0, size: l.size };
        const throttle = new Throttle(() => publish(topic, { id, state: 'running', ...progress }, true), 250);
        publish(topic, { id, state: 'running', ...progress }, true);
        const run = auditLedger(l, {
          onProgress: (p) => {
            progress = p;
            throttle.request();
          },
        });
        audits.set(id, run);
        run
          .then(
            (result) => {
              throttle.stop();
              publish(topic, { id, state: 'done', checked: result.size, size: result.size, result }, true);
            },
            (err: unknown) => {
              throttle.stop();
              publish(topic, { id, state: 'error', error: (err as Error).message, code: (err as BotError).code }, true);
            },
          )
          .finally(() => audits.delete(id));
        res.status(202).json({ started: true, size: l.size });
      },
      (err: unknown) => fail(res, err),
    );
  });

  http.get(`${BASE}/ledgers/:id/access`, read, (req, res) => {
    ledgerOf(req.params.id ?? '')
      .then(({ l }) => AccessRequests.of(l).list())
      .then(
        (r) => res.json(r),
        (err: unknown) => fail(res, err),
      );
  });

  /** The operator key of a ledger node and its persistent seq counter (shared with bot-sign and bot-grant). */
  const operatorOf = (n: BotLedgerNode): { identity: NonNullable<BotLedgerNode['operatorIdentity']>; nextSeq: () => number } => {
    const identity = n.operatorIdentity;
    if (!identity) throw new BotError('E_KEY', 'the ledger has no operator identity here: it cannot sign grants or invitations');
    const counter = seqCounter(RED, identity.did);
    return { identity, nextSeq: () => counter.next() };
  };
  const body = (req: AdminRequest): Record<string, unknown> =>
    req.body !== null && typeof req.body === 'object' && !Array.isArray(req.body) ? (req.body as Record<string, unknown>) : {};

  http.post(`${BASE}/ledgers/:id/access/:rid/approve`, write, (req, res) => {
    (async () => {
      const { n, l } = await ledgerOf(req.params.id ?? '');
      const { identity, nextSeq } = operatorOf(n);
      const b = body(req);
      const issued = await AccessRequests.of(l).approve(req.params.rid ?? '', identity, nextSeq, { actions: b.actions, scope: b.scope, days: b.days });
      // The request's encryption key gets the confidential scopes' keys the grant covers (as bot-grant's approve).
      const keys = (await wrapKeysForGrant(() => n.confidential(), issued.terms, issued.enckey)) ?? 0;
      return { grant: issued.terms, index: issued.receipt.index, keys };
    })().then(
      (r) => res.json(r),
      (err: unknown) => fail(res, err),
    );
  });

  http.post(`${BASE}/ledgers/:id/access/:rid/decline`, write, (req, res) => {
    ledgerOf(req.params.id ?? '')
      .then(({ l }) => AccessRequests.of(l).decline(req.params.rid ?? ''))
      .then(
        (r) => res.json({ declined: r }),
        (err: unknown) => fail(res, err),
      );
  });

  http.post(`${BASE}/ledgers/:id/invitation`, write, (req, res) => {
    (async () => {
      const { n, l } = await ledgerOf(req.params.id ?? '');
      const { identity, nextSeq } = operatorOf(n);
      const b = body(req);
      const text = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);
      const terms: InvitationTerms = { origin: l.origin };
      const broker = text(b.broker);
      const url = text(b.url);
      const grant = text(b.grant);
      if (broker !== undefined) terms.broker = broker;
      if (url !== undefined) terms.url = url;
      if (grant !== undefined) {
        const g = (await GrantIndex.of(l).list(Date.now())).find((x) => x.id === grant);
        if (!g) throw new BotError('E_NOT_FOUND', 'the ledger holds no grant with that id');
        if (g.status === 'revoked' || g.status === 'expired') throw new BotError('E_GRANT', `grant ${grant} is ${g.status}`);
        terms.grant = grant;
        terms.subject = g.subject;
      }
      if (n.synced) {
        const policy = await n.policy();
        if (policy.witnesses.length > 0) {
          terms.witnesses = policy.witnesses.map((w) => ({ did: w.did, name: w.name }));
          terms.quorum = policy.quorum;
        }
      }
      return { invitation: createInvitation(identity, nextSeq(), terms), terms };
    })().then(
      (r) => res.json(r),
      (err: unknown) => fail(res, err),
    );
  });

  /** Public browser code: the verifier module of this plugin, and the @noble libraries it imports. */
  const serveFile = (res: Response, dir: string, file: string | undefined, type: string): void => {
    if (!file || !FILE.test(file)) {
      res.status(404).json({ error: 'not found' });
      return;
    }
    fs.readFile(path.join(dir, file), (err, body) => {
      if (err) {
        res.status(404).json({ error: 'not found' });
        return;
      }
      res.set('Content-Type', `${type}; charset=utf-8`).set('Cache-Control', 'no-cache').send(body);
    });
  };
  http.get(`${BASE}/client/:file`, (req, res) =>
    serveFile(res, CLIENT_DIR, CLIENT_FILES.has(req.params.file ?? '') ? req.params.file : undefined, 'text/javascript'),
  );
  http.get(`${BASE}/vendor/:pkg/:file`, (req, res) => {
    const dir = VENDOR[req.params.pkg ?? ''];
    if (!dir || !Object.hasOwn(VENDOR, req.params.pkg ?? '')) {
      res.status(404).json({ error: 'not found' });
      return;
    }
    serveFile(res, dir, req.params.file, 'text/javascript');
  });
};
