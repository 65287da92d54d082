/**
 * Invitations (README "Partner access › One paste to connect a partner"): everything a partner
 * needs to reach an owner's ledger, in one string the owner's operator signed, so the partner
 * copies one thing instead of five and a changed character is caught.
 *
 *   bot-invitation:<base64url of the leaf bytes (JCS) of an envelope>
 *   envelope {"v":1,"kind":"invitation","signer":<operator did:key>,"seq","ts",
 *             "payload":{"origin","broker"?,"url"?,"grant"?,"subject"?,"witnesses"?:[{"did","name"}],"quorum"?},"sig"}
 *
 * `broker` is an MQTT URL without user information (credentials never travel in an
 * invitation), `url` the owner's HTTP endpoint (http in → bot-query answering partners); at
 * least one is given. `grant` (with its `subject`) is a grant already issued to the partner;
 * without one, the partner asks for access (lib/access/access-requests.ts). `witnesses` and `quorum`
 * are the owner's witness set (docs/design.md "Witness set and quorum"). An invitation gives no
 * access by itself: it tells whom to trust (the operator key that signed it) and where to ask.
 */
import { fromBase64Url, toBase64Url } from '../format/bytes';
import { BotError, VerificationError } from '../errors';
import { type SignedEnvelope, signEnvelope, verifyEnvelope } from '../format/envelope';
import { isGrantId } from './grants';
import { type DidKey, type Identity, PublicKey } from '../format/identity';
import type { JsonValue } from '../format/jcs';
import { checkOrigin } from '../store/ledger';
import { defaultQuorum, QuorumPolicy } from '../consortium/quorum';
import type { WitnessInit } from '../consortium/quorum';
import { printable } from '../format/topic';

/** What every invitation string starts with. */
export const INVITATION_PREFIX = 'bot-invitation:';
/** Largest invitation envelope (leaf bytes), so that it fits a QR code (version 40-L holds 2,953 bytes). */
export const MAX_INVITATION_BYTES = 2048;

/** An invitation that is not one, or does not match the settings it should: code E_INVITATION. */
export class InvitationError extends BotError {}

/** A witness of the owner's ledger as an invitation lists it. */
export interface InvitationWitness {
  did: DidKey;
  name: string;
}

/** What the owner puts in an invitation. */
export interface InvitationTerms {
  origin: string;
  broker?: string;
  url?: string;
  grant?: string;
  subject?: DidKey;
  witnesses?: InvitationWitness[];
  quorum?: number;
}

/** A verified invitation: its terms, the operator who signed it, and when. */
export interface Invitation extends InvitationTerms {
  operator: DidKey;
  ts: number;
  envelope: SignedEnvelope;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function bad(msg: string): InvitationError {
  return new InvitationError('E_INVITATION', msg);
}

/** A URL of one of the schemes, without user information (RFC 3986 §3.2.1) or whitespace; E_INVITATION otherwise. */
function checkUrl(v: unknown, schemes: readonly string[], what: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 2048 || /\s/.test(v)) throw bad(`${what} must be a URL`);
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw bad(`${what} ${printable(v, 80)} is not a URL`);
  }
  if (!schemes.includes(u.protocol)) throw bad(`${what} must start with ${schemes.map((s) => `${s}//`).join(', ')}`);
  if (u.username !== '' || u.password !== '' || /^[a-z]+:\/\/[^/]*@/i.test(v))
    throw bad(`${what} must carry no user name or password (credentials never travel in an invitation)`);
  return v;
}

/**
 * Check and normalise an invitation's terms (strict: unknown fields refused): origin a C2SP key
 * name, a broker (mqtt, mqtts, ws, wss) and/or HTTP URL without credentials, grant id with its
 * subject, witnesses and quorum forming a valid policy with the operator (QuorumPolicy.create).
 */
export function parseInvitationTerms(v: unknown, operator: string): InvitationTerms {
  if (!isObject(v)) throw bad('an invitation payload is an object {origin, broker, url, grant, subject, witnesses, quorum}');
  for (const k of Object.keys(v)) {
    if (!['origin', 'broker', 'url', 'grant', 'subject', 'witnesses', 'quorum'].includes(k)) throw bad(`unknown invitation field ${printable(k, 40)}`);
  }
  if (typeof v.origin !== 'string') throw bad("an invitation names the origin of the owner's ledger");
  try {
    checkOrigin(v.origin);
  } catch (err) {
    throw bad((err as Error).message);
  }
  const t: InvitationTerms = { origin: v.origin };
  if (v.broker !== undefined) t.broker = checkUrl(v.broker, ['mqtt:', 'mqtts:', 'ws:', 'wss:'], 'the broker');
  if (v.url !== undefined) t.url = checkUrl(v.url, ['http:', 'https:'], 'the endpoint');
  if (t.broker === undefined && t.url === undefined) throw bad('an invitation says where the owner is: a broker and/or an HTTP endpoint');
  if ((v.grant === undefined) !== (v.subject === undefined)) throw bad('an invitation names a grant and its subject together, or neither');
  if (v.grant !== undefined) {
    if (!isGrantId(v.grant)) throw bad('the grant id is 1-64 characters of A-Z a-z 0-9 . _ -');
    if (typeof v.subject !== 'string') throw bad("the subject is the partner's did:key");
    t.grant = v.grant;
    t.subject = PublicKey.fromDid(v.subject).did;
  }
  if (v.witnesses !== undefined) {
    if (!Array.isArray(v.witnesses) || v.witnesses.length === 0) throw bad('witnesses must be a non-empty list of {did, name}');
    t.witnesses = v.witnesses.map((w) => {
      if (!isObject(w) || typeof w.did !== 'string' || typeof w.name !== 'string' || Object.keys(w).some((k) => k !== 'did' && k !== 'name')) {
        throw bad('each witness is {did, name}');
      }
      return { did: PublicKey.fromDid(w.did).did, name: w.name };
    });
  }
  if (v.quorum !== undefined) {
    if (typeof v.quorum !== 'number' || !Number.isSafeInteger(v.quorum)) throw bad('quorum must be a whole number');
    t.quorum = v.quorum;
  }
  if (t.witnesses !== undefined || t.quorum !== undefined) {
    try {
      QuorumPolicy.create({ origin: t.origin, operator, witnesses: (t.witnesses ?? []).map((w) => ({ name: w.name, key: w.did })), quorum: t.quorum });
    } catch (err) {
      throw bad(`witnesses and quorum: ${(err as Error).message}`);
    }
  }
  return t;
}

