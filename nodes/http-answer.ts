/**
 * A request that came in through Node-RED's `http in` node (the msg carries `msg.res`) must
 * always be answered, or its client waits until its own timeout: an error sent to Catch nodes
 * answers nobody unless the flow wires Catch → `http response`. So a node that sits between
 * `http in` and `http response` (bot-query) turns its failure into the answer instead: the msg
 * goes out on its output with `msg.payload = {error: {code, message}}` (no stack, no secret)
 * and `msg.statusCode` (RFC 9110 §15: 4xx for the request's fault, 5xx for the server's or an
 * upstream's), and the failure shows on the node's status. Without `msg.res`, errors go to
 * Catch nodes as before. Not a node: no .html, not in node-red.nodes.
 */
import { refusal, refusalStatus } from '../lib/access/access';
import { BotError } from '../lib/errors';
import type { DoneFn, NodeMessage, SendFn } from './red-api';

/** True when msg came from `http in` and still holds the response to answer (msg.res). */
export function fromHttpIn(msg: NodeMessage): boolean {
  const res = msg.res as { _res?: unknown } | null | undefined;
  return res !== null && typeof res === 'object' && res._res !== undefined;
}

/** Codes that mean the owner's answer was not good (partner mode): the upstream failed, not the request. */
const UPSTREAM_CODES: readonly string[] = ['E_SIGNATURE', 'E_PROOF', 'E_CHECKPOINT', 'E_NOTE', 'E_CONFLICT', 'E_ENVELOPE'];

/**
 * The HTTP status of a failure (RFC 9110 §15): the partner-access statuses of lib/access/access.ts
 * (403 access, 409 replay, 503 unavailable, else 400), 504 for a timeout, 502 for an owner's
 * answer that did not verify (`upstream`), 500 for a node that is not configured or an error
 * that is not the kernel's.
 */
export function httpStatusOf(err: unknown, opts: { upstream?: boolean; setup?: boolean } = {}): number {
  const code = refusal(err).error.code;
  if (opts.setup) return 500;
  if (!(err instanceof BotError)) return 500;
  if (code === 'E_TIMEOUT') return 504;
  if (opts.upstream && UPSTREAM_CODES.includes(code)) return 502;
  return refusalStatus(code);
}

/**
 * The done of one message: for a msg from `http in`, a failure becomes the answer (sent on
 * the output with msg.statusCode, then done() without an error, so no Catch node answers the
 * same request twice); otherwise done itself.
 */
export function answeringDone(msg: NodeMessage, send: SendFn, done: DoneFn, opts: { upstream?: boolean; setup?: boolean } = {}): DoneFn {
  if (!fromHttpIn(msg)) return done;
  return (err?: Error) => {
    if (err === undefined) {
      done();
      return;
    }
    msg.payload = refusal(err);
    msg.statusCode = httpStatusOf(err, opts);
    send(msg);
    done();
  };
}
