/**
 * The "Ledger" editor sidebar plugin, server side: admin endpoints with the data of the
 * deployed ledgers, live updates over the editor's comms channel, the audit run on demand,
 * and the browser-side verifier with its two libraries (@noble/hashes, @noble/ed25519).
 * The tab itself is bot-sidebar.html beside this file (loaded by Node-RED into the editor).
 *
 *   GET  /bot-ledger/view/ledgers                      → [{id, name, …LedgerSummary} | {id, name, error}]
 *   GET  /bot-ledger/view/ledgers/:id/entries?before=&limit=&signer=&topic=&since=&until= → EntryPage
 *   GET  /bot-ledger/view/ledgers/:id/entries/:index   → EntryDetail (+ consensus status when synced)
 *   GET  /bot-ledger/view/ledgers/:id/grants           → [GrantView] (lib/grants.ts), newest first
 *   POST /bot-ledger/view/ledgers/:id/audit            → 202; progress and result on comms
 *   GET  /bot-ledger/view/client/:file, /vendor/:pkg/:file → public browser code (no data)
 *
 * Comms topics (retained where it says so): `bot-ledger/ledgers` (retained: [{id, name}]),
 * `bot-ledger/ledger/<id>` (retained: summary, ≤ 4/s), `bot-ledger/entries/<id>` (new
 * entries, newest first, with the summary), `bot-ledger/grants/<id>` (retained: the grants,
 * when grants or revocations were appended), `bot-ledger/audit/<id>` (retained: progress and result).
 *
 * Data endpoints need `bot-ledger.read`; starting an audit needs `bot-ledger.write`.
 * Nothing here reads or returns secret keys.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { auditLedger, AuditResult } from '../lib/audit';
import { BotError } from '../lib/errors';
import { GrantIndex } from '../lib/grants';
import type { Ledger } from '../lib/ledger';
import { entryDetail, entryPage, EntryFilter, LedgerWatch, Throttle } from '../lib/ledger-view';
import { liveLedgers, queryInt } from '../nodes/ledger-admin';
import type { AdminHandler, AdminRequest, BotLedgerNode, NodeAPI } from '../nodes/red';

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
};
const CLIENT_DIR = __dirname;
/** The browser files of this plugin (beside its compiled module). */
const CLIENT_FILES = new Set(['bot-ledger-verify.js']);
const FILE = /^[a-z0-9_-]+\.js$/;

interface Watched { node: BotLedgerNode; watch?: LedgerWatch; stops: (() => void)[]; closed: boolean }

