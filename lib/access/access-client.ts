/**
 * The partner side of access requests (lib/access/access-requests.ts): ask an owner for a grant, and
 * ask how that request stands. Sent over the same transports as reads and supplies
 * (lib/access/partner.ts: the owner's MQTT rpc topic or HTTP endpoint), signed with the partner's key.
 *
 * A pending answer is not signed by the owner (anyone who saw the request can compute its id):
 * it is taken as the owner's word, which costs the partner nothing if it is forged. An
 * approval is evidence: the grant envelope signed by the owner's operator, for this ledger,
 * this partner and the request's id, checked here before it is believed.
 */
import { makeRequest, type OwnerRef, throwIfRefused } from './access';
import { type AccessView, accessRequestId, type AccessStatus, MAX_ACCESS_REQUEST_BYTES, parseAccessAsk } from './access-requests';
import { verifyEnvelope } from '../format/envelope';
import { BotError, FormatError, isBotError, VerificationError } from '../errors';
import { type GrantTerms, parseGrantTerms } from './grants';
import type { Identity } from '../format/identity';
import type { JsonValue } from '../format/jcs';
import type { PartnerTransport } from './partner';

/** Who asks whom, and how. */
export interface AccessClientOptions {
  owner: Pick<OwnerRef, 'origin' | 'operator'>;
  identity: Identity;
  /** The partner's persistent seq counter for its identity (lib/store/sequence.ts). */
  nextSeq: () => number;
  transport: PartnerTransport;
}

/** What a partner asks for: actions, and optionally scope ({signers, topics, from, until}), days and a note. */
export interface AccessAskInput {
  actions: string[];
  scope?: JsonValue;
  days?: number;
  note?: string;
  /** The partner's encryption-key envelope (lib/confidential/keys.ts encryptionKeyInput, signed with its identity), for confidential scopes. */
  enckey?: JsonValue;
}

/** A status after its checks: an approval carries the grant's verified terms. */
export interface VerifiedAccessStatus {
  id: string;
  status: AccessStatus['status'];
  grant?: GrantTerms;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function malformed(msg: string): FormatError {
  return new FormatError('E_QUERY', `malformed answer: ${msg}`);
}

/** Send one signed request; over MQTT answers `verify` refuses are ignored (someone else's), as PartnerClient does. */
async function send<T>(opts: AccessClientOptions, payload: Record<string, JsonValue>, verify: (answer: unknown, id: string) => T): Promise<T> {
  const env = makeRequest(opts.identity, opts.nextSeq(), payload as never);
  if (env.bytes.length > MAX_ACCESS_REQUEST_BYTES)
    throw new FormatError('E_TOO_LARGE', `an access request is at most ${MAX_ACCESS_REQUEST_BYTES} bytes (the scope lists are too long)`);
  const id = accessRequestId(env);
  let verified: { answer: unknown; value: T } | undefined;
  let last: unknown;
  const accept = (answer: unknown): boolean => {
    try {
      verified = { answer, value: verify(answer, id) };
      return true;
    } catch (err) {
      last = err;
      return false;
    }
  };
  let answer: unknown;
  try {
    answer = await opts.transport(env.toJSON(), accept);
  } catch (err) {
    if (last !== undefined && isBotError(err, 'E_TIMEOUT')) {
      throw new BotError(
        'E_TIMEOUT',
        `${err.message}; answers that did not verify were ignored (the last: ${last instanceof Error ? last.message : String(last)})`,
      );
    }
    throw err;
  }
  if (verified && verified.answer === answer) return verified.value;
  return verify(answer, id);
}

/**
 * Ask the owner for access (op "access"): the ask is checked here as the owner will
 * (parseAccessAsk), signed and sent; resolves with the pending request the owner keeps, whose
 * `id` will be the grant's id once approved. Refusals are thrown as their typed errors.
 */
export async function requestAccess(opts: AccessClientOptions, ask: AccessAskInput): Promise<AccessView> {
  const payload: Record<string, JsonValue> = { op: 'access', actions: ask.actions };
  if (ask.scope !== undefined) payload.scope = ask.scope;
  if (ask.days !== undefined) payload.days = ask.days;
  if (ask.note !== undefined && ask.note !== '') payload.note = ask.note;
  if (ask.enckey !== undefined) payload.enckey = ask.enckey;
  parseAccessAsk(payload);
  return send(opts, payload, (a, id) => {
    throwIfRefused(a);
    if (!isObject(a) || !isObject(a.access)) throw malformed('expected {access: {id, status, …}}');
    const v = a.access as unknown as AccessView;
    if (v.id !== id || v.status !== 'pending' || v.requester !== opts.identity.did) throw malformed('expected this request, pending');
    return v;
  });
}

/**
 * Ask how an access request stands (op "access-status"): pending, approved (with the grant's
 * terms, once the grant envelope verified as signed by the owner's operator, for its ledger,
 * for this partner, with the request's id: E_GRANT otherwise), declined or unknown.
 */
export async function accessStatus(opts: AccessClientOptions, id: string): Promise<VerifiedAccessStatus> {
  return send(opts, { op: 'access-status', id }, (a) => {
    throwIfRefused(a);
    if (!isObject(a) || !isObject(a.access) || a.access.id !== id) throw malformed('expected {access: {id, status}} for this request');
    const s = a.access;
    if (s.status === 'approved') return { id, status: 'approved' as const, grant: verifyGrant(s.grant, opts, id) };
    if (s.status === 'pending' || s.status === 'declined' || s.status === 'unknown') return { id, status: s.status };
    throw malformed('unknown status');
  });
}

/** The terms of a grant envelope, once it verified as the one the owner's operator issued for this request. */
function verifyGrant(grant: unknown, opts: AccessClientOptions, id: string): GrantTerms {
  let terms: GrantTerms;
  try {
    const env = verifyEnvelope(grant, { fresh: true });
    if (env.envelope.kind !== 'grant') throw new VerificationError('E_GRANT', 'not a grant envelope');
    if (env.envelope.signer !== opts.owner.operator) throw new VerificationError('E_GRANT', `signed by ${env.envelope.signer}, not by the owner's operator`);
    terms = parseGrantTerms(env.envelope.payload);
  } catch (err) {
    if (err instanceof BotError) throw new VerificationError('E_GRANT', `the approval's grant does not verify: ${err.message}`);
    throw err;
  }
  if (terms.id !== id || terms.subject !== opts.identity.did || terms.ledger !== opts.owner.origin) {
    throw new VerificationError('E_GRANT', "the approval's grant is not this request's (id, subject or ledger differ)");
  }
  return terms;
}
