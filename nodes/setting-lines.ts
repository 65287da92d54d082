/**
 * The editor's text formats of node settings (textarea lines), parsed for the runtime with
 * typed errors. They are the dialogs' formats, not wire formats.
 */
import type { WitnessedLedger } from '../lib/consortium/consortium';
import { PublicKey } from '../lib/format/identity';
import { checkOrigin } from '../lib/store/ledger';
import type { WitnessInit } from '../lib/consortium/quorum';
import { configError } from './config-nodes';
import { isScopeId } from '../lib/confidential/seal';
import { checkTopicFilter } from '../lib/format/topic';
import type { ConfiguredScope } from '../lib/service/ledger-service';

import { lines } from '../lib/format/lines';

export { lines };

function checkDid(did: string, what: string): string {
  try {
    PublicKey.fromDid(did);
  } catch {
    throw configError('E_DID', `${what}: ${JSON.stringify(did.slice(0, 80))} is not an Ed25519 did:key`);
  }
  return did;
}

/** `origin did:key:…` per line: the partners' ledgers this one witnesses. */
export function parseWitnessed(v: string | undefined): WitnessedLedger[] {
  const out: WitnessedLedger[] = [];
  for (const line of lines(v)) {
    const parts = line.split(/\s+/);
    if (parts.length !== 2) throw configError('E_NOTE', `witnessed ledger line "${line.slice(0, 80)}" must be "<origin> <did:key>"`);
    const [origin, did] = parts[0].startsWith('did:key:') && !parts[1].startsWith('did:key:') ? [parts[1], parts[0]] : [parts[0], parts[1]];
    try {
      checkOrigin(origin);
    } catch {
      throw configError('E_NOTE', `witnessed ledger line "${line.slice(0, 80)}": bad origin`);
    }
    if (out.some((w) => w.origin === origin)) throw configError('E_NOTE', `witnessed ledger ${origin} is listed twice`);
    out.push({ origin, did: checkDid(did, 'witnessed ledger') });
  }
  return out;
}

/**
 * `did:key:… [name]` per line: the witness set. The name is the witness's cosigner key name;
 * without one, the origin of the witnessed ledger with the same did:key is taken (a partner
 * cosigns under its own ledger's origin by default).
 */
export function parseWitnesses(v: string | undefined, witnessed: readonly WitnessedLedger[]): WitnessInit[] {
  const out: WitnessInit[] = [];
  for (const line of lines(v)) {
    const parts = line.split(/\s+/);
    if (parts.length > 2) throw configError('E_NOTE', `witness line "${line.slice(0, 80)}" must be "<did:key> [name]"`);
    const did = checkDid(parts[0], 'witness');
    const name = parts[1] ?? witnessed.find((w) => w.did === did)?.origin;
    if (name === undefined) throw configError('E_NOTE', `witness ${did.slice(0, 24)}… needs its key name (its ledger origin): "<did:key> <name>"`);
    out.push({ name, key: did });
  }
  return out;
}

/**
 * `<scope id> <MQTT filter> [<filter>…]` per line: the ledger's confidential scopes
 * (docs/design.md "Confidential entries"). A scope id is 1-64 characters of A-Z a-z 0-9 . _ -,
 * listed once; each filter is an MQTT 3.1.1 §4.7 topic filter.
 */
export function parseConfidentialScopes(v: string | undefined): ConfiguredScope[] {
  const out: ConfiguredScope[] = [];
  for (const line of lines(v)) {
    const parts = line.split(/\s+/);
    if (parts.length < 2) throw configError('E_SCOPE', `confidential scope line "${line.slice(0, 80)}" must be "<scope id> <topic filter> [<topic filter>…]"`);
    const [scope, ...topics] = parts;
    if (!isScopeId(scope)) throw configError('E_SCOPE', `confidential scope line "${line.slice(0, 80)}": a scope id is 1-64 characters of A-Z a-z 0-9 . _ -`);
    for (const t of topics) {
      try {
        checkTopicFilter(t);
      } catch {
        throw configError('E_SCOPE', `confidential scope ${scope}: ${JSON.stringify(t.slice(0, 80))} is not an MQTT topic filter`);
      }
    }
    if (new Set(topics).size !== topics.length) throw configError('E_SCOPE', `confidential scope ${scope} lists a topic filter twice`);
    if (out.some((s) => s.scope === scope)) throw configError('E_SCOPE', `confidential scope ${scope} is listed twice`);
    out.push({ scope, topics });
  }
  return out;
}

/** A mirror name ('' = none): 1-64 characters of A-Z a-z 0-9 _ - (lib/consortium/mirror.ts mirrorRpcTopic). */
export function parseMirrorName(v: string | undefined): string | undefined {
  const s = (v ?? '').trim();
  if (s === '') return undefined;
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(s)) throw configError('E_QUERY', 'a mirror name is 1-64 characters of A-Z a-z 0-9 _ -');
  return s;
}

/** A place a partner reads from: the owner, or a mirror serving under a name. */
export type ReadPlace = { owner: true } | { mirror: string };

/** `owner` or `mirror <name>` per line, in the order to try ('' = the owner alone). */
export function parseReadPlaces(v: string | undefined): ReadPlace[] {
  const out: ReadPlace[] = [];
  for (const line of lines(v)) {
    const parts = line.split(/\s+/);
    if (parts.length === 1 && parts[0] === 'owner') {
      if (out.some((p) => 'owner' in p)) throw configError('E_QUERY', 'the owner is listed twice in "Read from"');
      out.push({ owner: true });
      continue;
    }
    if (parts.length !== 2 || parts[0] !== 'mirror') throw configError('E_QUERY', `read-from line "${line.slice(0, 80)}" must be "owner" or "mirror <name>"`);
    const name = parseMirrorName(parts[1]) as string;
    if (out.some((p) => 'mirror' in p && p.mirror === name)) throw configError('E_QUERY', `mirror ${name} is listed twice in "Read from"`);
    out.push({ mirror: name });
  }
  return out.length ? out : [{ owner: true }];
}
