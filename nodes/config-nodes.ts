/**
 * A node's configuration: the config nodes it names (bot-identity, bot-ledger, bot-partner),
 * as other nodes see them and looked up with a typed error when unusable, and the readers of
 * its own settings (whole numbers, paths under the Node-RED user directory).
 */
import * as path from 'node:path';
import type { Consortium } from '../lib/consortium/consortium';
import type { QuorumPolicy } from '../lib/consortium/quorum';
import type { RequestAnswer } from '../lib/access/access';
import type { PartnerClient } from '../lib/access/partner';
import { BotError, type BotErrorCode } from '../lib/errors';
import { type Identity } from '../lib/format/identity';
import type { Receipt, StoredCheckpoint } from '../lib/store/ledger';
import type { LedgerLease } from '../lib/store/registry';
import type { MirrorInfo } from '../lib/service/ledger-service';
import type { ConfidentialOwner } from '../lib/confidential/owner';
import type { NodeAPI, RedNode } from './red-api';
import type { EncryptionKey } from '../lib/confidential/hpke';
import { nodeEncryptionKey } from '../lib/service/encryption-key';
import { type SequenceCounter, sharedSequence } from '../lib/store/sequence';

/** An error a node reports for its own configuration, with a kernel error code. */
export function configError(code: BotErrorCode, message: string): BotError {
  return new BotError(code, message);
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
 * A config node's encryption-key loader (docs/design.md "Confidential entries"): the key in its
 * credentials' encSecret, else in its key file (`encKeyFile`, default
 * <userDir>/bot-keys/<node id>.enckey.json, generated on first use, which is logged). Each call loads it.
 */
export function encryptionKeyLoader(RED: NodeAPI, node: RedNode, encKeyFile: string | undefined, encSecret: string | undefined): () => Promise<EncryptionKey> {
  const keyFile = (encKeyFile ?? '').trim() || userPath(RED, 'bot-keys', `${node.id.replace(/[^A-Za-z0-9._-]/g, '_')}.enckey.json`);
  return async () => {
    const { key, created } = await nodeEncryptionKey(encSecret, keyFile);
    if (created) node.log(`generated a new encryption key in ${keyFile}`);
    return key;
  };
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
  /** The owner of the ledger's confidential scopes (undefined when it has none), once the configured ones are declared. */
  confidential(): Promise<ConfidentialOwner | undefined>;
  /** Append an input, sealed first when its topic is confidential (lib/service/ledger-service.ts append). */
  append(input: unknown): Promise<Receipt>;
}

/** The persistent seq counter of an identity in this Node-RED (shared by every node signing as it: bot-sign, bot-grant, bot-device). */
export function seqCounter(RED: NodeAPI, did: string): SequenceCounter {
  return sharedSequence(userPath(RED, 'bot-seq'), did);
}

/** A ledger operator's signing key and seq counter, found on first use; E_KEY with `why` when the ledger holds no operator key. */
export function operatorSigner(RED: NodeAPI, ledgerNode: BotLedgerNode | undefined, why: string): () => { identity: Identity; counter: SequenceCounter } {
  let operator: { identity: Identity; counter: SequenceCounter } | undefined;
  return () => {
    if (!operator) {
      const identity = ledgerNode?.canSign ? ledgerNode.operatorIdentity : undefined;
      if (!identity) throw new BotError('E_KEY', why);
      operator = { identity, counter: seqCounter(RED, identity.did) };
    }
    return operator;
  };
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
  /** The partner's encryption-key envelope (kind enckey, signed by its identity), sent with access requests; undefined when unusable. */
  enckey?(): Promise<unknown>;
}

/** The bot-partner config node of an id, or the typed error saying why there is none. */
export function partnerNodeOf(RED: NodeAPI, id: unknown): BotPartnerNode {
  if (typeof id !== 'string' || id === '') throw configError('E_NOT_FOUND', 'no partner access configured');
  const n = RED.nodes.getNode(id) as Partial<BotPartnerNode> | null;
  if (!n || n.type !== 'bot-partner' || typeof n.client !== 'function') throw configError('E_NOT_FOUND', 'the partner access configuration node is missing');
  if (n.configError) throw n.configError;
  return n as BotPartnerNode;
}
