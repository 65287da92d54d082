/**
 * Where nodes keep their HPKE encryption keys (lib/service/encryption-key.ts; docs/design.md
 * "Confidential entries"): a key file created with mode 0600 and read back as the same key,
 * refused when others can read it or when it is not a key; the credentials' text with or
 * without its suite; no error text carries the secret.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EncryptionKey, HPKE_XWING_SUITE } from '../../lib/confidential/hpke';
import { encryptionKeyFromText, loadOrCreateEncryptionKey, nodeEncryptionKey } from '../../lib/service/encryption-key';
import { tmpDir } from '../helpers';

describe('encryption keys of nodes (credentials or a 0600 key file)', () => {
  const t = tmpDir('bot-enckey-');
  after(() => t.cleanup());

  it('creates a key file with mode 0600 in a 0700 folder, and reads the same key back', async () => {
    const file = path.join(t.dir, 'keys', 'a.enckey.json');
    const made = await loadOrCreateEncryptionKey(file);
    assert.equal(made.created, true);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o700);
    const again = await loadOrCreateEncryptionKey(file);
    assert.equal(again.created, false);
    assert.ok(again.key.publicKey.equals(made.key.publicKey));
    // The credentials win over the file.
    const other = await EncryptionKey.generate();
    const fromCreds = await nodeEncryptionKey(other.secret().toString('base64'), file);
    assert.ok(fromCreds.key.publicKey.equals(other.publicKey));
    assert.ok((await nodeEncryptionKey('', file)).key.publicKey.equals(made.key.publicKey));
  });

  it('refuses a key file others can read, or one that is not a key, with E_KEY and no secret in the text', async () => {
    const file = path.join(t.dir, 'open.enckey.json');
    const k = await EncryptionKey.generate();
    const secret = k.secret().toString('base64');
    fs.writeFileSync(file, JSON.stringify({ suite: k.suite, secret }), { mode: 0o644 });
    fs.chmodSync(file, 0o644);
    await assert.rejects(
      loadOrCreateEncryptionKey(file),
      (e: Error & { code?: string }) => e.code === 'E_KEY' && /chmod 600/.test(e.message) && !e.message.includes(secret),
    );
    const bad = path.join(t.dir, 'bad.enckey.json');
    fs.writeFileSync(bad, 'not json', { mode: 0o600 });
    await assert.rejects(loadOrCreateEncryptionKey(bad), (e: Error & { code?: string }) => e.code === 'E_KEY');
  });

  it('takes the credentials text with or without its suite; refuses what is not a key', async () => {
    const x = await EncryptionKey.generate(HPKE_XWING_SUITE);
    const back = await encryptionKeyFromText(`${HPKE_XWING_SUITE} ${x.secret().toString('base64')}`);
    assert.equal(back.suite, HPKE_XWING_SUITE);
    assert.ok(back.publicKey.equals(x.publicKey));
    for (const text of ['', 'not base64!', 'a b c', 'QUJD', 'unknown-suite QUJD'])
      await assert.rejects(encryptionKeyFromText(text), (e: Error & { code?: string }) => e.code === 'E_KEY', text);
  });
});
