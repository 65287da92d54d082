/**
 * bot-ledger (config node): one local ledger (LevelDB directory, origin, operator identity,
 * checkpoint policy, sync). Glue only: it reads the node's settings and credentials, runs one
 * LedgerService (lib/service/ledger-service.ts: the lease, checkpoints, the MQTT link, the
 * consortium, mirrors, partner requests and the ordered close), logs its errors and MQTT lines,
 * and lists the node for the admin endpoints (./admin-routes.ts).
 *
 * The open Ledger is shared through lib/store/registry.ts by every node that uses it
 * (node.acquire()); the service holds the node's own lease and releases it last on close.
 * With a broker URL and the operator identity the ledger syncs (docs/design.md "Sync over MQTT");
 * without a broker it is standalone.
 *
 * Confidential scopes (docs/design.md "Confidential entries"): `<scope id> <topic filter>…` per
 * line; entries on their topics are sealed before they are appended (node.append). The
 * operator's encryption key is in the credentials (encSecret) or, when those hold none, in a key
 * file (default <userDir>/bot-keys/<id>.enckey.json, mode 0600, generated on first use); never
 * in the flow, a msg, the log or a status. With a mirror name, the mirrors serve partners' reads.
 */
import { DEFAULT_RATE_LIMITS } from '../lib/access/rate-limit';
import type { WitnessedLedger } from '../lib/consortium/consortium';
import type { WitnessInit } from '../lib/consortium/quorum';
import { BotError } from '../lib/errors';
import { DEFAULT_MAX_ENTRY_BYTES } from '../lib/format/envelope';
import { installationId } from '../lib/store/installation';
import { checkOrigin } from '../lib/store/ledger';
import { LedgerService, type LedgerServiceLink } from '../lib/service/ledger-service';
import { checkBrokerUrl, ledgerDirName, MAX_ENTRY_LIMIT } from '../lib/service/ledger-settings';
import type { NodeAPI, NodeDef } from './red-api';
import { type BotLedgerNode, configError, encryptionKeyLoader, identityOf, intSetting, seqCounter, userPath } from './config-nodes';
import { liveLedgers, registerAdminRoutes } from './admin-routes';
import { parseConfidentialScopes, parseMirrorName, parseWitnessed, parseWitnesses } from './setting-lines';

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
  /** Confidential scopes, `<scope id> <MQTT filter>…` per line. */
  confidential?: string;
  /** Key file of the operator's encryption key when the credentials hold none. */
  encKeyFile?: string;
  /** The name under which the mirrors answer partners ('' = they do not). */
  mirrorName?: string;
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
    let shownOrigin = (def.origin ?? '').trim();
    let service: LedgerService;
    try {
      const origin = (def.origin ?? '').trim() || undefined;
      if (origin !== undefined) checkOrigin(origin);
      // Unique per installation: two that import the same example (same node ids) differ.
      const defaultOrigin = `bot.local/${installationId(userPath(RED, 'bot-ledgers'))}/${node.id}`;
      shownOrigin = origin ?? defaultOrigin;
      const identity = def.identity ? identityOf(RED, def.identity, 'operator identity') : undefined;
      node.dir = (def.dir ?? '').trim() || userPath(RED, 'bot-ledgers', ledgerDirName(def.name, node.id));
      const checkpointMs = intSetting(def.checkpointMs, 1000);
      const checkpointEntries = intSetting(def.checkpointEntries, 0);
      const maxEntryBytes = intSetting(def.maxEntryBytes, DEFAULT_MAX_ENTRY_BYTES);
      if (Number.isNaN(checkpointMs)) throw configError('E_RANGE', 'checkpoint interval must be a whole number of milliseconds (0 = off)');
      if (Number.isNaN(checkpointEntries)) throw configError('E_RANGE', 'checkpoint every N entries must be a whole number (0 = off)');
      if (Number.isNaN(maxEntryBytes) || maxEntryBytes < 256 || maxEntryBytes > MAX_ENTRY_LIMIT) {
        throw configError('E_RANGE', `largest entry must be from 256 to ${MAX_ENTRY_LIMIT} bytes`);
      }
      node.canSign = identity !== undefined;
      node.operatorIdentity = identity;
      const broker = (def.broker ?? '').trim();
      checkBrokerUrl(broker);
      const witnessed: WitnessedLedger[] = parseWitnessed(def.witnessed);
      const mirrored: WitnessedLedger[] = parseWitnessed(def.mirrored);
      const witnesses: WitnessInit[] = parseWitnesses(def.witnesses, witnessed);
      const quorum = intSetting(def.quorum, 0);
      if (Number.isNaN(quorum)) throw configError('E_RANGE', 'quorum must be a whole number (0 = majority)');
      if (quorum > 1 + witnesses.length) throw configError('E_RANGE', `quorum ${quorum} is impossible with the operator and ${witnesses.length} witness(es)`);
      // One limiter for the partner requests this ledger answers, over MQTT and HTTP alike.
      const perSigner = intSetting(def.rateSigner, DEFAULT_RATE_LIMITS.perSigner);
      const total = intSetting(def.rateTotal, DEFAULT_RATE_LIMITS.total);
      if (Number.isNaN(perSigner) || perSigner > 1_000_000)
        throw configError('E_RANGE', 'requests per second per partner must be a whole number from 0 (no limit) to 1000000');
      if (Number.isNaN(total) || total > 1_000_000)
        throw configError('E_RANGE', 'requests per second in total must be a whole number from 0 (no limit) to 1000000');
      const creds = node.credentials ?? {};
      const scopes = parseConfidentialScopes(def.confidential);
      if (scopes.length > 0 && !identity) throw configError('E_KEY', 'confidential scopes need the operator identity (it seals and wraps their keys)');
      const mirrorName = parseMirrorName(def.mirrorName);
      const encryptionKey = encryptionKeyLoader(RED, node, def.encKeyFile, (creds as { encSecret?: string }).encSecret);
      const confidential = identity
        ? {
            scopes,
            nextSeq: () => seqCounter(RED, identity.did).next(),
            encryptionKey,
          }
        : undefined;
      const link: LedgerServiceLink | undefined =
        broker === ''
          ? undefined
          : {
              url: broker,
              clientId: (def.clientId ?? '').trim() || undefined,
              username: creds.username || undefined,
              password: creds.password || undefined,
              tls: { ca: def.tlsCa, cert: def.tlsCert, key: def.tlsKey, insecure: def.tlsInsecure === true },
            };
      service = new LedgerService({
        dir: node.dir,
        origin,
        defaultOrigin,
        identity,
        maxEntryBytes,
        owner: { id: node.id, label: `bot-ledger ${def.name ? `"${def.name}" ` : ''}(${node.id})` },
        checkpointMs,
        checkpointEntries,
        link,
        witnesses,
        quorum,
        witnessed,
        mirrored,
        shareEntries: def.shareEntries !== false,
        rateLimits: { perSigner, total },
        mirrorName,
        confidential,
      });
    } catch (err) {
      node.configError = err instanceof BotError ? err : configError('E_STORE', (err as Error).message);
      service = LedgerService.unusable(node.configError, { dir: node.dir, origin: shownOrigin });
    }

    service.on('error', (err) => node.error(err));
    service.on('log', (line) => node.log(line));
    Object.defineProperty(node, 'origin', { get: () => service.origin, enumerable: true, configurable: true });
    Object.defineProperty(node, 'consortium', { get: () => service.consortium, enumerable: true, configurable: true });
    node.synced = service.synced;
    node.acquire = () => service.acquire();
    node.policy = () => service.policy();
    node.onLinkState = (fn) => service.on('linkState', fn);
    node.mirrors = () => service.mirrors();
    node.checkpointNow = () => service.checkpointNow();
    node.answerCheckpoint = () => service.answerCheckpoint();
    node.answerRequest = (input) => service.answerRequest(input);
    node.confidential = () => service.confidential();
    node.append = (input) => service.append(input);
    service.start();
    node.lease = service.lease;
    node.consensus = service.consensus;
    liveLedgers.set(node.id, node);

    this.on('close', (_removed: boolean, done: () => void) => {
      if (liveLedgers.get(node.id) === node) liveLedgers.delete(node.id);
      // With a checkpoint policy, what was appended since the last checkpoint is sealed before the sync stops.
      void service.close().finally(() => done());
    });
  }

  RED.nodes.registerType('bot-ledger', BotLedgerConfig, {
    credentials: { username: { type: 'text' }, password: { type: 'password' }, encSecret: { type: 'password' } },
  });
  registerAdminRoutes(RED);
};
