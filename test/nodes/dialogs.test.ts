/**
 * The editor dialogs' conventions, read from the nodes' .html and their message catalogs
 * (nodes/locales/<lang>/, test/browser/dialogs.test.ts drives the same dialogs in a real
 * editor): Node-RED's help layout, a help entry with an example for every field of the dialog,
 * labels for the palette and ports, valid defaults; in every language the package ships.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { editorDefinitions, editorVerdict, translator } from './editor';

const NODES_DIR = path.resolve(__dirname, '../../../nodes');
/** Fields required only in some modes: their empty default is invalid in the default mode, on purpose. */
const CONDITIONAL: Record<string, string[]> = { 'bot-query': ['ledger'], 'bot-append': ['ledger'], 'bot-partner': ['ledger'] };
/** Every node of the package (package.json node-red.nodes). */
const DIALOGS = Object.keys(
  (JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../../package.json'), 'utf8')) as { 'node-red': { nodes: Record<string, string> } })['node-red']
    .nodes,
);
/** Per language: the help's section headings (as Node-RED's own help in that language) and how an example is introduced. */
const LANGS: Record<string, { heads: Record<string, string>; example: RegExp }> = {
  'en-US': { heads: { Properties: 'Properties', Inputs: 'Inputs', Outputs: 'Outputs', Details: 'Details', References: 'References' }, example: /\be\.g\./ },
  'zh-CN': { heads: { Properties: '属性', Inputs: '输入', Outputs: '输出', Details: '详细', References: '参考' }, example: /例如/ },
  ja: { heads: { Properties: 'プロパティ', Inputs: '入力', Outputs: '出力', Details: '詳細', References: '参考資料' }, example: /例[:：]|例えば/ },
};
/** Node-RED's own texts the templates use (node-red:common.label.name). */
const CORE: Record<string, Record<string, string>> = {
  'en-US': { 'common.label.name': 'Name' },
  'zh-CN': { 'common.label.name': '名称' },
  ja: { 'common.label.name': '名前' },
};

/** The template as the editor shows it in `lang`: data-i18n keys (text, [placeholder], [title], [html]) resolved. */
function localize(template: string, type: string, lang: string): string {
  const t = translator(lang);
  const resolve = (key: string): string => {
    if (key.startsWith('node-red:')) return CORE[lang]?.[key.slice(9)] ?? key;
    const file = key.startsWith('bot-editor.') ? 'bot-ledger' : type;
    const out = t(`@blockchain-of-things/node-red/${file}:${key}`);
    assert.notEqual(out, `@blockchain-of-things/node-red/${file}:${key}`, `${lang}: ${key} is in the catalog`);
    return out;
  };
  return template
    .replace(/<span data-i18n="([^"]+)"><\/span>/g, (_a, key: string) => resolve(key))
    .replace(
      / data-i18n="\[(placeholder|title)\]([^"]+)"/g,
      (_a, attr: string, key: string) => ` ${attr}="${resolve(key).replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;')}"`,
    )
    .replace(
      /(<(\w+)[^>]*?) data-i18n="(?:\[html\])?([^"]+)"([^>]*)><\/\2>/g,
      (_a, open: string, tag: string, key: string, rest: string) => `${open}${rest}>${resolve(key)}</${tag}>`,
    );
}

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

