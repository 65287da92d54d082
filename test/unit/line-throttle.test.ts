/** LineThrottle (lib/view/rate.ts): one log line per key per interval, counting what it held back. */
import { strict as assert } from 'node:assert';
import { LineThrottle } from '../../lib/view/rate';

describe('LineThrottle', () => {
  it('writes the first line of a key, holds back the rest for the interval, then says how many it held', () => {
    const t = new LineThrottle(1000);
    assert.equal(t.line('oversize', 'dropped', 0), 'dropped');
    assert.equal(t.line('oversize', 'dropped', 500), undefined);
    assert.equal(t.line('oversize', 'dropped', 900), undefined);
    assert.equal(t.line('topic', 'bad topic', 900), 'bad topic', 'keys are independent');
    assert.equal(t.line('oversize', 'dropped', 1000), 'dropped (and 2 more like it since the last such line)');
    assert.equal(t.line('oversize', 'dropped', 2500), 'dropped');
  });
});
