#!/usr/bin/env node
// `npm start`: Node-RED 4 on 127.0.0.1:1880 (PORT) with this package loaded, a user
// directory under .demo/ (BOT_DEMO_DIR), an embedded MQTT broker (aedes, MQTT_PORT, default 1883), three
// simulated devices publishing signed readings (one of them sometimes tampered, sometimes
// replayed), and the demo flow deployed on first start (scripts/demo-flow.js). The flow's broker
// port is `${MQTT_PORT}`, set here in Node-RED's environment: each start follows MQTT_PORT (a
// folder deployed by an older launcher, with the port written in, is updated once). Ctrl-C
// stops Node-RED (killed if it is not done within 5 s), then the broker.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { root, host, prepareUserDir, startBroker, startNodeRed, stopProcesses, waitForHttp, deployIfNew, followEnvironment } = require('./demo-lib.js');

const demo = path.resolve(process.env.BOT_DEMO_DIR || path.join(root, '.demo'));
const userDir = path.join(demo, 'node-red');
const port = Number(process.env.PORT || 1880);
const mqttPort = Number(process.env.MQTT_PORT || 1883);

const { Identity, signEnvelope } = require(path.join(root, 'dist/lib/index.js'));
const { SequenceCounter } = require(path.join(root, 'dist/lib/index.js'));
const { demoFlow } = require('./demo-flow.js');

const log = (...a) => console.log('[demo]', ...a);

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

/**
 * First start: deploy the demo flow, with the gateway key as a node credential. Later starts:
 * keep the deployed flow, but bring a broker port written in by an older launcher to `${MQTT_PORT}`.
 */
async function deployDemo(devs) {
  const flows = demoFlow({ deviceDids: devs.map((d) => d.id.did) });
  const gw = flows.find((n) => n.id === 'demo-gateway-key');
  gw.credentials = { secretKey: Identity.generate().exportSeed().toString('hex') };
  const base = `http://${host}:${port}`;
  if (await deployIfNew(base, 'demo-tab', flows)) { log('demo flow deployed'); return; }
  for (const c of await followEnvironment(base, flows, [{ id: 'demo-broker', prop: 'port' }])) {
    log(`the deployed flow's broker port was ${c.was}: it is now ${c.now}, which follows MQTT_PORT (${mqttPort})`);
  }
}

async function main() {
  fs.mkdirSync(demo, { recursive: true, mode: 0o700 });
  prepareUserDir(userDir, port);
  const { broker, close: closeBroker } = await startBroker(mqttPort);
  log(`MQTT broker (aedes) on mqtt://${host}:${mqttPort}`);
  const devs = devices();
  const red = startNodeRed(userDir, { MQTT_PORT: String(mqttPort) });
  let stopping = false;
  let timer;
  // The broker stays up until Node-RED has closed, so that its connections end cleanly.
  stop = (code) => {
    if (stopping) return;
    stopping = true;
    if (timer) clearInterval(timer);
    stopProcesses([red]).then(() => { closeBroker(); process.exit(code); });
  };
  red.once('exit', (code) => { if (!stopping) { log(`Node-RED exited (${code})`); stop(code || 1); } });
  process.on('SIGINT', () => stop(0));
  process.on('SIGTERM', () => stop(0));
  await waitForHttp(`http://${host}:${port}/settings`, 60000);
  await deployDemo(devs);
  timer = simulate(broker, devs);
  log(`editor: http://${host}:${port}/   query with proofs: http://${host}:${port}/bot/query?topic=devices/%23&limit=5`);
}

// A failure after Node-RED started stops it too (stop is set once it runs).
let stop = (code) => process.exit(code);
main().catch((err) => { console.error(`[demo] ${err.message}`); stop(1); });
