/**
 * bot-partner (config node): an owner's ledger as a partner reaches it — its origin and
 * operator did:key, the grant id the owner issued, the partner's own identity (the grant's
 * subject, which signs every request), and the way to the owner: the owner's MQTT rpc topic
 * through this partner's own bot-ledger connection, or an HTTP endpoint where the owner wired
 * `http in → bot-query (answer partner requests) → http response`. Used by bot-query
 * (partner mode) and bot-append (partner mode); every answer is verified (lib/access/partner.ts):
 * over MQTT an answer that does not verify (anyone who can publish on the reply topic can
 * answer) is ignored and the owner's awaited until the timeout, and a supply's receipts count
 * only when proven against a checkpoint signed by the owner's operator. With the owner's
 * witnesses listed, a read answer counts only if its checkpoint carries the quorum of
 * cosignatures (docs/design.md "Witness set and quorum").
 *
 * Confidential entries (docs/design.md "Confidential entries"): the partner's own encryption key
 * (X25519, never its Ed25519 key) is in the credentials (encSecret) or, when those hold none, in a
 * key file (default <userDir>/bot-keys/<id>.enckey.json, mode 0600, generated on first use); its
 * public half, signed by the identity (enckey()), goes with access requests so the owner wraps
 * the scopes' keys to it. "Read from" lists where to read, `owner` or `mirror <name>` per line,
 * tried in order when a place does not answer (lib/access/partner.ts fallbackTransport): mirrors
 * serve the owner's ledger over MQTT while the owner is offline, and everything they answer is
 * verified against the owner's key like the owner's own answers.
 */
import { type OwnerRef } from '../lib/access/access';
import { BotError } from '../lib/errors';
import { PublicKey } from '../lib/format/identity';
import { checkOrigin } from '../lib/store/ledger';
import { isGrantId } from '../lib/access/grants';
import { checkPartnerInvitation } from '../lib/access/invitation';
import {
  fallbackTransport,
  httpTransport,
  mirrorTransport,
  mqttTransport,
  NO_OWNER_LEDGER,
  OwnerCheck,
  PartnerClient,
  type PartnerTransport,
} from '../lib/access/partner';
import { signEnvelope } from '../lib/format/envelope';
import { encryptionKeyInput } from '../lib/confidential/keys';
import type { EncryptionKey } from '../lib/confidential/hpke';
import { QuorumPolicy } from '../lib/consortium/quorum';
import type { MqttLink } from '../lib/consortium/mqtt-link';
import type { NodeAPI, NodeDef } from './red-api';
import { type BotPartnerNode, configError, encryptionKeyLoader, identityOf, intSetting, ledgerNodeOf, seqCounter } from './config-nodes';
import { parseReadPlaces, parseWitnesses } from './setting-lines';

interface BotPartnerDef extends NodeDef {
  name?: string;
  origin?: string;
  operator?: string;
  grant?: string;
  identity?: string;
  via?: 'mqtt' | 'http';
  ledger?: string;
  url?: string;
  timeoutMs?: number | string;
  /** The owner's witnesses, `did:key name` per line: when set, answers must be confirmed by the quorum. */
  witnesses?: string;
  quorum?: number | string;
  /** The owner's invitation this node was filled from (lib/access/invitation.ts): verified again at deploy. */
  invitation?: string;
  /** Where to read, `owner` or `mirror <name>` per line, in order ('' = the owner). */
  readFrom?: string;
  /** Key file of the partner's encryption key when the credentials hold none. */
  encKeyFile?: string;
}

