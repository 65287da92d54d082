/**
 * A real MQTT broker for the integration tests, on a free loopback port, with no persistence
 * (restart() loses retained messages, as a real broker restart without persistence does):
 *
 * - Mosquitto (Debian package `mosquitto`) when it is installed;
 * - otherwise aedes, the broker npm provides, in its own process over TCP
 *   (test/aedes-broker.ts) — never a mock;
 * - BOT_TEST_BROKER=mosquitto requires Mosquitto (CI sets it, so CI proves the Mosquitto
 *   path); BOT_TEST_BROKER=aedes forces aedes.
 *
 * Options that only Mosquitto has (users, ACL, bridge sections: aedes cannot bridge) start
 * Mosquitto whatever BOT_TEST_BROKER says, and fail when it is not installed.
 *
 * The first broker a test run starts prints which one it is. Nothing is installed here: a
 * test never runs apt-get behind the user's back.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './helpers';

const CANDIDATES = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto'];

/** Path of the installed mosquitto binary, or undefined. */
export function findMosquitto(): string | undefined {
  return CANDIDATES.find((p) => fs.existsSync(p));
}

/** Path of the mosquitto binary; throws with the install hint when it is missing. */
export function mosquittoBinary(): string {
  const found = findMosquitto();
  if (!found) throw new Error('mosquitto is not installed: apt-get install mosquitto');
  return found;
}

/** Which broker the integration tests use: see the module comment. */
export function brokerKind(): 'mosquitto' | 'aedes' {
  const want = process.env.BOT_TEST_BROKER;
  if (want === 'aedes') return 'aedes';
  if (want === 'mosquitto') {
    mosquittoBinary();
    return 'mosquitto';
  }
  if (want !== undefined && want !== '') throw new Error(`BOT_TEST_BROKER must be mosquitto or aedes, not ${want}`);
  return findMosquitto() ? 'mosquitto' : 'aedes';
}

/** Path of mosquitto_passwd (same Debian package as the broker). */
function mosquittoPasswd(): string {
  const found = ['/usr/bin/mosquitto_passwd', '/usr/sbin/mosquitto_passwd', '/usr/local/bin/mosquitto_passwd'].find((p) => fs.existsSync(p));
  if (!found) throw new Error('mosquitto_passwd is not installed: apt-get install mosquitto');
  return found;
}

/** Broker settings beyond the default anonymous listener. */
export interface BrokerOptions {
  /** Username → password; anonymous clients are then refused (Mosquitto only). */
  users?: Record<string, string>;
  /** Contents of an acl_file (Mosquitto only). */
  acl?: string;
  /** A TLS listener (mqtts://) with this server certificate and key (PEM files). */
  tls?: { cert: string; key: string };
  /** Bridge sections (`connection …` blocks, mosquitto/bridge.conf.example), appended after the listener settings (Mosquitto only). */
  bridge?: string;
}

let announced = false;

/** A broker process (Mosquitto, or aedes when Mosquitto is missing) on a fixed loopback port. */
export class Mosquitto {
  readonly port: number;
  readonly url: string;
  readonly kind: 'mosquitto' | 'aedes';
  #dir: string;
  #proc: ChildProcess | undefined;
  #tls: BrokerOptions['tls'];
  log = '';

  private constructor(port: number, opts: BrokerOptions) {
    this.port = port;
    this.#tls = opts.tls;
    this.url = `${opts.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`;
    const needsMosquitto = opts.users !== undefined || opts.acl !== undefined || opts.bridge !== undefined;
    this.kind = needsMosquitto ? 'mosquitto' : brokerKind();
    this.#dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bot-mosquitto-'));
    if (this.kind === 'aedes') return;
    // Mosquitto started as root drops to its own user before reading these files: make them readable.
    fs.chmodSync(this.#dir, 0o755);
    let conf = `listener ${port} 127.0.0.1\npersistence false\nlog_dest stderr\n`;
    if (opts.tls) conf += `certfile ${opts.tls.cert}\nkeyfile ${opts.tls.key}\n`;
    if (opts.users) {
      const pw = path.join(this.#dir, 'passwd');
      fs.writeFileSync(pw, '', { mode: 0o644 });
      for (const [user, password] of Object.entries(opts.users)) execFileSync(mosquittoPasswd(), ['-b', pw, user, password], { stdio: 'ignore' });
      fs.chmodSync(pw, 0o644);
      conf += `allow_anonymous false\npassword_file ${pw}\n`;
    } else {
      conf += 'allow_anonymous true\n';
    }
    if (opts.acl !== undefined) {
      const acl = path.join(this.#dir, 'acl');
      fs.writeFileSync(acl, opts.acl, { mode: 0o644 });
      conf += `acl_file ${acl}\n`;
    }
    if (opts.bridge !== undefined) conf += `${opts.bridge.trimEnd()}\n`;
    fs.writeFileSync(path.join(this.#dir, 'mosquitto.conf'), conf, { mode: 0o644 });
  }

  /** Start a broker on a free port and wait until it accepts connections. */
  static async start(opts: BrokerOptions = {}): Promise<Mosquitto> {
    const m = new Mosquitto(await freePort(), opts);
    await m.startProcess();
    if (!announced) {
      announced = true;
      console.log(
        `      (integration tests use ${m.kind === 'mosquitto' ? `Mosquitto, ${mosquittoBinary()}` : `aedes from npm, in its own process (${process.env.BOT_TEST_BROKER === 'aedes' ? 'BOT_TEST_BROKER=aedes' : 'Mosquitto is not installed'})`})`,
      );
    }
    return m;
  }

  async startProcess(): Promise<void> {
    const proc =
      this.kind === 'mosquitto'
        ? spawn(mosquittoBinary(), ['-c', path.join(this.#dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] })
        : spawn(process.execPath, [path.join(__dirname, 'aedes-broker.js'), String(this.port), ...(this.#tls ? [this.#tls.cert, this.#tls.key] : [])], {
            stdio: ['ignore', 'ignore', 'pipe'],
          });
    proc.stderr?.on('data', (d: Buffer) => {
      this.log = (this.log + d.toString()).slice(-20000);
    });
    this.#proc = proc;
    const end = Date.now() + 10000;
    while (Date.now() < end) {
      if (proc.exitCode !== null) throw new Error(`${this.kind} exited: ${this.log}`);
      const ok = await new Promise<boolean>((resolve) => {
        const s = net.connect(this.port, '127.0.0.1', () => {
          s.end();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      });
      if (ok) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${this.kind} did not start`);
  }

  /** Stop the broker process. */
  async stop(): Promise<void> {
    const p = this.#proc;
    this.#proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.kill('SIGCONT'); // a frozen broker must be able to exit
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    if (p.exitCode === null) p.kill('SIGKILL');
  }

  /** Send the broker process a signal (SIGSTOP freezes it, SIGKILL kills it): for tests of a broker that misbehaves. */
  signal(sig: NodeJS.Signals): void {
    this.#proc?.kill(sig);
  }

  /** Stop, then start again on the same port. */
  async restart(): Promise<void> {
    await this.stop();
    await this.startProcess();
  }

  /** Stop and remove the config folder. */
  async close(): Promise<void> {
    await this.stop();
    fs.rmSync(this.#dir, { recursive: true, force: true });
  }
}