function strParam(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function fail(res: Response, err: unknown): void {
  const code = err instanceof BotError ? err.code : undefined;
  const status = code === 'E_RANGE' || code === 'E_QUERY' ? 400 : code === 'E_CLOSED' ? 409 : code === 'E_NOT_FOUND' ? 404 : 500;
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
      GrantIndex.of(l).list(Date.now()).then((g) => { if (!w.closed) publish(`bot-ledger/grants/${id}`, { id, grants: g }, true); }, () => undefined);
    }
    w.watch.summary().then((s) => {
      if (w.closed) return;
      const data = { id, name: w.node.name ?? '', ...s };
      publish(`bot-ledger/ledger/${id}`, data, true);
      if (rows.length > 0) publish(`bot-ledger/entries/${id}`, { id, treeSize: s.treeSize, entries: rows });
    }, () => undefined);
  };

  /** Start watching a ledger node: its ledger once open, its consortium once started, its MQTT state. */
  const watchNode = (id: string, n: BotLedgerNode): void => {
    const w: Watched = { node: n, stops: [], closed: false };
    watched.set(id, w);
    n.lease.ledger.then((l) => {
      if (w.closed) return;
      w.watch = new LedgerWatch({ ledger: l, onChange: () => publishSummary(id, w), maxPerSecond: 4 });
      if (n.synced) {
        w.watch.setMqttState('connecting');
        w.stops.push(n.onLinkState((st) => w.watch?.setMqttState(st)));
        n.consensus.then((c) => { if (c && !w.closed) w.watch?.attachConsortium(c); }, () => undefined);
      }
      w.watch.changed();
    }, (err: unknown) => {
      if (!w.closed) publish(`bot-ledger/ledger/${id}`, { id, name: n.name ?? '', error: (err as Error).message }, true);
    });
  };

  const unwatch = (id: string): void => {
    const w = watched.get(id);
    if (!w) return;
    w.closed = true;
    w.watch?.close();
    for (const s of w.stops.splice(0)) s();
    watched.delete(id);
    publish(`bot-ledger/ledger/${id}`, { id, removed: true }, false);   // drops the retained summary
    publish(`bot-ledger/grants/${id}`, { id, removed: true }, false);
    publish(`bot-ledger/audit/${id}`, { id, removed: true }, false);
  };

  /** After a deployment: follow the new ledger nodes, drop the removed ones, publish the list. */
  const sync = (): void => {
    for (const [id, w] of watched) if (liveLedgers.get(id) !== w.node) unwatch(id);
    for (const [id, n] of liveLedgers) if (!watched.has(id)) watchNode(id, n);
    publish('bot-ledger/ledgers', [...liveLedgers.values()].map((n) => ({ id: n.id, name: n.name ?? '' })), true);
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
    Promise.all([...liveLedgers.values()].map(async (n) => {
      try {
        const w = watched.get(n.id);
        if (w?.watch) return { id: n.id, name: n.name ?? '', ...(await w.watch.summary()) };
        await n.lease.ledger;
        return { id: n.id, name: n.name ?? '', starting: true };
      } catch (err) {
        return { id: n.id, name: n.name ?? '', error: (err as Error).message };
      }
    })).then((list) => res.json(list), (err: unknown) => fail(res, err));
  });

  http.get(`${BASE}/ledgers/:id/entries`, read, (req, res) => {
    const q = req.query;
    const f: EntryFilter = {
      before: queryInt(q.before, undefined), limit: queryInt(q.limit, undefined), since: queryInt(q.since, undefined), until: queryInt(q.until, undefined),
      signer: strParam(q.signer), topic: strParam(q.topic),
    };
    if ([f.before, f.limit, f.since, f.until].some((v) => Number.isNaN(v))) {
      res.status(400).json({ error: 'before, limit, since and until must be non-negative integers', code: 'E_RANGE' });
      return;
    }
    ledgerOf(req.params.id ?? '').then(({ l }) => entryPage(l, f)).then((p) => res.json(p), (err: unknown) => fail(res, err));
  });

  http.get(`${BASE}/ledgers/:id/entries/:index`, read, (req, res) => {
    const index = queryInt(req.params.index, undefined);
    if (index === undefined || Number.isNaN(index)) { res.status(400).json({ error: 'index must be a non-negative integer', code: 'E_RANGE' }); return; }
    (async () => {
      const { n, l } = await ledgerOf(req.params.id ?? '');
      const detail = await entryDetail(l, index);
      const cons = n.consortium;
      const consensus = cons ? await cons.status(index).catch(() => null) : null;
      return { ...detail, consensus };
    })().then((d) => res.json(d), (err: unknown) => fail(res, err));
  });

  http.get(`${BASE}/ledgers/:id/grants`, read, (req, res) => {
    ledgerOf(req.params.id ?? '').then(({ l }) => GrantIndex.of(l).list(Date.now())).then((g) => res.json(g), (err: unknown) => fail(res, err));
  });

  http.post(`${BASE}/ledgers/:id/audit`, write, (req, res) => {
    const id = req.params.id ?? '';
    if (audits.has(id)) { res.status(409).json({ error: 'an audit of this ledger is running', code: 'E_BUSY' }); return; }
    ledgerOf(id).then(({ l }) => {
      const topic = `bot-ledger/audit/${id}`;
      let progress = { checked: 0, size: l.size };
      const throttle = new Throttle(() => publish(topic, { id, state: 'running', ...progress }, true), 250);
      publish(topic, { id, state: 'running', ...progress }, true);
      const run = auditLedger(l, { onProgress: (p) => { progress = p; throttle.request(); } });
      audits.set(id, run);
      run.then((result) => {
        throttle.stop();
        publish(topic, { id, state: 'done', checked: result.size, size: result.size, result }, true);
      }, (err: unknown) => {
        throttle.stop();
        publish(topic, { id, state: 'error', error: (err as Error).message, code: (err as BotError).code }, true);
      }).finally(() => audits.delete(id));
      res.status(202).json({ started: true, size: l.size });
    }, (err: unknown) => fail(res, err));
  });

  /** Public browser code: the verifier module of this plugin, and the @noble libraries it imports. */
  const serveFile = (res: Response, dir: string, file: string | undefined, type: string): void => {
    if (!file || !FILE.test(file)) { res.status(404).json({ error: 'not found' }); return; }
    fs.readFile(path.join(dir, file), (err, body) => {
      if (err) { res.status(404).json({ error: 'not found' }); return; }
      res.set('Content-Type', `${type}; charset=utf-8`).set('Cache-Control', 'no-cache').send(body);
    });
  };
  http.get(`${BASE}/client/:file`, (req, res) => serveFile(res, CLIENT_DIR, CLIENT_FILES.has(req.params.file ?? '') ? req.params.file : undefined, 'text/javascript'));
  http.get(`${BASE}/vendor/:pkg/:file`, (req, res) => {
    const dir = VENDOR[req.params.pkg ?? ''];
    if (!dir || !Object.hasOwn(VENDOR, req.params.pkg ?? '')) { res.status(404).json({ error: 'not found' }); return; }
    serveFile(res, dir, req.params.file, 'text/javascript');
  });
};
