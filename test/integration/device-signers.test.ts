/**
 * Issue 14 part 2: the reference device signers outside Node-RED (devices/c, devices/python)
 * against the shared vectors (test/vectors/device-profile.json) and end to end: their
 * envelopes, published over MQTT to a real broker, are verified and appended by a Node-RED
 * flow (mqtt in → bot-verify → bot-append), and `bot-ledger verify` passes on that ledger; with
 * the devices enrolled in that ledger (bot-device) and bot-verify trusting its registry, a reading
 * for a topic outside a device's enrolment and a revoked device's next reading are refused, and
 * `bot-ledger verify --devices` passes (docs/design.md "Devices").
 *
 * The C signer is built with -std=c99 -Wall -Wextra -Werror and run under AddressSanitizer
 * and UBSan. Without a C compiler, make and libsodium's headers, or without a Python with
 * `cryptography`, these tests are skipped with the reason printed; BOT_TEST_DEVICES=require
 * (CI) makes them fail instead.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import mqtt from 'mqtt';
import { verifyEnvelope } from '../../lib';
import { C_CODES, cDriverLines, type InvalidCase, loadVectors, sha256Hex, type ValidCase } from '../device-profile';
import { tmpDir } from '../helpers';
import { Mosquitto } from '../mosquitto';
import { ALL_NODES, type FlowNode, freshUserDir, helper, type Msg, nextMessage, until } from '../nodes/util';

const ROOT = path.resolve(__dirname, '../../..');
const C_DIR = path.join(ROOT, 'devices/c');
const PY = path.join(ROOT, 'devices/python/bot_device.py');
const PY_VECTORS = path.join(ROOT, 'devices/python/check_vectors.py');
const CLI = path.join(ROOT, 'dist/bin/bot-ledger.js');
const VECTORS = path.join(ROOT, 'test/vectors/device-profile.json');
const REQUIRE = process.env.BOT_TEST_DEVICES === 'require';
const mqttNodes = require('@node-red/nodes/core/network/10-mqtt.js') as unknown;
const botDevice = require('../../nodes/bot-device') as unknown;

/** Whether a command runs (exit status 0). */
function runs(cmd: string, args: string[], input?: string): boolean {
  const r = spawnSync(cmd, args, { input, stdio: ['pipe', 'ignore', 'ignore'], timeout: 20000 });
  return r.status === 0;
}

/** Why the C signer cannot be built here, or undefined when it can. */
function cMissing(): string | undefined {
  const cc = process.env.CC ?? 'cc';
  if (!runs(cc, ['--version'])) return `no C compiler (${cc})`;
  if (!runs('make', ['--version'])) return 'no make';
  if (!runs(cc, ['-E', '-x', 'c', '-'], '#include <sodium.h>\n')) return 'no libsodium headers (Debian package libsodium-dev)';
  return undefined;
}

/** A Python with the cryptography package, or why there is none. */
function findPython(): { python: string } | { why: string } {
  for (const python of [process.env.BOT_TEST_PYTHON, 'python3', '/usr/bin/python3']) {
    if (python && runs(python, ['-c', 'import cryptography.hazmat.primitives.asymmetric.ed25519'])) return { python };
  }
  return { why: 'no python3 with the cryptography package (Debian package python3-cryptography)' };
}

/** Reasons already printed. */
const told = new Set<string>();

/** Skip the test with the reason printed (once), or fail under BOT_TEST_DEVICES=require. */
function unavailable(ctx: Mocha.Context, why: string): never {
  if (REQUIRE) throw new Error(`${why}, and BOT_TEST_DEVICES=require`);
  if (!told.has(why)) console.log(`      (device signer test skipped: ${why}; BOT_TEST_DEVICES=require makes this a failure)`);
  told.add(why);
  ctx.skip();
}

