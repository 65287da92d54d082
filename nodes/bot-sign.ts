/**
 * bot-sign: wraps msg.payload in a signed envelope of kind "reading".
 *
 * msg.payload (JSON value or Buffer) → msg.payload = the envelope (a plain object),
 * msg.unsigned = the original payload. msg.topic (when a non-empty string) becomes the
 * envelope's topic. `seq` comes from the signer's persistent counter (lib/sequence.ts), so it
 * keeps increasing across redeploys and restarts and is never reused by one signer.
 */
import { signEnvelope } from '../lib/envelope';
import { BotError } from '../lib/errors';
import { Identity } from '../lib/identity';
import { JsonValue } from '../lib/jcs';
import { SequenceCounter, sharedSequence } from '../lib/sequence';
import {
  DoneFn, identityOf, NodeAPI, NodeDef, NodeMessage, RedNode, SendFn, shortMessage, StatusThrottle, userPath,
} from './red';

interface BotSignDef extends NodeDef {
  name?: string;
  identity?: string;
}

export = function (RED: NodeAPI): void {
  function BotSign(this: RedNode, def: BotSignDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const status = new StatusThrottle(node, 500);
    let identity: Identity | undefined;
    let counter: SequenceCounter | undefined;
    let setupError: Error | undefined;
    try {
      identity = identityOf(RED, def.identity, 'identity');
      counter = sharedSequence(userPath(RED, 'bot-seq'), identity.did);
      status.now({ fill: 'grey', shape: 'dot', text: `next seq ${counter.peek()}` });
    } catch (err) {
      setupError = err as Error;
      status.now({ fill: 'red', shape: 'ring', text: shortMessage(err) });
      node.error(err);
    }
    let signed = 0;

    node.on('input', (msg: NodeMessage, send: SendFn, done: DoneFn) => {
      if (setupError || !identity || !counter) {
        done(setupError ?? new BotError('E_KEY', 'bot-sign is not configured'));
        return;
      }
      try {
        const payload = msg.payload;
        if (payload === undefined) throw new BotError('E_JSON', 'msg.payload is missing');
        const topic = msg.topic === undefined || msg.topic === null || msg.topic === '' ? undefined : msg.topic;
        const seq = counter.next(); // a seq burnt by a failed signature is only a gap
        const env = signEnvelope(identity, {
          kind: 'reading',
          seq,
          ts: Date.now(),
          topic: topic as string | undefined,
          payload: payload as JsonValue | Uint8Array,
        });
        msg.unsigned = payload;
        // A fresh plain object, sharing nothing with the original payload.
        msg.payload = JSON.parse(env.bytes.toString('utf8')) as unknown;
        signed++;
        status.update(() => ({ fill: 'green', shape: 'dot', text: `seq ${seq} · ${signed} signed` }));
        send(msg);
        done();
      } catch (err) {
        status.now({ fill: 'red', shape: 'ring', text: shortMessage(err) });
        done(err as Error);
      }
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      status.stop();
      done();
    });
  }

  RED.nodes.registerType('bot-sign', BotSign);
};