/**
 * Create an invitation string: the terms checked, signed by the ledger's operator as an
 * envelope of kind `invitation` (seq from the operator's persistent counter), base64url after
 * INVITATION_PREFIX. E_INVITATION on bad terms, E_TOO_LARGE above MAX_INVITATION_BYTES.
 */
export function createInvitation(operator: Identity, seq: number, terms: InvitationTerms, ts = Date.now()): string {
  const checked = parseInvitationTerms(terms, operator.did);
  const env = signEnvelope(operator, { kind: 'invitation', seq, ts, payload: checked as unknown as JsonValue }, { maxBytes: MAX_INVITATION_BYTES });
  return INVITATION_PREFIX + toBase64Url(env.bytes);
}

/**
 * Read and verify an invitation string (whitespace and line breaks anywhere are ignored, as a
 * pasted text may wrap): E_INVITATION when it is not one or is damaged, E_SIGNATURE when it was
 * changed after the operator signed it. Trust the result as far as you trust its `operator`.
 */
export function parseInvitation(text: unknown): Invitation {
  if (typeof text !== 'string') throw bad('an invitation is a text starting with ' + INVITATION_PREFIX);
  const s = text.replace(/\s+/g, '');
  if (!s.startsWith(INVITATION_PREFIX)) throw bad(`not an invitation: it starts with ${INVITATION_PREFIX}`);
  const body = s.slice(INVITATION_PREFIX.length);
  if (body.length > Math.ceil((MAX_INVITATION_BYTES * 4) / 3)) throw bad(`the invitation is longer than any (${MAX_INVITATION_BYTES} bytes)`);
  let env: SignedEnvelope;
  try {
    env = verifyEnvelope(fromBase64Url(body, 'the invitation'), { maxBytes: MAX_INVITATION_BYTES, fresh: true });
  } catch (err) {
    if (err instanceof BotError && err.code === 'E_SIGNATURE') {
      throw new VerificationError(
        'E_SIGNATURE',
        "the invitation does not verify: it was changed after the owner's operator signed it (copy it again from the owner)",
      );
    }
    if (err instanceof BotError) throw bad(`the invitation is damaged (${err.message}): copy it again from the owner`);
    throw err;
  }
  const e = env.envelope;
  if (e.kind !== 'invitation') throw bad(`not an invitation: a signed envelope of kind ${printable(e.kind, 40)}`);
  const terms = parseInvitationTerms(e.payload, e.signer);
  return { ...terms, operator: e.signer as DidKey, ts: e.ts, envelope: env };
}

/** The settings of a bot-partner node an invitation is checked against. */
export interface PartnerSettings {
  origin: string;
  operator: string;
  via: 'mqtt' | 'http';
  url?: string;
  /** As nodes/setting-lines.ts parseWitnesses gives them (did:key strings). */
  witnesses: readonly WitnessInit[];
  quorum: number;
}

/**
 * Verify a bot-partner's invitation again at runtime and check it still says what the node
 * does: the same origin and operator, the same witnesses and quorum when it lists them, the
 * same endpoint when the node reaches the owner over HTTP and the invitation gives one.
 * Throws E_SIGNATURE (altered) or E_INVITATION naming the first difference.
 */
export function checkPartnerInvitation(text: string, node: PartnerSettings): Invitation {
  const inv = parseInvitation(text);
  const differs = (what: string, theirs: string, ours: string): InvitationError =>
    bad(`the invitation's ${what} is ${printable(theirs, 80)}, this node's ${printable(ours, 80)}: paste the invitation again, or clear it`);
  if (inv.origin !== node.origin) throw differs('ledger origin', inv.origin, node.origin);
  if (inv.operator !== node.operator) throw differs('operator key', inv.operator, node.operator);
  if (node.via === 'http' && inv.url !== undefined && node.url !== undefined && inv.url !== node.url) throw differs('endpoint', inv.url, node.url);
  if (inv.witnesses !== undefined) {
    const theirs = inv.witnesses
      .map((w) => `${w.did} ${w.name}`)
      .sort()
      .join(', ');
    const ours = node.witnesses
      .map((w) => `${typeof w.key === 'string' ? w.key : w.key.publicKey.did} ${w.name ?? ''}`)
      .sort()
      .join(', ');
    if (theirs !== ours) throw differs('witnesses', theirs, ours || '(none)');
    const q = (n: number | undefined, witnesses: number): number => (n !== undefined && n > 0 ? n : defaultQuorum(witnesses));
    const [a, b] = [q(inv.quorum, inv.witnesses.length), q(node.quorum, node.witnesses.length)];
    if (a !== b) throw differs('quorum', String(a), String(b));
  }
  return inv;
}
