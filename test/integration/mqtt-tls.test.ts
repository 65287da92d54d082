/**
 * MqttLink over TLS (mqtts://) to a real broker (test/mosquitto.ts) with a test CA made by the
 * openssl command. A machine with Node.js alone has no openssl: the test is then skipped with the
 * reason printed, unless BOT_TEST_TLS=require (.ci/run sets it), which makes that a failure.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MqttLink } from '../../lib/consortium/mqtt-link';
import { Mosquitto } from '../mosquitto';
import { tmpDir, until } from '../helpers';

describe('MqttLink over TLS (real broker)', function () {
  this.timeout(30000);
  let t: ReturnType<typeof tmpDir>;
  let broker: Mosquitto | undefined;
  after(async () => {
    await broker?.close();
    t?.cleanup();
  });

  it('connects with the CA given, and refuses a broker it cannot verify', async function () {
    if (spawnSync('openssl', ['version'], { stdio: 'ignore' }).status !== 0) {
      if (process.env.BOT_TEST_TLS === 'require') throw new Error('the openssl command is not available, and BOT_TEST_TLS=require');
      console.log('      (TLS test skipped: no openssl command to make the test CA; BOT_TEST_TLS=require makes this a failure)');
      this.skip();
    }
    t = tmpDir('bot-tls-');
    const f = (n: string): string => path.join(t.dir, n);
    const ssl = (...args: string[]): void => {
      execFileSync('openssl', args, { stdio: 'ignore' });
    };
    ssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      f('ca.key'),
      '-out',
      f('ca.pem'),
      '-days',
      '2',
      '-subj',
      '/CN=bot test CA',
    );
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1');
    fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
    ssl(
      'x509',
      '-req',
      '-in',
      f('server.csr'),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-out',
      f('server.pem'),
      '-days',
      '2',
      '-extfile',
      f('ext.cnf'),
    );
    // Mosquitto started as root drops to its own user: it must be able to read these test files.
    fs.chmodSync(t.dir, 0o755);
    for (const n of ['ca.pem', 'server.pem', 'server.key']) fs.chmodSync(f(n), 0o644);
    broker = await Mosquitto.start({ tls: { cert: f('server.pem'), key: f('server.key') } });
    const url = broker.url;
    const good = new MqttLink({ url, reconnectMs: 200, tls: { ca: fs.readFileSync(f('ca.pem')) } });
    const bad = new MqttLink({ url, reconnectMs: 200 });
    const badErrors: Error[] = [];
    good.on('error', () => undefined);
    bad.on('error', (e: Error) => badErrors.push(e));
    good.start();
    bad.start();
    try {
      await until('TLS connection', () => good.state === 'connected', 15000);
      const refusal = /certificate|self.signed|verify/i;
      await until('refusal of an unknown CA', () => badErrors.some((e) => refusal.test(String(e.message))), 15000);
      assert.notEqual(bad.state, 'connected');
    } finally {
      await Promise.all([good.close(), bad.close()]);
    }
  });
});
