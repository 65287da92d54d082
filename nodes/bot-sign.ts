/**
 * bot-sign: wraps msg.payload in a signed envelope of kind "reading".
 *
 * msg.payload (JSON value or Buffer) → msg.payload = the envelope (a plain object),
 * msg.unsigned = the original payload. msg.topic (when a non-empty string) becomes the
 * envelope's topic. Editor options (typed inputs; absent in flows saved before them, which
 * keep the behaviour above): `property` (the msg property signed and replaced, default
 * payload), `topic`/`topicType` (default msg.topic; also flow, global, env or a fixed
 * string) and `kind`/`kindType` (default the string "reading"). `seq` comes from the
 * signer's persistent counter (lib/store/sequence.ts), so it keeps increasing across redeploys and
 * restarts and is never reused by one signer. Under a burst of messages the Ed25519 signatures are
 * made on worker threads (lib/format/sign-pool.ts; the same envelopes, in the same order); a message
 * at a low rate is signed inline. `botSignWorkers` in settings.js sets the threads (0: none).
 */
import { type SignedEnvelope, signEnvelope } from '../lib/format/envelope';
import { type SignPool, type SignPoolLease, sharedSignPool } from '../lib/format/sign-pool';
import { BotError, isBotError } from '../lib/errors';
import { type Identity } from '../lib/format/identity';
import { jsonProblem, type JsonValue } from '../lib/format/jcs';
import { type SequenceCounter } from '../lib/store/sequence';
import { describeSetting, evaluate, messageProperty, setMessageProperty, typedSetting, type TypedSetting } from './typed-input';
import type { DoneFn, NodeAPI, NodeDef, NodeMessage, RedNode, SendFn } from './red-api';
import { identityOf, seqCounter } from './config-nodes';
import { StatusThrottle } from './node-status';
import { tr, useI18n } from './i18n';

interface BotSignDef extends NodeDef {
  name?: string;
  identity?: string;
  /** The msg property to sign and replace with the envelope (default payload). */
  property?: string;
  topic?: string;
  topicType?: string;
  kind?: string;
  kindType?: string;
}

const DEFAULT_TOPIC: TypedSetting = { value: 'topic', type: 'msg' };
const DEFAULT_KIND: TypedSetting = { value: 'reading', type: 'str' };

/** A topic value as the envelope takes it: undefined, null and '' mean no topic. */
function topicValue(v: unknown): string | undefined {
  return v === undefined || v === null || v === '' ? undefined : (v as string);
}

export = function (RED: NodeAPI): void {
  useI18n(RED);
  function BotSign(this: RedNode, def: BotSignDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const status = new StatusThrottle(node, 500);
    let identity: Identity | undefined;
    let counter: SequenceCounter | undefined;
    let setupError: Error | undefined;
    let pool: SignPool | undefined;
    let poolLease: SignPoolLease | undefined;
    const property = typeof def.property === 'string' && def.property.trim() !== '' ? def.property.trim() : 'payload';
    const topicSetting = typedSetting(def.topic, def.topicType, DEFAULT_TOPIC);
    const kindSetting = typedSetting(def.kind, def.kindType, DEFAULT_KIND);
    const fastTopic = topicSetting.type === 'msg' && topicSetting.value === 'topic';
    const fastKind = kindSetting.type === 'str';
    try {
      identity = identityOf(RED, def.identity, 'identity');
      counter = seqCounter(RED, identity.did);
      const workers = RED.settings.botSignWorkers;
      // One pool per identity, shared with the other sign nodes of it: their envelopes go out in seq order.
      if (workers !== 0) {
        poolLease = sharedSignPool(identity, typeof workers === 'number' ? { workers } : {});
        pool = poolLease.pool;
      }
      (node as RedNode & { signPool?: SignPool }).signPool = pool; // @internal: tests read its stats
      status.now({ fill: 'grey', shape: 'dot', text: tr('bot-sign.status.next', { seq: counter.peek() }) });
    } catch (err) {
      setupError = err as Error;
      status.fail(err);
      node.error(err);
    }
    let signed = 0;

    /** Sign msg[property] with the topic and kind evaluated for this message. */
    const sign = (msg: NodeMessage, send: SendFn, done: DoneFn, topic: unknown, kind: unknown): void => {
      let payload: unknown;
      try {
        payload = messageProperty(RED, msg, property);
        if (payload === undefined) throw new BotError('E_JSON', `msg.${property} is missing: there is nothing to sign`);
        if (typeof kind !== 'string')
          throw new BotError('E_ENVELOPE', `the kind (${describeSetting(kindSetting)}) must be a string, not ${kind === null ? 'null' : typeof kind}`);
        const seq = counter!.next(); // a seq burnt by a failed signature is only a gap
        const input = { kind, seq, ts: Date.now(), topic: topicValue(topic), payload: payload as JsonValue | Uint8Array };
        const deliver = (env: SignedEnvelope): void => {
          msg.unsigned = payload;
          // A fresh plain object, sharing nothing with the original payload.
          setMessageProperty(RED, msg, property, JSON.parse(env.bytes.toString('utf8')) as unknown);
          signed++;
          status.update(() => ({ fill: 'green', shape: 'dot', text: tr('bot-sign.status.signed', { seq, n: signed }) }));
          send(msg);
          done();
        };
        if (!pool) deliver(signEnvelope(identity!, input));
        else
          pool
            .sign(input)
            .then(deliver)
            .catch((err: unknown) => {
              status.fail(err);
              done(err as Error);
            });
      } catch (err) {
        // A value that is not JSON: name it where the flow has it (msg.payload.a.b is a Map).
        const e = isBotError(err, 'E_JSON') ? (jsonProblem(payload, `msg.${property}`) ?? err) : err;
        status.fail(e);
        done(e as Error);
      }
    };
    const failed = (err: unknown): Error => {
      status.fail(err);
      return err instanceof Error ? err : new BotError('E_JSON', String(err));
    };

    node.on('input', (msg: NodeMessage, send: SendFn, done: DoneFn) => {
      if (setupError || !identity || !counter) {
        done(setupError ?? new BotError('E_KEY', 'bot-sign is not configured'));
        return;
      }
      let topic: unknown;
      let kind: unknown;
      try {
        topic = fastTopic ? msg.topic : evaluate(RED, node, topicSetting, msg);
        kind = fastKind ? kindSetting.value : evaluate(RED, node, kindSetting, msg);
      } catch (err) {
        done(failed(err));
        return;
      }
      if (topic instanceof Promise || kind instanceof Promise) {
        Promise.all([topic, kind]).then(
          ([t, k]) => sign(msg, send, done, t, k),
          (err: unknown) => done(failed(err)),
        );
        return;
      }
      sign(msg, send, done, topic, kind);
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      status.stop();
      if (!poolLease) return done();
      // Messages being signed get up to 2 s to go out; the last sign node of the identity then ends its workers.
      void poolLease.release(2000).finally(() => done());
    });
  }

  RED.nodes.registerType('bot-sign', BotSign);
};
