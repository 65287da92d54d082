/**
 * The editor dialogs' conventions, read from the nodes' .html (test/browser/dialogs.test.ts
 * drives the same dialogs in a real editor): Node-RED's help layout, a help entry with an
 * example for every field of the dialog, labels for the palette and ports, valid defaults.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { editorDefinitions, editorVerdict } from './editor';

const NODES_DIR = path.resolve(__dirname, '../../../nodes');
/** Fields required only in some modes: their empty default is invalid in the default mode, on purpose. */
const CONDITIONAL: Record<string, string[]> = { 'bot-query': ['ledger'], 'bot-append': ['ledger'], 'bot-partner': ['ledger'] };
const DIALOGS = ['bot-identity', 'bot-ledger', 'bot-sign', 'bot-verify', 'bot-consensus', 'bot-append', 'bot-query', 'bot-grant', 'bot-partner'];

function section(html: string, attr: 'data-template-name' | 'data-help-name', type: string): string {
  const m = new RegExp(`<script type="text/html" ${attr}="${type}">([\\s\\S]*?)</script>`).exec(html);
  assert.ok(m, `${type} has a ${attr} section`);
  return m[1] as string;
}

const text = (s: string): string =>
  s
    .replace(/<[^>]+>/g, '')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/\s+/g, ' ')
    .trim();

describe('editor dialogs: Node-RED conventions', () => {
  for (const type of DIALOGS) {
    describe(type, () => {
      const html = fs.readFileSync(path.join(NODES_DIR, `${type}.html`), 'utf8');
      const def = editorDefinitions(type)[type]!;
      const help = section(html, 'data-help-name', type);
      const template = section(html, 'data-template-name', type);
      const isConfig = def.category === 'config';

      it("help in Node-RED's layout: a summary, then Inputs/Outputs (flow nodes), Details and References", () => {
        assert.match(help, /^\s*<p>[^<]{20,}/, 'starts with a one-paragraph summary (the palette tooltip)');
        const heads = [...help.matchAll(/<h3>([^<]+)<\/h3>/g)].map((m) => m[1]);
        const want = isConfig ? ['Properties', 'Details', 'References'] : ['Properties', 'Inputs', 'Outputs', 'Details', 'References'];
        assert.deepEqual(heads, want);
        if (!isConfig) {
          assert.match(help, /<h3>Inputs<\/h3>\s*<dl class="message-properties">/);
          assert.match(help, /<h3>Outputs<\/h3>\s*<(dl class="message-properties"|ol class="node-ports")>/);
        }
        assert.match(help, /<h3>References<\/h3>\s*<ul>\s*<li><a href="https:\/\//);
      });

      it('every field of the dialog has a help entry with an example or a value', () => {
        const labels = [...template.matchAll(/<label for="node-(?:config-)?input-(\w+)"[^>]*>(?:\s*<i [^>]*><\/i>)?\s*([^<]+)<\/label>/g)]
          .map((m) => ({ prop: m[1] as string, label: (m[2] as string).trim() }))
          .filter((l) => l.prop !== 'name' && /^[A-Z]/.test(l.label));
        assert.ok(labels.length >= 2, `${type} has fields`);
        const entries = [...help.matchAll(/<dt[^>]*>([\s\S]*?)<\/dt>\s*<dd>([\s\S]*?)<\/dd>/g)].map((m) => ({
          names: text((m[1] as string).replace(/<span class="property-type">[\s\S]*?<\/span>/, '')).split(/,\s*/),
          dd: m[2] as string,
        }));
        for (const l of labels) {
          const e = entries.find((x) => x.names.includes(l.label));
          assert.ok(e, `help explains the field "${l.label}" (${l.prop})`);
          assert.ok(/<code>/.test(e.dd) || /\be\.g\./.test(e.dd) || /<i>/.test(e.dd), `the help of "${l.label}" shows an example or its values`);
        }
      });

      it('palette and port labels, and defaults its own validators accept', () => {
        if (!isConfig) {
          assert.equal(def.category, 'blockchain of things');
          assert.equal(typeof def.paletteLabel, 'string');
          assert.ok(def.inputLabels, 'input label');
          assert.ok(def.outputLabels, 'output labels');
        }
        assert.equal(typeof def.label, 'function');
        assert.ok((def.label as () => string).call({ ...Object.fromEntries(Object.entries(def.defaults).map(([k, v]) => [k, v.value])) }).length > 0);
        for (const [k, p] of Object.entries(def.defaults)) {
          if (p.validate && !p.required && !(CONDITIONAL[type] ?? []).includes(k))
            assert.equal(editorVerdict(def, k, p.value), true, `the default of ${k} is valid`);
          if (p.validate && p.validate.length < 2) assert.fail(`${k}: validators take (value, opt) so Node-RED 4 shows their reason`);
        }
        for (const m of template.matchAll(/<input type="text" id="node-(?:config-)?input-(\w+)"([^>]*)>/g)) {
          const [, prop, attrs] = m as unknown as [string, string, string];
          const p = def.defaults[prop];
          const hasDefault = p !== undefined && p.value !== '' && p.value !== undefined;
          const picker = p?.type !== undefined; // a config node select
          assert.ok(/placeholder="[^"]+"/.test(attrs) || hasDefault || picker, `${prop}: a placeholder hint or a default`);
        }
      });
    });
  }
});
