/**
 * Loose local types for the part of the Node-RED runtime API these nodes use, and small
 * helpers shared by the node glue. Not a node: it has no .html and is not in node-red.nodes.
 */
import * as path from 'node:path';
import { BotError, type BotErrorCode } from '../lib/errors';
import { type Identity } from '../lib/format/identity';
import type { Ledger, Receipt, StoredCheckpoint } from '../lib/store/ledger';
import type { LedgerLease, StoreHealth } from '../lib/store/registry';
import type { Consortium } from '../lib/consortium/consortium';
import type { QuorumPolicy } from '../lib/consortium/quorum';
export { RateMeter } from '../lib/view/rate';
import type { RequestAnswer } from '../lib/access/access';
import type { PartnerClient } from '../lib/access/partner';

/** A message as Node-RED passes it between nodes. */
export interface NodeMessage {
  _msgid?: string;
  payload?: unknown;
  topic?: unknown;
  [key: string]: unknown;
}

/** A node status (dot/ring and a short text); `{}` clears it. */
export interface NodeStatus {
  fill?: 'red' | 'green' | 'yellow' | 'blue' | 'grey';
  shape?: 'ring' | 'dot';
  text?: string;
}

export type SendFn = (msg: NodeMessage | (NodeMessage | null)[] | null) => void;
export type DoneFn = (err?: Error) => void;
export type InputHandler = (msg: NodeMessage, send: SendFn, done: DoneFn) => void;
export type CloseHandler = (removed: boolean, done: () => void) => void;

/** The properties every node definition (flow JSON entry) has. */
export interface NodeDef {
  id: string;
  type: string;
  name?: string;
  z?: string;
}

/** A node instance, after RED.nodes.createNode. */
export interface RedNode {
  readonly id: string;
  readonly type: string;
  name?: string;
  credentials?: Record<string, string | undefined>;
  on(event: 'input', cb: InputHandler): void;
  on(event: 'close', cb: CloseHandler): void;
  status(s: NodeStatus): void;
  error(err: unknown, msg?: NodeMessage): void;
  warn(m: unknown): void;
  log(m: unknown): void;
  send(msg: NodeMessage | (NodeMessage | null)[] | null): void;
}

/** The bits of an Express request / response the admin endpoints use. */
export interface AdminRequest {
  body?: unknown;
  params: Record<string, string | undefined>;
  query: Record<string, unknown>;
}
export interface AdminResponse {
  status(code: number): AdminResponse;
  json(body: unknown): void;
}
export type AdminHandler = (req: AdminRequest, res: AdminResponse, next: () => void) => void;

export interface HttpAdmin {
  get(route: string, ...handlers: AdminHandler[]): void;
  post(route: string, ...handlers: AdminHandler[]): void;
}

/** A node constructor, called by Node-RED with `new` and the node's flow definition. */
export type NodeConstructor = (this: never, def: never) => void;

/** A credentials declaration for registerType. */
export interface CredentialsDef {
  [name: string]: { type: 'text' | 'password' };
}

/** The RED object handed to a node module. */
export interface NodeAPI {
  nodes: {
    createNode(node: object, def: NodeDef): void;
    getNode(id: string): unknown;
    registerType(type: string, ctor: NodeConstructor, opts?: { credentials?: CredentialsDef }): void;
  };
  settings: { userDir?: string; [key: string]: unknown };
  httpAdmin?: HttpAdmin;
  auth?: { needsPermission(permission: string): AdminHandler };
}

/** An error a node reports for its own configuration, with a kernel error code. */
export function configError(code: BotErrorCode, message: string): BotError {
  return new BotError(code, message);
}

/** The message of an error, without stack, for status texts (never holds secrets: kernel messages do not). */
export function shortMessage(err: unknown, max = 40): string {
  const m = err instanceof Error ? err.message : String(err);
  return m.length > max ? m.slice(0, max - 1) + '…' : m;
}

/** Parse an optional non-negative integer setting ('' / undefined → fallback). */
export function intSetting(v: unknown, fallback: number): number {
  if (v === undefined || v === null || v === '') return fallback;
  const n = typeof v === 'number' ? v : Number(String(v).trim());
  return Number.isSafeInteger(n) && n >= 0 ? n : NaN;
}

/** A directory under the Node-RED user directory; throws when Node-RED gave none. */
export function userPath(RED: NodeAPI, ...parts: string[]): string {
  const userDir = RED.settings.userDir;
  if (typeof userDir !== 'string' || userDir === '') {
    throw configError('E_STORE', 'Node-RED has no userDir setting; set the directory explicitly');
  }
  return path.join(userDir, ...parts);
}

/**
 * Shows a status at most every `intervalMs`, always ending with the latest one (a trailing
 * update), so a busy node does not flood the editor.
 */
