/**
 * The partner side of partner access (docs/design.md "Partner access"): sign a request with the
 * partner's own key, send it to the owner over a transport (the owner's MQTT rpc topic, or an
 * HTTP endpoint wired to the owner's bot-query), and verify the answer before anything of it
 * is used. Only the owner's operator key (and its witnesses' keys, when a quorum is required)
 * is trusted; the transport is not: over MQTT anyone who can publish on the partner's reply
 * topic can answer, so an answer that does not verify is ignored and the real one awaited
 * (MqttLink.request's accept); only when none verifies in time is the request E_TIMEOUT.
 * Refusals are not signed and are taken as they come (a forged one denies service; it cannot
 * make the partner believe anything was stored).
 */
import { Envelope, SignedEnvelope, verifyEnvelope } from './envelope';
import { BotError, FormatError, isBotError } from './errors';
import { Identity } from './identity';
import type { JsonValue } from './jcs';
import type { Query } from './ledger';
import { makeRequest, OwnerRef, peerWords, RequestPayload, verifyAppendAnswer, VerifiedRead, VerifiedReceipt, verifyReadAnswer } from './access';
import { queryFrom } from './answer';
import type { MqttLink } from './mqtt-link';
import { ledgerId } from './quorum';
import { ledgerTopics } from './sync';

/**
 * Sends one signed request envelope and resolves with the owner's answer body. A transport
 * on which several answers may arrive (MQTT) passes each result to `accept` and takes the
 * first it returns true for (refusals are taken as they come); one answer per request (HTTP)
 * may ignore it.
 */
export type PartnerTransport = (request: Envelope, accept?: (answer: unknown) => boolean) => Promise<unknown>;

/** A transport over the owner's MQTT rpc topic (bot/v1/<ledgerId>/rpc, method "request"). */
export function mqttTransport(link: MqttLink, owner: Pick<OwnerRef, 'origin' | 'operator'>, timeoutMs = 10000): PartnerTransport {
  const topic = ledgerTopics(ledgerId(owner.origin, owner.operator), link.prefix).rpc;
  // A refusal comes back as an RPC error: turn it into the same {error} body HTTP carries.
  // A partner flow may fire before its broker connection is up: wait for it within the timeout.
  return (request, accept) => link.connected(timeoutMs).then(() => link.request(topic, 'request', request, timeoutMs,
    accept ? (res) => res.error !== undefined || accept(res.result) : undefined)).catch((err: unknown) => {
    if (err instanceof BotError && err.code !== 'E_TIMEOUT' && err.code !== 'E_CLOSED') return { error: { code: err.code, message: err.message } };
    throw err;
  });
}

/** A transport that POSTs the request envelope as JSON to an owner's URL. */
export function httpTransport(url: string, timeoutMs = 10000, headers: Record<string, string> = {}): PartnerTransport {
  let u: URL;
  try { u = new URL(url); } catch { throw new FormatError('E_QUERY', `not a URL: ${url.slice(0, 100)}`); }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new FormatError('E_QUERY', 'the owner URL must be http:// or https://');
  return async (request) => {
    let res: Response;
    try {
      res = await fetch(u, {
        method: 'POST', body: JSON.stringify(request), headers: { 'content-type': 'application/json', ...headers },
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const timeout = (err as Error).name === 'TimeoutError';
      throw new BotError(timeout ? 'E_TIMEOUT' : 'E_CLOSED', timeout ? `no answer from ${u.origin} within ${timeoutMs} ms` : `cannot reach ${u.origin}: ${(err as Error).message}`);
    }
    const text = await res.text();
    try { return JSON.parse(text) as unknown; } catch {
      throw new FormatError('E_QUERY', `the owner answered HTTP ${res.status} with a body that is not JSON`);
    }
  };
}

/** What a partner needs to talk to one owner's ledger. */
export interface PartnerClientOptions {
  owner: OwnerRef;
  /** The grant id the owner issued to this partner. */
  grant: string;
  /** The partner's own key (the grant's subject). */
  identity: Identity;
  /** The partner's persistent seq counter for its identity (lib/sequence.ts). */
  nextSeq: () => number;
  transport: PartnerTransport;
}

/** Reads from and supplies entries to an owner's ledger under a grant, verifying every answer. */
export class PartnerClient {
  readonly owner: OwnerRef;
  #opts: PartnerClientOptions;

  constructor(opts: PartnerClientOptions) {
    this.owner = opts.owner;
    this.#opts = opts;
  }

  /**
   * Sign and send a request; resolve with the first answer `verify` accepts (a refusal is
   * thrown as its typed error). Answers that fail `verify` are ignored where the transport
   * may carry several (MQTT); if none verifies in time, E_TIMEOUT names the last failure.
   */
  async #request<T>(payload: RequestPayload, verify: (answer: unknown) => T): Promise<T> {
    const env = makeRequest(this.#opts.identity, this.#opts.nextSeq(), payload);
    let verified: { answer: unknown; value: T } | undefined;
    let ignored = 0;
    let lastFailure: unknown;
    const accept = (answer: unknown): boolean => {
      try {
        verified = { answer, value: verify(answer) };
        return true;
      } catch (err) {
        ignored++;
        lastFailure = err;
        return false;
      }
    };
    let answer: unknown;
    try {
      answer = await this.#opts.transport(env.toJSON(), accept);
    } catch (err) {
      if (ignored > 0 && isBotError(err, 'E_TIMEOUT')) {
        const why = lastFailure instanceof BotError ? `${lastFailure.code}: ${lastFailure.message}` : String(lastFailure);
        throw new BotError('E_TIMEOUT', `${err.message}; ${ignored} answer(s) that did not verify were ignored (the last: ${peerWords(why)})`);
      }
      throw err;
    }
    // Verified once already when the transport took it through accept (the same object).
    if (verified && verified.answer === answer) return verified.value;
    return verify(answer);
  }

  /** Read entries (filter as bot-query's) and return them only once every proof and signature verified. */
  async read(filter: Query = {}): Promise<VerifiedRead> {
    const q = queryFrom({}, filter);
    return this.#request({ op: 'read', grant: this.#opts.grant, filter: q as Record<keyof Query, string | number> }, (a) => verifyReadAnswer(a, this.owner, q));
  }

  /**
   * Supply signed envelopes to the owner's ledger, in one request (all are appended, or none);
   * resolves with their receipts once each is proven against a checkpoint signed by the
   * owner's operator (verifyAppendAnswer): evidence the owner stored them.
   */
  async append(entries: readonly (SignedEnvelope | unknown)[]): Promise<VerifiedReceipt[]> {
    const envs = entries.map((e) => (e instanceof SignedEnvelope ? e : verifyEnvelope(e)));
    return this.#request({ op: 'append', grant: this.#opts.grant, entries: envs.map((e) => e.toJSON() as unknown as JsonValue) },
      (a) => verifyAppendAnswer(a, this.owner, envs));
  }
}
