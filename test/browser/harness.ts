/**
 * Browser test harness: a real Node-RED 4 runtime (the dev dependency, in its own process)
 * on a temporary user directory that loads this package, and a real browser (Chromium driven
 * by playwright-core, found by findChromium; never a downloaded browser) with the editor open.
 *
 *   const red = await startRed({ flows, credentials: { 'my-key': { secretKey: '…' } } });
 *   const ed = await openEditor(red.url);
 *   … ed.page …
 *   await ed.close(); await red.stop();
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freePort, tmpDir } from '../helpers';

const root = path.resolve(__dirname, '../../..');

/** Chromium switches for a quiet, headless, offline-friendly run (no GPU, no sandbox, no updates). */
export const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** System Chromium binaries looked for, in order (Debian's package first). */
const SYSTEM_CHROMIUMS = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];

/** The browser the tests drive, and where it came from. */
export interface ChromiumChoice {
  executablePath: string;
  args: string[];
  source: 'CHROMIUM_PATH' | 'system' | 'packaged';
}

let choice: Promise<ChromiumChoice> | undefined;

/**
 * The Chromium the browser tests drive, in this order: $CHROMIUM_PATH; the system's
 * (Debian's `chromium` package); else the Chromium that the dev dependency
 * `@sparticuz/chromium` ships inside its npm tarball (unpacked to the temp folder on first
 * use; nothing is downloaded). BOT_TEST_BROWSER=packaged skips the system's. Rejects when none can be found, so the browser tests fail
 * rather than skip. Logs its choice once.
 */
export function findChromium(): Promise<ChromiumChoice> {
  choice ??= (async (): Promise<ChromiumChoice> => {
    let c: ChromiumChoice;
    const env = process.env.CHROMIUM_PATH;
    // BOT_TEST_BROWSER=packaged skips the system's, to check the fallback on a machine that has one.
    const system = process.env.BOT_TEST_BROWSER === 'packaged' ? undefined : SYSTEM_CHROMIUMS.find((p) => fs.existsSync(p));
    if (env) {
      if (!fs.existsSync(env)) throw new Error(`CHROMIUM_PATH is ${env}, which does not exist`);
      c = { executablePath: env, args: chromiumArgs, source: 'CHROMIUM_PATH' };
    } else if (system) {
      c = { executablePath: system, args: chromiumArgs, source: 'system' };
    } else {
      c = await packagedChromium();
    }
    console.log(`      (browser tests use ${c.source === 'packaged' ? 'the Chromium packaged in @sparticuz/chromium' : `${c.executablePath} (${c.source})`})`);
    return c;
  })();
  return choice;
}

/** The Chromium inside the @sparticuz/chromium npm tarball, unpacked (no download). */
export async function packagedChromium(): Promise<ChromiumChoice> {
  let mod: { default: { executablePath(): Promise<string>; args: string[] } };
  try {
    mod = await import('@sparticuz/chromium');
  } catch (err) {
    throw new Error(
      `no Chromium: none installed (apt-get install chromium, or set CHROMIUM_PATH) and the packaged one is missing (npm install): ${(err as Error).message}`,
    );
  }
  const executablePath = await mod.default.executablePath();
  return { executablePath, args: [...mod.default.args, ...chromiumArgs.filter((a) => a !== '--headless' && a !== '--disable-gpu')], source: 'packaged' };
}

/** A running Node-RED runtime started by startRed. */
export interface RedRuntime {
  /** The editor's base URL, e.g. `http://127.0.0.1:41234` (no trailing slash). */
  url: string;
  port: number;
  /** The runtime's user directory (flows, credentials, key files, ledgers under bot-ledgers/). */
  userDir: string;
  /** Everything the runtime printed so far (for failure messages). */
  output(): string;
  /**
   * Deploy flows (full deployment through the admin API; nodes may carry `credentials`), resolved once they have started;
   * under adminAuth, as the holder of token (an access token of POST /auth/token with deploy permission).
   */
  deploy(flows: object[], credentials?: Record<string, Record<string, string>>, token?: string): Promise<void>;
  /**
   * Stop the runtime, run `between` (e.g. alter a ledger on disk while nothing holds it),
   * and start it again on the same user directory and port with its stored flows.
   */
  restart(between?: () => Promise<void> | void): Promise<void>;
  /** Stop the runtime and remove its user directory (unless the caller gave the directory). */
  stop(): Promise<void>;
}

