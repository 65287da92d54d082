// The flow of one partner of the consortium demo (`npm run demo:consortium`) and of the
// examples/consortium-*.json: sign readings, append them, and wait until a quorum of partners
// has cosigned a checkpoint covering them. Keys are not in the flow: the demo sends each
// gateway's key as a node credential through the admin API; the examples use key files.
'use strict';

/**
 * The flow of partner `me` ({name, origin}) given the others ([{origin, did}]; dids may be
 * unknown, for the examples) and the broker URL.
 */
function consortiumFlow({ me, partners, broker }) {
  const p = (s) => `${me.name}-${s}`;
  const tab = p('tab');
  const known = partners.filter((x) => x.did);
  return [
    { id: tab, type: 'tab', label: `Consortium: ${me.name}`, info: `Partner ${me.name} of a three-partner consortium. Its ledger ${me.origin} publishes signed checkpoints over MQTT; the other partners witness and cosign them, and it witnesses theirs. An entry is confirmed when a checkpoint covering it has the operator's signature plus one partner's cosignature (2 of 3).\n\nTo connect real partners: put each partner's did:key and ledger origin in the ledger's *Witnesses* and *Witnessed ledgers* fields.` },
    { id: p('key'), type: 'bot-identity', name: `${me.name} gateway key` },
    {
      id: p('ledger'), type: 'bot-ledger', name: me.name, origin: me.origin, identity: p('key'), dir: '', checkpointMs: 200, checkpointEntries: 0, maxEntryBytes: 65536,
      broker, clientId: '', witnesses: known.map((x) => `${x.did} ${x.origin}`).join('\n'), quorum: '', witnessed: known.map((x) => `${x.origin} ${x.did}`).join('\n'),
    },
    { id: p('inject'), type: 'inject', z: tab, name: 'reading every 2 s', props: [{ p: 'payload' }, { p: 'topic', vt: 'str' }], repeat: '2', once: true, onceDelay: '2', topic: `${me.name}/meter`, payload: '{"kwh": 12.5}', payloadType: 'json', x: 150, y: 80, wires: [[p('sign')]] },
    { id: p('sign'), type: 'bot-sign', z: tab, name: 'sign', identity: p('key'), x: 330, y: 80, wires: [[p('append')]] },
    { id: p('append'), type: 'bot-append', z: tab, name: 'append', ledger: p('ledger'), x: 480, y: 80, wires: [[p('consensus')]] },
    { id: p('consensus'), type: 'bot-consensus', z: tab, name: 'wait until confirmed', ledger: p('ledger'), mode: 'wait', timeoutMs: 30000, outputs: 2, x: 680, y: 80, wires: [[p('confirmed')], [p('unconfirmed')]] },
    { id: p('confirmed'), type: 'debug', z: tab, name: 'confirmed (act on it)', active: true, tosidebar: true, console: false, complete: 'consensus', targetType: 'msg', statusVal: 'consensus.status', statusType: 'msg', x: 910, y: 60, wires: [] },
    { id: p('unconfirmed'), type: 'debug', z: tab, name: 'timed out / conflict', active: true, tosidebar: true, console: false, complete: 'consensus', targetType: 'msg', statusVal: 'consensus.status', statusType: 'msg', x: 910, y: 120, wires: [] },
  ];
}

module.exports = { consortiumFlow };
