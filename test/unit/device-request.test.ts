/**
 * The enrolment terms bot-device builds from an operator's request (lib/devices/device-terms.ts
 * enrolRequestTerms): each field over the node's defaults, times as ms, numeric text or a date.
 */
import { strict as assert } from 'node:assert';
import { Identity } from '../../lib/format/identity';
import { enrolRequestTerms } from '../../lib/devices/device-terms';

describe('enrolRequestTerms', () => {
  const dev = Identity.generate();
  const ledger = 'example.org/plant';
  const now = 1_700_000_000_000;
  const defaults = { topics: ['plant/1/#'], validDays: 2 };

  it('fills the name, topics and expiry from the defaults', () => {
    const t = enrolRequestTerms({ device: dev.did }, ledger, defaults, now);
    assert.deepEqual(t, { ledger, device: dev.did, name: `device ${dev.did.slice(8, 16)}`, topics: ['plant/1/#'], expires: now + 2 * 86_400_000 });
    assert.equal(enrolRequestTerms({ device: dev.did }, ledger, { topics: ['a'], validDays: 0 }, now).expires, undefined);
  });

  it('takes the request fields: topics as lines or commas, expires as text or a date, key for device', () => {
    const t = enrolRequestTerms(
      { key: dev.did, name: 'n', topics: 'a/+\n# note\nb/#, c', expires: '2030-01-01T00:00:00Z', meta: { m: 1 } },
      ledger,
      defaults,
      now,
    );
    assert.deepEqual(t, { ledger, device: dev.did, name: 'n', topics: ['a/+', 'b/#', 'c'], expires: Date.parse('2030-01-01T00:00:00Z'), meta: { m: 1 } });
    assert.equal(enrolRequestTerms({ device: dev.did, expires: ' 123 ' }, ledger, defaults, now).expires, 123);
  });

  it('refuses a time that is no time, with E_DEVICE, and a device that is no did:key', () => {
    assert.throws(() => enrolRequestTerms({ device: dev.did, expires: 'soon' }, ledger, defaults, now), { code: 'E_DEVICE', message: /expires must be ms/ });
    assert.throws(() => enrolRequestTerms({ device: 'nope' }, ledger, defaults, now), { code: 'E_DID' });
  });
});
