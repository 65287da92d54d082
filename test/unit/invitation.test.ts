/**
 * Invitations (lib/access/invitation.ts): created and signed by the operator, read back, refused when
 * tampered with (every byte of the signed envelope, and the text itself), when their terms are
 * not valid (credentials in a URL, unknown fields, an impossible quorum) and when a bot-partner's
 * settings no longer match the invitation it came with.
 */
import { strict as assert } from 'node:assert';
import { signEnvelope } from '../../lib/format/envelope';
import { isBotError } from '../../lib/errors';
import { Identity } from '../../lib/format/identity';
import { checkPartnerInvitation, createInvitation, INVITATION_PREFIX, MAX_INVITATION_BYTES, parseInvitation } from '../../lib/access/invitation';

const op = Identity.generate();
const w1 = Identity.generate();
const w2 = Identity.generate();
const partner = Identity.generate();
const ORIGIN = 'acme.example/plant-1';

function expectCode(f: () => unknown, code: string, text?: RegExp): void {
  try {
    f();
  } catch (err) {
    assert.ok(isBotError(err), `expected a BotError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (text) assert.match(err.message, text);
    return;
  }
  assert.fail(`expected ${code}`);
}

const FULL = {
  origin: ORIGIN,
  broker: 'mqtts://broker.acme.example:8883',
  url: 'https://acme.example/bot/request',
  grant: 'Yq3cK1pT0vQ2v6mYc7Lr1A',
  subject: partner.did,
  witnesses: [
    { did: w1.did, name: 'b.example/ledger' },
    { did: w2.did, name: 'c.example/ledger' },
  ],
  quorum: 2,
};

describe('invitations', () => {
  it('round trip: the operator signs, the partner reads every field back and learns who signed', () => {
    const text = createInvitation(op, 7, FULL, 1_800_000_000_000);
    assert.ok(text.startsWith(INVITATION_PREFIX));
    assert.match(text.slice(INVITATION_PREFIX.length), /^[A-Za-z0-9_-]+$/);
    const inv = parseInvitation(text);
    assert.equal(inv.operator, op.did);
    assert.equal(inv.ts, 1_800_000_000_000);
    const { envelope, operator, ts, ...terms } = inv;
    assert.deepEqual(terms, FULL);
    assert.equal(envelope.envelope.kind, 'invitation');
    assert.ok(operator && ts);
    // It fits a QR code comfortably.
    assert.ok(text.length < 1500, `${text.length} characters`);
  });

  it('a pasted invitation may wrap: whitespace and line breaks are ignored', () => {
    const text = createInvitation(op, 1, { origin: ORIGIN, url: 'http://127.0.0.1:1880/bot/request' });
    const wrapped = `  ${text.slice(0, 30)}\n${text.slice(30, 90)}\r\n  ${text.slice(90)}\n`;
    assert.equal(parseInvitation(wrapped).url, 'http://127.0.0.1:1880/bot/request');
  });

  it('a tampered invitation is refused: every changed character of it fails, with a clear reason', () => {
    const text = createInvitation(op, 2, FULL);
    const body = text.slice(INVITATION_PREFIX.length);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    let signature = 0;
    let damaged = 0;
    for (let i = 0; i < body.length; i++) {
      const c = alphabet[(alphabet.indexOf(body[i]) + 1 + (i % 63)) % 64];
      const t = INVITATION_PREFIX + body.slice(0, i) + c + body.slice(i + 1);
      try {
        parseInvitation(t);
        assert.fail(`a change at ${i} went unnoticed`);
      } catch (err) {
        assert.ok(isBotError(err), String(err));
        if (err.code === 'E_SIGNATURE') {
          signature++;
          assert.match(err.message, /changed after the owner's operator signed it/);
        } else {
          assert.equal(err.code, 'E_INVITATION', err.message);
          assert.match(err.message, /damaged|not an invitation|invitation/);
          damaged++;
        }
      }
    }
    assert.ok(signature > body.length / 2, `${signature} signature failures, ${damaged} damaged`);
  });

  it("a re-signed invitation names its real signer: the partner's settings then differ (E_INVITATION)", () => {
    const mallory = Identity.generate();
    const forged = createInvitation(mallory, 1, FULL);
    assert.equal(parseInvitation(forged).operator, mallory.did);
    expectCode(
      () =>
        checkPartnerInvitation(forged, {
          origin: ORIGIN,
          operator: op.did,
          via: 'mqtt',
          witnesses: FULL.witnesses.map((w) => ({ key: w.did, name: w.name })),
          quorum: 2,
        }),
      'E_INVITATION',
      /operator key/,
    );
  });

  it('checkPartnerInvitation: the same origin, operator, witnesses, quorum and endpoint as the node', () => {
    const text = createInvitation(op, 3, FULL);
    const node = {
      origin: ORIGIN,
      operator: op.did,
      via: 'http' as const,
      url: FULL.url,
      witnesses: FULL.witnesses.map((w) => ({ key: w.did, name: w.name })).reverse(),
      quorum: 2,
    };
    assert.equal(checkPartnerInvitation(text, node).grant, FULL.grant);
    assert.equal(checkPartnerInvitation(text, { ...node, quorum: 0 }).origin, ORIGIN, 'empty quorum = the majority, 2 of 3');
    expectCode(() => checkPartnerInvitation(text, { ...node, origin: 'acme.example/other' }), 'E_INVITATION', /origin/);
    expectCode(() => checkPartnerInvitation(text, { ...node, url: 'https://evil.example/bot/request' }), 'E_INVITATION', /endpoint/);
    expectCode(() => checkPartnerInvitation(text, { ...node, witnesses: node.witnesses.slice(1) }), 'E_INVITATION', /witnesses/);
    expectCode(() => checkPartnerInvitation(text, { ...node, quorum: 3 }), 'E_INVITATION', /quorum/);
    const body = text.slice(INVITATION_PREFIX.length);
    const env = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as { payload: { url: string } };
    env.payload.url = 'https://evil.example/bot/request';
    expectCode(() => checkPartnerInvitation(INVITATION_PREFIX + Buffer.from(JSON.stringify(env)).toString('base64url'), node), 'E_SIGNATURE');
  });

  it('refuses bad terms at creation: credentials in a URL, no way to the owner, half a grant, unknown fields, impossible quorum, too large', () => {
    expectCode(() => createInvitation(op, 1, { origin: ORIGIN, broker: 'mqtt://user:secret@broker.example' }), 'E_INVITATION', /no user name or password/);
    expectCode(() => createInvitation(op, 1, { origin: ORIGIN, broker: 'mqtt://user@broker.example' }), 'E_INVITATION', /no user name or password/);
    expectCode(() => createInvitation(op, 1, { origin: ORIGIN, url: 'https://u:p@acme.example/bot' }), 'E_INVITATION', /no user name or password/);
    expectCode(() => createInvitation(op, 1, { origin: ORIGIN, broker: 'http://broker.example' }), 'E_INVITATION', /mqtt/);
    expectCode(() => createInvitation(op, 1, { origin: ORIGIN }), 'E_INVITATION', /broker and\/or an HTTP endpoint/);
    expectCode(() => createInvitation(op, 1, { origin: ORIGIN, url: 'https://a.example', grant: 'g1' }), 'E_INVITATION', /grant and its subject/);
    expectCode(() => createInvitation(op, 1, { origin: ORIGIN, url: 'https://a.example', extra: 1 } as never), 'E_INVITATION', /unknown invitation field/);
    expectCode(
      () => createInvitation(op, 1, { origin: ORIGIN, url: 'https://a.example', witnesses: [{ did: w1.did, name: 'w' }], quorum: 3 }),
      'E_INVITATION',
      /quorum/,
    );
    expectCode(
      () => createInvitation(op, 1, { origin: ORIGIN, url: 'https://a.example', witnesses: [{ did: op.did as never, name: 'me' }] }),
      'E_INVITATION',
      /operator/,
    );
    expectCode(() => createInvitation(op, 1, { origin: 'has space', url: 'https://a.example' }), 'E_INVITATION');
    const half = 'x'.repeat(MAX_INVITATION_BYTES / 2);
    expectCode(() => createInvitation(op, 1, { origin: ORIGIN, url: `https://a.example/${half}`, broker: `mqtt://b.example/${half}` }), 'E_TOO_LARGE');
  });

  it('refuses what is not an invitation: another prefix, another kind of envelope, junk', () => {
    expectCode(() => parseInvitation('did:key:z6Mk…'), 'E_INVITATION', /starts with bot-invitation:/);
    expectCode(() => parseInvitation(`${INVITATION_PREFIX}!!!`), 'E_INVITATION', /damaged/);
    expectCode(() => parseInvitation(`${INVITATION_PREFIX}${'A'.repeat(5000)}`), 'E_INVITATION', /longer/);
    const reading = signEnvelope(op, { kind: 'reading', seq: 1, ts: 1, payload: { origin: ORIGIN, url: 'https://a.example' } });
    expectCode(() => parseInvitation(INVITATION_PREFIX + reading.bytes.toString('base64url')), 'E_INVITATION', /kind "reading"/);
    expectCode(() => parseInvitation(42), 'E_INVITATION');
  });
});
