/**
 * The rules of a ledger's settings that do not depend on Node-RED: the folder name made from a
 * node's name, the broker URLs accepted, the largest entry limit, and how the TLS files of an
 * MQTT link are read (docs/design.md "Nodes"). nodes/bot-ledger.ts applies them to the editor's
 * settings; lib/service/ledger-service.ts reads the TLS files when it opens the link.
 *
 * Pure TypeScript, no Node-RED import.
 */
import * as fs from 'node:fs';
import { BotError } from '../errors';
import { type LinkOptions, urlHasPassword } from '../consortium/mqtt-link';

/** The largest entry limit a ledger may be given (bytes); the smallest is 256. */
export const MAX_ENTRY_LIMIT = 16 * 1024 * 1024;

/** A folder name from a node's name (letters, digits, '.', '_', '-'; never '.' or '..'), else from its id, so a name never leaves the ledgers' folder. */
export function ledgerDirName(name: string | undefined, id: string): string {
  const s = (name ?? '')
    .trim()
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^\.+/, '_')
    .slice(0, 64);
  return s === '' || s === '_' ? id.replace(/[^A-Za-z0-9._-]+/g, '_') : s;
}

/**
 * Check a broker URL ('' = no broker): mqtt://, mqtts://, ws://, wss:// (tcp:// and ssl:// too),
 * and no password in it — it would be stored in the flow file and shown wherever the URL is.
 */
export function checkBrokerUrl(url: string): void {
  if (url !== '' && !/^(mqtts?|wss?|tcp|ssl):\/\//.test(url)) throw new BotError('E_QUERY', 'broker URL must start with mqtt://, mqtts://, ws:// or wss://');
  if (urlHasPassword(url))
    throw new BotError(
      'E_QUERY',
      'the broker URL must not contain a password: put the user name and password in the Username and Password fields (kept in the credentials)',
    );
}

/** PEM files of an MQTT link's TLS (mqtts://, wss://): a CA to trust, a client certificate and its key. */
export interface TlsFiles {
  /** CA certificate file to trust ('' or absent: the system's CAs). */
  ca?: string;
  /** Client certificate file. */
  cert?: string;
  /** Client key file: must not be readable by others. */
  key?: string;
  /** Accept a broker certificate that does not verify (testing only). */
  insecure?: boolean;
}

/**
 * The TLS options of an MQTT link read from PEM files (undefined when nothing is set): E_KEY
 * when a file cannot be read, or when the key file is accessible by others (as key files here).
 */
export function readTlsFiles(files: TlsFiles | undefined): LinkOptions['tls'] {
  const read = (file: string | undefined, what: string, secret = false): Buffer | undefined => {
    const f = (file ?? '').trim();
    if (f === '') return undefined;
    let st: fs.Stats;
    try {
      st = fs.statSync(f);
    } catch {
      throw new BotError('E_KEY', `cannot read the TLS ${what} file ${f}`);
    }
    if (secret && process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new BotError('E_KEY', `the TLS ${what} file ${f} is accessible by others; run chmod 600 on it`);
    }
    return fs.readFileSync(f);
  };
  const tls = {
    ca: read(files?.ca, 'CA'),
    cert: read(files?.cert, 'certificate'),
    key: read(files?.key, 'key', true),
    rejectUnauthorized: files?.insecure !== true,
  };
  return tls.ca || tls.cert || tls.key || !tls.rejectUnauthorized ? tls : undefined;
}
