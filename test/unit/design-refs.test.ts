/**
 * Every design reference in the code points at a heading that exists in docs/design.md
 * (`docs/design.md "<heading>"`), and nothing cites the old, out-of-repository DESIGN.md.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '../../..');
const SOURCES = ['lib', 'nodes', 'plugins', 'bin', 'test', 'bench', 'scripts'];

function files(dir: string): string[] {
  const abs = path.join(root, dir);
  if (!fs.existsSync(abs)) return [];
  return fs
    .readdirSync(abs, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(ts|js|html)$/.test(e.name))
    .map((e) => path.join(e.parentPath ?? e.path, e.name));
}

describe('design references (docs/design.md)', () => {
  const headings = new Set(
    fs
      .readFileSync(path.join(root, 'docs/design.md'), 'utf8')
      .split('\n')
      .filter((l) => /^#{2,4} /.test(l))
      .map((l) => l.replace(/^#+ /, '').trim()),
  );
  const all = SOURCES.flatMap(files).filter((f) => !f.includes('design-refs.test'));

  it('every `docs/design.md "<heading>"` in the code names a heading of docs/design.md', () => {
    const missing: string[] = [];
    let cited = 0;
    for (const f of all) {
      const text = fs.readFileSync(f, 'utf8');
      for (const m of text.matchAll(/docs\/design\.md "([^"]+)"/g)) {
        cited++;
        // Exact, on one line: a citation wrapped across comment lines is not found by grep either.
        if (!headings.has(m[1])) missing.push(`${path.relative(root, f)}: "${m[1]}"`);
      }
    }
    assert.deepEqual(missing, []);
    assert.ok(cited >= 20, `only ${cited} design references found`);
  });

  it('nothing cites the DESIGN.md that is not in this repository', () => {
    const stale = all.filter((f) => /(^|[^/])DESIGN\.md/.test(fs.readFileSync(f, 'utf8'))).map((f) => path.relative(root, f));
    assert.deepEqual(stale, []);
  });
});
