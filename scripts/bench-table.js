#!/usr/bin/env node
// Render the JSON of `npm run bench` (stdin or a file) as the Markdown table of the README.
'use strict';
const fs = require('node:fs');
const d = JSON.parse(fs.readFileSync(process.argv[2] || 0, 'utf8'));
const row = (name, f, extra = '') => `| ${name} | ${f.value} ${f.unit} | ${f.peer} ${f.unit} | ${f.ratio}${extra} | ${f.target} | ${f.meetsTarget ? 'yes' : '**no**'} |`;
const lines = [
  '| figure | ours | peer | ratio | target | met |',
  '| --- | --- | --- | --- | --- | --- |',
  row('(a) durable appends, 256 callers each awaiting its own (peer: hypercore 11.37.1, batches of 100, no fsync)', d.append),
  row('(b) `signEnvelope` (peer: raw `crypto.sign`, same bytes)', d.sign),
  row(`(c) audit, ${d.audit.workers} worker + main thread (peer: raw \`crypto.verify\`, one core)`, d.audit, `; ${d.audit.ratioPerCore} per core (${d.audit.coresUsed} cores)`),
  row('(c) audit, `{workers: 0}` (one core)', { ...d.audit.inline, unit: d.audit.unit, target: 'ratio >= 0.7', meetsTarget: d.audit.inline.ratio >= 0.7 }),
  row(`(d) appends at ${d.params.big} entries (peer: at ${d.params.small})`, d.scale),
  row(`(d) inclusion proof at ${d.params.big} entries (peer: at ${d.params.small})`, d.scale.proof),
  row(`(e) RSS of a process that opens the ${d.params.big}-entry ledger and appends (peer: ${d.params.small})`, d.memory),
  row('(e) the same, JS heap used', d.memory.heapUsed),
  row(`(e) RSS of a process that built the ${d.params.big}-entry ledger from empty`, d.memory.build),
  row(
    'flow: `bot-sign` → `bot-append` in Node-RED, signing pool on (peer: two `change` nodes)' +
      (d.flow.poolOff ? `; pool off ${d.flow.poolOff.value} ${d.flow.unit}, ${d.flow.poolOff.ratio}` : ''),
    d.flow,
  ),
  ...(d.bulk ? [
    row(`bulk \`bot-ledger append\`, ${d.bulk.entries} lines, signing pool on (peer: hypercore 11.37.1 with the same parsing and \`signEnvelope\`, one thread); \`--workers 0\` ${d.bulk.poolOff.value} ${d.bulk.unit}, ${d.bulk.poolOff.ratio}`, d.bulk),
  ] : []),
  ...(d.latency ? [
    row(`p50 of one message end to end through \`bot-sign\` → \`bot-append\` at 10 msg/s, pool on (peer: pool off); p99 ${d.latency.p99.value} vs ${d.latency.p99.peer} ms`, d.latency),
  ] : []),
  ...(d.devices ? [
    row(`devices: \`bot-verify\` trusting the ${d.devices.devices} devices enrolled in a ledger, 16 sending, topic filters checked (peer: the same 16 did:keys as a fixed trusted list); CPU ${d.devices.cpuMicrosPerMessage.value} vs ${d.devices.cpuMicrosPerMessage.peer} µs/msg`, d.devices),
  ] : []),
  ...(d.consensus ? [
    row(`consensus: append → confirmed (2 of 3), median (peer: the checkpoint interval); p99 ${d.consensus.latency.p99} ms`, d.consensus.latency),
    row('consensus: appends/s while witnessing (peer: standalone)', d.consensus.throughput),
  ] : []),
  ...(d.partner ? [
    row(`partner reads of ${d.partner.limit} entries over MQTT, proofs verified (peer: local \`bot-query\` reads); unverified ${d.partner.unverified.value} ${d.partner.unit}`, d.partner),
  ] : []),
  ...(d.confidential ? [
    row('confidential: appends of sealed readings through the ledger service (peer: the same, plain)', d.confidential.append),
    row(`confidential: partner reads of ${d.confidential.read.readLimit} sealed entries, opened and both signatures verified (peer: the same entries plain)`, d.confidential.read),
    `| confidential: key rotation of a scope held by 100 partners (101 HPKE keywraps, one batch) | ${d.confidential.rotation.value} ms | – | – | – | – |`,
  ] : []),
];
console.log(lines.join('\n'));
console.log(`\n${d.mode} run, ${d.seconds} s; ${d.machine.cpus} × ${d.machine.cpu}, Node ${d.machine.node}; load average at start ${d.machine.loadAverage.join(' ')}.`);
