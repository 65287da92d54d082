// The demo flow of `npm start`: devices publish signed readings over MQTT; the gateway
// verifies them, appends the valid ones to its ledger, signs and appends its own readings,
// and answers queries with inclusion proofs over HTTP. Shared by scripts/start.js and the
// screenshot script. The gateway's secret key is NOT in the flow: it is sent as a node
// credential through the admin API (see start.js), as the editor does. The broker's port is
// `${MQTT_PORT}`, read by Node-RED from its environment (start.js sets it), so the deployed
// flow follows MQTT_PORT on every start.
'use strict';

/** The environment variable (of the Node-RED process) that holds the embedded broker's port. */
const MQTT_PORT_FIELD = '${MQTT_PORT}';

/** The demo flow for the given device did:keys; the broker port is `${MQTT_PORT}` (mqttPort: a fixed port instead, e.g. for screenshots). */
function demoFlow({ deviceDids, mqttPort }) {
  const tab = 'demo-tab';
  const n = (id, type, x, y, props = {}, wires = []) => ({ id, type, z: tab, x, y, wires, ...props });
  return [
    { id: tab, type: 'tab', label: 'Blockchain of Things demo', info: 'Devices sign readings; the gateway verifies, appends, signs its own readings and serves queries with proofs.' },
    { id: 'demo-broker', type: 'mqtt-broker', name: 'embedded broker', broker: '127.0.0.1', port: mqttPort === undefined ? MQTT_PORT_FIELD : String(mqttPort), clientid: '', autoConnect: true, usetls: false, protocolVersion: '4', keepalive: '60', cleansession: true },
    { id: 'demo-gateway-key', type: 'bot-identity', name: 'gateway key' },
    { id: 'demo-ledger', type: 'bot-ledger', name: 'plant-1', origin: 'demo.bot.local/plant-1', identity: 'demo-gateway-key', dir: '', checkpointMs: 1000, checkpointEntries: 0, maxEntryBytes: 65535 },
    n('demo-comment-1', 'comment', 250, 40, { name: 'Device readings over MQTT: verify, then append', info: '' }),
    n('demo-mqtt-in', 'mqtt in', 130, 100, { name: 'devices/+/reading', topic: 'devices/+/reading', qos: '1', datatype: 'json', broker: 'demo-broker', nl: false, rap: true, rh: 0, inputs: 0 }, [['demo-verify']]),
    n('demo-verify', 'bot-verify', 340, 100, { name: 'verify devices', trusted: deviceDids.join('\n'), ledger: 'demo-ledger', maxSkewMs: 300000 }, [['demo-append-devices'], ['demo-rejected']]),
    n('demo-append-devices', 'bot-append', 560, 80, { name: 'append', ledger: 'demo-ledger' }, [['demo-appended']]),
    n('demo-appended', 'debug', 760, 80, { name: 'receipt', active: false, tosidebar: true, console: false, complete: 'ledger', targetType: 'msg', statusVal: 'ledger.index', statusType: 'msg' }),
    n('demo-rejected', 'debug', 560, 140, { name: 'rejected (tampered / replayed)', active: true, tosidebar: true, console: false, complete: 'error', targetType: 'msg', statusVal: 'error.code', statusType: 'msg' }),
    n('demo-comment-2', 'comment', 220, 200, { name: 'Gateway readings: sign, then append', info: '' }),
    n('demo-inject', 'inject', 140, 260, { name: 'gateway temperature', props: [{ p: 'payload' }, { p: 'topic', vt: 'str' }], repeat: '2', once: true, onceDelay: '1', topic: 'plant-1/gateway/temp', payload: '', payloadType: 'date' }, [['demo-reading']]),
    n('demo-reading', 'change', 340, 260, { name: 'reading', rules: [{ t: 'set', p: 'payload', pt: 'msg', to: '{"celsius": 20 + $random() * 5, "at": payload}', tot: 'jsonata' }] }, [['demo-sign']]),
    n('demo-sign', 'bot-sign', 520, 260, { name: 'sign', identity: 'demo-gateway-key' }, [['demo-append-gateway']]),
    n('demo-append-gateway', 'bot-append', 700, 260, { name: 'append', ledger: 'demo-ledger' }, [[]]),
    n('demo-comment-3', 'comment', 330, 340, { name: 'Queries with proofs: GET /bot/query?topic=devices/%23&limit=5', info: '' }),
    n('demo-http-in', 'http in', 140, 400, { name: 'GET /bot/query', url: '/bot/query', method: 'get', upload: false }, [['demo-query-params']]),
    n('demo-query-params', 'change', 340, 400, { name: 'query from URL', rules: [{ t: 'set', p: 'payload', pt: 'msg', to: 'req.query', tot: 'msg' }] }, [['demo-query']]),
    n('demo-query', 'bot-query', 530, 400, { name: 'query', ledger: 'demo-ledger' }, [['demo-http-out']]),
    n('demo-http-out', 'http response', 720, 400, { name: '', statusCode: '', headers: {} }),
  ];
}

module.exports = { demoFlow, MQTT_PORT_FIELD };
