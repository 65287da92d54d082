/**
 * The editor side of a node, outside the browser: the node definitions a node's .html
 * registers (RED.nodes.registerType), evaluated with a minimal RED and jQuery stand-in, so
 * tests can call its validators and compare their verdicts with the runtime's.
 * (test/browser/dialogs.test.ts checks the same dialogs in a real editor.)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';

/** One property of a node definition's `defaults` (or `credentials`). */
export interface EditorProperty {
  value?: unknown;
  type?: string;
  required?: boolean;
  label?: string;
  validate?: (this: Record<string, unknown>, v: unknown, opt?: Record<string, unknown>) => boolean | string;
}

/** What a node's .html passes to RED.nodes.registerType. */
export interface EditorDefinition {
  category: string;
  defaults: Record<string, EditorProperty>;
  credentials?: Record<string, EditorProperty>;
  inputs?: number;
  outputs?: number;
  paletteLabel?: string;
  label?: (this: Record<string, unknown>) => string;
  inputLabels?: string | string[] | ((i: number) => string);
  outputLabels?: string | string[] | ((this: Record<string, unknown>, i: number) => string);
  [key: string]: unknown;
}

/** The node .html files, from the sources (the build copies them unchanged into dist/nodes). */
const NODES_DIR = path.resolve(__dirname, '../../../nodes');
/** The package's editor resources (served by Node-RED at resources/<module>/). */
const RESOURCES_DIR = path.resolve(__dirname, '../../../resources');

/** The package's message catalogs (nodes/locales/<lang>/<node>.json), as Node-RED serves them to the editor. */
const LOCALES_DIR = path.join(NODES_DIR, 'locales');

/** One catalog: nodes/locales/<lang>/<file>.json, parsed ({} when the file is missing). */
export function catalog(lang: string, file: string): Record<string, unknown> {
  const p = path.join(LOCALES_DIR, lang, `${file}.json`);
  let c = catalogs.get(p);
  if (!c) catalogs.set(p, (c = fs.existsSync(p) ? (JSON.parse(fs.readFileSync(p, 'utf8')) as Record<string, unknown>) : {}));
  return c;
}
const catalogs = new Map<string, Record<string, unknown>>();

/**
 * The editor's RED._ for this package's keys ("@blockchain-of-things/node-red/<file>:<key>" or
 * "node-red:<key>"), as Node-RED's i18next does it: the language's text, else en-US's, else the
 * key; `__name__` replaced by opts.name.
 */
export function translator(lang: string): (key: string, opts?: Record<string, unknown>) => string {
  return (key, opts) => {
    const m = /^@blockchain-of-things\/node-red\/([\w-]+):(.+)$/.exec(key);
    if (!m) return key;
    const find = (l: string): unknown =>
      (m[2] as string)
        .split('.')
        .reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), catalog(l, m[1] as string));
    const text = find(lang) ?? find('en-US');
    if (typeof text !== 'string') return key;
    return text.replace(/__(.+?)__/g, (all, name: string) => (opts && name in opts ? String(opts[name]) : all));
  };
}

/** The definitions registered by nodes/<file>.html, by node type, with the editor texts of `lang` (en-US by default). */
export function editorDefinitions(file: string, lang = 'en-US'): Record<string, EditorDefinition> {
  const html = fs.readFileSync(path.join(NODES_DIR, `${file}.html`), 'utf8');
  // Inline scripts, and the package's shared editor scripts the .html loads from resources/ (in order).
  const scripts = [
    ...html.matchAll(/<script type="text\/javascript"(?: src="resources\/@blockchain-of-things\/node-red\/([\w.-]+)")?>([\s\S]*?)<\/script>/g),
  ].map((m) => (m[1] ? fs.readFileSync(path.join(RESOURCES_DIR, m[1]), 'utf8') : (m[2] as string)));
  const defs: Record<string, EditorDefinition> = {};
  // A jQuery stand-in matching nothing: validators fall back to the node's own settings.
  const $ = (): unknown => ({ length: 0, val: () => undefined });
  const RED = {
    nodes: {
      registerType: (type: string, def: EditorDefinition) => {
        defs[type] = def;
      },
    },
    validators: {
      // Node-RED's own typedInput validator is exercised in the browser test; here it accepts.
      typedInput: () => (_v: unknown, _opt?: unknown) => true,
      number: () => (_v: unknown, _opt?: unknown) => true,
      regex: (re: RegExp) => (v: string) => re.test(v),
    },
    _: translator(lang),
  };
  const ctx = vm.createContext({ RED, $, jQuery: $, window: {}, console });
  for (const s of scripts) vm.runInContext(s, ctx, { filename: `${file}.html` });
  return defs;
}

/**
 * The editor's verdict on one value of a property: true, or the reason it shows (a string).
 * `node` holds the node's other settings (for rules that depend on them).
 */
export function editorVerdict(def: EditorDefinition, prop: string, value: unknown, node: Record<string, unknown> = {}): true | string {
  const p = def.defaults[prop] ?? def.credentials?.[prop];
  if (!p) throw new Error(`no property ${prop}`);
  if (p.required && (value === '' || value === undefined)) return 'required';
  if (!p.validate) return true;
  const r = p.validate.call({ ...node }, value, {});
  if (r === true) return true;
  if (typeof r === 'string') return r;
  return 'invalid (no reason given)';
}