for (const [lang, L] of Object.entries(LANGS))
  describe(`editor dialogs: Node-RED conventions (${lang})`, () => {
    for (const type of DIALOGS) {
      describe(type, () => {
        const html = fs.readFileSync(path.join(NODES_DIR, `${type}.html`), 'utf8');
        const def = editorDefinitions(type, lang)[type]!;
        const help = section(fs.readFileSync(path.join(NODES_DIR, 'locales', lang, `${type}.html`), 'utf8'), 'data-help-name', type);
        const template = localize(section(html, 'data-template-name', type), type, lang);
        const isConfig = def.category === 'config';
        const H = L.heads;

        it('keeps its help in locales/, none in the node file', () => {
          assert.doesNotMatch(html, /data-help-name=/);
        });

        it("help in Node-RED's layout: a summary, then Inputs/Outputs (flow nodes), Details and References", () => {
          assert.match(help, /^\s*<p>[^<]{20,}/, 'starts with a one-paragraph summary (the palette tooltip)');
          const heads = [...help.matchAll(/<h3>([^<]+)<\/h3>/g)].map((m) => m[1]);
          const want = isConfig ? [H.Properties, H.Details, H.References] : [H.Properties, H.Inputs, H.Outputs, H.Details, H.References];
          assert.deepEqual(heads, want);
          if (!isConfig) {
            assert.match(help, new RegExp(`<h3>${H.Inputs}<\\/h3>\\s*<dl class="message-properties">`));
            assert.match(help, new RegExp(`<h3>${H.Outputs}<\\/h3>\\s*<(dl class="message-properties"|ol class="node-ports")>`));
          }
          assert.match(help, new RegExp(`<h3>${H.References}<\\/h3>\\s*<ul>\\s*<li><a href="https:\\/\\/`));
        });

        it('every field of the dialog has a help entry with an example or a value', () => {
          const labels = [...template.matchAll(/<label for="node-(?:config-)?input-(\w+)"[^>]*>(?:\s*<i [^>]*><\/i>)?\s*([^<]+)<\/label>/g)]
            .map((m) => ({ prop: m[1] as string, label: (m[2] as string).trim() }))
            // the field's own label (the first), not the text beside a checkbox
            .filter((l, i, all) => l.prop !== 'name' && all.findIndex((x) => x.prop === l.prop) === i && (lang !== 'en-US' || /^[A-Z]/.test(l.label)));
          assert.ok(labels.length >= 2, `${type} has fields`);
          const entries = [...help.matchAll(/<dt[^>]*>([\s\S]*?)<\/dt>\s*<dd>([\s\S]*?)<\/dd>/g)].map((m) => ({
            names: text((m[1] as string).replace(/<span class="property-type">[\s\S]*?<\/span>/, '')).split(/[,，、]\s*/),
            dd: m[2] as string,
          }));
          for (const l of labels) {
            const e = entries.find((x) => x.names.includes(l.label));
            assert.ok(e, `help explains the field "${l.label}" (${l.prop})`);
            assert.ok(/<code>/.test(e.dd) || L.example.test(e.dd) || /<i>/.test(e.dd), `the help of "${l.label}" shows an example or its values`);
          }
        });

        it('palette and port labels, and defaults its own validators accept', () => {
          if (!isConfig) {
            assert.equal(def.category, 'blockchain of things');
            const label = (v: unknown): unknown => (typeof v === 'function' ? (v as (this: unknown, i: number) => unknown).call({}, 0) : v);
            assert.equal(typeof label(def.paletteLabel), 'string');
            assert.ok(label(def.inputLabels), 'input label');
            assert.ok(label(def.outputLabels), 'output labels');
            for (const v of [def.paletteLabel, def.inputLabels, def.outputLabels]) assert.doesNotMatch(String(label(v)), /@blockchain-of-things/, 'translated');
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

describe('editor dialogs: validators in every language (the same verdicts, reasons in the language)', () => {
  const B = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
  type Case = [type: string, prop: string, value: unknown, node?: Record<string, unknown>];
  /** Values each dialog refuses (one or more per validator), with the settings the rule depends on. */
  const BAD: Case[] = [
    ['bot-identity', 'keyFile', 'a\nb'],
    ['bot-identity', 'secretKey', 'not a key'],
    ['bot-ledger', 'origin', 'a b'],
    ['bot-ledger', 'checkpointMs', '-1'],
    ['bot-ledger', 'checkpointEntries', 'x'],
    ['bot-ledger', 'maxEntryBytes', '10'],
    ['bot-ledger', 'broker', 'http://b'],
    ['bot-ledger', 'broker', 'mqtt://u:secret@b'],
    ['bot-ledger', 'quorum', 'two'],
    ['bot-ledger', 'quorum', '3', { witnesses: `${B} example.com/b` }],
    ['bot-ledger', 'witnessed', 'example.com/b'],
    ['bot-ledger', 'witnessed', `bad+origin ${B}`],
    ['bot-ledger', 'witnessed', `example.com/b ${B}\nexample.com/b ${B}`],
    ['bot-ledger', 'mirrored', 'example.com/b did:key:zBad0'],
    ['bot-ledger', 'witnesses', B],
    ['bot-ledger', 'witnesses', `${B} a b`],
    ['bot-ledger', 'witnesses', `${B} example.com/b\n${B} example.com/c`],
    ['bot-ledger', 'witnesses', 'did:key:z6MkBAD example.com/b'],
    ['bot-ledger', 'rateSigner', '-1'],
    ['bot-ledger', 'rateTotal', 'x'],
    ['bot-ledger', 'confidential', 'plant'],
    ['bot-ledger', 'confidential', 'bad!id plant/#'],
    ['bot-ledger', 'confidential', 'plant a/#/b'],
    ['bot-ledger', 'confidential', 'plant a/# a/#'],
    ['bot-ledger', 'confidential', 'p a/#\np b/#'],
    ['bot-ledger', 'mirrorName', 'a/b'],
    ['bot-sign', 'kind', 'Reading', { kindType: 'str' }],
    ['bot-sign', 'topic', 'a/#', { topicType: 'str' }],
    ['bot-verify', 'trusted', 'did:key:z6MkBAD'],
    ['bot-verify', 'maxSkewMs', '-1'],
    ['bot-consensus', 'mode', 'later'],
    ['bot-consensus', 'index', '-1', { indexType: 'num' }],
    ['bot-consensus', 'timeoutMs', '0', { timeoutType: 'num' }],
    ['bot-append', 'ledger', '', { mode: 'local' }],
    ['bot-append', 'partner', '', { mode: 'partner' }],
    ['bot-query', 'ledger', '', { mode: 'local' }],
    ['bot-query', 'partner', '', { mode: 'partner' }],
    ['bot-query', 'from', 'x'],
    ['bot-query', 'to', 'x'],
    ['bot-query', 'signer', 'x'],
    ['bot-query', 'topic', 'a/#/b'],
    ['bot-query', 'since', 'soon'],
    ['bot-query', 'limit', '0'],
    ['bot-grant', 'subject', 'x'],
    ['bot-grant', 'actions', 'delete'],
    ['bot-grant', 'signers', 'x'],
    ['bot-grant', 'topics', 'a/#/b'],
    ['bot-grant', 'validDays', '0'],
    ['bot-partner', 'origin', 'a b'],
    ['bot-partner', 'operator', 'x'],
    ['bot-partner', 'grant', 'a b'],
    ['bot-partner', 'ledger', '', { via: 'mqtt' }],
    ['bot-partner', 'url', 'ftp://x', { via: 'http' }],
    ['bot-partner', 'witnesses', B],
    ['bot-partner', 'quorum', 'x'],
    ['bot-partner', 'timeoutMs', '5'],
    ['bot-partner', 'readFrom', 'somewhere'],
    ['bot-partner', 'readFrom', 'owner\nowner'],
  ];
  const CJK = /[\u3040-\u30ff\u3400-\u9fff]/;
  for (const lang of Object.keys(LANGS)) {
    it(`${lang}: each of ${BAD.length} bad values is refused with a reason in ${lang}, no untranslated key`, () => {
      for (const [type, prop, value, node] of BAD) {
        const def = editorDefinitions(type, lang)[type]!;
        const reason = editorVerdict(def, prop, value, { ...node, [prop]: value });
        const what = `${lang} ${type}.${prop} = ${JSON.stringify(value)}`;
        assert.equal(typeof reason, 'string', `${what}: refused`);
        assert.ok((reason as string).length > 8, `${what}: a reason, not just "invalid": ${reason}`);
        assert.doesNotMatch(reason as string, /@blockchain-of-things|__\w+__/, `${what}: every key and value resolved: ${reason}`);
        if (lang === 'en-US') assert.doesNotMatch(reason as string, CJK, `${what}: ${reason}`);
        else assert.match(reason as string, CJK, `${what}: in ${lang}: ${reason}`);
      }
    });
  }
});
