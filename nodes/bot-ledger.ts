/**
 * bot-ledger (config node): one local ledger (LevelDB directory, origin, operator identity,
 * checkpoint policy). The open Ledger is shared through lib/store/registry.ts by every node that
 * uses it; this node holds one lease for its checkpoint timer and the admin endpoints, and
 * releases it (after stopping the timer) when it closes.
 *
 * Sync (docs/design.md "Sync over MQTT"): with a broker URL and the operator identity, the node
 * runs one Consortium (lib/consortium/consortium.ts) for the ledger over one MqttLink once the ledger is
 * open: it publishes the ledger, collects the witnesses' cosignatures and witnesses the
 * partners' ledgers listed under "witnessed". It is stopped, and the link closed, before the
 * lease is released. Without a broker the ledger is standalone.
 *
 * Its admin endpoints are in ./admin-routes.ts.
 */
import * as fs from 'node:fs';
import { Consortium, type WitnessedLedger } from '../lib/consortium/consortium';
import { Mirror } from '../lib/consortium/mirror';
import { answerRequest, type RequestAnswer } from '../lib/access/access';
import { DEFAULT_RATE_LIMITS, RateLimiter } from '../lib/access/rate-limit';
import { BotError } from '../lib/errors';
import { type Identity } from '../lib/format/identity';
import { installationId } from '../lib/store/installation';
import { LineThrottle } from '../lib/view/rate';
import { type LinkDrop, type LinkOptions, MqttLink, redactUrl, urlHasPassword } from '../lib/consortium/mqtt-link';
import { escapeUnprintable } from '../lib/format/topic';
import { ledgerId, QuorumPolicy, type WitnessInit } from '../lib/consortium/quorum';
import { checkOrigin, type Ledger, type Receipt, type StoredCheckpoint } from '../lib/store/ledger';
import { type AcquireOptions, acquireLedger, failedLease, type LedgerLease } from '../lib/store/registry';
import type { NodeAPI, NodeDef } from './red-api';
import { type BotLedgerNode, type MirrorInfo, configError, identityOf, intSetting, userPath } from './config-nodes';
import { openOrThrow } from './jobs';
import { liveLedgers, registerAdminRoutes } from './admin-routes';
import { parseWitnessed, parseWitnesses } from './setting-lines';

interface BotLedgerDef extends NodeDef {
  name?: string;
  origin?: string;
  identity?: string;
  dir?: string;
  checkpointMs?: number | string;
  checkpointEntries?: number | string;
  maxEntryBytes?: number | string;
  broker?: string;
  clientId?: string;
  witnesses?: string;
  quorum?: number | string;
  witnessed?: string;
  mirrored?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsInsecure?: boolean;
  /** Publish every entry for mirrors (default true); false: entries leave only through granted requests. */
  shareEntries?: boolean;
  /** Partner requests answered per second per partner (default 20; 0 = no limit), lib/access/rate-limit.ts. */
  rateSigner?: number | string;
  /** Partner requests answered per second in total, MQTT and HTTP together (default 200; 0 = no limit). */
  rateTotal?: number | string;
}

const MAX_ENTRY_LIMIT = 16 * 1024 * 1024;

/** A directory name from a node name: letters, digits, '.', '_' and '-' only, never '.' or '..'. */
function dirName(name: string | undefined, id: string): string {
  const s = (name ?? '')
    .trim()
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^\.+/, '_')
    .slice(0, 64);
  return s === '' || s === '_' ? id.replace(/[^A-Za-z0-9._-]+/g, '_') : s;
}

/**
 * TLS material for mqtts:// and wss:// from PEM files: a CA to trust, and a client
 * certificate and key; the key file must not be readable by others (as key files here).
 */
