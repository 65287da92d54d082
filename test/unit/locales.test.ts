/**
 * The message catalogs (Node-RED's i18n: nodes/locales/<lang>/<node>.json and .html, plugins/locales/<lang>/<plugin>.json):
 * every key the editor code (nodes/*.html, resources/bot-editor.js, plugins/*.html) and the runtime (nodes/*.ts) uses
 * exists in every language; every language has exactly en-US's keys, with the same `__placeholders__`, and a help file
 * for every node; no catalog keeps a key nobody uses. Reads the sources, no runtime.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tr, useI18n } from '../../nodes/i18n';

const root = path.resolve(__dirname, '../../..');
const NODES = path.join(root, 'nodes');
const PLUGINS = path.join(root, 'plugins');
/** Every node type of the package (package.json node-red.nodes; each one's editor file is nodes/<type>.html). */
const TYPES = Object.keys(
  (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { 'node-red': { nodes: Record<string, string> } })['node-red'].nodes,
);

/** The languages shipped under a locales/ folder (en-US first). */
function langs(dir: string): string[] {
  const all = fs.existsSync(dir) ? fs.readdirSync(dir).filter((d) => fs.statSync(path.join(dir, d)).isDirectory()) : [];
  return ['en-US', ...all.filter((l) => l !== 'en-US').sort()];
}

/** A catalog flattened to "a.b.c" → text. */
function flat(file: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (o: unknown, prefix: string): void => {
    if (typeof o === 'string') out.set(prefix, o);
    else if (o && typeof o === 'object') for (const [k, v] of Object.entries(o)) walk(v, prefix ? `${prefix}.${k}` : k);
    else assert.fail(`${file}: ${prefix} is neither text nor a group`);
  };
  walk(JSON.parse(fs.readFileSync(file, 'utf8')), '');
  return out;
}

const placeholders = (s: string): string[] => [...s.matchAll(/__(.+?)__/g)].map((m) => m[1] as string).sort();
const read = (f: string): string => fs.readFileSync(f, 'utf8');

