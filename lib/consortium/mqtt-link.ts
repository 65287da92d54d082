/**
 * One MQTT 3.1.1 connection shared by everything a ledger exchanges with its partners
 * (docs/design.md "Sync over MQTT"): subscriptions that survive reconnects, state republished on
 * every (re)connect (retained messages are lost when a broker restarts without
 * persistence), reconnection with exponential back-off, and a small request/response RPC
 * with correlation ids and reply topics carried in the JSON body (MQTT 3.1.1 has no
 * response-topic property). Everything received is untrusted: size-limited and parsed
 * defensively before any handler sees it.
 *
 * Nothing a peer sends can knock the link offline: every topic published to is first checked
 * as a legal MQTT topic name (lib/format/topic.ts checkTopicName; a broker closes the connection of
 * a client publishing to an illegal one, and mqtt.js would re-send the stored QoS 1 publish on
 * every reconnect), requests with an illegal reply topic and retained requests are dropped,
 * and both sides hold to one size limit (MAX_MESSAGE_BYTES). Whatever is dropped or refused
 * is reported as a 'drop' event (LinkDrop, printable text only), never silently.
 */
import { EventEmitter } from 'node:events';
import * as crypto from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { BotError, FormatError, isBotErrorCode, LedgerError } from '../errors';
import { checkTopicFilter, checkTopicName, escapeUnprintable, printable, topicMatches, topicNameProblem } from '../format/topic';

/** Connection settings; secrets (password, TLS key) come from Node-RED credentials or files. */
export interface LinkOptions {
  /** Broker URL: mqtt://, mqtts://, ws://, wss://. */
  url: string;
  clientId?: string;
  username?: string;
  password?: string;
  tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer; rejectUnauthorized?: boolean };
  /** First reconnect delay (ms, default 500); doubles up to maxReconnectMs (default 30 000). */
  reconnectMs?: number;
  maxReconnectMs?: number;
  /**
   * Largest payload handed to handlers, and published (default MAX_MESSAGE_BYTES, 1 MiB):
   * larger incoming ones are dropped, larger outgoing ones refused, both with a 'drop' event.
   */
  maxPayload?: number;
  /** Topic prefix (default `bot/v1`). */
  prefix?: string;
}

/** Connection state, as shown in node status. */
export type LinkState = 'connecting' | 'connected' | 'disconnected' | 'closed';

/** A message handler; payloads are Buffers at most maxPayload long; retained: delivered from the broker's retained store (MQTT 3.1.1 §3.3.1.3). */
export type MessageHandler = (topic: string, payload: Buffer, retained: boolean) => void;

/** Why the link dropped or refused a message. */
export type DropReason =
  | 'oversize-in' // an incoming payload above maxPayload
  | 'oversize-out' // a publish above maxPayload (the peers' limit), refused
  | 'bad-topic' // a publish to an illegal topic name, refused
  | 'bad-reply' // an RPC request whose reply topic is not a legal reply topic
  | 'retained-request' // an RPC request delivered from the retained store (MQTT 3.1.1 §3.3.1.3)
  | 'answer-too-large'; // an RPC answer above the limit, replaced by an E_TOO_LARGE error answer

/** A 'drop' event: what was dropped and why, in printable words (never raw bytes of a peer). */
export interface LinkDrop {
  reason: DropReason;
  message: string;
}

/** An RPC method implementation; its thrown BotError becomes the `{error:{code,message}}` answer. */
export type RpcHandler = (method: string, params: unknown) => Promise<unknown>;

interface RpcRequest {
  v: 1;
  id: string;
  reply: string;
  method: string;
  params?: unknown;
}
interface RpcResponse {
  v: 1;
  id: string;
  result?: unknown;
  error?: { code: string; message: string };
}

const MAX_PENDING = 1024;

/**
 * Largest MQTT message the link hands to handlers, and so the largest a peer may send it
 * (default of LinkOptions.maxPayload): 1 MiB.
 */
export const MAX_MESSAGE_BYTES = 1 << 20;
/**
 * Budget for the body of one RPC answer or published message built from ledger entries:
 * answers are paged (`next`) by this size as well as by count, so that with the RPC wrapper
 * they always fit MAX_MESSAGE_BYTES on the receiving side.
 */
export const MAX_ANSWER_BYTES = MAX_MESSAGE_BYTES - 64 * 1024;

/** How long close() lets in-flight QoS 1 publishes and the DISCONNECT go out before it drops the connection (ms). */
export const CLOSE_GRACE_MS = 1000;

/** Whether an RPC answer is to be taken (see MqttLink.request); false drops it. */
export type RpcAccept = (response: { result?: unknown; error?: { code: string; message: string } }) => boolean;

/** An RPC failure answered by the peer, or a timeout. */
export class RpcError extends BotError {}

