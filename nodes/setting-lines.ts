/**
 * The editor's text formats of node settings (textarea lines), parsed for the runtime with
 * typed errors. They are the dialogs' formats, not wire formats.
 */
import type { WitnessedLedger } from '../lib/consortium/consortium';
import { PublicKey } from '../lib/format/identity';
import { checkOrigin } from '../lib/store/ledger';
import type { WitnessInit } from '../lib/consortium/quorum';
import { configError } from './config-nodes';

/** Non-empty, non-comment lines of a textarea setting (also comma-separated items when commas). */
export function lines(v: string | undefined, commas = false): string[] {
  return (v ?? '')
    .split(commas ? /\r?\n|,/ : /\r?\n/)
    .map((x) => x.trim())
    .filter((x) => x !== '' && !x.startsWith('#'));
}

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
