/** Shared test helpers: temp dirs and vector files kept beside the tests (test/vectors/). */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

/** Parse a JSON vector file from test/vectors (tests run from dist/test/). */
export function vector<T>(name: string): T {
  return JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../test/vectors', name), 'utf8')) as T;
}

/** A fresh temporary directory, removed by the returned cleanup. */
export function tmpDir(prefix = 'bot-test-'): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** Poll f until it returns a value other than undefined or false; fail after ms. */
export async function until<T>(what: string, f: () => T | undefined | false, ms = 15000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** n consecutive free TCP ports on 127.0.0.1 (the first is returned). */
export async function freeConsecutivePorts(n: number): Promise<number> {
  const free = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const s = net
        .createServer()
        .once('error', () => resolve(false))
        .listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
  for (let tries = 0; tries < 50; tries++) {
    const base = 20000 + Math.floor(Math.random() * 20000);
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = await free(base + i);
    if (ok) return base;
  }
  throw new Error(`no ${n} consecutive free ports`);
}

/** Stop a child process: SIGINT, then SIGKILL if it has not exited after ms. */
export async function stopChild(child: ChildProcess | undefined, ms = 8000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGINT');
  await Promise.race([exited, new Promise((r) => setTimeout(r, ms))]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** A demo launcher (scripts/<name>) in its own process, with its output collected for failure messages. */
export function spawnDemo(script: string, env: Record<string, string>): { child: ChildProcess; output: () => string } {
  let out = '';
  const child = spawn(process.execPath, [path.resolve(__dirname, '../../scripts', script)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return { child, output: () => out };
}
