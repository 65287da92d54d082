/**
 * A real Mosquitto broker for integration tests (Debian package `mosquitto`), on a free
 * loopback port, with no persistence: restart() loses retained messages, as a real broker
 * restart without persistence does. Installed with apt-get when missing and we are root.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './helpers';

const CANDIDATES = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto'];

/** Path of the mosquitto binary, installing the Debian package if needed and possible. */
export function mosquittoBinary(): string {
  let found = CANDIDATES.find((p) => fs.existsSync(p));
  if (!found && process.getuid?.() === 0) {
    execFileSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto'], { stdio: 'ignore' });
    found = CANDIDATES.find((p) => fs.existsSync(p));
  }
  if (!found) throw new Error('mosquitto is not installed: apt-get install mosquitto');
  return found;
}


/** Path of mosquitto_passwd (same Debian package as the broker). */
function mosquittoPasswd(): string {
  const found = ['/usr/bin/mosquitto_passwd', '/usr/sbin/mosquitto_passwd', '/usr/local/bin/mosquitto_passwd'].find((p) => fs.existsSync(p));
  if (!found) throw new Error('mosquitto_passwd is not installed: apt-get install mosquitto');
  return found;
}

/** Broker settings beyond the default anonymous listener. */
export interface BrokerOptions {
  /** Username → password; anonymous clients are then refused. */
  users?: Record<string, string>;
  /** Contents of an acl_file. */
  acl?: string;
}

/** A Mosquitto process on a fixed loopback port. */
export class Mosquitto {
  readonly port: number;
  readonly url: string;
  #dir: string;
  #proc: ChildProcess | undefined;
  log = '';

  private constructor(port: number, opts: BrokerOptions) {
    this.port = port;
    this.url = `mqtt://127.0.0.1:${port}`;
    this.#dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bot-mosquitto-'));
    let conf = `listener ${port} 127.0.0.1\npersistence false\nlog_dest stderr\n`;
    if (opts.users) {
      // Mosquitto drops root privileges before reading these files: make them readable.
      fs.chmodSync(this.#dir, 0o755);
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
    fs.writeFileSync(path.join(this.#dir, 'mosquitto.conf'), conf, { mode: 0o644 });
  }

  /** Start a broker on a free port and wait until it accepts connections. */
  static async start(opts: BrokerOptions = {}): Promise<Mosquitto> {
    const m = new Mosquitto(await freePort(), opts);
    await m.startProcess();
    return m;
  }

  async startProcess(): Promise<void> {
    const proc = spawn(mosquittoBinary(), ['-c', path.join(this.#dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr?.on('data', (d: Buffer) => { this.log = (this.log + d.toString()).slice(-20000); });
    this.#proc = proc;
    const end = Date.now() + 10000;
    while (Date.now() < end) {
      if (proc.exitCode !== null) throw new Error(`mosquitto exited: ${this.log}`);
      const ok = await new Promise<boolean>((resolve) => {
        const s = net.connect(this.port, '127.0.0.1', () => { s.end(); resolve(true); });
        s.on('error', () => resolve(false));
      });
      if (ok) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('mosquitto did not start');
  }

  /** Stop the broker process. */
  async stop(): Promise<void> {
    const p = this.#proc;
    this.#proc = undefined;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    if (p.exitCode === null) p.kill('SIGKILL');
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
