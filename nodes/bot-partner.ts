/**
 * bot-partner (config node): an owner's ledger as a partner reaches it — its origin and
 * operator did:key, the grant id the owner issued, the partner's own identity (the grant's
 * subject, which signs every request), and the way to the owner: the owner's MQTT rpc topic
 * through this partner's own bot-ledger connection, or an HTTP endpoint where the owner wired
 * `http in → bot-query (answer partner requests) → http response`. Used by bot-query
 * (partner mode) and bot-append (partner mode); every answer is verified (lib/partner.ts).
 */
import { OwnerRef } from '../lib/access';
import { BotError } from '../lib/errors';
import { PublicKey } from '../lib/identity';
import { checkOrigin } from '../lib/ledger';
import { httpTransport, mqttTransport, PartnerClient, PartnerTransport } from '../lib/partner';
import { sharedSequence } from '../lib/sequence';
import { BotPartnerNode, configError, identityOf, intSetting, ledgerNodeOf, NodeAPI, NodeDef, userPath } from './red';

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
}

export = function (RED: NodeAPI): void {
  function BotPartner(this: BotPartnerNode, def: BotPartnerDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    node.configError = undefined;
    let client: Promise<PartnerClient>;
    let onLinkState: BotPartnerNode['onLinkState'] = () => () => undefined;
    try {
      const origin = (def.origin ?? '').trim();
      checkOrigin(origin);
      const owner: OwnerRef = { origin, operator: PublicKey.fromDid((def.operator ?? '').trim()).did };
      const grant = (def.grant ?? '').trim();
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(grant)) throw configError('E_NO_GRANT', 'the grant id is 1-64 characters of A-Z a-z 0-9 . _ - (as bot-grant output it)');
      const identity = identityOf(RED, def.identity, 'partner identity');
      const counter = sharedSequence(userPath(RED, 'bot-seq'), identity.did);
      const timeoutMs = intSetting(def.timeoutMs, 10000);
      if (Number.isNaN(timeoutMs) || timeoutMs < 100) throw configError('E_RANGE', 'the timeout is a whole number of ms, at least 100');
      const make = (transport: PartnerTransport): PartnerClient => new PartnerClient({ owner, grant, identity, nextSeq: () => counter.next(), transport });
      if (def.via === 'http') {
        const transport = httpTransport((def.url ?? '').trim(), timeoutMs);
        client = Promise.resolve(make(transport));
      } else {
        const ledgerNode = ledgerNodeOf(RED, def.ledger);
        if (!ledgerNode.synced) throw configError('E_CLOSED', 'reaching the owner over MQTT needs a ledger with a broker (or choose HTTP)');
        onLinkState = (fn) => ledgerNode.onLinkState(fn);
        client = ledgerNode.consensus.then((cons) => {
          if (!cons) throw new BotError('E_CLOSED', 'the ledger\'s MQTT connection is not running');
          return make(mqttTransport(cons.link, owner, timeoutMs));
        });
      }
    } catch (err) {
      node.configError = err instanceof BotError ? err : configError('E_QUERY', (err as Error).message);
      client = Promise.reject(node.configError);
    }
    client.catch(() => undefined); // reported by the nodes that use it
    node.client = () => client;
    node.onLinkState = (fn) => onLinkState(fn);
  }

  RED.nodes.registerType('bot-partner', BotPartner);
};
