#!/usr/bin/env node
// `npm run demo:consortium`: an embedded MQTT broker (MQTT_PORT, default 1884) and three
// Node-RED instances, partners A, B and C, on 127.0.0.1:1881-1883 (PORT to move them), each with its own user
// directory under .demo-consortium/ (BOT_DEMO_DIR), its own key and ledger, witnessing the
// other two. Entries become confirmed at 2 of 3; stop one instance and they still are.
// Each ledger's broker is `${BOT_MQTT_URL}`, set here in each Node-RED's environment, so every
// start follows MQTT_PORT (a folder deployed by an older launcher is updated once). Ctrl-C stops
// the three Node-RED processes (each killed if not done within 5 s), then the broker.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { root, host, secretFile, prepareUserDir, startBroker, startNodeRed, stopProcesses, waitForHttp, deployIfNew, followEnvironment } = require('./demo-lib.js');
const { consortiumFlow } = require('./consortium-flow.js');
const { Identity } = require(path.join(root, 'dist/lib/index.js'));

const demo = path.resolve(process.env.BOT_DEMO_DIR || path.join(root, '.demo-consortium'));
const mqttPort = Number(process.env.MQTT_PORT || 1884);
const basePort = Number(process.env.PORT || 1881); // partners on PORT, PORT+1, PORT+2
const log = (...a) => console.log('[consortium]', ...a);

async function main() {
  fs.mkdirSync(demo, { recursive: true, mode: 0o700 });
  const partners = ['a', 'b', 'c'].map((name, i) => {
    const userDir = path.join(demo, name);
    fs.mkdirSync(userDir, { recursive: true, mode: 0o700 });
    const seed = secretFile(path.join(userDir, '.gateway-seed'), () => Identity.generate().exportSeed().toString('hex'));
    return { name, port: basePort + i, userDir, seed, origin: `demo.bot.local/${name}`, did: Identity.import(seed).did };
  });
  const { close: closeBroker } = await startBroker(mqttPort);
  log(`MQTT broker (aedes) on mqtt://${host}:${mqttPort}`);
  const brokerUrl = `mqtt://${host}:${mqttPort}`;
  const procs = partners.map((p) => { prepareUserDir(p.userDir, p.port); return startNodeRed(p.userDir, { BOT_MQTT_URL: brokerUrl }); });
  let stopping = false;
  // The broker stays up until the partners have closed, so that their connections end cleanly.
  stop = (code) => {
    if (stopping) return;
    stopping = true;
    stopProcesses(procs).then(() => { closeBroker(); process.exit(code); });
  };
  process.on('SIGINT', () => stop(0));
  process.on('SIGTERM', () => stop(0));
  for (const p of partners) {
    const base = `http://${host}:${p.port}`;
    await waitForHttp(`${base}/settings`, 60000);
    const flows = consortiumFlow({ me: p, partners: partners.filter((x) => x !== p), broker: '${BOT_MQTT_URL}' });
    flows.find((n) => n.type === 'bot-identity').credentials = { secretKey: p.seed };
    if (await deployIfNew(base, `${p.name}-tab`, flows)) log(`partner ${p.name.toUpperCase()} deployed`);
    else {
      for (const c of await followEnvironment(base, flows, [{ id: `${p.name}-ledger`, prop: 'broker' }])) {
        log(`partner ${p.name.toUpperCase()}: the deployed ledger's broker was ${c.was}: it is now ${c.now}, which follows MQTT_PORT (${brokerUrl})`);
      }
    }
    log(`partner ${p.name.toUpperCase()}: editor ${base}/  ledger ${p.origin}  ${p.did}`);
  }
}

// A failure after Node-RED started stops it too (stop is set once it runs).
let stop = (code) => process.exit(code);
main().catch((err) => { console.error(`[consortium] ${err.message}`); stop(1); });
