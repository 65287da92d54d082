/**
 * Where a node's HPKE encryption key (docs/design.md "Confidential entries") is kept: in Node-RED
 * credentials (the secret as base64, optionally "<suite> <base64>"), or, when those hold none, in
 * a key file on the server (JSON {"suite","secret"}, mode 0600, generated on first use, refused
 * when others can read it) — as bot-identity keeps its Ed25519 key. Never in flow JSON, a msg,
 * the log, a status or an error text.
 *
 * Pure TypeScript, no Node-RED import.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BotError } from '../errors';
import { checkSuite, EncryptionKey, HPKE_X25519_SUITE } from '../confidential/hpke';
import { createFolder } from '../store/folders';

/** An encryption key from the credentials' text: base64 of its secret (RFC 9180 §7.1.2 SerializePrivateKey), optionally preceded by the suite name. */
export async function encryptionKeyFromText(text: string): Promise<EncryptionKey> {
  const parts = text.trim().split(/\s+/);
  if (parts.length > 2 || parts[0] === '') throw new BotError('E_KEY', 'the encryption key is "[suite] <base64 secret>"');
  const suite = checkSuite(parts.length === 2 ? parts[0] : HPKE_X25519_SUITE);
  const b64 = parts[parts.length - 1];
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new BotError('E_KEY', 'the encryption key secret is not base64');
  return EncryptionKey.fromSecret(Buffer.from(b64, 'base64'), suite);
}

/**
 * Read an encryption key file, or create it with a new X25519 key (mode 0600, in a folder of
 * mode 0700): E_KEY when it cannot be read or parsed, or when others can access it.
 */
export async function loadOrCreateEncryptionKey(file: string): Promise<{ key: EncryptionKey; created: boolean }> {
  if (!fs.existsSync(file)) {
    const key = await EncryptionKey.generate();
    try {
      createFolder(path.dirname(file), 'a key file', 0o700);
      fs.writeFileSync(file, `${JSON.stringify({ suite: key.suite, secret: key.secret().toString('base64') })}\n`, { mode: 0o600, flag: 'wx' });
      return { key, created: true };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new BotError('E_KEY', `cannot create the encryption key file ${file}: ${(err as Error).message}`);
    }
  }
  let st: fs.Stats;
  let text: string;
  try {
    st = fs.statSync(file);
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new BotError('E_KEY', `cannot read the encryption key file ${file}`);
  }
  if (process.platform !== 'win32' && (st.mode & 0o077) !== 0)
    throw new BotError('E_KEY', `the encryption key file ${file} is accessible by others; run chmod 600 on it`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new BotError('E_KEY', `the encryption key file ${file} is not JSON {"suite","secret"}`);
  }
  const o = parsed as { suite?: unknown; secret?: unknown };
  if (typeof o?.secret !== 'string') throw new BotError('E_KEY', `the encryption key file ${file} is not JSON {"suite","secret"}`);
  return { key: await encryptionKeyFromText(`${checkSuite(o.suite)} ${o.secret}`), created: false };
}

/** The key a node uses: its credentials' secret when set, else its key file (created on first use). */
export async function nodeEncryptionKey(secretText: string | undefined, file: string): Promise<{ key: EncryptionKey; created: boolean }> {
  const s = (secretText ?? '').trim();
  if (s !== '' && s !== '__PWRD__') return { key: await encryptionKeyFromText(s), created: false };
  return loadOrCreateEncryptionKey(file);
}