export = function (RED: NodeAPI): void {
  function BotPartner(this: BotPartnerNode, def: BotPartnerDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    node.configError = undefined;
    let client: Promise<PartnerClient>;
    let onLinkState: BotPartnerNode['onLinkState'] = () => () => undefined;
    // Closing cancels what is in flight: HTTP requests (aborted), the owner check (stopped).
    const closing = new AbortController();
    let ownerCheck: Promise<OwnerCheck | undefined> = Promise.resolve(undefined);
    let enckey: () => Promise<unknown> = () => Promise.resolve(undefined);
    try {
      const origin = (def.origin ?? '').trim();
      checkOrigin(origin);
      const owner: OwnerRef = { origin, operator: PublicKey.fromDid((def.operator ?? '').trim()).did };
      const witnesses = parseWitnesses(def.witnesses, []);
      const quorum = intSetting(def.quorum, 0);
      if (Number.isNaN(quorum)) throw configError('E_RANGE', 'quorum must be a whole number (0 = majority)');
      if (witnesses.length > 0) {
        // Only a checkpoint cosigned by the quorum is believed: the owner alone cannot show a forked view.
        owner.policy = QuorumPolicy.create({ origin, operator: owner.operator, witnesses, quorum: quorum > 0 ? quorum : undefined });
      }
      // A pasted invitation is verified again here and must still say what this node does (lib/access/invitation.ts).
      if ((def.invitation ?? '').trim() !== '')
        checkPartnerInvitation(def.invitation as string, {
          origin,
          operator: owner.operator,
          via: def.via === 'http' ? 'http' : 'mqtt',
          url: (def.url ?? '').trim(),
          witnesses,
          quorum,
        });
      const grant = (def.grant ?? '').trim();
      if (!isGrantId(grant)) throw configError('E_NO_GRANT', 'the grant id is 1-64 characters of A-Z a-z 0-9 . _ - (as bot-grant output it)');
      const identity = identityOf(RED, def.identity, 'partner identity');
      const counter = seqCounter(RED, identity.did);
      const timeoutMs = intSetting(def.timeoutMs, 10000);
      if (Number.isNaN(timeoutMs) || timeoutMs < 100) throw configError('E_RANGE', 'the timeout is a whole number of ms, at least 100');
      const places = parseReadPlaces(def.readFrom);
      const loadKey = encryptionKeyLoader(RED, node, def.encKeyFile, (node.credentials as { encSecret?: string } | undefined)?.encSecret);
      let encKey: Promise<EncryptionKey> | undefined;
      const encryptionKey = (): Promise<EncryptionKey> => (encKey ??= loadKey());
      let signed: Promise<unknown> | undefined;
      // Signed once per deploy: the partner's encryption key as its identity publishes it.
      enckey = () => (signed ??= encryptionKey().then((k) => signEnvelope(identity, encryptionKeyInput(k, counter.next(), Date.now())).toJSON()));
      const make = async (ownerWay: PartnerTransport, link?: MqttLink): Promise<PartnerClient> => {
        const ways = places.map((p) => {
          if ('owner' in p) return ownerWay;
          if (!link) throw configError('E_QUERY', 'reading from a mirror needs MQTT: choose a ledger with a broker');
          return mirrorTransport(link, owner, p.mirror, timeoutMs);
        });
        const transport = ways.length === 1 ? ways[0] : fallbackTransport(ways);
        return new PartnerClient({ owner, grant, identity, nextSeq: () => counter.next(), transport, encryptionKey: await encryptionKey() });
      };
      if (def.via === 'http') {
        const transport = httpTransport((def.url ?? '').trim(), timeoutMs, {}, closing.signal);
        const ledgerNode = places.some((p) => 'mirror' in p) ? ledgerNodeOf(RED, def.ledger) : undefined;
        client = ledgerNode ? ledgerNode.consensus.then((cons) => make(transport, cons?.link)) : make(transport);
      } else {
        const ledgerNode = ledgerNodeOf(RED, def.ledger);
        if (!ledgerNode.synced) throw configError('E_CLOSED', 'reaching the owner over MQTT needs a ledger with a broker (or choose HTTP)');
        // Before anything is sent, and for the status: is the owner's ledger on this broker? (lib/access/partner.ts OwnerCheck)
        const ready = ledgerNode.consensus.then((cons) => {
          if (!cons) throw new BotError('E_CLOSED', "the ledger's MQTT connection is not running");
          const check = new OwnerCheck(cons.link, owner);
          return { check, client: make(mqttTransport(cons.link, owner, timeoutMs, check), cons.link) };
        });
        ownerCheck = ready.then(
          (r) => r.check,
          () => undefined,
        );
        // "owner reachable" only once the owner's ledger was seen on the broker; else the check's reason.
        onLinkState = (fn) => {
          let state = '';
          let off = false;
          let offVerdict = (): void => undefined;
          void ownerCheck.then((check) => {
            if (!off && check)
              offVerdict = check.onVerdict((found) => {
                if (state === 'connected') fn(state, found ? undefined : NO_OWNER_LEDGER);
              });
          });
          const offLink = ledgerNode.onLinkState((st) => {
            state = st;
            if (st !== 'connected') {
              fn(st);
              return;
            }
            void ownerCheck.then((check) => {
              if (off || state !== 'connected') return;
              if (!check || check.found) fn(st);
              else check.check().catch(() => undefined); // the verdict comes through onVerdict
            });
          });
          return () => {
            off = true;
            offLink();
            offVerdict();
          };
        };
        client = ready.then((r) => r.client);
      }
    } catch (err) {
      node.configError = err instanceof BotError ? err : configError('E_QUERY', (err as Error).message);
      client = Promise.reject(node.configError);
    }
    client.catch(() => undefined); // reported by the nodes that use it
    node.client = () => client;
    node.enckey = () => enckey();
    node.onLinkState = (fn) => onLinkState(fn);
    node.on('close', () => {
      closing.abort();
      void ownerCheck.then((check) => check?.stop());
    });
  }

  RED.nodes.registerType('bot-partner', BotPartner, { credentials: { encSecret: { type: 'password' } } });
};