/** Keys used, by catalog file (nodes/locales/<lang>/<file>.json or plugins/…), with where each is used. */
function usedKeys(): Map<string, Map<string, string>> {
  const used = new Map<string, Map<string, string>>();
  const use = (file: string, key: string, where: string): void => {
    if (!used.has(file)) used.set(file, new Map());
    used.get(file)!.set(key, where);
  };
  for (const type of TYPES) {
    const html = read(path.join(NODES, `${type}.html`));
    // t('key') is this node's text, E.t('key') a shared check's (the bot-editor part of bot-ledger.json).
    for (const m of html.matchAll(/(E\.)?\bt\('([\w.]+)'/g))
      use(m[1] ? 'nodes/bot-ledger' : `nodes/${type}`, m[1] ? `bot-editor.${m[2]}` : `${type}.${m[2]}`, `${type}.html`);
    for (const m of html.matchAll(/data-i18n="(?:\[\w+\])?([^"]+)"/g)) {
      const key = m[1] as string;
      if (key.startsWith('node-red:')) continue; // Node-RED's own catalog (common.label.name)
      assert.ok(key.startsWith(`${type}.`), `${type}.html: data-i18n "${key}" is in this node's part of its catalog`);
      use(`nodes/${type}`, key, `${type}.html`);
    }
    for (const f of fs.readdirSync(NODES).filter((n) => n.endsWith('.ts'))) {
      // the runtime's texts: tr('<type>.<key>', …) (nodes/i18n.ts)
      for (const m of read(path.join(NODES, f)).matchAll(/\btr\(\s*'([\w-]+)\.([\w.]+)'/g)) use(`nodes/${m[1]}`, `${m[1]}.${m[2]}`, f);
    }
  }
  for (const m of read(path.join(root, 'resources/bot-editor.js')).matchAll(/\bt\('([\w.]+)'/g))
    use('nodes/bot-ledger', `bot-editor.${m[1]}`, 'resources/bot-editor.js');
  const sidebar = path.join(PLUGINS, 'bot-sidebar.html');
  for (const m of read(sidebar).matchAll(/\bt\('([\w.]+)'/g)) use('plugins/bot-sidebar', `bot-sidebar.${m[1]}`, 'plugins/bot-sidebar.html');
  return used;
}

describe('message catalogs (nodes/locales, plugins/locales)', () => {
  const nodeLangs = langs(path.join(NODES, 'locales'));
  const used = usedKeys();

  it('ships en-US and zh-CN', () => {
    assert.ok(nodeLangs.includes('en-US') && nodeLangs.includes('zh-CN'), nodeLangs.join(', '));
  });

  for (const lang of nodeLangs) {
    it(`${lang}: a catalog and a help file for every node, exactly en-US's keys with the same __placeholders__`, () => {
      for (const type of TYPES) {
        const json = path.join(NODES, 'locales', lang, `${type}.json`);
        const help = path.join(NODES, 'locales', lang, `${type}.html`);
        assert.ok(fs.existsSync(json), `${lang}/${type}.json`);
        assert.ok(fs.existsSync(help), `${lang}/${type}.html`);
        assert.match(
          read(help),
          new RegExp(`^<script type="text/html" data-help-name="${type}">[\\s\\S]+</script>\\s*$`),
          `${lang}/${type}.html is one help section`,
        );
        const mine = flat(json);
        const en = flat(path.join(NODES, 'locales', 'en-US', `${type}.json`));
        assert.deepEqual([...mine.keys()].sort(), [...en.keys()].sort(), `${lang}/${type}.json has en-US's keys`);
        for (const [k, v] of en) {
          assert.deepEqual(placeholders(mine.get(k)!), placeholders(v), `${lang}/${type}.json ${k}: the same placeholders`);
          assert.ok(mine.get(k)!.trim() !== '', `${lang}/${type}.json ${k}: not empty`);
        }
      }
      const files = fs.readdirSync(path.join(NODES, 'locales', lang)).sort();
      assert.deepEqual(files, TYPES.flatMap((t) => [`${t}.html`, `${t}.json`]).sort(), `${lang}: no other files`);
    });
  }

  it('every key the editor and the runtime use exists in every language', () => {
    const missing: string[] = [];
    for (const [file, keys] of used) {
      const [dir, name] = file.split('/') as [string, string];
      for (const lang of langs(path.join(root, dir, 'locales'))) {
        const cat = path.join(root, dir, 'locales', lang, `${name}.json`);
        const have = fs.existsSync(cat) ? flat(cat) : new Map<string, string>();
        for (const [k, where] of keys) if (!have.has(k)) missing.push(`${dir}/locales/${lang}/${name}.json: ${k} (used in ${where})`);
      }
    }
    assert.deepEqual(missing, []);
    assert.ok((used.get('nodes/bot-ledger')?.size ?? 0) > 50, 'the keys were found');
  });

  it('every key of the en-US catalogs is used somewhere (no stale texts)', () => {
    const stale: string[] = [];
    for (const dir of ['nodes', 'plugins']) {
      const en = path.join(root, dir, 'locales', 'en-US');
      if (!fs.existsSync(en)) continue;
      for (const f of fs.readdirSync(en).filter((n) => n.endsWith('.json'))) {
        const keys = used.get(`${dir}/${f.replace(/\.json$/, '')}`) ?? new Map<string, string>();
        for (const k of flat(path.join(en, f)).keys()) if (!keys.has(k)) stale.push(`${dir}/locales/en-US/${f}: ${k}`);
      }
    }
    assert.deepEqual(stale, []);
  });

  it("plugins: every language has exactly en-US's keys", () => {
    const dir = path.join(PLUGINS, 'locales');
    if (!fs.existsSync(dir)) return;
    for (const lang of langs(dir)) {
      for (const f of fs.readdirSync(path.join(dir, 'en-US'))) {
        const mine = flat(path.join(dir, lang, f));
        const en = flat(path.join(dir, 'en-US', f));
        assert.deepEqual([...mine.keys()].sort(), [...en.keys()].sort(), `plugins ${lang}/${f}`);
        for (const [k, v] of en) assert.deepEqual(placeholders(mine.get(k)!), placeholders(v), `plugins ${lang}/${f} ${k}`);
      }
    }
  });

  it("no node status is a literal text: each comes from tr() (or is an error's own message)", () => {
    const literal: string[] = [];
    for (const f of fs.readdirSync(NODES).filter((n) => n.endsWith('.ts'))) {
      read(path.join(NODES, f))
        .split('\n')
        .forEach((line, i) => {
          if (/\btext:\s*[`'"]/.test(line)) literal.push(`nodes/${f}:${i + 1}: ${line.trim()}`);
        });
    }
    assert.deepEqual(literal, []);
  });

  describe('the runtime texts (nodes/i18n.ts tr)', () => {
    const KEY = 'bot-consensus.errors.timeout';
    const want = 'The timeout must be a whole number of milliseconds from 1 to 86400000 (24 h), e.g. 30000';
    after(() => useI18n({}));
    it('falls back to the en-US text, placeholders filled, without Node-RED', () => {
      useI18n({});
      assert.equal(tr(KEY, { max: 86400000 }), want);
      assert.equal(tr('bot-consensus.no.such.key'), 'bot-consensus.no.such.key');
    });
    it("takes Node-RED's text in the runtime's language, in the key's node set namespace", () => {
      const asked: string[] = [];
      useI18n({ _: (k: string, v?: Record<string, unknown>) => (asked.push(k), `超时 ${String(v?.max)}`) });
      assert.equal(tr(KEY, { max: 5 }), '超时 5');
      assert.deepEqual(asked, [`@blockchain-of-things/node-red/bot-consensus:${KEY}`]);
    });
    it('falls back to en-US when Node-RED has no text (it answers the key, as i18next and the test helper do)', () => {
      useI18n({ _: (k: string) => k });
      assert.equal(tr(KEY, { max: 86400000 }), want);
      useI18n({ _: (k: string) => k.split(':')[1] as string });
      assert.equal(tr(KEY, { max: 86400000 }), want);
    });
  });
});
