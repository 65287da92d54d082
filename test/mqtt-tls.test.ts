/** MqttLink over TLS (mqtts://) to a real Mosquitto with a test CA made by openssl. */
import { strict as assert } from 'node:assert';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { MqttLink } from '../lib/mqtt-link';
import { mosquittoBinary } from './mosquitto';
import { freePort, tmpDir, until } from './helpers';

describe('MqttLink over TLS (real Mosquitto)', function () {
  this.timeout(30000);
  let t: ReturnType<typeof tmpDir>;
  let broker: ChildProcess | undefined;
  after(() => { broker?.kill('SIGKILL'); t?.cleanup(); });

  it('connects with the CA given, and refuses a broker it cannot verify', async () => {
    t = tmpDir('bot-tls-');
    const f = (n: string): string => path.join(t.dir, n);
    const ssl = (...args: string[]): void => { execFileSync('openssl', args, { stdio: 'ignore' }); };
    ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=bot test CA');
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1');
    fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
    ssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('ext.cnf'));
    // Mosquitto started as root drops to its own user: it must be able to read these test files.
    fs.chmodSync(t.dir, 0o755);
    for (const n of ['ca.pem', 'server.pem', 'server.key']) fs.chmodSync(f(n), 0o644);
    const port = await freePort();
    fs.writeFileSync(f('m.conf'), `listener ${port} 127.0.0.1\nallow_anonymous true\ncafile ${f('ca.pem')}\ncertfile ${f('server.pem')}\nkeyfile ${f('server.key')}\n`);
    broker = spawn(mosquittoBinary(), ['-c', f('m.conf')], { stdio: 'ignore' });
    const end = Date.now() + 10000;
    while (Date.now() < end && !(await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.end(); resolve(true); });
      c.on('error', () => resolve(false));
    }))) await new Promise((r) => setTimeout(r, 100));
    const url = `mqtts://127.0.0.1:${port}`;
    const good = new MqttLink({ url, reconnectMs: 200, tls: { ca: fs.readFileSync(f('ca.pem')) } });
    const bad = new MqttLink({ url, reconnectMs: 200 });
    const badErrors: Error[] = [];
    good.on('error', () => undefined);
    bad.on('error', (e: Error) => badErrors.push(e));
    good.start(); bad.start();
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
