/** The bot-ledger command as a separate process: every subcommand, its output formats and its errors. */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import {
  fromBase64,
  Identity,
  leafHash,
  Ledger,
  NoteVerifier,
  openNote,
  parseCheckpoint,
  PublicKey,
  verifyConsistency,
  verifyEnvelope,
  verifyInclusion,
} from '../../lib';
import { main } from '../../bin/cli';
import { ConfidentialOwner } from '../../lib/confidential/owner';
import { EncryptionKey } from '../../lib/confidential/hpke';
import { tmpDir } from '../helpers';

const CLI = path.resolve(__dirname, '../../bin/bot-ledger.js');
const ORIGIN = 'example.com/cli-test';

interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run bot-ledger with args and stdin text; never rejects on a non-zero exit. */
function run(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  const env = { ...process.env, ...opts.env };
  if (!opts.env?.BOT_LEDGER_KEY_FILE) delete env.BOT_LEDGER_KEY_FILE;
  if (!opts.env?.BOT_DEBUG) delete env.BOT_DEBUG;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '',
      stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.stdin.on('error', () => undefined); // the command may exit before reading all of it
    child.stdin.end(opts.input ?? '');
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

/** The command failed with status and exactly one `bot-ledger: …` line on stderr, no stack. */
function assertError(r: RunResult, status: number, pattern: RegExp): void {
  assert.equal(r.status, status, `status ${r.status}, stderr: ${r.stderr}`);
  assert.match(r.stderr, /^bot-ledger: [^\n]+\n$/, `not one line: ${JSON.stringify(r.stderr)}`);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

interface ReceiptLine {
  index: number;
  leafHash: string;
  treeSize: number;
}

describe('bot-ledger CLI', function () {
  this.timeout(30000);
  let t: ReturnType<typeof tmpDir>;
  let keyFile: string;
  let did: string;
  let dir: string;
  before(async () => {
    t = tmpDir('bot-cli-');
    keyFile = path.join(t.dir, 'operator.key');
    dir = path.join(t.dir, 'ledger');
    const r = await run(['keygen', '--out', keyFile]);
    assert.equal(r.status, 0, r.stderr);
    did = (JSON.parse(r.stdout) as { did: string }).did;
  });
  after(() => t.cleanup());

  describe('keygen', () => {
    it('writes a 0600 PKCS#8 key file, prints only the did, and refuses to overwrite', async () => {
      const st = fs.statSync(keyFile);
      assert.equal(st.mode & 0o777, 0o600);
      const pem = fs.readFileSync(keyFile, 'utf8');
      assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
      assert.equal(Identity.fromFile(keyFile).did, did);
      assert.equal(PublicKey.fromDid(did).did, did);

      const again = await run(['keygen', '--out', keyFile]);
      assertError(again, 1, /already exists/);
      assert.equal(fs.readFileSync(keyFile, 'utf8'), pem);
      assert.equal(again.stdout, '');
    });

    it('prints the C2SP verifier key with --origin, and never prints the secret', async () => {
      const file = path.join(t.dir, 'vkey.key');
      const r = await run(['keygen', '--out', file, '--origin', ORIGIN]);
      assert.equal(r.status, 0, r.stderr);
      const lines = jsonLines(r.stdout);
      assert.equal(lines.length, 1);
      const { did: d, vkey } = lines[0] as { did: string; vkey: string };
      const v = NoteVerifier.parse(vkey);
      assert.equal(v.name, ORIGIN);
      assert.equal(v.publicKey.did, d);
      const seed = Identity.fromFile(file).exportSeed();
      for (const enc of ['hex', 'base64', 'base64url'] as const) assert.ok(!r.stdout.includes(seed.toString(enc)));
      assert.ok(!r.stdout.includes('PRIVATE'));
    });

    it('refuses to run without --out (the secret goes only to a 0600 file)', async () => {
      const r = await run(['keygen']);
      assertError(r, 2, /--out/);
      assert.equal(r.stdout, '');
    });
  });

  describe('append, checkpoint, proof, consistency, export, verify', () => {
    const receipts: ReceiptLine[] = [];
    const payloads: unknown[] = [];
    let cp1: ReturnType<typeof parseCheckpoint>;
    let cp2: ReturnType<typeof parseCheckpoint>;

    const checkpointNote = async (): Promise<ReturnType<typeof parseCheckpoint>> => {
      const r = await run(['checkpoint', dir, '--key', keyFile]);
      assert.equal(r.status, 0, r.stderr);
      const note = openNote(r.stdout, [NoteVerifier.ed25519(ORIGIN, PublicKey.fromDid(did))]);
      const cp = parseCheckpoint(note.text);
      assert.equal(cp.origin, ORIGIN);
      return cp;
    };

    it('appends stdin lines and prints one receipt per entry, in order, with consecutive indices', async () => {
      const first = [{ temp: 21.5 }, [1, 2, 3], 'text', 42, null];
      // An empty line and CRLF line ends are accepted.
      const input =
        first
          .map((p) => JSON.stringify(p))
          .join('\r\n')
          .replace('[1,2,3]', '[1,2,3]\n') + '\n';
      const r = await run(['append', dir, '--key', keyFile, '--origin', ORIGIN, '--topic', 'plant/1/temp'], { input });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '');
      const lines = jsonLines(r.stdout) as unknown as ReceiptLine[];
      assert.deepEqual(
        lines.map((l) => l.index),
        [0, 1, 2, 3, 4],
      );
      for (const l of lines) {
        assert.deepEqual(Object.keys(l).sort(), ['index', 'leafHash', 'treeSize']);
        assert.equal(fromBase64(l.leafHash).length, 32);
        assert.ok(l.treeSize > l.index && l.treeSize <= 5);
      }
      receipts.push(...lines);
      payloads.push(...first);
      cp1 = await checkpointNote();
      assert.equal(cp1.size, 5);

      // More entries, with the key from the environment; the kind is chosen, seq continues.
      const more = [{ n: 1 }, { n: 2 }, { n: 3 }];
      const r2 = await run(['append', dir, '--kind', 'event'], {
        input: more.map((p) => JSON.stringify(p)).join('\n'),
        env: { BOT_LEDGER_KEY_FILE: keyFile },
      });
      assert.equal(r2.status, 0, r2.stderr);
      const lines2 = jsonLines(r2.stdout) as unknown as ReceiptLine[];
      assert.deepEqual(
        lines2.map((l) => l.index),
        [5, 6, 7],
      );
      receipts.push(...lines2);
      payloads.push(...more);
      cp2 = await checkpointNote();
      assert.equal(cp2.size, 8);

      // Nothing new: checkpoint prints the latest note again, without signing another.
      const again = await checkpointNote();
      assert.equal(again.size, 8);
      assert.ok(again.root.equals(cp2.root));
    });

    it('prints inclusion proofs that verify against the checkpoint roots', async () => {
      for (const rc of receipts) {
        const r = await run(['proof', dir, String(rc.index)]);
        assert.equal(r.status, 0, r.stderr);
        const p = JSON.parse(r.stdout) as { index: number; treeSize: number; leafHash: string; proof: string[] };
        assert.deepEqual(Object.keys(p).sort(), ['index', 'leafHash', 'proof', 'treeSize']);
        assert.equal(p.index, rc.index);
        assert.equal(p.treeSize, cp2.size); // the latest checkpoint covers it
        assert.equal(p.leafHash, rc.leafHash);
        verifyInclusion(
          p.index,
          p.treeSize,
          fromBase64(p.leafHash),
          p.proof.map((h) => fromBase64(h)),
          cp2.root,
        );
      }
      const r = await run(['proof', dir, '2', '--size', '5']);
      assert.equal(r.status, 0, r.stderr);
      const p = JSON.parse(r.stdout) as { index: number; treeSize: number; leafHash: string; proof: string[] };
      assert.equal(p.treeSize, 5);
      verifyInclusion(
        2,
        5,
        fromBase64(p.leafHash),
        p.proof.map((h) => fromBase64(h)),
        cp1.root,
      );
    });

    it('prints consistency proofs that verify between the checkpoints', async () => {
      const r = await run(['consistency', dir, '5', '8']);
      assert.equal(r.status, 0, r.stderr);
      const c = JSON.parse(r.stdout) as { from: number; to: number; proof: string[] };
      assert.deepEqual(Object.keys(c).sort(), ['from', 'proof', 'to']);
      assert.equal(c.from, 5);
      assert.equal(c.to, 8);
      verifyConsistency(
        5,
        8,
        c.proof.map((h) => fromBase64(h)),
        cp1.root,
        cp2.root,
      );
      const same = await run(['consistency', dir, '8', '8']);
      assert.deepEqual(JSON.parse(same.stdout), { from: 8, to: 8, proof: [] });
    });

    it('exports the exact leaves, each a valid envelope', async () => {
      const r = await run(['export', dir]);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(r.stdout.endsWith('\n'));
      const lines = r.stdout.slice(0, -1).split('\n');
      assert.equal(lines.length, 8);
      const led = await Ledger.open({ dir, create: false });
      try {
        let i = 0;
        for await (const e of led.entries()) {
          assert.ok(Buffer.from(lines[i], 'utf8').equals(e.leaf), `leaf ${i} differs`);
          i++;
        }
        assert.equal(i, 8);
      } finally {
        await led.close();
      }
      lines.forEach((line, i) => {
        const env = verifyEnvelope(line);
        assert.equal(leafHash(Buffer.from(line)).toString('base64'), receipts[i].leafHash);
        assert.deepEqual(env.envelope.payload, payloads[i]);
        assert.equal(env.envelope.signer, did);
        assert.equal(env.envelope.seq, i);
        assert.equal(env.envelope.kind, i < 5 ? 'reading' : 'event');
        assert.equal(env.envelope.topic, i < 5 ? 'plant/1/temp' : undefined);
      });
      const part = await run(['export', dir, '--from', '2', '--to', '5']);
      assert.equal(part.status, 0, part.stderr);
      assert.deepEqual(part.stdout.slice(0, -1).split('\n'), lines.slice(2, 5));
      const none = await run(['export', dir, '--from', '8']);
      assert.equal(none.status, 0);
      assert.equal(none.stdout, '');
      const toEnd = await run(['export', dir, '--from', '6', '--to', '9']); // stops at the end of the tree
      assert.equal(toEnd.status, 0, toEnd.stderr);
      assert.deepEqual(toEnd.stdout.slice(0, -1).split('\n'), lines.slice(6, 8));
      assertError(await run(['export', dir, '--from', '5', '--to', '4']), 1, /E_RANGE/);
    });

    it('verifies the ledger', async () => {
      const r = await run(['verify', dir]);
      assert.equal(r.status, 0, r.stderr);
      const res = JSON.parse(r.stdout) as { ok: boolean; size: number; root: string; checkpoints: number; signers: number };
      assert.equal(res.ok, true);
      assert.equal(res.size, 8);
      assert.equal(res.checkpoints, 2);
      assert.equal(res.signers, 1);
      assert.equal(res.root, cp2.root.toString('base64'));
      const w = await run(['verify', dir, '--workers', '0']);
      assert.equal(w.status, 0, w.stderr);
    });

    it('stops at a line that is not JSON, after printing the receipts of the lines before it', async () => {
      const r = await run(['append', dir, '--key', keyFile], { input: '{"ok":1}\n\n{"ok":2}\n{not json\n{"ok":3}\n' });
      assertError(r, 1, /line 4\b.*not a JSON value/);
      const lines = jsonLines(r.stdout) as unknown as ReceiptLine[];
      assert.deepEqual(
        lines.map((l) => l.index),
        [8, 9],
      );
      const led = await Ledger.open({ dir, create: false });
      try {
        assert.equal(led.size, 10); // the line after the bad one was not appended
      } finally {
        await led.close();
      }
    });

    it('splits stdin into lines across chunk boundaries, in process (lib/cli main)', async () => {
      const lines = ['{"city":"Zürich","t":"é中😀"}', '[' + '7,'.repeat(2000) + '7]', '"last line without newline"'];
      const bytes = Buffer.from(lines.join('\n'), 'utf8');
      // Chunks of 5 bytes: lines and multi-byte characters are cut everywhere.
      const chunks = Array.from({ length: Math.ceil(bytes.length / 5) }, (_, i) => bytes.subarray(i * 5, i * 5 + 5));
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      let out = '',
        err = '';
      stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
      });
      stderr.setEncoding('utf8').on('data', (d: string) => {
        err += d;
      });
      const status = await main(['append', dir, '--key', keyFile], { stdin: Readable.from(chunks), stdout, stderr, env: {} });
      assert.equal(status, 0, err);
      const rs = jsonLines(out) as unknown as ReceiptLine[];
      assert.equal(rs.length, 3);
      const led = await Ledger.open({ dir, create: false });
      try {
        for (const [k, rc] of rs.entries()) {
          const e = await led.get(rc.index);
          assert.equal(e.leafHash.toString('base64'), rc.leafHash);
          assert.deepEqual(verifyEnvelope(e.leaf).envelope.payload, JSON.parse(lines[k]));
        }
      } finally {
        await led.close();
      }
    });

    it('refuses integers that JSON numbers cannot hold exactly, naming the line', async () => {
      const r = await run(['append', dir, '--key', keyFile], { input: '{"id":"12345678901234567890","n":9007199254740991}\n{"id":12345678901234567890}\n' });
      assertError(r, 1, /stdin line 2: the integer 12345678901234567890 is beyond 2\^53-1/);
      assert.deepEqual(
        (jsonLines(r.stdout) as unknown as ReceiptLine[]).map((l) => l.index),
        [13],
      );
    });

    it('stops gracefully on SIGTERM: every accepted line gets its receipt', async () => {
      const child = spawn(process.execPath, [CLI, 'append', dir, '--key', keyFile], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '',
        stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        stdout += d;
      });
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
      });
      child.stdin.write('{"s":1}\n{"s":2}\n{"s":3}\n');
      while (stdout.split('\n').length < 4) await once(child.stdout, 'data');
      child.kill('SIGTERM');
      const [status] = (await once(child, 'close')) as [number | null];
      assert.equal(status, 128 + 15, stderr);
      assert.match(stderr, /^bot-ledger: interrupted; 3 entries appended and receipted\n$/);
      assert.deepEqual(
        (jsonLines(stdout) as unknown as ReceiptLine[]).map((l) => l.index),
        [14, 15, 16],
      );
    });
  });

  describe('errors: one line on stderr, no stack trace', () => {
    it("append refuses a confidential scope's topic (it does not seal: E_SCOPE, nothing appended); verify needs no key", async () => {
      const dir = path.join(t.dir, 'confidential');
      const op = Identity.fromFile(keyFile);
      const ledger = await Ledger.open({ dir, origin: 'example.com/cli-confidential', identity: op });
      let seq = 1;
      const owner = new ConfidentialOwner({ ledger, operator: op, nextSeq: () => seq++, encryptionKey: await EncryptionKey.generate() });
      await owner.declareScope('plant', ['plant/#']);
      const size = ledger.size;
      await ledger.checkpoint();
      await ledger.close();
      const line = JSON.stringify({ t: 21.5 }) + '\n';
      assertError(await run(['append', dir, '--key', keyFile, '--topic', 'plant/line-1'], { input: line }), 1, /confidential scope plant: .*\(E_SCOPE\)/);
      const outside = await run(['append', dir, '--key', keyFile, '--topic', 'office/1'], { input: line });
      assert.equal(outside.status, 0, outside.stderr);
      assert.equal((jsonLines(outside.stdout)[0] as unknown as ReceiptLine).index, size, 'only the entry outside the scope was appended');
      const v = await run(['verify', dir]);
      assert.equal(v.status, 0, v.stderr);
    });

    it('a missing ledger directory', async () => {
      const missing = path.join(t.dir, 'no-such-ledger');
      for (const args of [
        ['verify', missing],
        ['proof', missing, '0'],
        ['consistency', missing, '0', '1'],
        ['export', missing],
        ['checkpoint', missing, '--key', keyFile],
      ]) {
        const r = await run(args);
        assertError(r, 1, /no ledger in .*no-such-ledger.*E_NOT_FOUND/);
        assert.equal(r.stdout, '');
      }
      assert.ok(!fs.existsSync(missing));
    });

    it('a key file others can read (mode 0644)', async () => {
      const open = path.join(t.dir, 'open.key');
      fs.writeFileSync(open, fs.readFileSync(keyFile), { mode: 0o644 });
      fs.chmodSync(open, 0o644);
      for (const args of [
        ['append', dir, '--key', open],
        ['checkpoint', dir, '--key', open],
      ]) {
        const r = await run(args, { input: '1\n' });
        assertError(r, 1, /accessible by others.*chmod 600.*E_KEY/);
      }
      assertError(await run(['checkpoint', dir], { env: { BOT_LEDGER_KEY_FILE: open } }), 1, /chmod 600/);
      assertError(await run(['checkpoint', dir, '--key', path.join(t.dir, 'nope.key')]), 1, /cannot read key file/);
    });

    it('a key that is not the ledger operator key', async () => {
      const other = path.join(t.dir, 'other.key');
      Identity.generate().writeKeyFile(other);
      assertError(await run(['checkpoint', dir, '--key', other]), 1, /not the operator key.*E_KEY/);
      const r = await run(['append', dir, '--key', other], { input: '{"x":1}\n' });
      assertError(r, 1, /not the operator key/);
      assert.equal(r.stdout, '');
    });

    it('a ledger locked by another process', async () => {
      const held = await Ledger.open({ dir, create: false });
      try {
        for (const args of [
          ['verify', dir],
          ['proof', dir, '0'],
          ['checkpoint', dir, '--key', keyFile],
          ['append', dir, '--key', keyFile],
        ]) {
          const r = await run(args, { input: '{"x":1}\n' });
          assertError(r, 1, /in use by another process.*E_LOCKED/);
          assert.equal(r.stdout, '');
        }
      } finally {
        await held.close();
      }
    });

    it('bad indices and sizes', async () => {
      assertError(await run(['proof', dir, '99']), 1, /no entry 99 in a tree of size 17.*E_RANGE/);
      assertError(await run(['proof', dir, '3', '--size', '3']), 1, /E_RANGE/);
      assertError(await run(['proof', dir, '3', '--size', '100']), 1, /E_RANGE/);
      assertError(await run(['consistency', dir, '8', '5']), 1, /E_RANGE/);
      assertError(await run(['consistency', dir, '0', '100']), 1, /E_RANGE/);
      assertError(await run(['proof', dir, 'abc']), 2, /INDEX must be a non-negative integer/);
      assertError(await run(['proof', dir, '1.5']), 2, /INDEX/);
      assertError(await run(['proof', dir, '-1']), 2, /Unknown option/);
      assertError(await run(['export', dir, '--from', 'x']), 2, /--from/);
    });

    it('usage errors exit 2; --help prints the usage', async () => {
      assertError(await run(['frobnicate']), 2, /unknown command "frobnicate"/);
      assertError(await run(['verify', dir, '--frob']), 2, /Unknown option '--frob'/);
      assertError(await run(['verify']), 2, /verify takes DIR/);
      assertError(await run(['proof', dir]), 2, /proof takes DIR INDEX/);
      assertError(await run(['append', dir], { input: '1\n' }), 2, /needs --key/);
      assertError(await run(['append', dir, '--key', keyFile, '--topic', 'a/+/b']), 2, /wildcards/);
      assertError(await run(['append', dir, '--key', keyFile, '--kind', 'Bad Kind']), 2, /kind must match/);
      assertError(await run(['verify', dir, '--operator', 'did:key:nope']), 2, /--operator: not an Ed25519 did:key/);
      const none = await run([]);
      assert.equal(none.status, 2);
      assert.match(none.stderr, /^Usage: bot-ledger/);
      const help = await run(['--help']);
      assert.equal(help.status, 0);
      assert.match(help.stdout, /^Usage: bot-ledger <command>/);
      for (const c of ['keygen', 'append', 'checkpoint', 'proof', 'consistency', 'export', 'verify']) assert.match(help.stdout, new RegExp(`\\n  ${c} `));
      const sub = await run(['proof', '--help']);
      assert.equal(sub.status, 0);
      assert.equal(sub.stdout, help.stdout);
    });

    it('creating a ledger needs an origin', async () => {
      const fresh = path.join(t.dir, 'fresh');
      assertError(await run(['append', fresh, '--key', keyFile], { input: '1\n' }), 1, /origin is needed/);
      assertError(await run(['append', fresh, '--key', keyFile, '--origin', 'has space']), 1, /origin must be/);
      assertError(await run(['append', dir, '--key', keyFile, '--origin', 'example.com/other']), 1, /has origin example.com\/cli-test/);
    });

    it('BOT_DEBUG=1 adds the stack', async () => {
      const r = await run(['proof', dir, '99'], { env: { BOT_DEBUG: '1' } });
      assert.equal(r.status, 1);
      assert.match(r.stderr, /^bot-ledger: no entry 99[^\n]*\n[^\n]*LedgerError[\s\S]*\n\s+at /);
    });
  });
});