/** Options of startRed. */
export interface StartRedOptions {
  /** Flows to deploy once the runtime answers (full deployment). */
  flows?: object[];
  /** Credentials per node id, merged into those nodes before deploying (as the editor sends them). */
  credentials?: Record<string, Record<string, string>>;
  /** Use this user directory (kept on stop) instead of a fresh temporary one. */
  userDir?: string;
  /** Extra Node-RED settings (merged over the harness's, e.g. `adminAuth`). Must be JSON. */
  settings?: Record<string, unknown>;
  /** How long to wait for the runtime to answer (ms, default 60000). */
  startTimeout?: number;
}

/**
 * Wait until this child says it listens on port and answers there (so a port taken meanwhile
 * by another process is never mistaken for ours); fails if the child exits first.
 */
async function waitForRed(port: number, ms: number, child: ChildProcess, output: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`Node-RED exited (${child.exitCode ?? child.signalCode}):\n${output()}`);
    // "Server now running at <url>" in the runtime's language: the URL is the same in every language.
    if (output().includes(`http://127.0.0.1:${port}/`)) {
      try {
        if ((await fetch(`http://127.0.0.1:${port}/settings`)).status < 500) return;
      } catch {
        /* not up yet */
      } // 401 under adminAuth: up
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Node-RED did not answer on port ${port} within ${ms} ms:\n${output()}`);
}

/** A text of Node-RED's runtime catalog (node_modules/@node-red/runtime/locales/<lang>/runtime.json), or undefined. */
function runtimeText(lang: string, key: string): string | undefined {
  try {
    const file = path.join(path.dirname(require.resolve('@node-red/runtime/package.json')), 'locales', lang, 'runtime.json');
    const v = key
      .split('.')
      .reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), JSON.parse(fs.readFileSync(file, 'utf8')));
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Stop a child process: SIGINT, then SIGKILL after ms; leaves no timer behind (so mocha exits promptly). */
async function stopChild(child: ChildProcess | undefined, ms = 8000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  let timer: NodeJS.Timeout | undefined;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGINT');
  await Promise.race([
    exited,
    new Promise((r) => {
      timer = setTimeout(r, ms);
    }),
  ]);
  clearTimeout(timer);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await exited;
  }
}

/** Merge credentials (by node id) into a copy of the flows, the way the editor sends them. */
function withCredentials(flows: object[], credentials?: Record<string, Record<string, string>>): object[] {
  if (!credentials) return flows;
  return flows.map((n) => {
    const id = (n as { id?: string }).id;
    return id && credentials[id] ? { ...n, credentials: credentials[id] } : n;
  });
}

/**
 * Start Node-RED 4 in its own process on a temporary user directory with this package
 * linked in (as `npm link` would; it loads `dist/`), on a free port of 127.0.0.1, and
 * deploy `flows` if given. Node-RED's log is collected, not printed.
 */
export async function startRed(opts: StartRedOptions = {}): Promise<RedRuntime> {
  const tmp = opts.userDir ? undefined : tmpDir('bot-red-');
  const userDir = opts.userDir ?? path.join(tmp!.dir, 'user');
  fs.mkdirSync(path.join(userDir, 'node_modules', '@blockchain-of-things'), { recursive: true, mode: 0o700 });
  const link = path.join(userDir, 'node_modules', '@blockchain-of-things', 'node-red');
  if (!fs.existsSync(link)) fs.symlinkSync(root, link, 'dir');
  const pkg = path.join(userDir, 'package.json');
  if (!fs.existsSync(pkg)) fs.writeFileSync(pkg, JSON.stringify({ name: 'bot-browser-test', private: true }));
  let port = 0;
  let url = '';
  const writeSettings = async (): Promise<void> => {
    port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const settings = {
      uiHost: '127.0.0.1',
      uiPort: port,
      flowFile: 'flows.json',
      credentialSecret: 'browser-test-only-secret',
      editorTheme: { projects: { enabled: false }, tours: false },
      telemetry: { enabled: false, updateNotification: false },
      logging: { console: { level: 'info', metrics: false, audit: false } },
      ...opts.settings,
    };
    fs.writeFileSync(path.join(userDir, 'settings.js'), `module.exports = ${JSON.stringify(settings, null, 2)};\n`, { mode: 0o600 });
  };

  let out = '';
  let child: ChildProcess;
  const output = (): string => out;
  const launch = async (): Promise<void> => {
    const mark = out.length;
    child = spawn(process.execPath, [require.resolve('node-red/red.js'), '--userDir', userDir, '--settings', path.join(userDir, 'settings.js')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await waitForRed(port, opts.startTimeout ?? 60000, child, () => out.slice(mark));
  };
  // "Started flows" in the runtime's language (settings.js `lang`), from Node-RED's own catalog.
  const startedText = runtimeText(typeof opts.settings?.lang === 'string' ? opts.settings.lang : 'en-US', 'nodes.flows.started-flows') ?? 'Started flows';
  const started = (): number => out.split(`[info] ${startedText}`).length - 1;
  const deploy = async (flows: object[], credentials?: Record<string, Record<string, string>>, token?: string): Promise<void> => {
    const before = started();
    const r = await fetch(`${url}/flows`, {
      method: 'POST',
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        'content-type': 'application/json',
        'Node-RED-API-Version': 'v2',
        'Node-RED-Deployment-Type': 'full',
      },
      body: JSON.stringify({ flows: withCredentials(flows, credentials) }),
    });
    if (!r.ok) throw new Error(`deploying failed: ${r.status} ${await r.text()}`);
    // The admin API answers before the new flows have started: wait for the runtime to say so.
    const end = Date.now() + 30000;
    while (started() <= before) {
      if (Date.now() > end) throw new Error(`the deployed flows did not start:\n${out}`);
      await new Promise((res) => setTimeout(res, 50));
    }
  };

  try {
    // A free port can be taken by another process before Node-RED binds it: then try another.
    for (let attempt = 1; ; attempt++) {
      await writeSettings();
      try {
        await launch();
        break;
      } catch (err) {
        if (attempt >= 3 || !/EADDRINUSE/.test(out)) throw err;
        out = '';
      }
    }
    if (opts.flows) await deploy(opts.flows, opts.credentials);
  } catch (err) {
    await stopChild(child!);
    tmp?.cleanup();
    throw err;
  }
  return {
    url,
    port,
    userDir,
    output,
    deploy, // restart() keeps them
    async restart(between) {
      await stopChild(child);
      if (between) await between();
      await launch();
    },
    async stop() {
      await stopChild(child);
      tmp?.cleanup();
    },
  };
}

/** An editor page open in a fresh headless Chromium (its own temporary profile). */
export interface EditorSession {
  browser: Browser;
  page: Page;
  /** Uncaught errors and console errors the page reported so far (failed external look-ups of an offline machine left out). */
  errors: string[];
  close(): Promise<void>;
}

/**
 * Launch Chromium (findChromium; headless, fresh profile) and open the Node-RED editor at `url`,
 * resolved once the editor has loaded its palette and flows. Fails with an explanation when
 * no Chromium is installed (the tests never download a browser).
 */
export async function openEditor(
  url: string,
  opts: {
    viewport?: { width: number; height: number };
    colorScheme?: 'light' | 'dark';
    /** A Chromium binary other than findChromium's. */
    executablePath?: string;
    /** Log in through the editor's login dialog (a runtime with adminAuth). */
    login?: { username: string; password: string };
    /** The browser's language (navigator.language, Accept-Language), e.g. 'zh-CN': the editor's language. */
    locale?: string;
  } = {},
): Promise<EditorSession> {
  const found = opts.executablePath === undefined ? await findChromium() : { executablePath: opts.executablePath, args: chromiumArgs };
  if (!fs.existsSync(found.executablePath)) {
    throw new Error(
      `no Chromium at ${found.executablePath}: the browser tests need CHROMIUM_PATH set to a Chromium binary, Debian's chromium package (apt-get install chromium), or the packaged one (npm install)`,
    );
  }
  const browser = await chromium.launch({ executablePath: found.executablePath, args: found.args });
  try {
    const page = await browser.newPage({ viewport: opts.viewport ?? { width: 1400, height: 800 }, colorScheme: opts.colorScheme, locale: opts.locale });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/net::ERR_(NAME_NOT_RESOLVED|INTERNET_DISCONNECTED)/.test(m.text())) errors.push(m.text());
    });
    await page.goto(`${url}/`, { waitUntil: 'load' });
    if (opts.login) {
      await page.waitForSelector('#node-dialog-login-username', { timeout: 30000 });
      await page.fill('#node-dialog-login-username', opts.login.username);
      await page.fill('#node-dialog-login-password', opts.login.password);
      await page.click('#node-dialog-login-submit');
    }
    await page.waitForSelector('#red-ui-palette .red-ui-palette-node', { timeout: 30000 });
    await page.waitForSelector('#red-ui-workspace-chart', { timeout: 30000 });
    return { browser, page, errors, close: () => browser.close() };
  } catch (err) {
    await browser.close();
    throw err;
  }
}