const URL_USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)@/i;

/**
 * A broker URL safe to show (logs, statuses, errors): the password of its user information
 * (RFC 3986 §3.2.1) replaced by `***`; the user name is kept.
 */
export function redactUrl(url: string): string {
  return String(url).replace(URL_USERINFO, (_m, scheme: string, info: string) => {
    const colon = info.indexOf(':');
    return `${scheme}${colon < 0 ? info : `${info.slice(0, colon)}:***`}@`;
  });
}

/** Whether a broker URL carries a password in its user information (RFC 3986 §3.2.1: deprecated, and it would be logged and stored in the flow). */
export function urlHasPassword(url: string): boolean {
  const m = URL_USERINFO.exec(String(url));
  return m !== null && (m[2] as string).includes(':');
}

/** A shared MQTT connection with reconnecting subscriptions and RPC. */
export class MqttLink extends EventEmitter {
  readonly prefix: string;
  readonly clientId: string;
  #opts: LinkOptions;
  #client: MqttClient | undefined;
  #subs = new Map<string, Set<MessageHandler>>();
  #onConnect = new Set<() => void>();
  #pending = new Map<string, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout; accept?: RpcAccept }>();
  #replyTopic: string;
  #state: LinkState = 'disconnected';
  #delay: number;

  constructor(opts: LinkOptions) {
    super();
    if (typeof opts.url !== 'string' || !/^(mqtts?|wss?|tcp|ssl):\/\//.test(opts.url)) {
      throw new FormatError('E_QUERY', 'broker URL must start with mqtt://, mqtts://, ws:// or wss://');
    }
    this.#opts = opts;
    this.prefix = opts.prefix ?? 'bot/v1';
    this.clientId = opts.clientId || `bot-${crypto.randomBytes(6).toString('hex')}`;
    this.#replyTopic = `${this.prefix}/_reply/${this.clientId}`;
    checkTopicName(this.#replyTopic, 'the reply topic (prefix and client id)');
    this.#delay = opts.reconnectMs ?? 500;
  }

  get #maxPayload(): number {
    return this.#opts.maxPayload ?? MAX_MESSAGE_BYTES;
  }

