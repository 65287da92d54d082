/**
 * One MQTT 3.1.1 connection shared by everything a ledger exchanges with its partners
 * (DESIGN.md "Sync over MQTT"): subscriptions that survive reconnects, state republished on
 * every (re)connect (retained messages are lost when a broker restarts without
 * persistence), reconnection with exponential back-off, and a small request/response RPC
 * with correlation ids and reply topics carried in the JSON body (MQTT 3.1.1 has no
 * response-topic property). Everything received is untrusted: size-limited and parsed
 * defensively before any handler sees it.
 */
import { EventEmitter } from 'node:events';
import * as crypto from 'node:crypto';
import mqtt, { IClientOptions, MqttClient } from 'mqtt';
import { BotError, FormatError, isBotErrorCode, LedgerError } from './errors';
import { topicMatches } from './topic';

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
  /** Largest payload handed to handlers (default 1 MiB); larger ones are dropped. */
  maxPayload?: number;
  /** Topic prefix (default `bot/v1`). */
  prefix?: string;
}

/** Connection state, as shown in node status. */
export type LinkState = 'connecting' | 'connected' | 'disconnected' | 'closed';

/** A message handler; payloads are Buffers at most maxPayload long. */
export type MessageHandler = (topic: string, payload: Buffer) => void;

/** An RPC method implementation; its thrown BotError becomes the `{error:{code,message}}` answer. */
export type RpcHandler = (method: string, params: unknown) => Promise<unknown>;

interface RpcRequest { v: 1; id: string; reply: string; method: string; params?: unknown }
interface RpcResponse { v: 1; id: string; result?: unknown; error?: { code: string; message: string } }

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

/** Whether an RPC answer is to be taken (see MqttLink.request); false drops it. */
export type RpcAccept = (response: { result?: unknown; error?: { code: string; message: string } }) => boolean;

/** An RPC failure answered by the peer, or a timeout. */
export class RpcError extends BotError {}

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
    this.#delay = opts.reconnectMs ?? 500;
  }

  /** The current connection state. */
  get state(): LinkState { return this.#state; }

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
        if (err) { this.emit('error', err); return; }
        this.#setState('connected');
        for (const f of this.#onConnect) {
          try { f(); } catch (e) { this.emit('error', e); }
        }
      });
    });
    client.on('reconnect', () => {
      this.#delay = Math.min(this.#delay * 2, o.maxReconnectMs ?? 30000);
      client.options.reconnectPeriod = this.#delay;
      this.#setState('connecting');
    });
    client.on('close', () => { if (this.#state !== 'closed') this.#setState('disconnected'); });
    client.on('error', (err) => this.emit('error', err));
    client.on('message', (topic, payload) => this.#dispatch(topic, payload));
  }

  #dispatch(topic: string, payload: Buffer): void {
    if (payload.length > (this.#opts.maxPayload ?? MAX_MESSAGE_BYTES)) return;
    if (topic === this.#replyTopic) { this.#answer(payload); return; }
    for (const [filter, handlers] of this.#subs) {
      if (!topicMatches(filter, topic)) continue;
      for (const h of handlers) {
        try { h(topic, payload); } catch (err) { this.emit('error', err); }
      }
    }
  }

  /** Subscribe a handler to a topic filter, kept across reconnects; returns an unsubscribe. */
  subscribe(filter: string, handler: MessageHandler): () => void {
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
    return () => { this.#onConnect.delete(fn); };
  }

  /** Resolves once connected (now if already), or rejects with E_TIMEOUT after ms, or E_CLOSED once closed. */
  connected(ms: number): Promise<void> {
    if (this.#state === 'connected') return Promise.resolve();
    if (this.#state === 'closed') return Promise.reject(new LedgerError('E_CLOSED', 'the MQTT link was closed'));
    return new Promise((resolve, reject) => {
      const onState = (st: LinkState): void => {
        if (st !== 'connected' && st !== 'closed') return;
        finish();
        if (st === 'connected') resolve(); else reject(new LedgerError('E_CLOSED', 'the MQTT link was closed'));
      };
      const timer = setTimeout(() => { finish(); reject(new RpcError('E_TIMEOUT', `not connected to the MQTT broker within ${ms} ms`)); }, ms);
      const finish = (): void => { clearTimeout(timer); this.off('state', onState); };
      this.on('state', onState);
    });
  }

  /** Publish (QoS 1); rejects when not connected rather than queueing without bound. */
  publish(topic: string, payload: string | Buffer, opts: { retain?: boolean } = {}): Promise<void> {
    const client = this.#client;
    if (!client || !client.connected) return Promise.reject(new LedgerError('E_CLOSED', 'not connected to the MQTT broker'));
    return new Promise((resolve, reject) => {
      client.publish(topic, payload, { qos: 1, retain: opts.retain ?? false }, (err) => (err ? reject(err) : resolve()));
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
    try { res = JSON.parse(payload.toString('utf8')) as RpcResponse; } catch { return; }
    if (!res || typeof res.id !== 'string') return;
    const p = this.#pending.get(res.id);
    if (!p) return;
    if (p.accept) {
      let ok = false;
      try { ok = p.accept({ result: res.result, error: res.error }); } catch { ok = false; }
      if (!ok) return;
    }
    this.#pending.delete(res.id);
    clearTimeout(p.timer);
    if (res.error) p.reject(new RpcError(isBotErrorCode(res.error.code) ? res.error.code : 'E_QUERY', String(res.error.message ?? 'RPC error').slice(0, 500)));
    else p.resolve(res.result);
  }

  /** Answer RPC requests arriving on a topic with a handler. */
  serve(topic: string, handler: RpcHandler): () => void {
    return this.subscribe(topic, (_t, payload) => {
      let req: RpcRequest;
      try { req = JSON.parse(payload.toString('utf8')) as RpcRequest; } catch { return; }
      if (!req || req.v !== 1 || typeof req.id !== 'string' || req.id.length > 64 || typeof req.method !== 'string'
        || typeof req.reply !== 'string' || !req.reply.startsWith(`${this.prefix}/_reply/`) || /[+#]/.test(req.reply)) return;
      handler(req.method, req.params).then(
        (result) => ({ v: 1 as const, id: req.id, result }),
        (err: unknown) => ({ v: 1 as const, id: req.id, error: { code: err instanceof BotError ? err.code : 'E_STORE', message: (err as Error).message ?? String(err) } }),
      ).then((res) => this.publish(req.reply, JSON.stringify(res))).catch((err) => this.emit('error', err));
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
    if (c) await new Promise<void>((resolve) => c.end(false, {}, () => resolve()));
  }
}