/** Run a command; returns stdout, throws with stderr on a non-zero exit. */
function run(cmd: string, args: string[], opts: { input?: string; cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { input: opts.input, cwd: opts.cwd, encoding: 'utf8', timeout: 60000, maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr}`);
  return r.stdout;
}

describe('device signers outside Node-RED (issue 14)', function () {
  this.timeout(60000);
  const vectors = loadVectors();
  const cases: (ValidCase | InvalidCase)[] = [...vectors.valid, ...vectors.invalid];
  const work = tmpDir('bot-devices-');
  let cBuilt: string | undefined; // the build folder, once built
  let cWhy: string | undefined; // why the C tests cannot run here (tools missing)
  let cBuildError: Error | undefined; // the build failed: a defect, never a skip
  const py = findPython();

  before(function () {
    this.timeout(120000);
    cWhy = cMissing();
    if (cWhy !== undefined) return;
    const out = path.join(work.dir, 'c');
    // The Makefile's flags: -std=c99 -Wall -Wextra -Werror -pedantic; SANITIZE=1 adds ASan and UBSan.
    try {
      run('make', ['-s', '-C', C_DIR, `OUT=${out}`, 'SANITIZE=1', 'CFLAGS=-O1']);
      cBuilt = out;
    } catch (err) {
      cBuildError = err as Error;
    }
  });
  after(() => work.cleanup());

  const needC = (ctx: Mocha.Context): string => {
    if (cBuildError !== undefined) throw cBuildError;
    return cBuilt !== undefined ? cBuilt : unavailable(ctx, cWhy ?? 'the C signer was not built');
  };
  const needPy = (ctx: Mocha.Context): string => ('python' in py ? py.python : unavailable(ctx, py.why));

  it('C: builds with -std=c99 -Wall -Wextra -Werror -pedantic, and its self-test (seq store, buffer bounds) passes under ASan and UBSan', function () {
    const out = needC(this);
    assert.equal(run(path.join(out, 'test_vectors'), ['selftest']).trim(), 'selftest ok');
  });

  it('C: every shared vector gives the same bytes and signature; every invalid case is refused with its code', function () {
    const out = needC(this);
    const input = cases.map((c, i) => cDriverLines({ ...c, name: `c${i}` })).join('');
    const lines = run(path.join(out, 'test_vectors'), [], { input }).trim().split('\n');
    assert.equal(lines.length, cases.length);
    cases.forEach((c, i) => {
      const [verdict, name, value] = lines[i].split(' ');
      assert.equal(name, `c${i}`);
      if ('code' in c) {
        assert.equal(verdict, 'err', `${c.name}: refused`);
        assert.equal(Number(value), C_CODES[c.code], `${c.name}: code`);
      } else {
        assert.equal(verdict, 'ok', `${c.name}: signed (got ${value})`);
        const bytes = Buffer.from(value, 'hex');
        assert.equal(sha256Hex(bytes), c.envelopeSha256, `${c.name}: bytes`);
        if (c.envelope !== undefined) assert.equal(bytes.toString('utf8'), c.envelope);
        assert.equal(verifyEnvelope(bytes, { fresh: true }).envelope.sig, c.sig, `${c.name}: signature`);
      }
    });
  });

  it('Python: every shared vector gives the same bytes and signature; every invalid case is refused with its code', function () {
    const python = needPy(this);
    const got = JSON.parse(run(python, [PY_VECTORS, VECTORS])) as Record<string, { ok?: string; did?: string; err?: string }>;
    for (const c of cases) {
      const r = got[c.name];
      if ('code' in c) {
        assert.equal(r.err, c.code, `${c.name}: refused with ${c.code}, got ${JSON.stringify(r).slice(0, 200)}`);
      } else {
        assert.ok(r.ok !== undefined, `${c.name}: signed, got ${r.err}`);
        const bytes = Buffer.from(r.ok, 'hex');
        assert.equal(sha256Hex(bytes), c.envelopeSha256, `${c.name}: bytes`);
        assert.equal(r.did, c.did);
        assert.equal(verifyEnvelope(bytes, { fresh: true }).envelope.sig, c.sig, `${c.name}: signature`);
      }
    }
  });

  /** Key file, seq file and a run of `sign` for one signer: [command, args prefix]. */
  const signers = (ctx: Mocha.Context, which: 'c' | 'python'): [string, string[]] =>
    which === 'c' ? [path.join(needC(ctx), 'example'), []] : [needPy(ctx), [PY]];

  for (const which of ['c', 'python'] as const) {
    it(`${which}: the example's live envelopes verify with verifyEnvelope unchanged; its seq goes on across runs (block 3: 0 1, then 3 4 5)`, function () {
      const [cmd, pre] = signers(this, which);
      const key = path.join(work.dir, `${which}-live.key`);
      const seq = path.join(work.dir, `${which}-live.seq`);
      const did = run(cmd, [...pre, 'keygen', key]).trim();
      assert.equal((fs.statSync(key).mode & 0o777).toString(8), '600', 'the key file is private');
      assert.equal(run(cmd, [...pre, 'did', key]).trim(), did);
      const seqs: number[] = [];
      for (const count of ['2', '3']) {
        const before = Date.now();
        for (const line of run(cmd, [...pre, 'sign', key, seq, 'plant/line-1/temperature', count, '3'])
          .trim()
          .split('\n')) {
          const env = verifyEnvelope(line, { fresh: true });
          assert.equal(env.bytes.toString('utf8'), line, 'canonical as sent');
          assert.equal(env.envelope.signer, did);
          assert.equal(env.envelope.topic, 'plant/line-1/temperature');
          assert.ok(Math.abs(env.envelope.ts - before) < 60000, 'ts from the clock, in ms');
          seqs.push(env.envelope.seq);
        }
      }
      assert.deepEqual(seqs, [0, 1, 3, 4, 5]);
      assert.equal(fs.readFileSync(seq, 'utf8').trim(), '6');
    });
  }

  it('the npm package ships none of devices/ (package.json "files" is a whitelist)', () => {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const packed = JSON.parse(run(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT })) as { files: { path: string }[] }[];
    const files = packed[0].files.map((f) => f.path);
    assert.ok(
      files.some((f) => f.startsWith('dist/lib/')),
      'the listing is the package',
    );
    assert.deepEqual(
      files.filter((f) => f.startsWith('devices/') || f.includes('bot_device')),
      [],
    );
  });

  describe('end to end over MQTT', () => {
    let broker: Mosquitto | undefined;
    let userDir: string | undefined;
    let client: mqtt.MqttClient | undefined;
    afterEach(async () => {
      await client?.endAsync();
      client = undefined;
      await helper.unload();
      await broker?.close();
      broker = undefined;
      if (userDir !== undefined) fs.rmSync(userDir, { recursive: true, force: true });
    });

    /** A device of these tests: a new key of the C or Python signer; `sign` prints envelopes for a topic, its seq file going on. */
    interface Device {
      did: string;
      sign(topic: string, count?: number): string[];
    }
    let made = 0;
    const device = (ctx: Mocha.Context, which: 'c' | 'python'): Device => {
      const [cmd, pre] = signers(ctx, which);
      const name = path.join(work.dir, `${which}-e2e-${++made}`);
      const did = run(cmd, [...pre, 'keygen', `${name}.key`]).trim();
      const sign = (topic: string, count = 1): string[] =>
        run(cmd, [...pre, 'sign', `${name}.key`, `${name}.seq`, topic, String(count)])
          .trim()
          .split('\n');
      return { did, sign };
    };

    /** The gateway as the tests run it: its ledger's folder, what reached each output of bot-verify, and a publisher. */
    interface Gateway {
      ledgerDir: string;
      appended: Msg[];
      rejects: Msg[];
      /** Publish envelopes (QoS 1), each on its own topic. */
      publish(...lines: string[]): Promise<void>;
    }

    /**
     * A real broker and a Node-RED flow mqtt in (devices/#) → bot-verify → bot-append to ledger
     * L1 (identity gw), a helper on each output of bot-verify; `trust` holds bot-verify's trust
     * settings, `extra` more nodes on the tab. Resolves once the flow's MQTT client is subscribed.
     */
    const gateway = async (trust: Record<string, unknown>, extra: FlowNode[] = [], nodes: unknown[] = []): Promise<Gateway> => {
      broker = await Mosquitto.start();
      userDir = freshUserDir();
      const ledgerDir = path.join(userDir, 'ledger');
      const flow: FlowNode[] = [
        { id: 't1', type: 'tab' },
        { id: 'gw', type: 'bot-identity', name: 'gateway' },
        {
          id: 'L1',
          type: 'bot-ledger',
          name: 'devices',
          origin: 'test.example/devices',
          identity: 'gw',
          dir: ledgerDir,
          checkpointMs: 0,
          checkpointEntries: 0,
          maxEntryBytes: 65536,
        },
        {
          id: 'mb',
          type: 'mqtt-broker',
          name: 'test broker',
          broker: '127.0.0.1',
          port: String(broker.port),
          clientid: '',
          autoConnect: true,
          usetls: false,
          protocolVersion: '4',
          keepalive: '60',
          cleansession: true,
        },
        {
          id: 'in',
          type: 'mqtt in',
          z: 't1',
          name: '',
          topic: 'devices/#',
          qos: '1',
          datatype: 'utf8',
          broker: 'mb',
          nl: false,
          rap: false,
          inputs: 0,
          wires: [['v1']],
        },
        { id: 'v1', type: 'bot-verify', z: 't1', name: '', trusted: '', ledger: 'L1', maxSkewMs: 300000, ...trust, wires: [['a1'], ['rej']] },
        { id: 'a1', type: 'bot-append', z: 't1', name: '', ledger: 'L1', wires: [['appended']] },
        { id: 'appended', type: 'helper', z: 't1' },
        { id: 'rej', type: 'helper', z: 't1' },
        ...extra,
      ];
      await helper.load([...ALL_NODES, mqttNodes, ...nodes], flow, { gw: { secretKey: '11'.repeat(32) } });
      const appended: Msg[] = [];
      const rejects: Msg[] = [];
      helper.getNode('appended').on('input', (m: Msg) => appended.push(m));
      helper.getNode('rej').on('input', (m: Msg) => rejects.push(m));
      // The flow's MQTT client is subscribed once a retained probe has come through mqtt in → bot-verify (malformed).
      const c = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
      client = c;
      await c.publishAsync('devices/probe', 'not an envelope', { qos: 1, retain: true });
      await until(() => rejects.length > 0, 10000, 'the retained probe through the flow');
      assert.equal(rejects[0].error?.code, 'malformed');
      rejects.length = 0;
      const publish = async (...lines: string[]): Promise<void> => {
        for (const line of lines) await c.publishAsync((JSON.parse(line) as { topic: string }).topic, line, { qos: 1 });
      };
      return { ledgerDir, appended, rejects, publish };
    };
    const signerOf = (m: Msg): string => (m.payload as { signer: string }).signer;
    const seqOf = (m: Msg): number => (m.payload as { seq: number }).seq;
    /** The result lines `bot-ledger verify` printed, as JSON. */
    const cliVerify = (args: string[]): Record<string, unknown>[] =>
      run(process.execPath, [CLI, 'verify', ...args])
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);

    it('C and Python envelopes published to a real broker are verified and appended by a Node-RED flow; a replay and a tampered one are refused; bot-ledger verify passes', async function () {
      const c = device(this, 'c');
      const p = device(this, 'python');
      const cLines = c.sign('devices/c/reading', 3);
      const pLines = p.sign('devices/python/reading', 3);
      const g = await gateway({ trusted: `${c.did}\n${p.did}` });
      await g.publish(...cLines, ...pLines);
      await until(() => g.appended.length >= 6, 20000, 'the six envelopes appended');
      assert.deepEqual(g.appended.map((m) => `${signerOf(m) === c.did ? 'c' : 'python'}:${seqOf(m)}`).sort(), [
        'c:0',
        'c:1',
        'c:2',
        'python:0',
        'python:1',
        'python:2',
      ]);
      // A replayed C envelope, and a Python one whose payload was changed in transit.
      const tampered = pLines[2].replace('"n":2', '"n":7');
      assert.notEqual(tampered, pLines[2]);
      await g.publish(cLines[1], tampered);
      await until(() => g.rejects.length >= 2, 20000, 'the replay and the tampered envelope refused');
      assert.deepEqual(g.rejects.map((m) => m.error?.code).sort(), ['bad-signature', 'replay']);
      await helper.unload();
      // The ledger, closed by the flow, passes the independent audit of the command line.
      const [result] = cliVerify([g.ledgerDir]);
      assert.equal(result.ok, true, JSON.stringify(result));
      assert.equal(result.size, 6);
      assert.equal(result.signers, 2);
      // And each appended leaf is byte for byte what the device published.
      const exported = execFileSync(process.execPath, [CLI, 'export', g.ledgerDir], { encoding: 'utf8' }).trim().split('\n');
      assert.deepEqual(exported.sort(), [...cLines, ...pLines].sort());
    });

    it('devices enrolled in the ledger by bot-device (C for devices/c/#, Python for devices/python/#): their readings are appended, a C reading for the Python topic is topic-not-allowed, the revoked Python device is revoked from its next reading; bot-ledger verify --devices passes', async function () {
      const c = device(this, 'c');
      const p = device(this, 'python');
      const g = await gateway(
        { devices: 'L1' },
        [
          { id: 'd1', type: 'bot-device', z: 't1', name: '', ledger: 'L1', topics: '', validDays: '', wires: [['dout']] },
          { id: 'dout', type: 'helper', z: 't1' },
          { id: 'c1', type: 'catch', z: 't1', scope: ['d1'], uncaught: false, wires: [['caught']] },
          { id: 'caught', type: 'helper', z: 't1' },
        ],
        [botDevice],
      );
      /** One operation of bot-device (signed with the ledger's operator key, gw): the device it issued. */
      const op = async (payload: Record<string, unknown>): Promise<{ id: string; status?: string; ended?: { how: string } }> => {
        const got = Promise.race([
          nextMessage(helper.getNode('dout'), 10000),
          nextMessage(helper.getNode('caught'), 10000).then((m) => {
            throw new Error(`bot-device ${String(payload.op)}: ${String(m.error?.message)}`);
          }),
        ]);
        helper.getNode('d1').receive({ payload });
        return (await got).device as { id: string; ended?: { how: string } };
      };
      await op({ op: 'enrol', device: c.did, name: 'C device', topics: ['devices/c/#'] });
      const py = await op({ op: 'enrol', device: p.did, name: 'Python device', topics: ['devices/python/#'] });

      // Each device on its own topics: verified against the registry (no trusted list) and appended.
      await g.publish(...c.sign('devices/c/reading', 2), ...p.sign('devices/python/reading', 2));
      await until(() => g.appended.length >= 4 || g.rejects.length > 0, 20000, 'the four readings appended');
      assert.equal(g.rejects.length, 0, JSON.stringify(g.rejects.map((m) => m.error)));
      assert.deepEqual(g.appended.map((m) => `${signerOf(m) === c.did ? 'c' : 'python'}:${seqOf(m)}`).sort(), ['c:0', 'c:1', 'python:0', 'python:1']);
      // The C device signs a reading for the Python device's topic: outside its enrolment.
      await g.publish(...c.sign('devices/python/reading'));
      await until(() => g.rejects.length >= 1, 10000, 'the reading for a foreign topic refused');
      assert.equal(g.rejects[0].error?.code, 'topic-not-allowed');
      assert.equal(g.rejects[0].signer, c.did);

      // The Python device is revoked through the node: its next reading (a new seq) is refused, the C device goes on.
      const revoked = await op({ op: 'revoke', device: py.id, reason: 'test: reported stolen' });
      assert.equal(revoked.ended?.how, 'revoked');
      const next = p.sign('devices/python/reading');
      assert.ok((JSON.parse(next[0]) as { seq: number }).seq > 1, 'a new seq');
      await g.publish(...next);
      await until(() => g.rejects.length >= 2, 10000, 'the revoked device refused');
      assert.equal(g.rejects[1].error?.code, 'revoked');
      assert.equal(g.rejects[1].signer, p.did);
      await g.publish(...c.sign('devices/c/reading'));
      await until(() => g.appended.length >= 5, 10000, 'the C reading after the revocation appended');
      assert.equal(signerOf(g.appended[4]), c.did);
      assert.equal(g.rejects.length, 2);

      await helper.unload();
      // From the ledger alone: the audit passes and every device reading was from a device enrolled for its topic.
      const [audit, check] = cliVerify([g.ledgerDir, '--devices']);
      assert.equal(audit.ok, true, JSON.stringify(audit));
      assert.equal(audit.size, 8, 'two enrolments, four readings, the revocation, one more reading');
      assert.deepEqual(check, { devices: { ok: true, readings: 5, devices: 2, failed: 0, failures: [] } });
    });
  });
});
