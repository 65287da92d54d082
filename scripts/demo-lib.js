// Shared by the demo launchers (`npm start`, `npm run demo:consortium`): a Node-RED user
// directory with this package linked in, an embedded MQTT broker, a Node-RED process, and a
// first-start deployment through the admin API (credentials travel as the editor sends them).
// What depends on the launcher's environment (the broker's port) is not written into the
// flow: the flow's fields say `${VAR}` and Node-RED reads VAR from its process environment,
// which the launcher sets, so a demo folder follows MQTT_PORT on every start; a flow deployed
// by an older launcher, with the value written in, is brought to the `${VAR}` form once
// (followEnvironment). Stopping waits for the Node-RED processes (killed after a grace).
'use strict';
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const host = '127.0.0.1';

/** Write a secret file (mode 0600) once, and read it back. */
function secretFile(file, make) {
  if (!fs.existsSync(file)) fs.writeFileSync(file, make(), { mode: 0o600, flag: 'wx' });
  return fs.readFileSync(file, 'utf8').trim();
}

/** A user directory with the package linked in (as npm link would) and a settings file. */
function prepareUserDir(userDir, port) {
  fs.mkdirSync(path.join(userDir, 'node_modules', '@blockchain-of-things'), { recursive: true, mode: 0o700 });
  const link = path.join(userDir, 'node_modules', '@blockchain-of-things', 'node-red');
  if (!fs.existsSync(link)) fs.symlinkSync(root, link, 'dir');
  const pkg = path.join(userDir, 'package.json');
  if (!fs.existsSync(pkg)) fs.writeFileSync(pkg, JSON.stringify({ name: 'bot-demo', private: true }, null, 2));
  const credentialSecret = secretFile(path.join(userDir, '.credential-secret'), () => crypto.randomBytes(32).toString('hex'));
  fs.writeFileSync(path.join(userDir, 'settings.js'), `module.exports = ${JSON.stringify({
    uiHost: host, uiPort: port, flowFile: 'flows.json', credentialSecret,
    editorTheme: { projects: { enabled: false }, tours: false },
    telemetry: { enabled: false, updateNotification: false },
    logging: { console: { level: 'info', metrics: false, audit: false } },
  }, null, 2)};\n`, { mode: 0o600 });
}

/** An embedded aedes broker on host:port. */
async function startBroker(port) {
  const { Aedes } = await import('aedes');
  const broker = await Aedes.createBroker();
  const server = net.createServer(broker.handle);
  await new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`cannot listen for MQTT on ${host}:${port} (${err.code}); set MQTT_PORT`)));
    server.listen(port, host, resolve);
  });
  return { broker, server, close: () => { server.close(); broker.close(() => undefined); } };
}

/** Node-RED 4 (the dev dependency) in its own process on a prepared user directory, with `env` added to its environment (read by `${VAR}` fields). */
function startNodeRed(userDir, env = {}) {
  return spawn(process.execPath, [require.resolve('node-red/red.js'), '--userDir', userDir, '--settings', path.join(userDir, 'settings.js')], { stdio: 'inherit', env: { ...process.env, ...env } });
}

/**
 * Stop processes: SIGINT (Node-RED closes its flows), then SIGKILL for any still running after
 * graceMs; resolves once every one has exited, so a launcher never leaves one behind.
 */
function stopProcesses(procs, graceMs = 5000) {
  return Promise.all(procs.map((p) => new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) { resolve(); return; }
    const timer = setTimeout(() => p.kill('SIGKILL'), graceMs);
    p.once('exit', () => { clearTimeout(timer); resolve(); });
    p.kill('SIGINT');
  })));
}

async function waitForHttp(url, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try { const r = await fetch(url); if (r.ok) return; } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`Node-RED did not answer on ${url}`);
}

/** Deploy flows (with node credentials) unless a tab with tabId is already deployed. */
async function deployIfNew(base, tabId, flows) {
  const current = await (await fetch(`${base}/flows`, { headers: { 'Node-RED-API-Version': 'v2' } })).json();
  if ((current.flows || []).some((n) => n.id === tabId)) return false;
  const r = await fetch(`${base}/flows`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'Node-RED-API-Version': 'v2', 'Node-RED-Deployment-Type': 'full' },
    body: JSON.stringify({ flows }),
  });
  if (!r.ok) throw new Error(`deploying the demo flow failed: ${r.status} ${await r.text()}`);
  return true;
}

/**
 * For a tab deployed by an earlier start: make the deployed value of each `follow` property
 * ({id, prop}) what `flows` has (a `${VAR}` field), and redeploy when one differed. The other
 * nodes and every credential stay as they are (Node-RED keeps the stored credentials of nodes
 * deployed without a `credentials` property). Returns the changes made ([{id, prop, was, now}]).
 */
async function followEnvironment(base, flows, follow) {
  const current = await (await fetch(`${base}/flows`, { headers: { 'Node-RED-API-Version': 'v2' } })).json();
  const deployed = current.flows || [];
  const changes = [];
  for (const { id, prop } of follow) {
    const want = flows.find((n) => n.id === id);
    const have = deployed.find((n) => n.id === id);
    if (!want || !have || have[prop] === want[prop]) continue;
    changes.push({ id, prop, was: have[prop], now: want[prop] });
    have[prop] = want[prop];
  }
  if (changes.length === 0) return changes;
  const r = await fetch(`${base}/flows`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'Node-RED-API-Version': 'v2', 'Node-RED-Deployment-Type': 'full' },
    body: JSON.stringify({ flows: deployed, rev: current.rev }),
  });
  if (!r.ok) throw new Error(`updating the demo flow failed: ${r.status} ${await r.text()}`);
  return changes;
}

module.exports = { root, host, secretFile, prepareUserDir, startBroker, startNodeRed, stopProcesses, waitForHttp, deployIfNew, followEnvironment };
