/**
 * The package as a user gets it: `npm pack`, installed with npm into an empty Node-RED 4
 * user directory, loaded by a real Node-RED runtime in its own process; then every example
 * flow is deployed, and the query example answers with proofs that verify.
 */
import { strict as assert } from 'node:assert';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { leafHash, NoteVerifier, openNote, parseCheckpoint, PublicKey, verifyEnvelope, verifyInclusion, canonicalBytes } from '../../lib';
import { freePort, tmpDir } from '../helpers';

const root = path.resolve(__dirname, '../../..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

async function waitFor<T>(what: string, ms: number, f: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

interface NodeSet {
  id: string;
  types: string[];
  enabled: boolean;
  err?: string;
  module: string;
}

describe('package installed into a fresh Node-RED user directory', function () {
  this.timeout(180000);
  let t: ReturnType<typeof tmpDir>;
  let red: ChildProcess | undefined;
  let base = '';
  let output = '';

  before(async () => {
    t = tmpDir('bot-pkg-');
    const packed = JSON.parse(
      execFileSync(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', t.dir], {
        cwd: root,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }),
    ) as { filename: string; files: { path: string }[] }[];
    const files = packed[0].files.map((f) => f.path);
    assert.ok(
      files.every((f) => /^(dist\/(lib|nodes|bin|plugins)\/|examples\/|mosquitto\/|icons\/|resources\/|README\.md|LICENSE|package\.json)/.test(f)),
      `unexpected files in the tarball: ${files.filter((f) => !/^(dist|examples|mosquitto|icons|resources|README|LICENSE|package)/.test(f))}`,
    );
    assert.ok(
      !files.some((f) => f.startsWith('dist/test/') || f.startsWith('dist/bench/') || f.endsWith('.map')),
      'tests, benchmarks and source maps are not shipped',
    );
    const userDir = path.join(t.dir, 'user');
    fs.mkdirSync(userDir);
    fs.writeFileSync(path.join(userDir, 'package.json'), JSON.stringify({ name: 'node-red-project', private: true }));
    execFileSync(npm, ['install', '--no-audit', '--no-fund', '--prefer-offline', path.join(t.dir, packed[0].filename)], { cwd: userDir, stdio: 'ignore' });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    fs.writeFileSync(
      path.join(userDir, 'settings.js'),
      `module.exports = ${JSON.stringify({ uiHost: '127.0.0.1', uiPort: port, flowFile: 'flows.json', credentialSecret: 'test-only-secret', logging: { console: { level: 'info' } } })};`,
    );
    // The examples' brokers come from BOT_MQTT_URL (default 127.0.0.1:1883): here a port where nothing listens.
    const env = { ...process.env, BOT_MQTT_URL: `mqtt://127.0.0.1:${await freePort()}` };
    red = spawn(process.execPath, [require.resolve('node-red/red.js'), '--userDir', userDir, '--settings', path.join(userDir, 'settings.js')], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
    red.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    red.stderr?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    await waitFor('Node-RED to start', 60000, async () => ((await fetch(`${base}/settings`)).ok ? true : undefined));
  });

  after(async () => {
    if (red && red.exitCode === null) {
      const exited = new Promise((r) => red!.once('exit', r));
      red.kill('SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (red.exitCode === null) red.kill('SIGKILL');
    }
    t?.cleanup();
  });

  it('loads every node of the package with no error', async () => {
    const sets = (await (await fetch(`${base}/nodes`, { headers: { accept: 'application/json' } })).json()) as NodeSet[];
    const ours = sets.filter((s) => s.module === '@blockchain-of-things/node-red');
    const types = ours.flatMap((s) => s.types).sort();
    assert.deepEqual(types, [
      'bot-append',
      'bot-consensus',
      'bot-device',
      'bot-grant',
      'bot-identity',
      'bot-ledger',
      'bot-partner',
      'bot-query',
      'bot-sign',
      'bot-verify',
    ]);
    for (const s of ours) assert.ok(s.enabled && !s.err, JSON.stringify(s));
    assert.ok(!/\[error\]/.test(output), output);
  });

  it('lists the example flows under Import › Examples by their titles', async () => {
    const r = await fetch(`${base}/library/examples/flows/@blockchain-of-things/node-red`, { headers: { accept: 'application/json' } });
    assert.equal(r.status, 200);
    const listed = ((await r.json()) as { fn?: string }[]).map((e) => e.fn).sort();
    assert.deepEqual(listed, [
      'Confidential - owner',
      'Confidential - partner with a mirror',
      'Consortium partner A',
      'Consortium partner B',
      'Consortium partner C',
      'Device registry - enrol, verify, revoke',
      'Partner access - owner',
      'Partner access - reader',
      'Query with proofs',
      'Sign and append sensor readings',
      'Verify device messages',
    ]);
  });

  it('deploys every example flow cleanly, and the query example answers with verifiable proofs', async () => {
    const examples = path.join(root, 'examples');
    // What the examples leave for the user to fill in (empty, so the editor marks it): the reader's owner key and grant id.
    const fillIn = (n: { type?: string }): object =>
      n.type === 'bot-partner' ? { ...n, operator: PublicKey.fromDid('did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH').did, grant: 'g-1' } : n;
    const flows = fs
      .readdirSync(examples)
      .filter((f) => f.endsWith('.json'))
      .flatMap((f) => (JSON.parse(fs.readFileSync(path.join(examples, f), 'utf8')) as { type?: string }[]).map(fillIn));
    const before = output.length;
    const r = await fetch(`${base}/flows`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'Node-RED-API-Version': 'v2', 'Node-RED-Deployment-Type': 'full' },
      body: JSON.stringify({ flows }),
    });
    assert.equal(r.status, 200, await r.text());
    const answer = await waitFor('a query answer with entries', 30000, async () => {
      const res = await fetch(`${base}/bot/query?topic=plant/%23&limit=5`);
      const body = (await res.json()) as { checkpoint: string; entries: { index: number; leaf: unknown; proof: string[] }[] };
      return res.ok && body.entries?.length > 0 ? body : undefined;
    });
    const fresh = output.slice(before);
    assert.ok(!/\[error\]/.test(fresh), fresh);
    // The partner-side check, with nothing but the answer and the kernel's pure functions.
    const first = verifyEnvelope(answer.entries[0].leaf);
    const lines = answer.checkpoint.split('\n');
    const origin = lines[0];
    const note = openNote(answer.checkpoint, [NoteVerifier.ed25519(origin, PublicKey.fromDid(first.envelope.signer))]);
    const cp = parseCheckpoint(note.text);
    for (const e of answer.entries) {
      verifyInclusion(
        e.index,
        cp.size,
        leafHash(canonicalBytes(e.leaf)),
        e.proof.map((p) => Buffer.from(p, 'base64')),
        cp.root,
      );
    }
  });
});
