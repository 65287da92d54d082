#!/usr/bin/env node
// `npm start`: Node-RED 4 on 127.0.0.1:1880 (PORT) with this package loaded, a user
// directory under .demo/ (BOT_DEMO_DIR), an embedded MQTT broker (aedes, MQTT_PORT, default 1883), three
// simulated devices publishing signed readings (one of them sometimes tampered, sometimes
// replayed), and the demo flow deployed on first start (scripts/demo-flow.js).
'use strict';
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const demo = path.resolve(process.env.BOT_DEMO_DIR || path.join(root, '.demo'));
const userDir = path.join(demo, 'node-red');
const port = Number(process.env.PORT || 1880);
const mqttPort = Number(process.env.MQTT_PORT || 1883);
const host = '127.0.0.1';

const { Identity, signEnvelope } = require(path.join(root, 'dist/lib/index.js'));
const { SequenceCounter } = require(path.join(root, 'dist/lib/sequence.js'));
const { demoFlow } = require('./demo-flow.js');

const log = (...a) => console.log('[demo]', ...a);

/** Write a secret file (mode 0600) once, and read it back. */
function secretFile(file, make) {
  if (!fs.existsSync(file)) fs.writeFileSync(file, make(), { mode: 0o600, flag: 'wx' });
  return fs.readFileSync(file, 'utf8').trim();
}

/** The package installed into the demo user directory, as npm link would: a symlink. */
function prepareUserDir() {
  fs.mkdirSync(path.join(userDir, 'node_modules', '@blockchain-of-things'), { recursive: true, mode: 0o700 });
  const link = path.join(userDir, 'node_modules', '@blockchain-of-things', 'node-red');
  if (!fs.existsSync(link)) fs.symlinkSync(root, link, 'dir');
  const pkg = path.join(userDir, 'package.json');
  if (!fs.existsSync(pkg)) fs.writeFileSync(pkg, JSON.stringify({ name: 'bot-demo', private: true }, null, 2));
  const credentialSecret = secretFile(path.join(demo, 'credential-secret'), () => crypto.randomBytes(32).toString('hex'));
  fs.writeFileSync(path.join(userDir, 'settings.js'), `module.exports = ${JSON.stringify({
    uiHost: host, uiPort: port, flowFile: 'flows.json', credentialSecret,
    editorTheme: { projects: { enabled: false }, tours: false },
    telemetry: { enabled: false, updateNotification: false },
    logging: { console: { level: 'info', metrics: false, audit: false } },
  }, null, 2)};\n`, { mode: 0o600 });
}

async function startBroker() {
  const { Aedes } = await import('aedes');
  const broker = await Aedes.createBroker();
  const server = net.createServer(broker.handle);
  await new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`cannot listen for MQTT on ${host}:${mqttPort} (${err.code}); set MQTT_PORT`)));
    server.listen(mqttPort, host, resolve);
  });
  log(`MQTT broker (aedes) on mqtt://${host}:${mqttPort}`);
  return { broker, server };
}

/** Three devices with their own keys (0600 files) and persistent seq counters. */
function devices() {
  const dir = path.join(demo, 'devices');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return ['sensor-1', 'sensor-2', 'sensor-3'].map((name) => {
    const file = path.join(dir, `${name}.key`);
    if (!fs.existsSync(file)) Identity.generate().writeKeyFile(file);
    const id = Identity.fromFile(file);
    return { name, id, seq: new SequenceCounter(dir, id.did), sent: [] };
  });
}

function simulate(broker, devs) {
  let tick = 0;
  return setInterval(() => {
    tick++;
    for (const d of devs) {
      const reading = { celsius: Math.round((18 + Math.random() * 6) * 100) / 100, rh: Math.round(40 + Math.random() * 20) };
      const env = signEnvelope(d.id, { kind: 'reading', seq: d.seq.next(), ts: Date.now(), topic: `devices/${d.name}/reading`, payload: reading }).envelope;
      let out = env;
      if (d.name === 'sensor-3' && tick % 7 === 0) out = { ...env, payload: { ...reading, celsius: 99.9 } }; // tampered in transit
      if (d.name === 'sensor-2' && tick % 11 === 0 && d.sent.length > 0) out = d.sent[0];                 // replayed
      d.sent = [env];
      broker.publish({ cmd: 'publish', topic: `devices/${d.name}/reading`, payload: Buffer.from(JSON.stringify(out)), qos: 1, retain: false, dup: false }, () => {});
    }
  }, 1000);
}

async function waitForHttp(url, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try { const r = await fetch(url); if (r.ok) return; } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`Node-RED did not answer on ${url}`);
}

/** First start only: deploy the demo flow, with the gateway key as a node credential. */
async function deployIfNew(devs) {
  const base = `http://${host}:${port}`;
  const current = await (await fetch(`${base}/flows`, { headers: { 'Node-RED-API-Version': 'v2' } })).json();
  if ((current.flows || []).some((n) => n.id === 'demo-tab')) return;
  const flows = demoFlow({ deviceDids: devs.map((d) => d.id.did), mqttPort });
  const gw = flows.find((n) => n.id === 'demo-gateway-key');
  gw.credentials = { secretKey: Identity.generate().exportSeed().toString('hex') };
  const r = await fetch(`${base}/flows`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'Node-RED-API-Version': 'v2', 'Node-RED-Deployment-Type': 'full' },
    body: JSON.stringify({ flows }),
  });
  if (!r.ok) throw new Error(`deploying the demo flow failed: ${r.status} ${await r.text()}`);
  log('demo flow deployed');
}

async function main() {
  fs.mkdirSync(demo, { recursive: true, mode: 0o700 });
  prepareUserDir();
  const { broker, server } = await startBroker();
  const devs = devices();
  const red = spawn(process.execPath, [require.resolve('node-red/red.js'), '--userDir', userDir, '--settings', path.join(userDir, 'settings.js')], { stdio: 'inherit' });
  let stopping = false;
  let timer;
  const stop = (code) => {
    if (stopping) return;
    stopping = true;
    if (timer) clearInterval(timer);
    red.kill('SIGINT');
    server.close();
    broker.close(() => undefined);
    setTimeout(() => process.exit(code), 3000).unref();
    red.once('exit', () => process.exit(code));
  };
  red.once('exit', (code) => { if (!stopping) { log(`Node-RED exited (${code})`); stop(code || 1); } });
  process.on('SIGINT', () => stop(0));
  process.on('SIGTERM', () => stop(0));
  await waitForHttp(`http://${host}:${port}/settings`, 60000);
  await deployIfNew(devs);
  timer = simulate(broker, devs);
  log(`editor: http://${host}:${port}/   query with proofs: http://${host}:${port}/bot/query?topic=devices/%23&limit=5`);
}

main().catch((err) => { console.error(`[demo] ${err.message}`); process.exit(1); });