function readTls(def: BotLedgerDef): LinkOptions['tls'] {
  const read = (file: string | undefined, what: string, secret = false): Buffer | undefined => {
    const f = (file ?? '').trim();
    if (f === '') return undefined;
    let st: fs.Stats;
    try {
      st = fs.statSync(f);
    } catch {
      throw configError('E_KEY', `cannot read the TLS ${what} file ${f}`);
    }
    if (secret && process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw configError('E_KEY', `the TLS ${what} file ${f} is accessible by others; run chmod 600 on it`);
    }
    return fs.readFileSync(f);
  };
  const tls = {
    ca: read(def.tlsCa, 'CA'),
    cert: read(def.tlsCert, 'certificate'),
    key: read(def.tlsKey, 'key', true),
    rejectUnauthorized: def.tlsInsecure !== true,
  };
  return tls.ca || tls.cert || tls.key || !tls.rejectUnauthorized ? tls : undefined;
}

export = function (RED: NodeAPI): void {
  function BotLedgerConfig(this: BotLedgerNode, def: BotLedgerDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    node.name = def.name;
    node.configError = undefined;
    node.canSign = false;
    node.operatorIdentity = undefined;
    node.dir = '';
    node.origin = (def.origin ?? '').trim();
    let opts: AcquireOptions | undefined;
    let checkpointMs = 0;
    let checkpointEntries = 0;
    let broker = '';
    let witnessed: WitnessedLedger[] = [];
    let mirrored: WitnessedLedger[] = [];
    let witnesses: WitnessInit[] = [];
    let quorum = 0;
    let syncIdentity: Identity | undefined;
    let rateLimiter: RateLimiter | undefined;
    try {
      const origin = (def.origin ?? '').trim() || undefined;
      if (origin !== undefined) checkOrigin(origin);
      // Unique per installation: two that import the same example (same node ids) differ.
      const defaultOrigin = `bot.local/${installationId(userPath(RED, 'bot-ledgers'))}/${node.id}`;
      node.origin = origin ?? defaultOrigin;
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
      node.operatorIdentity = identity;
      broker = (def.broker ?? '').trim();
      if (broker !== '' && !/^(mqtts?|wss?|tcp|ssl):\/\//.test(broker))
        throw configError('E_QUERY', 'broker URL must start with mqtt://, mqtts://, ws:// or wss://');
      // A password in the URL would be stored in the flow file and shown wherever the URL is.
      if (urlHasPassword(broker))
        throw configError(
          'E_QUERY',
          'the broker URL must not contain a password: put the user name and password in the Username and Password fields (kept in the credentials)',
        );
      witnessed = parseWitnessed(def.witnessed);
      mirrored = parseWitnessed(def.mirrored);
      witnesses = parseWitnesses(def.witnesses, witnessed);
      quorum = intSetting(def.quorum, 0);
      if (Number.isNaN(quorum)) throw configError('E_RANGE', 'quorum must be a whole number (0 = majority)');
      if (quorum > 1 + witnesses.length) throw configError('E_RANGE', `quorum ${quorum} is impossible with the operator and ${witnesses.length} witness(es)`);
      // One limiter for the partner requests this ledger answers, over MQTT and HTTP alike.
      const perSigner = intSetting(def.rateSigner, DEFAULT_RATE_LIMITS.perSigner);
      const total = intSetting(def.rateTotal, DEFAULT_RATE_LIMITS.total);
      if (Number.isNaN(perSigner) || perSigner > 1_000_000)
        throw configError('E_RANGE', 'requests per second per partner must be a whole number from 0 (no limit) to 1000000');
      if (Number.isNaN(total) || total > 1_000_000)
        throw configError('E_RANGE', 'requests per second in total must be a whole number from 0 (no limit) to 1000000');
      rateLimiter = new RateLimiter({ perSigner, total });
      syncIdentity = identity;
      const owner = { id: node.id, label: `bot-ledger ${def.name ? `"${def.name}" ` : ''}(${node.id})` };
      opts = { dir: node.dir, origin, defaultOrigin, identity, maxEntryBytes, owner };
    } catch (err) {
      node.configError = err instanceof BotError ? err : configError('E_STORE', (err as Error).message);
    }

    node.acquire = (): LedgerLease => (opts ? acquireLedger(opts) : failedLease(node.configError as BotError, node.dir));
    node.lease = node.acquire();
    liveLedgers.set(node.id, node);
    node.lease.ledger.then(
      (l) => {
        node.origin = l.origin;
      },
      (err: unknown) => node.error(err),
    );

    // ------------------------------------------------------------ witness set, quorum and sync
    let policyP: Promise<QuorumPolicy> | undefined;
    node.policy = (): Promise<QuorumPolicy> => {
      policyP ??= node.lease.ledger.then((l) =>
        QuorumPolicy.create({
          origin: l.origin,
          operator: l.operator.did,
          witnesses,
          quorum: quorum > 0 ? quorum : undefined,
        }),
      );
      return policyP;
    };
    node.synced = opts !== undefined && broker !== '';
    node.consortium = undefined;
    let link: MqttLink | undefined;
    let stopping = false;
    const mirrors: { lease: LedgerLease; ledger: Ledger; mirror: Mirror }[] = [];
    const linkListeners = new Set<(state: string) => void>();
    let linkState: string | undefined;
    node.onLinkState = (fn) => {
      linkListeners.add(fn);
      if (linkState !== undefined) fn(linkState);
      return () => {
        linkListeners.delete(fn);
      };
    };
    node.mirrors = (): MirrorInfo[] => mirrors.map((m, i) => ({ origin: mirrored[i].origin, did: mirrored[i].did, ...m.mirror.state() }));
    if (node.synced && !syncIdentity) {
      node.consensus = Promise.reject(configError('E_KEY', 'syncing over MQTT needs the operator identity'));
    } else if (node.synced && syncIdentity) {
      const identity = syncIdentity;
      node.consensus = (async (): Promise<Consortium | undefined> => {
        // A ledger that fails to open is reported by the lease (and to its users), not twice here.
        const l = await node.lease.ledger.catch(() => undefined);
        if (!l || stopping) return undefined;
        const policy = await node.policy();
        if (stopping) return undefined;
        const creds = node.credentials ?? {};
        link = new MqttLink({
          url: broker,
          clientId: (def.clientId ?? '').trim() || undefined,
          username: creds.username || undefined,
          password: creds.password || undefined,
          tls: readTls(def),
        });
        // Log lines show the URL without its password, and a peer's text only escaped (lib/format/topic.ts).
        const shown = redactUrl(broker);
        const say = (text: string): void => node.log(`MQTT ${shown}: ${escapeUnprintable(text).slice(0, 500)}`);
        let lastError = '';
        link.on('state', (st: string, err?: Error) => {
          say(`${st}${err ? ` (${err.message})` : ''}`);
          linkState = st;
          for (const fn of linkListeners) fn(st);
          if (st === 'connected') lastError = '';
        });
        link.on('error', (err: Error) => {
          const m = err?.message ?? String(err);
          if (m !== lastError) say(m);
          lastError = m;
        });
        // What the link drops or refuses, at most one line per reason a minute (a peer may send many).
        const drops = new LineThrottle(60000);
        link.on('drop', (d: LinkDrop) => {
          const line = drops.line(d.reason, d.message);
          if (line !== undefined) say(line);
        });
        const cons = new Consortium({
          ledger: l,
          identity,
          link,
          policy,
          witnessed,
          requests: (p) => node.answerRequest(p),
          shareEntries: def.shareEntries !== false,
        });
        await cons.start();
        if (stopping) {
          await cons.stop();
          return undefined;
        }
        node.consortium = cons;
        // Read-only copies of partners' ledgers, beside this one, checked against their checkpoints.
        for (const m of mirrored) {
          // Through the registry, so that a mirror whose store failed is reopened like the ledger.
          const lease = acquireLedger({
            dir: `${node.dir}-mirrors/${ledgerId(m.origin, m.did)}`,
            origin: m.origin,
            operator: m.did,
            maxEntryBytes: l.maxEntryBytes,
          });
          const ml = await lease.ledger.catch(async (err: unknown) => {
            await lease.release();
            throw err;
          });
          const mirror = new Mirror({ ledger: ml, link, origin: m.origin, did: m.did });
          mirrors.push({ lease, ledger: ml, mirror });
          if (stopping) break;
          mirror.start();
        }
        return cons;
      })();
    } else {
      node.consensus = Promise.resolve(undefined);
    }
    node.consensus.catch((err: unknown) => node.error(err));
    /**
     * Stop the consortium and the mirrors and close the link (before the lease is released),
     * within a bounded time whatever the broker and the partners do: they stop taking work
     * first (their stop() does that before its first await), then the link closes (bounded by
     * MqttLink.close), which fails their requests in flight at once (E_CLOSED) instead of
     * leaving them to run to their timeouts (5 s witness, 10 s mirror); then they finish.
     */
    const stopSync = async (): Promise<void> => {
      stopping = true;
      const cons = await node.consensus.catch(() => undefined);
      node.consortium = undefined;
      const stops = [...mirrors.map((m) => m.mirror.stop()), ...(cons ? [cons.stop()] : [])];
      if (link) await link.close();
      await Promise.allSettled(stops);
      for (const m of mirrors.splice(0)) await m.lease.release();
    };

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
        signing = l
          .checkpoint()
          .then((cp) => cp ?? l.latestCheckpoint())
          .finally(() => {
            signing = undefined;
          });
      }
      return signing;
    };
    let lastError = '';
    /** A timed checkpoint; a failure is logged once, not every tick, until one succeeds again. */
    const tick = (): void => {
      sign().then(
        () => {
          lastError = '';
        },
        (err: unknown) => {
          const m = (err as Error).message;
          if (m !== lastError) node.error(err);
          lastError = m;
        },
      );
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
    /** Partners' answers are proven against the quorum-confirmed checkpoint when the ledger has witnesses. */
    node.answerCheckpoint = async (): Promise<StoredCheckpoint | undefined> => {
      const cons = await node.consensus.catch(() => undefined);
      if (cons && cons.policy.witnesses.length > 0) {
        const info = await cons.info();
        return info.confirmedCheckpoint ? { size: info.confirmedSize, note: info.confirmedCheckpoint } : undefined;
      }
      return node.checkpointNow();
    };
    node.answerRequest = async (input: unknown): Promise<RequestAnswer> => {
      const l = openOrThrow(await node.lease.ledger);
      // Receipts are proven against an operator checkpoint signed right after the append.
      const answer = await answerRequest(
        {
          ledger: l,
          checkpoint: node.answerCheckpoint,
          receiptCheckpoint: node.canSign ? node.checkpointNow : undefined,
          rateLimiter,
        },
        input,
      );
      if ('receipts' in answer) for (const r of answer.receipts) node.appended(r);
      return answer;
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
      if (liveLedgers.get(node.id) === node) liveLedgers.delete(node.id);
      // With a checkpoint policy, seal what was appended since the last checkpoint before stopping.
      const last = opts && (checkpointMs > 0 || checkpointEntries > 0) ? sign() : (signing ?? Promise.resolve());
      closed = true;
      last
        .catch((err: unknown) => node.error(err))
        .then(() => stopSync())
        .catch((err: unknown) => node.error(err))
        .then(() => node.lease.release())
        .catch((err: unknown) => node.error(err))
        .finally(() => done());
    });
  }

  RED.nodes.registerType('bot-ledger', BotLedgerConfig, {
    credentials: { username: { type: 'text' }, password: { type: 'password' } },
  });
  registerAdminRoutes(RED);
};