  /** Report an error to 'error' listeners; without one it is dropped rather than thrown (an unheard 'error' event would crash the process). */
  #error(err: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  #drop(reason: DropReason, message: string): void {
    const d: LinkDrop = { reason, message };
    this.emit('drop', d);
  }

  /** The current connection state. */
  get state(): LinkState {
    return this.#state;
  }

  #setState(s: LinkState, err?: Error): void {
    this.#state = s;
    this.emit('state', s, err);
  }

  /** Connect (idempotent); reconnects by itself until close(). */
  start(): void {
    if (this.#client || this.#state === 'closed') return;
    const o = this.#opts;
    const options: IClientOptions = {
      protocolVersion: 4,
      clientId: this.clientId,
      clean: true,
      keepalive: 30,
      connectTimeout: 10000,
      reconnectPeriod: this.#delay,
      username: o.username || undefined,
      password: o.password || undefined,
      ...(o.tls ?? {}),
    };
    this.#setState('connecting');
    const client = mqtt.connect(o.url, options);
    this.#client = client;
    client.on('connect', () => {
      // Small request/response messages: without TCP_NODELAY each hop waits for a delayed ACK.
      (client.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
      this.#delay = o.reconnectMs ?? 500;
      client.options.reconnectPeriod = this.#delay;
      const filters = [...this.#subs.keys(), this.#replyTopic];
      client.subscribe(filters, { qos: 1 }, (err) => {
        if (err) {
          this.#error(err);
          return;
        }
        this.#setState('connected');
        for (const f of this.#onConnect) {
          try {
            f();
          } catch (e) {
            this.#error(e);
          }
        }
      });
    });
    client.on('reconnect', () => {
      this.#delay = Math.min(this.#delay * 2, o.maxReconnectMs ?? 30000);
      client.options.reconnectPeriod = this.#delay;
      this.#setState('connecting');
    });
    client.on('close', () => {
      if (this.#state !== 'closed') this.#setState('disconnected');
    });
    client.on('error', (err) => this.#error(err));
    client.on('message', (topic, payload, packet) => {
      try {
        this.#dispatch(topic, payload, packet?.retain === true);
      } catch (err) {
        this.#error(err);
      }
    });
  }

  #dispatch(topic: string, payload: Buffer, retained: boolean): void {
    if (payload.length > this.#maxPayload) {
      this.#drop('oversize-in', `dropped a ${payload.length}-byte message on ${printable(topic)}: above the ${this.#maxPayload}-byte limit`);
      return;
    }
    if (topic === this.#replyTopic) {
      this.#answer(payload);
      return;
    }
    for (const [filter, handlers] of this.#subs) {
      if (!topicMatches(filter, topic)) continue;
      for (const h of handlers) {
        try {
          h(topic, payload, retained);
        } catch (err) {
          this.#error(err);
        }
      }
    }
  }

  /** Subscribe a handler to a topic filter (checked: MQTT 3.1.1 §4.7), kept across reconnects; returns an unsubscribe. */
  subscribe(filter: string, handler: MessageHandler): () => void {
    checkTopicFilter(filter);
    let set = this.#subs.get(filter);
    if (!set) {
      set = new Set();
      this.#subs.set(filter, set);
      if (this.#client?.connected) this.#client.subscribe(filter, { qos: 1 });
    }
    set.add(handler);
    return () => {
      const s = this.#subs.get(filter);
      if (!s) return;
      s.delete(handler);
      if (s.size === 0) {
        this.#subs.delete(filter);
        if (this.#client?.connected) this.#client.unsubscribe(filter);
      }
    };
  }

  /** Run fn on every (re)connect, and now if connected: to republish retained state. */
  onConnect(fn: () => void): () => void {
    this.#onConnect.add(fn);
    if (this.#state === 'connected') fn();
    return () => {
      this.#onConnect.delete(fn);
    };
  }

  /** Resolves once connected (now if already), or rejects with E_TIMEOUT after ms, or E_CLOSED once closed. */
  connected(ms: number): Promise<void> {
    if (this.#state === 'connected') return Promise.resolve();
    if (this.#state === 'closed') return Promise.reject(new LedgerError('E_CLOSED', 'the MQTT link was closed'));
    return new Promise((resolve, reject) => {
      const onState = (st: LinkState): void => {
        if (st !== 'connected' && st !== 'closed') return;
        finish();
        if (st === 'connected') resolve();
        else reject(new LedgerError('E_CLOSED', 'the MQTT link was closed'));
      };
      const timer = setTimeout(() => {
        finish();
        reject(new RpcError('E_TIMEOUT', `not connected to the MQTT broker within ${ms} ms`));
      }, ms);
      const finish = (): void => {
        clearTimeout(timer);
        this.off('state', onState);
      };
      this.on('state', onState);
    });
  }

  /**
   * Publish (QoS 1); rejects when not connected rather than queueing without bound. The topic
   * must be a legal topic name (E_QUERY: MQTT 3.1.1 §1.5.3, §4.7) and the payload at most
   * maxPayload bytes, the limit of the peers (E_TOO_LARGE); mqtt.js never sees a refused one.
   */
  publish(topic: string, payload: string | Buffer, opts: { retain?: boolean } = {}): Promise<void> {
    const problem = topicNameProblem(topic);
    if (problem !== undefined) {
      const text = typeof topic === 'string' ? printable(topic, 60) : typeof topic;
      this.#drop('bad-topic', `refused to publish to ${text}: ${problem}`);
      return Promise.reject(new FormatError('E_QUERY', `cannot publish to ${text}: ${problem}`));
    }
    const size = typeof payload === 'string' ? Buffer.byteLength(payload, 'utf8') : payload.length;
    if (size > this.#maxPayload) {
      this.#drop('oversize-out', `refused to publish ${size} bytes on ${printable(topic)}: above the ${this.#maxPayload}-byte message limit`);
      return Promise.reject(new LedgerError('E_TOO_LARGE', `a ${size}-byte message is above the ${this.#maxPayload}-byte MQTT message limit`));
    }
    const client = this.#client;
    if (!client || !client.connected) return Promise.reject(new LedgerError('E_CLOSED', 'not connected to the MQTT broker'));
    return new Promise((resolve, reject) => {
      try {
        client.publish(topic, payload, { qos: 1, retain: opts.retain ?? false }, (err) => (err ? reject(err) : resolve()));
      } catch (err) {
        reject(err as Error);
      }
    });
  }

  /**
   * Call a method on a peer's RPC topic; resolves with its result or rejects with RpcError.
   * With `accept`, an answer for which it returns false (or throws) is dropped and the request
   * keeps waiting for another until its timeout: anyone who can publish on the reply topic
   * can answer, so a caller that can verify answers (a signed receipt) lets a forged one not win.
   */
  request(topic: string, method: string, params: unknown, timeoutMs = 10000, accept?: RpcAccept): Promise<unknown> {
    if (this.#pending.size >= MAX_PENDING) return Promise.reject(new RpcError('E_TOO_LARGE', 'too many RPC requests in flight'));
    const id = crypto.randomBytes(8).toString('hex');
    const req: RpcRequest = { v: 1, id, reply: this.#replyTopic, method, params };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new RpcError('E_TIMEOUT', `no answer to ${method} on ${topic} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer, accept });
      this.publish(topic, JSON.stringify(req)).catch((err: Error) => {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(err);
      });
    });
  }

  #answer(payload: Buffer): void {
    let res: RpcResponse;
    try {
      res = JSON.parse(payload.toString('utf8')) as RpcResponse;
    } catch {
      return;
    }
    if (!res || typeof res.id !== 'string') return;
    const p = this.#pending.get(res.id);
    if (!p) return;
    if (p.accept) {
      let ok = false;
      try {
        ok = p.accept({ result: res.result, error: res.error });
      } catch {
        ok = false;
      }
      if (!ok) return;
    }
    this.#pending.delete(res.id);
    clearTimeout(p.timer);
    // The peer's words reach logs and statuses: printable only.
    if (res.error)
      p.reject(
        new RpcError(isBotErrorCode(res.error.code) ? res.error.code : 'E_QUERY', escapeUnprintable(String(res.error.message ?? 'RPC error').slice(0, 500))),
      );
    else p.resolve(res.result);
  }

  /**
   * Answer RPC requests arriving on a topic with a handler. A request is dropped (with a
   * 'drop' event) when it was retained — a request is an event, and a retained one would come
   * back on every reconnect — or when its reply topic is not a legal topic name under
   * `<prefix>/_reply/`. An answer above maxPayload is replaced by an E_TOO_LARGE error answer;
   * an error that is not a BotError is answered as E_STORE without its text (it may name files).
   */
  serve(topic: string, handler: RpcHandler): () => void {
    const replyPrefix = `${this.prefix}/_reply/`;
    return this.subscribe(topic, (t, payload, retained) => {
      let req: RpcRequest;
      try {
        req = JSON.parse(payload.toString('utf8')) as RpcRequest;
      } catch {
        return;
      }
      if (!req || req.v !== 1 || typeof req.id !== 'string' || req.id.length > 64 || typeof req.method !== 'string' || typeof req.reply !== 'string') return;
      if (retained) {
        this.#drop('retained-request', `ignored a retained request on ${printable(t)} (reply topic ${printable(req.reply, 60)})`);
        return;
      }
      const problem = req.reply.startsWith(replyPrefix) ? topicNameProblem(req.reply) : `it is not under ${replyPrefix}`;
      if (problem !== undefined) {
        this.#drop('bad-reply', `dropped a request on ${printable(t)} with reply topic ${printable(req.reply, 60)}: ${problem}`);
        return;
      }
      const { id, reply, method } = req;
      Promise.resolve()
        .then(() => handler(method, req.params))
        .then(
          (result) => ({ v: 1 as const, id, result }),
          (err: unknown) => {
            if (!(err instanceof BotError)) this.#error(err);
            return {
              v: 1 as const,
              id,
              error: err instanceof BotError ? { code: err.code, message: err.message } : { code: 'E_STORE', message: 'the ledger could not answer' },
            };
          },
        )
        .then((res) => {
          let body = JSON.stringify(res);
          const size = Buffer.byteLength(body, 'utf8');
          if (size > this.#maxPayload) {
            this.#drop(
              'answer-too-large',
              `answered ${printable(method, 40)} on ${printable(t)} with E_TOO_LARGE: the ${size}-byte answer is above the ${this.#maxPayload}-byte limit`,
            );
            body = JSON.stringify({
              v: 1,
              id,
              error: { code: 'E_TOO_LARGE', message: `the answer is ${size} bytes, above the ${this.#maxPayload}-byte MQTT message limit: ask for less` },
            });
          }
          return this.publish(reply, body);
        })
        .catch((err: unknown) => this.#error(err));
    });
  }

  /** Disconnect and stop reconnecting; pending requests fail with E_CLOSED. */
  async close(): Promise<void> {
    this.#setState('closed');
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new LedgerError('E_CLOSED', 'the MQTT link was closed'));
      this.#pending.delete(id);
    }
    const c = this.#client;
    this.#client = undefined;
    if (!c) return;
    // Disconnected (a broker gone): nothing can be flushed, and a graceful end would wait for
    // the acknowledgements of in-flight publishes forever. Connected: let them and the
    // DISCONNECT go out for at most CLOSE_GRACE_MS (a broker that hangs acknowledges nothing),
    // then drop the connection.
    await new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        if (timer) clearTimeout(timer);
        timer = undefined;
        resolve();
      };
      const force = (): void => {
        c.removeAllListeners('outgoingEmpty'); // the graceful end's pending finish
        c.disconnecting = false; // lets end(true) run after the end(false) that hung
        c.end(true, {}, done);
      };
      if (!c.connected) {
        force();
        return;
      }
      timer = setTimeout(() => {
        timer = undefined;
        force();
      }, CLOSE_GRACE_MS);
      c.end(false, {}, done);
    });
  }
}
