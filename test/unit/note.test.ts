import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fromBase64, toBase64 } from '../../lib/format/bytes';
import { isBotError } from '../../lib/errors';
import { Identity } from '../../lib/format/identity';
import {
  NoteVerifier,
  cosignLine,
  cosignatureMessage,
  formatCheckpoint,
  formatNote,
  formatSignerKey,
  noteKeyId,
  openNote,
  parseCheckpoint,
  parseNote,
  parseSignerKey,
  signCheckpoint,
  signNoteLine,
} from '../../lib/format/note';

const VEC_DIR = path.resolve(__dirname, '../../../test/vectors');
interface NoteVectors {
  signed_note_c2sp_example: { vkey: string; note: string };
  signed_note_go_sumdb_example: { skey: string; vkey: string; note: string };
  checkpoint_witness_repo: { vkey: string; note: string };
  cosignature_v1_SELF_GENERATED: {
    skey_type01: string;
    cosig_vkey_type04: string;
    timestamp: number;
    signed_message: string;
    signature_line: string;
  };
  checkpoint_rfc6962_8leaves_SELF_GENERATED: {
    log_vkey: string;
    witness_vkey: string;
    cosig_timestamp: number;
    cosigned_message: string;
    note: string;
  };
}
const V = JSON.parse(fs.readFileSync(path.join(VEC_DIR, 'note-vectors.json'), 'utf8')) as NoteVectors;
const RFC6962 = JSON.parse(fs.readFileSync(path.join(VEC_DIR, 'rfc6962-vectors.json'), 'utf8')) as { roots_by_size: Record<string, string> };
const ED = JSON.parse(fs.readFileSync(path.join(VEC_DIR, 'ed25519-vectors.json'), 'utf8')) as { vectors: { secret_key: string }[] };

// RFC 8032 §7.1 tests 1 and 2
const SEED1 = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
const SEED2 = '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb';

