/**
 * The confidential wire format is enough to decrypt without this package (issue 13; README
 * "The wire format (decrypting without Node-RED)"; docs/design.md "Confidential entries"): a
 * Python process using pyca/cryptography's HPKE and AES-GCM (another implementation than
 * @hpke/core) unwraps a partner's scope keys from the ledger's key entries and opens its sealed
 * entries, including one sealed after a rotation; an entry of an epoch the partner was revoked
 * from stays closed (E_NO_KEY). The device envelopes it returns verify here. Skipped when no
 * python3 with `cryptography.hazmat.primitives.hpke` (cryptography >= 47) is installed.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { signEnvelope, verifyEnvelope } from '../../lib/format/envelope';
import { Identity } from '../../lib/format/identity';
import { Ledger } from '../../lib/store/ledger';
import { EncryptionKey } from '../../lib/confidential/hpke';
import { encryptionKeyInput } from '../../lib/confidential/keys';
import { ConfidentialOwner } from '../../lib/confidential/owner';
import { issueGrant, newGrantId, parseGrantTerms } from '../../lib/access/grants';
import { tmpDir } from '../helpers';

const SCRIPT = path.resolve(__dirname, '../../../test/interop/decrypt_sealed.py');

function pythonHpke(): boolean {
  const r = spawnSync('python3', ['-c', 'from cryptography.hazmat.primitives import hpke; hpke.Suite'], { encoding: 'utf8', timeout: 10000 });
  return r.status === 0;
}

describe('confidential wire format: decrypted by another HPKE implementation (pyca/cryptography)', function () {
  this.timeout(20000);
  const t = tmpDir('bot-interop-');
  after(() => t.cleanup());

  it('unwraps the keys and opens the sealed entries from the README alone; a revoked epoch stays closed', async function () {
    if (!pythonHpke()) {
      console.log('      (skipped: no python3 with cryptography.hazmat.primitives.hpke, pyca/cryptography >= 47: pip install "cryptography>=47")');
      this.skip();
    }
    const op = Identity.generate();
    const dev = Identity.generate();
    const partner = Identity.generate();
    const origin = 'example.com/plant-owner';
    const ledger = await Ledger.open({ dir: path.join(t.dir, 'l'), origin, identity: op });
    let seq = 0;
    const nextSeq = (): number => seq++;
    const owner = new ConfidentialOwner({ ledger, operator: op, nextSeq, encryptionKey: await EncryptionKey.generate() });
    await owner.declareScope('plant', ['plant/#']);
    const pk = await EncryptionKey.generate();
    const terms = parseGrantTerms({
      id: newGrantId(),
      subject: partner.did,
      ledger: origin,
      actions: ['read'],
      scope: { signers: '*' },
      expires: Date.now() + 3600e3,
    });
    await issueGrant(ledger, op, nextSeq, terms);
    await owner.addReader(terms, signEnvelope(partner, encryptionKeyInput(pk, 0, Date.now())).toJSON());
    const seal = async (i: number): Promise<void> => {
      const r = signEnvelope(dev, { kind: 'reading', seq: i, ts: Date.now(), topic: `plant/${i}/temp`, payload: { celsius: 20 + i, note: 'ünïcode ✓' } });
      await ledger.append((await owner.seal(r, op, nextSeq))!);
    };
    await seal(0);
    await owner.rotate('plant'); // epoch 1, still held by the partner
    await seal(1);
    await owner.revokeGrant(terms.id); // epoch 2, not the partner's
    await seal(2);
    const entries: unknown[] = [];
    for await (const e of ledger.entries(0, ledger.size)) entries.push(JSON.parse(e.leaf.toString('utf8')));
    await ledger.close();

    const r = spawnSync('python3', [SCRIPT], {
      input: JSON.stringify({ origin, partner: partner.did, secret: pk.secret().toString('base64'), entries }),
      encoding: 'utf8',
      timeout: 15000,
    });
    assert.equal(r.status, 0, r.stderr);
    const out = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { leaf?: string; error?: string });
    assert.equal(out.length, 3);
    for (const [i, o] of out.slice(0, 2).entries()) {
      const inner = verifyEnvelope(Buffer.from(o.leaf as string, 'utf8'), { fresh: true });
      assert.equal(inner.envelope.signer, dev.did);
      assert.deepEqual(inner.envelope.payload, { celsius: 20 + i, note: 'ünïcode ✓' });
    }
    assert.deepEqual(out[2], { error: 'E_NO_KEY' });
  });
});
