/**
 * Issue 11, defect 10: the README's `bot-ledger` section works as written. The shell block is
 * taken from README.md and run by bash as it stands, with HOME pointing at a folder laid out as
 * a Node-RED user directory with the package installed (node_modules/.bin/bot-ledger, as npm
 * links it); its usage block is the command's --help; export stops at the end of the tree; and
 * a ledger held open by another process (as Node-RED holds its ledgers) is refused with
 * E_LOCKED and advice on what to do.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Identity, Ledger } from '../../lib';
import { LOCKED_ADVICE } from '../../bin/cli';
import { tmpDir } from '../helpers';

const ROOT = path.resolve(__dirname, '../../..');
const CLI = path.resolve(__dirname, '../../bin/bot-ledger.js');

/** The fenced blocks of one README section, with their language. */
function blocks(section: string): { lang: string; text: string }[] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf(`\n## ${section}\n`);
  assert.ok(start >= 0, `README has a section "${section}"`);
  const end = readme.indexOf('\n## ', start + 4);
  const body = readme.slice(start, end < 0 ? undefined : end);
  return [...body.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1], text: m[2] }));
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}
function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '',
      stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.stdin.end(opts.input ?? '');
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('README: the bot-ledger command section', function () {
  this.timeout(30000);
  let t: ReturnType<typeof tmpDir>;
  before(() => {
    t = tmpDir('bot-readme-');
  });
  after(() => t.cleanup());

  it('runs its shell block as written (bash -e, the command installed under ~/.node-red)', async () => {
    const sh = blocks('The `bot-ledger` command').filter((b) => b.lang === 'sh');
    assert.equal(sh.length, 1, 'one shell block');
    assert.doesNotMatch(sh[0].text, /(^|[\s|;&])npx bot-ledger/m, 'no bare `npx bot-ledger` (it would fetch another package outside an install folder)');
    const home = path.join(t.dir, 'home');
    const bin = path.join(home, '.node-red', 'node_modules', '.bin');
    fs.mkdirSync(bin, { recursive: true });
    fs.symlinkSync(CLI, path.join(bin, 'bot-ledger'));
    const scratch = path.join(t.dir, 'tmp');
    fs.mkdirSync(scratch);
    const env: NodeJS.ProcessEnv = { PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin`, HOME: home, TMPDIR: scratch, LANG: 'C.UTF-8' };
    const r = await run('bash', ['-e', '-o', 'pipefail', '-c', sh[0].text], { env, cwd: t.dir });
    assert.equal(r.status, 0, `status ${r.status}\n${r.stderr}\n${r.stdout}`);
    assert.equal(r.stderr, '');
    const lines = r.stdout.split('\n');
    assert.match(lines[0], /^\{"did":"did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+"\}$/);
    assert.equal(lines.filter((l) => /^\{"index":\d,"leafHash"/.test(l)).length, 2, 'two receipts');
    assert.ok(
      lines.some((l) => l === 'example.com/plant-1'),
      'the checkpoint note',
    );
    assert.ok(
      lines.some((l) => /^\{"from":1,"to":2,"proof":\[/.test(l)),
      'the consistency proof',
    );
    assert.equal(lines.filter((l) => l.startsWith('{"kind":"reading"')).length, 2, 'export printed both leaves and stopped at the end');
    assert.match(lines.filter((l) => l !== '').at(-1) ?? '', /^\{"ok":true,/);
  });

  it('shows the usage the command prints', async () => {
    const text = blocks('The `bot-ledger` command').filter((b) => b.lang === 'text');
    const r = await run(process.execPath, [CLI, '--help']);
    assert.equal(r.status, 0);
    assert.equal(text[0]?.text, r.stdout);
  });

  it('export stops at the end of the tree; --from above --to is still a mistake', async () => {
    const dir = path.join(t.dir, 'small');
    const id = Identity.generate();
    const keyFile = path.join(t.dir, 'small.key');
    id.writeKeyFile(keyFile);
    assert.equal((await run(process.execPath, [CLI, 'append', dir, '--key', keyFile, '--origin', 'example.com/small'], { input: '1\n2\n3\n' })).status, 0);
    const past = await run(process.execPath, [CLI, 'export', dir, '--from', '1', '--to', '10']);
    assert.equal(past.status, 0, past.stderr);
    assert.equal(past.stdout.split('\n').filter((l) => l !== '').length, 2);
    const beyond = await run(process.execPath, [CLI, 'export', dir, '--from', '5', '--to', '10']);
    assert.equal(beyond.status, 0, beyond.stderr);
    assert.equal(beyond.stdout, '');
    const wrong = await run(process.execPath, [CLI, 'export', dir, '--from', '2', '--to', '1']);
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /E_RANGE/);
  });

  it('says what to do when another process (Node-RED) holds the ledger: E_LOCKED with advice', async () => {
    const dir = path.join(t.dir, 'held');
    const l = await Ledger.open({ dir, origin: 'example.com/held', identity: Identity.generate() });
    try {
      for (const cmd of [
        ['verify', dir],
        ['export', dir],
      ]) {
        const r = await run(process.execPath, [CLI, ...cmd]);
        assert.equal(r.status, 1, r.stderr);
        assert.match(
          r.stderr,
          /^bot-ledger: [^\n]*\(E_LOCKED\)\. It is open in another process[^\n]*stop that flow[^\n]*copy of the folder[^\n]*Verify ledger[^\n]*\n$/,
        );
        assert.ok(r.stderr.includes(LOCKED_ADVICE));
      }
    } finally {
      await l.close();
    }
  });
});
