/**
 * The shipped example flows (examples/), read by the tests that deploy them. The files are
 * named as the README titles them, because Node-RED's Import › Examples menu shows file names.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FlowNode } from './util';

/** The examples folder of the package (tests run from dist/test/nodes/). */
export const EXAMPLES_DIR = path.resolve(__dirname, '../../../examples');

/** The flow of the example titled `title` (its file name without .json). */
export function readExample(title: string): FlowNode[] {
  return JSON.parse(fs.readFileSync(path.join(EXAMPLES_DIR, `${title}.json`), 'utf8')) as FlowNode[];
}
