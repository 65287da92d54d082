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
  row('flow: `bot-sign` → `bot-append` in Node-RED (peer: two `change` nodes)', d.flow),
  ...(d.consensus ? [
    row(`consensus: append → confirmed (2 of 3), median (peer: the checkpoint interval); p99 ${d.consensus.latency.p99} ms`, d.consensus.latency),
    row('consensus: appends/s while witnessing (peer: standalone)', d.consensus.throughput),
  ] : []),
  ...(d.partner ? [
    row(`partner reads of ${d.partner.limit} entries over MQTT, proofs verified (peer: local \`bot-query\` reads); unverified ${d.partner.unverified.value} ${d.partner.unit}`, d.partner),
  ] : []),
];
console.log(lines.join('\n'));
console.log(`\n${d.mode} run, ${d.seconds} s; ${d.machine.cpus} × ${d.machine.cpu}, Node ${d.machine.node}; load average at start ${d.machine.loadAverage.join(' ')}.`);
