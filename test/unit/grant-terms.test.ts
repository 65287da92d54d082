/**
 * grantTermsFrom (lib/access/grants.ts): the terms of a grant from a request's fields over a
 * grant node's settings, as bot-grant's "grant" op issues them (docs/design.md "Partner access").
 */
import { strict as assert } from 'node:assert';
import { grantTermsFrom, Identity } from '../../lib';

const partner = Identity.generate().did;
const device = Identity.generate().did;
const ORIGIN = 'example.com/grants';
const NOW = 1_767_225_600_000;

describe('grant terms from settings and a request', () => {
  it('takes the settings where the request is silent: read, every signer, every topic, validDays', () => {
    const t = grantTermsFrom({ subject: ` ${partner} `, validDays: 30 }, {}, ORIGIN, NOW);
    assert.equal(t.subject, partner);
    assert.equal(t.ledger, ORIGIN);
    assert.deepEqual(t.actions, ['read']);
    assert.equal(t.scope.signers, '*');
    assert.equal(t.scope.topics, undefined);
    assert.equal(t.expires, NOW + 30 * 86_400_000);
    assert.match(t.id, /^[A-Za-z0-9_-]{22}$/);
  });

  it('reads lines and comma-separated settings, and the request overrides each field', () => {
    const d = { subject: partner, actions: 'read, append', signers: `${device}\n# a comment`, topics: 'plant/#\nyard/+/t', validDays: 1 };
    const t = grantTermsFrom(d, {}, ORIGIN, NOW);
    assert.deepEqual(t.actions, ['read', 'append']);
    assert.deepEqual(t.scope.signers, [device]);
    assert.deepEqual(t.scope.topics, ['plant/#', 'yard/+/t']);
    const o = grantTermsFrom(
      d,
      { id: 'g-1', actions: 'read', scope: { signers: ['*'], from: '2026-01-01T00:00:00Z', until: NOW }, expires: String(NOW + 5), notBefore: NOW },
      ORIGIN,
      NOW,
    );
    assert.equal(o.id, 'g-1');
    assert.deepEqual(o.actions, ['read']);
    assert.equal(o.scope.signers, '*');
    assert.deepEqual(o.scope.topics, ['plant/#', 'yard/+/t'], 'a request scope without topics keeps the setting');
    assert.equal(o.scope.from, Date.parse('2026-01-01T00:00:00Z'));
    assert.equal(o.expires, NOW + 5);
    assert.equal(o.notBefore, NOW);
  });

  it('refuses a grant without a subject, a time that is not one, and terms parseGrantTerms refuses (E_GRANT)', () => {
    assert.throws(() => grantTermsFrom({ validDays: 30 }, {}, ORIGIN, NOW), { code: 'E_GRANT', message: /subject/ });
    assert.throws(() => grantTermsFrom({ subject: partner, validDays: 30 }, { expires: 'soon' }, ORIGIN, NOW), { code: 'E_GRANT', message: /expires/ });
    assert.throws(() => grantTermsFrom({ subject: partner, validDays: 30 }, { actions: ['fly'] }, ORIGIN, NOW), { code: 'E_GRANT' });
  });
});
