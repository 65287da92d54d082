// The flow of one partner of the consortium demo (`npm run demo:consortium`) and of the
// examples "Consortium partner A/B/C.json": sign readings, append them, and wait until a quorum
// of partners has cosigned a checkpoint covering them. Keys are not in the flow: the demo sends
// each gateway's key as a node credential through the admin API; the examples use key files.
// `node scripts/consortium-flow.js --write-examples` rewrites the three example files.
'use strict';

/** The environment variable that holds the broker URL in the examples. */
const MQTT_ENV = 'BOT_MQTT_URL';
/** Its default in the examples (the port `npm start`'s embedded broker uses). */
const MQTT_DEFAULT = 'mqtt://127.0.0.1:1883';

/**
 * A flow (tab) environment variable that is the Node-RED process's environment variable of the
 * same name, or `fallback` when that is unset or empty: a JSONata env entry (Node-RED >= 3), where
 * `$parent.NAME` reads the level above the flow (global environment, then the process).
 * Node properties written `${NAME}` take its value when the flow starts.
 */
function envWithDefault(name, fallback) {
  return { name, value: `$env("$parent.${name}") ? $env("$parent.${name}") : ${JSON.stringify(fallback)}`, type: 'jsonata' };
}

/**
 * The flow of partner `me` ({name, origin}) given the others ([{origin, did}]; dids may be
 * unknown, for the examples) and the broker URL. Without a broker (the examples), the ledger's
 * broker is `${BOT_MQTT_URL}` from the flow's environment (envWithDefault), and the ledger is
 * scoped to the flow so that it sees the flow's environment.
 */
function consortiumFlow({ me, partners, broker }) {
  const p = (s) => `${me.name}-${s}`;
  const tab = p('tab');
  const known = partners.filter((x) => x.did);
  const fromEnv = broker === undefined;
  const info = `Partner ${me.name} of a three-partner consortium. Its ledger ${me.origin} publishes signed checkpoints over MQTT; the other partners witness and cosign them, and it witnesses theirs. An entry is confirmed when a checkpoint covering it has the operator's signature plus one partner's cosignature (2 of 3).\n\nTo connect real partners: put each partner's did:key and ledger origin in the ledger's *Witnesses* and *Witnessed ledgers* fields.`
    + (fromEnv ? `\n\nThe broker is \`\${${MQTT_ENV}}\`: the environment variable ${MQTT_ENV} of the Node-RED process (\`${MQTT_ENV}=mqtts://broker.example.com:8883 node-red\`), or, when it is unset, the default \`${MQTT_DEFAULT}\` set in this flow's properties (double-click the tab › Environment variables). This ledger publishes retained checkpoints there: point it at your consortium's broker, never at one you do not control.` : '');
  return [
    { id: tab, type: 'tab', label: `Consortium: ${me.name}`, info, ...(fromEnv ? { env: [envWithDefault(MQTT_ENV, MQTT_DEFAULT)] } : {}) },
    { id: p('key'), type: 'bot-identity', name: `${me.name} gateway key` },
    {
      id: p('ledger'), type: 'bot-ledger', ...(fromEnv ? { z: tab } : {}), name: me.name, origin: me.origin, identity: p('key'), dir: '', checkpointMs: 200, checkpointEntries: 0, maxEntryBytes: 65535,
      broker: fromEnv ? `\${${MQTT_ENV}}` : broker, clientId: '', witnesses: known.map((x) => `${x.did} ${x.origin}`).join('\n'), quorum: '', witnessed: known.map((x) => `${x.origin} ${x.did}`).join('\n'),
    },
    { id: p('inject'), type: 'inject', z: tab, name: 'reading every 2 s', props: [{ p: 'payload' }, { p: 'topic', vt: 'str' }], repeat: '2', once: true, onceDelay: '2', topic: `${me.name}/meter`, payload: '{"kwh": 12.5}', payloadType: 'json', x: 150, y: 80, wires: [[p('sign')]] },
    { id: p('sign'), type: 'bot-sign', z: tab, name: 'sign', identity: p('key'), x: 330, y: 80, wires: [[p('append')]] },
    { id: p('append'), type: 'bot-append', z: tab, name: 'append', ledger: p('ledger'), x: 480, y: 80, wires: [[p('consensus')]] },
    { id: p('consensus'), type: 'bot-consensus', z: tab, name: 'wait until confirmed', ledger: p('ledger'), mode: 'wait', timeoutMs: 30000, outputs: 2, x: 680, y: 80, wires: [[p('confirmed')], [p('unconfirmed')]] },
    { id: p('confirmed'), type: 'debug', z: tab, name: 'confirmed (act on it)', active: true, tosidebar: true, console: false, complete: 'consensus', targetType: 'msg', statusVal: 'consensus.status', statusType: 'msg', x: 910, y: 60, wires: [] },
    { id: p('unconfirmed'), type: 'debug', z: tab, name: 'timed out / conflict', active: true, tosidebar: true, console: false, complete: 'consensus', targetType: 'msg', statusVal: 'consensus.status', statusType: 'msg', x: 910, y: 120, wires: [] },
  ];
}

/** The example file of partner a, b or c (named as the README titles it: Import › Examples shows file names). */
function exampleFile(name) {
  return `Consortium partner ${name.toUpperCase()}.json`;
}

/** The partners of the examples: their ledgers' origins; did:keys unknown until each one's key exists. */
const EXAMPLE_PARTNERS = ['a', 'b', 'c'].map((name) => ({ name, origin: `example.com/partner-${name}` }));

/** Rewrite examples/Consortium partner {A,B,C}.json from consortiumFlow. */
function writeExamples() {
  const fs = require('node:fs');
  const path = require('node:path');
  for (const me of EXAMPLE_PARTNERS) {
    const flow = consortiumFlow({ me, partners: EXAMPLE_PARTNERS.filter((x) => x !== me) });
    fs.writeFileSync(path.join(__dirname, '..', 'examples', exampleFile(me.name)), JSON.stringify(flow, null, 2) + '\n');
  }
}

if (require.main === module && process.argv.includes('--write-examples')) writeExamples();

module.exports = { consortiumFlow, envWithDefault, exampleFile, EXAMPLE_PARTNERS, MQTT_ENV, MQTT_DEFAULT };
