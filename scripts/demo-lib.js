// Shared by the demo launchers (`npm start`, `npm run demo:consortium`): a Node-RED user
// directory with this package linked in, an embedded MQTT broker, a Node-RED process, and a
// first-start deployment through the admin API (credentials travel as the editor sends them).
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

/** Node-RED 4 (the dev dependency) in its own process on a prepared user directory. */
function startNodeRed(userDir) {
  return spawn(process.execPath, [require.resolve('node-red/red.js'), '--userDir', userDir, '--settings', path.join(userDir, 'settings.js')], { stdio: 'inherit' });
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

module.exports = { root, host, secretFile, prepareUserDir, startBroker, startNodeRed, waitForHttp, deployIfNew };