export class StatusThrottle {
  #node: RedNode;
  #interval: number;
  #last = 0;
  #timer: NodeJS.Timeout | undefined;
  #pending: (() => NodeStatus) | undefined;
  #stopped = false;

  constructor(node: RedNode, intervalMs = 500) {
    this.#node = node;
    this.#interval = intervalMs;
  }

  /** Show a status now, dropping any pending throttled one. */
  now(s: NodeStatus): void {
    if (this.#stopped) return;
    this.#pending = undefined;
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#last = Date.now();
    this.#node.status(s);
  }

  /** Show a status computed when it is due. */
  update(make: () => NodeStatus): void {
    if (this.#stopped) return;
    this.#pending = make;
    if (this.#timer) return;
    const wait = this.#last + this.#interval - Date.now();
    if (wait <= 0) {
      this.#flush();
      return;
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#flush();
    }, wait);
  }

  #flush(): void {
    const make = this.#pending;
    this.#pending = undefined;
    if (!make || this.#stopped) return;
    this.#last = Date.now();
    this.#node.status(make());
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** What other nodes see of a bot-identity config node. */
export interface BotIdentityNode extends RedNode {
  /** The key pair, when the configuration is usable. */
  identity: Identity | undefined;
  /** Why it is not (a message without secret material). */
  configError: BotError | undefined;
}

/** The Identity of a bot-identity config node, or the typed error saying why there is none. */
export function identityOf(RED: NodeAPI, id: unknown, what = 'identity'): Identity {
  if (typeof id !== 'string' || id === '') throw configError('E_KEY', `no ${what} configured`);
  const n = RED.nodes.getNode(id) as Partial<BotIdentityNode> | null;
  if (!n || n.type !== 'bot-identity') throw configError('E_KEY', `the ${what} configuration node is missing`);
  if (!n.identity) throw n.configError ?? configError('E_KEY', `the ${what} has no usable key`);
  return n.identity;
}

/** A mirrored partner ledger as the admin endpoint shows it. */
export interface MirrorInfo {
  origin: string;
  did: string;
  size: number;
  checkpointSize: number;
  behind: boolean;
  error?: { code: string; message: string };
}

/** What other nodes see of a bot-ledger config node. */
export interface BotLedgerNode extends RedNode {
  /** The configured origin (the ledger's own once open). */
  origin: string;
  /** The resolved directory ('' when misconfigured). */
  dir: string;
  /** The config node's own hold on the ledger. */
  lease: LedgerLease;
  /** Why the configuration is unusable, if it is. */
  configError: BotError | undefined;
  /** Whether this node holds the operator key (so it can sign checkpoints). */
  canSign: boolean;
  /** The operator key when configured (signs checkpoints and grants); never shown or sent. */
  operatorIdentity: Identity | undefined;
  /** A new hold on the shared ledger for a user node; release it in the user's close. */
  acquire(): LedgerLease;
  /** Sign a checkpoint now if the tree grew and the operator key is here; the latest checkpoint. */
  checkpointNow(): Promise<StoredCheckpoint | undefined>;
  /** Told by bot-append after each durable append (checkpoint-every-N policy). */
  appended(r: Receipt): void;
  /** Whether an MQTT broker is configured (false = standalone). */
  synced: boolean;
  /** The started Consortium of the ledger when synced over MQTT, else undefined. */
  consortium: Consortium | undefined;
  /** Call fn with the MQTT connection state now (if synced) and on every change; returns an unsubscribe. */
  onLinkState: (fn: (state: string) => void) => () => void;
  /** The state of each mirrored ledger (empty when not synced). */
  mirrors: () => MirrorInfo[];
  /** Resolves with the started Consortium (undefined when standalone); rejects when it could not start. */
  consensus: Promise<Consortium | undefined>;
  /** Witness set and quorum as configured, once the ledger is open (for standalone status). */
  policy(): Promise<QuorumPolicy>;
  /** The checkpoint partners' answers are proven against: quorum-confirmed when there are witnesses. */
  answerCheckpoint(): Promise<StoredCheckpoint | undefined>;
  /** Answer a partner's signed request (lib/access/access.ts); rejects with the typed refusal. */
  answerRequest(input: unknown): Promise<RequestAnswer>;
}

/** The bot-ledger config node of an id, or the typed error saying why there is none. */
export function ledgerNodeOf(RED: NodeAPI, id: unknown): BotLedgerNode {
  if (typeof id !== 'string' || id === '') throw configError('E_NOT_FOUND', 'no ledger configured');
  const n = RED.nodes.getNode(id) as Partial<BotLedgerNode> | null;
  if (!n || n.type !== 'bot-ledger' || typeof n.acquire !== 'function') throw configError('E_NOT_FOUND', 'the ledger configuration node is missing');
  return n as BotLedgerNode;
}

/** What bot-query and bot-append see of a bot-partner config node. */
export interface BotPartnerNode extends RedNode {
  /** The client, once the configuration is usable (its transport may still be connecting). */
  client(): Promise<PartnerClient>;
  configError: BotError | undefined;
  /** Call fn with the MQTT connection state now and on changes (nothing for HTTP), and why the owner is not reachable over it when known; returns an unsubscribe. */
  onLinkState(fn: (state: string, problem?: string) => void): () => void;
}

/** The bot-partner config node of an id, or the typed error saying why there is none. */
export function partnerNodeOf(RED: NodeAPI, id: unknown): BotPartnerNode {
  if (typeof id !== 'string' || id === '') throw configError('E_NOT_FOUND', 'no partner access configured');
  const n = RED.nodes.getNode(id) as Partial<BotPartnerNode> | null;
  if (!n || n.type !== 'bot-partner' || typeof n.client !== 'function') throw configError('E_NOT_FOUND', 'the partner access configuration node is missing');
  if (n.configError) throw n.configError;
  return n as BotPartnerNode;
}

/** A deploy-time setup error: logged through node.error and shown as a red ring; returned for the input handler. */
export function setupFailed(node: RedNode, status: StatusThrottle, err: unknown): Error {
  node.error(err);
  status.now({ fill: 'red', shape: 'ring', text: shortMessage(err) });
  return err as Error;
}

/**
 * A close handler's work for nodes that use a ledger: let the jobs in flight finish (accepted
 * appends are durable or failed), stop the status, then give the ledger back.
 */
export function closeAfterJobs(node: RedNode, status: StatusThrottle, inflight: Set<Promise<void>>, lease: LedgerLease | undefined, done: () => void): void {
  Promise.allSettled([...inflight])
    .then(() => {
      status.stop();
      return lease?.release();
    })
    .catch((err: unknown) => node.error(err))
    .finally(() => done());
}

/** A failed message: a red ring with the reason, and done(err) so Catch nodes see it with the msg. */
export function failMessage(status: StatusThrottle, done: DoneFn, err: unknown): void {
  status.now({ fill: 'red', shape: 'ring', text: shortMessage(err) });
  done(err instanceof Error ? err : new BotError('E_STORE', String(err)));
}

/**
 * Run one message's work: `ok` with its result (it sends and calls done), or failMessage;
 * tracked in `inflight` until settled, so closeAfterJobs lets it finish.
 */
export function runJob<T>(inflight: Set<Promise<void>>, work: Promise<T>, status: StatusThrottle, done: DoneFn, ok: (v: T) => void): void {
  const job: Promise<void> = work
    .then(ok, (err: unknown) => failMessage(status, done, err))
    .finally(() => {
      inflight.delete(job);
    });
  inflight.add(job);
}

/** Show the MQTT state of the way to a partner's owner on a node's status; returns the unsubscribe. */
export function showOwnerLink(partner: BotPartnerNode, status: StatusThrottle): () => void {
  return partner.onLinkState((st, problem) =>
    status.now(
      problem !== undefined
        ? { fill: 'red', shape: 'ring', text: problem }
        : st === 'connected'
          ? { fill: 'green', shape: 'ring', text: 'owner reachable over MQTT' }
          : { fill: 'yellow', shape: 'ring', text: `MQTT ${st}` },
    ),
  );
}

/** The status text of a failed store: "store failed: <reason> — reopening" (attempts, when there were some). */
export function storeFailedText(h: StoreHealth): string {
  return `store failed: ${h.reason} — reopening${h.attempts > 0 ? ` (try ${h.attempts + 1})` : ''}`;
}

/**
 * Show a shared ledger's store failure on a node's status (a red ring, storeFailedText) while
 * the registry reopens it, and call `recovered` (to show the normal status) once it works
 * again; returns the unsubscribe. A node whose messages fail meanwhile shows their error.
 */
export function showStoreHealth(lease: LedgerLease, status: StatusThrottle, recovered: (l: Ledger | undefined) => void): () => void {
  const show = (h: StoreHealth): void => {
    if (h.failure) status.now({ fill: 'red', shape: 'ring', text: storeFailedText(h) });
    else recovered(lease.current);
  };
  if (lease.health.failure) show(lease.health);
  return lease.onHealth(show);
}

/** The ledger, or E_CLOSED when it has been closed (some kernel reads do not check that themselves). */
export function openOrThrow<L extends { closed: boolean }>(l: L): L {
  if (l.closed) throw new BotError('E_CLOSED', 'the ledger is closed');
  return l;
}
