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


/** A Mosquitto process on a fixed loopback port. */
export class Mosquitto {
  readonly port: number;
  readonly url: string;
  #dir: string;
  #proc: ChildProcess | undefined;
  log = '';

  private constructor(port: number) {
    this.port = port;
    this.url = `mqtt://127.0.0.1:${port}`;
    this.#dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bot-mosquitto-'));
    fs.writeFileSync(path.join(this.#dir, 'mosquitto.conf'), `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n`);
  }

  /** Start a broker on a free port and wait until it accepts connections. */
  static async start(): Promise<Mosquitto> {
    const m = new Mosquitto(await freePort());
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