function throwsCode(f: () => unknown, code: string): void {
  assert.throws(f, (err: unknown) => {
    assert.ok(isBotError(err), `expected a BotError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

/** Replace the payload of the first signature line with a tampered copy (last byte flipped). */
function tamperSig(note: string): string {
  const { text, signatures } = parseNote(note);
  const s = signatures[0];
  const raw = Buffer.concat([s.keyId, s.sig]);
  raw[raw.length - 1] ^= 0x01;
  return formatNote(text, [`\u2014 ${s.name} ${toBase64(raw)}`, ...signatures.slice(1).map((x) => x.line)]);
}

describe('note: C2SP signed-note', () => {
  it('parses and verifies the spec example with its vkey', () => {
    const { vkey, note } = V.signed_note_c2sp_example;
    const parsed = parseNote(note);
    assert.equal(parsed.text, 'This is an example message.\n');
    assert.equal(parsed.signatures.length, 1);
    assert.equal(parsed.signatures[0].name, 'example.com/foo');
    assert.equal(parsed.signatures[0].keyId.toString('hex'), '530d903a');
    assert.equal(parsed.signatures[0].sig.length, 64);
    assert.equal(parsed.text + '\n' + parsed.signatures.map((s) => s.line).join(''), note);

    const v = NoteVerifier.parse(vkey);
    assert.equal(v.toString(), vkey);
    assert.equal(v.type, 0x01);
    assert.equal(v.name, 'example.com/foo');
    const opened = openNote(note, [v]);
    assert.equal(opened.text, parsed.text);
    assert.equal(opened.verified.length, 1);
    assert.equal(opened.verified[0].verifier, v);
    assert.equal(opened.verified[0].timestamp, undefined);
    assert.deepEqual(opened.unknown, []);
    // bytes input gives the same result
    assert.equal(openNote(Buffer.from(note, 'utf8'), [v]).text, parsed.text);
  });

  it('reproduces the Go sumdb example from its signer key', () => {
    const { skey, vkey, note } = V.signed_note_go_sumdb_example;
    // Its base64 holds a '+': both importers must still read it.
    const { name, identity: id } = parseSignerKey(skey);
    assert.equal(name, 'PeterNeumann');
    assert.equal(Identity.import(skey).did, id.did);
    const v = NoteVerifier.ed25519('PeterNeumann', id.publicKey);
    assert.equal(v.toString(), vkey);
    assert.equal(formatSignerKey('PeterNeumann', id), skey);
    const text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    assert.equal(formatNote(text, [signNoteLine(text, 'PeterNeumann', id)]), note);
    assert.equal(openNote(note, [NoteVerifier.parse(vkey)]).text, text);
  });

  it('ignores unknown keys, including ones that share only the name or only the key ID', () => {
    const c2sp = NoteVerifier.parse(V.signed_note_c2sp_example.vkey);
    const go = V.signed_note_go_sumdb_example;
    const goId = parseSignerKey(go.skey).identity;
    const text = 'hello\n';
    const other = Identity.fromSeed(Buffer.alloc(32, 7));
    const note = formatNote(text, [
      signNoteLine(text, 'PeterNeumann', other), // same name, other key ID: unknown
      signNoteLine(text, 'PeterNeumann', goId),
      signNoteLine(text, 'PeterNeumann', other), // identical unknown line: dropped
    ]);
    const opened = openNote(note, [NoteVerifier.parse(go.vkey), c2sp]);
    assert.equal(opened.verified.length, 1);
    assert.equal(opened.verified[0].verifier.name, 'PeterNeumann');
    assert.equal(opened.unknown.length, 1);
  });

  it('accepts 16 signatures and up to 100 signature lines', () => {
    const text = 'sixteen\n';
    const ids = Array.from({ length: 16 }, (_, i) => Identity.fromSeed(Buffer.alloc(32, i + 1)));
    const note = formatNote(
      text,
      ids.map((id, i) => signNoteLine(text, `k${i}`, id)),
    );
    const opened = openNote(
      note,
      ids.map((id, i) => NoteVerifier.ed25519(`k${i}`, id.publicKey)),
    );
    assert.equal(opened.verified.length, 16);
    const line = V.signed_note_c2sp_example.note.split('\n\n')[1];
    assert.equal(parseNote('x\n\n' + line.repeat(100)).signatures.length, 100);
  });

  it('keeps a leading BOM in the signed text', () => {
    const id = Identity.fromSeed(Buffer.alloc(32, 9));
    const text = '\uFEFFbom\n';
    const note = formatNote(text, [signNoteLine(text, 'b', id)]);
    assert.equal(openNote(Buffer.from(note, 'utf8'), [NoteVerifier.ed25519('b', id.publicKey)]).text, text);
  });
});

describe('note: tlog-checkpoint and tlog-cosignature', () => {
  it('verifies and parses the witness-repo checkpoint', () => {
    const { vkey, note } = V.checkpoint_witness_repo;
    const opened = openNote(note, [NoteVerifier.parse(vkey)]);
    const cp = parseCheckpoint(opened.text);
    assert.equal(cp.origin, 'monkeys');
    assert.equal(cp.size, 5);
    assert.equal(cp.root.length, 32);
    assert.equal(toBase64(cp.root), '41smjBUiAU70EtKlT6lIOIYtRTYxYXsDB+XHfcvu/BE=');
    assert.deepEqual(cp.extensions, []);
    assert.equal(cp.text, opened.text);
    assert.equal(formatCheckpoint(cp.origin, cp.size, cp.root), opened.text);
  });

  it('parses extension lines', () => {
    const body = formatCheckpoint('o', 0, Buffer.alloc(32)) + 'ext one\next two\n';
    assert.deepEqual(parseCheckpoint(body).extensions, ['ext one', 'ext two']);
    assert.equal(parseCheckpoint(body).size, 0);
  });

  it('reproduces and verifies the self-generated cosignature', () => {
    const c = V.cosignature_v1_SELF_GENERATED;
    const w = V.checkpoint_witness_repo;
    const id = Identity.import(c.skey_type01);
    assert.ok(parseSignerKey(c.skey_type01).identity.publicKey.bytes.equals(id.publicKey.bytes));
    const cv = NoteVerifier.cosigner('witness', id.publicKey);
    assert.equal(cv.toString(), c.cosig_vkey_type04);
    assert.equal(NoteVerifier.parse(c.cosig_vkey_type04).type, 0x04);
    assert.equal(cv.keyId.toString('hex'), noteKeyId('witness', 0x04, id.publicKey.bytes).toString('hex'));

    const text = parseNote(w.note).text;
    assert.equal(cosignatureMessage(text, c.timestamp).toString('utf8'), c.signed_message);
    const line = cosignLine(text, 'witness', id, c.timestamp);
    assert.equal(line, c.signature_line + '\n');

    const sig = parseNote(formatNote(text, [line])).signatures[0];
    assert.equal(sig.keyId.length + sig.sig.length, 76);
    assert.deepEqual(cv.verifyLine(text, sig), { ok: true, timestamp: 1700000000 });
    assert.equal(cv.verifyLine(text.replace('5', '6'), sig).ok, false);

    const cosigned = formatNote(text, [...parseNote(w.note).signatures.map((s) => s.line), line]);
    const logV = NoteVerifier.parse(w.vkey);
    const both = openNote(cosigned, [logV, cv]);
    assert.equal(both.verified.length, 2);
    assert.equal(both.verified[0].verifier, logV);
    assert.equal(both.verified[1].verifier, cv);
    assert.equal(both.verified[1].timestamp, 1700000000);
    const witnessOnly = openNote(cosigned, [cv]);
    assert.equal(witnessOnly.verified.length, 1);
    assert.equal(witnessOnly.unknown.length, 1);
  });

  it('reproduces the 8-leaf RFC 6962 checkpoint with its log signature and cosignature', () => {
    const c = V.checkpoint_rfc6962_8leaves_SELF_GENERATED;
    assert.equal(ED.vectors[0].secret_key, SEED1);
    assert.equal(ED.vectors[1].secret_key, SEED2);
    const log = Identity.fromSeed(Buffer.from(SEED1, 'hex'));
    const wit = Identity.fromSeed(Buffer.from(SEED2, 'hex'));
    const origin = 'example.com/rfc6962-test-log';
    const logV = NoteVerifier.ed25519(origin, log.publicKey);
    const witV = NoteVerifier.cosigner('example.com/test-witness', wit.publicKey);
    assert.equal(logV.toString(), c.log_vkey);
    assert.equal(witV.toString(), c.witness_vkey);

    const root = Buffer.from(RFC6962.roots_by_size['8'], 'hex');
    const signed = signCheckpoint(origin, 8, root, log);
    const body = formatCheckpoint(origin, 8, root);
    assert.equal(cosignatureMessage(body, c.cosig_timestamp).toString('utf8'), c.cosigned_message);
    const full = formatNote(body, [...parseNote(signed).signatures.map((s) => s.line), cosignLine(body, 'example.com/test-witness', wit, c.cosig_timestamp)]);
    assert.equal(full, c.note);

    const opened = openNote(c.note, [NoteVerifier.parse(c.log_vkey), NoteVerifier.parse(c.witness_vkey)]);
    assert.equal(opened.verified.length, 2);
    assert.equal(opened.verified[1].timestamp, c.cosig_timestamp);
    const cp = parseCheckpoint(opened.text);
    assert.equal(cp.size, 8);
    assert.ok(cp.root.equals(root));
  });
});

describe('note: rejections', () => {
  const w = V.checkpoint_witness_repo;
  const wv = () => NoteVerifier.parse(w.vkey);
  const exampleLine = V.signed_note_c2sp_example.note.split('\n\n')[1];

  it('rejects tampered text and tampered signatures with E_SIGNATURE', () => {
    throwsCode(() => openNote(w.note.replace('monkeys\n5\n', 'monkeys\n6\n'), [wv()]), 'E_SIGNATURE');
    throwsCode(() => openNote(tamperSig(w.note), [wv()]), 'E_SIGNATURE');
    const c8 = V.checkpoint_rfc6962_8leaves_SELF_GENERATED;
    const vs = [NoteVerifier.parse(c8.log_vkey), NoteVerifier.parse(c8.witness_vkey)];
    const { text, signatures } = parseNote(c8.note);
    const raw = Buffer.concat([signatures[1].keyId, signatures[1].sig]);
    raw[11] ^= 0x01; // the timestamp: the cosignature no longer verifies
    throwsCode(() => openNote(formatNote(text, [signatures[0].line, `\u2014 ${signatures[1].name} ${toBase64(raw)}`]), vs), 'E_SIGNATURE');
    // a known key that fails rejects the note even when another known key verifies
    throwsCode(
      () => openNote(formatNote(text, [signatures[0].line, signatures[1].line, signatures[1].line.replace(/.{6}\n$/, 'AAAAA=\n')]), vs),
      'E_SIGNATURE',
    );
  });

  it('rejects a note signed only by unknown keys with E_SIGNATURE', () => {
    throwsCode(() => openNote(V.signed_note_c2sp_example.note, [NoteVerifier.parse(V.signed_note_go_sumdb_example.vkey)]), 'E_SIGNATURE');
    throwsCode(() => openNote(w.note, []), 'E_SIGNATURE');
  });

  it('rejects malformed notes with E_NOTE', () => {
    throwsCode(() => parseNote('hello\n\n\u2014 example.com/foo !!!!\n'), 'E_NOTE'); // bad base64
    throwsCode(() => parseNote('hello\n\n\u2014 example.com/foo Uw2QOkn8srV\n'), 'E_NOTE'); // base64 without padding
    throwsCode(() => parseNote('hello\n' + exampleLine), 'E_NOTE'); // no blank line
    throwsCode(() => parseNote('hel\tlo\n\n' + exampleLine), 'E_NOTE'); // control char
    throwsCode(() => parseNote('hello\r\n\n' + exampleLine), 'E_NOTE');
    throwsCode(() => parseNote(w.note.slice(0, -1)), 'E_NOTE'); // no final newline
    throwsCode(() => parseNote('hello\n\n'), 'E_NOTE'); // no signatures
    throwsCode(() => parseNote('hello\n\n' + exampleLine.replace('example.com/foo', 'a+b')), 'E_NOTE');
    throwsCode(() => parseNote('hello\n\n' + exampleLine.replace('example.com/foo', 'a\u00a0b')), 'E_NOTE');
    throwsCode(() => parseNote('hello\n\n' + exampleLine.replace('\u2014', '-')), 'E_NOTE');
    throwsCode(() => parseNote('hello\n\n\u2014 k AAAAAA==\n'), 'E_NOTE'); // shorter than 5 bytes
    throwsCode(() => parseNote(Buffer.concat([Buffer.from('he'), Buffer.from([0xff]), Buffer.from('llo\n\n' + exampleLine)])), 'E_NOTE');
    throwsCode(() => parseNote('x\n\n' + exampleLine.repeat(101)), 'E_NOTE');
    throwsCode(() => parseNote('x'.repeat(1 << 20) + '\n\n' + exampleLine), 'E_TOO_LARGE');
    throwsCode(() => formatNote('no newline', [exampleLine]), 'E_NOTE');
    throwsCode(() => formatNote('x\n', [exampleLine + exampleLine]), 'E_NOTE');
    throwsCode(() => signNoteLine('x\n', 'bad name', Identity.fromSeed(Buffer.alloc(32, 1))), 'E_NOTE');
  });

  it('rejects malformed checkpoints with E_NOTE', () => {
    const root = toBase64(Buffer.alloc(32, 1));
    assert.equal(parseCheckpoint(`o\n0\n${root}\n`).size, 0);
    throwsCode(() => parseCheckpoint(`o\n05\n${root}\n`), 'E_NOTE'); // leading zero
    throwsCode(() => parseCheckpoint(`o\n00\n${root}\n`), 'E_NOTE');
    throwsCode(() => parseCheckpoint(`o\n+5\n${root}\n`), 'E_NOTE');
    throwsCode(() => parseCheckpoint(`o\n9007199254740992\n${root}\n`), 'E_NOTE'); // above 2^53-1
    throwsCode(() => parseCheckpoint(`o\n5\n${toBase64(Buffer.alloc(31))}\n`), 'E_NOTE');
    throwsCode(() => parseCheckpoint(`o\n5\n${toBase64(Buffer.alloc(33))}\n`), 'E_NOTE');
    throwsCode(() => parseCheckpoint(`\n5\n${root}\n`), 'E_NOTE'); // empty origin
    throwsCode(() => parseCheckpoint(`o\n5\n`), 'E_NOTE'); // too few lines
    throwsCode(() => parseCheckpoint(`o\n5\n${root}\n\n`), 'E_NOTE'); // empty extension line
    throwsCode(() => parseCheckpoint(`o\n5\n${root}`), 'E_NOTE'); // no final newline
    throwsCode(() => formatCheckpoint('o', 5, Buffer.alloc(31)), 'E_NOTE');
    throwsCode(() => formatCheckpoint('o', -1, Buffer.alloc(32)), 'E_NOTE');
    throwsCode(() => formatCheckpoint('o', 1.5, Buffer.alloc(32)), 'E_NOTE');
    throwsCode(() => formatCheckpoint('a\nb', 1, Buffer.alloc(32)), 'E_NOTE');
    throwsCode(() => cosignLine('not a checkpoint\n', 'w', Identity.fromSeed(Buffer.alloc(32, 1)), 1), 'E_NOTE');
  });

  it('rejects bad verifier and signer keys with E_NOTE', () => {
    const vkey = V.signed_note_c2sp_example.vkey; // example.com/foo+530d903a+...
    throwsCode(() => NoteVerifier.parse(vkey.replace('+530d903a+', '+530d903b+')), 'E_NOTE');
    throwsCode(() => NoteVerifier.parse(vkey.replace('+530d903a+', '+530D903A+')), 'E_NOTE');
    throwsCode(() => NoteVerifier.parse(vkey.replace('+530d903a+', '+530d903+')), 'E_NOTE');
    throwsCode(() => NoteVerifier.parse('example.com/foo+530d903a'), 'E_NOTE');
    throwsCode(() => NoteVerifier.parse(vkey.replace(/\+A/, '+C')), 'E_NOTE'); // type 0x09: unsupported
    throwsCode(() => NoteVerifier.parse('+530d903a+' + vkey.split('+').slice(2).join('+')), 'E_NOTE');
    const skey = V.signed_note_go_sumdb_example.skey;
    throwsCode(() => parseSignerKey(skey.replace('+c74f20a3+', '+c74f20a4+')), 'E_NOTE');
    throwsCode(() => parseSignerKey(skey.replace('PRIVATE+KEY+', 'PRIVATE+')), 'E_NOTE');
    const raw = fromBase64(vkey.split('+').slice(2).join('+'));
    throwsCode(() => NoteVerifier.parse(`example.com/foo+530d903a+${toBase64(raw.subarray(0, 32))}`), 'E_NOTE');
  });
});
