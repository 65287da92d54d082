/** Shared test helpers: temp dirs and vector files kept beside the tests (test/vectors/). */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Parse a JSON vector file from test/vectors (tests run from dist/test/). */
export function vector<T>(name: string): T {
  return JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../test/vectors', name), 'utf8')) as T;
}

/** A fresh temporary directory, removed by the returned cleanup. */
export function tmpDir(prefix = 'bot-test-'): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
