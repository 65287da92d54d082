/** c2sp.org/tlog-policy import and export of the witness set and quorum. */
import { strict as assert } from 'node:assert';
import { Identity, NoteVerifier } from '../../lib';
import { exportPolicy, formatPolicy, importPolicy, parsePolicy, policySatisfied } from '../../lib/format/tlog-policy';
import { QuorumPolicy } from '../../lib/consortium/quorum';

const ORIGIN = 'example.com/plant-1';
const op = Identity.generate();
const ids = Array.from({ length: 6 }, () => Identity.generate());
const names = ['partner-b.example/w', 'partner-c.example/w', 'partner-d.example/w', 'y1.example', 'y2.example', 'y3.example'];
const wv = ids.map((id, i) => NoteVerifier.cosigner(names[i], id.publicKey));
const logVkey = NoteVerifier.ed25519(ORIGIN, op.publicKey).toString();

function flat(quorum: number | undefined, n: number): QuorumPolicy {
  return QuorumPolicy.create({ origin: ORIGIN, operator: op.did, witnesses: wv.slice(0, n).map((v) => ({ key: v })), quorum });
}

describe('policy (c2sp.org/tlog-policy)', () => {
  it('round-trips the flat witness set and quorum', () => {
    const q = flat(undefined, 3); // 3 of 4 (the operator and three witnesses)
    const text = exportPolicy(q);
    assert.equal(
      text,
      [`log ${logVkey}`, ...wv.slice(0, 3).map((v) => `witness ${v.name} ${v}`), `group partners 2 ${names.slice(0, 3).join(' ')}`, 'quorum partners', ''].join(
        '\n',
      ),
    );
    const back = importPolicy(text);
    assert.deepEqual(back.toJSON(), q.toJSON());
    assert.equal(exportPolicy(back), text);
    // The same policy judged by the general evaluator: the group needs 2 of the 3 witnesses.
    const p = parsePolicy(text);
    assert.equal(policySatisfied(p, [names[0]]), false);
    assert.equal(policySatisfied(p, [names[0], names[2]]), true);
  });

  it('exports quorum 1 as "quorum none", keeping the witnesses, and 1 of 1 without witnesses', () => {
    const some = flat(1, 2);
    const text = exportPolicy(some);
    assert.match(text, /\nquorum none\n$/);
    assert.doesNotMatch(text, /group/);
    assert.deepEqual(importPolicy(text).toJSON(), some.toJSON());
    const alone = flat(undefined, 0);
    assert.equal(exportPolicy(alone), `log ${logVkey}\nquorum none\n`);
    assert.equal(importPolicy(exportPolicy(alone)).quorum, 1);
    const all = flat(3, 2);
    assert.match(exportPolicy(all), /group partners 2 /);
    assert.equal(importPolicy(exportPolicy(all)).quorum, 3);
  });

  it('reads comments, blank lines, tabs, URLs, all/any, a single-witness quorum and no final newline', () => {
    const text = [
      '# consortium of plant 1',
      '',
      `   log\t${logVkey}   https://plant-1.example/log  `,
      `witness b ${wv[0]} https://b.example/witness`,
      `\twitness c ${wv[1]}`,
      '  # both of them',
      'group both all b c',
      'quorum both',
    ].join('\n');
    const q = importPolicy(text, ORIGIN);
    assert.equal(q.quorum, 3);
    assert.deepEqual(
      q.witnesses.map((w) => w.name),
      [names[0], names[1]],
    ); // cosigner key names
    assert.equal(q.witnesses[0].url, 'https://b.example/witness');
    assert.equal(importPolicy(text.replace('group both all b c', 'group both any b c')).quorum, 2);
    const single = importPolicy(`log ${logVkey}\nwitness b ${wv[0]}\nquorum b\n`);
    assert.equal(single.quorum, 2);
    assert.equal(single.total, 2);
  });

  it('parses and evaluates nested groups, but imports only flat policies', () => {
    const text =
      [
        `log ${logVkey}`,
        ...wv.map((v, i) => `witness ${['X1', 'X2', 'X3', 'Y1', 'Y2', 'Y3'][i]} ${v}`),
        'group X-witnesses 2 X1 X2 X3',
        'group Y-witnesses any Y1 Y2 Y3',
        'group X-and-Y all X-witnesses Y-witnesses',
        'quorum X-and-Y',
      ].join('\n') + '\n';
    const p = parsePolicy(text);
    assert.equal(p.groups.length, 3);
    assert.equal(policySatisfied(p, ['X1', 'X3', 'Y2']), true);
    assert.equal(policySatisfied(p, ['X1', 'Y1', 'Y2', 'Y3']), false);
    assert.equal(policySatisfied(p, ['X1', 'X2']), false);
    assert.equal(parsePolicy(formatPolicy(p)).groups[2].threshold, 'all');
    assert.throws(() => importPolicy(text), { code: 'E_NOTE', message: /nested groups/ });
    assert.throws(() => importPolicy(`log ${logVkey}\nwitness b ${wv[0]}\nwitness c ${wv[1]}\ngroup g 1 b\nquorum g\n`), /witness c is not in the quorum/);
    const two = `log ${logVkey}\nlog ${NoteVerifier.ed25519('example.com/plant-2', ids[5].publicKey)}\nquorum none\n`;
    assert.throws(() => importPolicy(two), /exactly one log line/);
    assert.equal(importPolicy(two, 'example.com/plant-2').origin, 'example.com/plant-2');
    assert.throws(() => importPolicy(two, 'example.com/plant-3'), /no log line/);
  });

  it('rejects malformed lines with the line number', () => {
    const head = `log ${logVkey}\nwitness b ${wv[0]}\nwitness c ${wv[1]}\n`;
    const cases: [string, RegExp][] = [
      [`${head}quorum`, /line 4: expected "quorum <name>"/],
      [`${head}quorum b c`, /line 4: expected "quorum <name>"/],
      [`${head}quorum d`, /line 4: quorum "d" is not defined/],
      [`${head}quorum b\nquorum c`, /line 5: a policy has exactly one quorum line/],
      [head, /no quorum line/],
      [`${head}witnes d ${wv[2]}\nquorum b`, /line 4: unknown keyword "witnes"/],
      [`log ${wv[0]}\nquorum none`, /line 1: log key must have signature type 0x01/],
      [`log ${logVkey}\nwitness b ${logVkey}\nquorum none`, /line 2: witness key must have signature type 0x04/],
      [`log ${logVkey}\nwitness b not+a+vkey\nquorum none`, /line 2: witness key is not a valid vkey/],
      [`log ${logVkey}\nlog ${logVkey}\nquorum none`, /line 2: duplicate log/],
      [`${head}witness d ${wv[0]}\nquorum none`, /line 4: duplicate witness/],
      [`${head}witness b ${wv[2]}\nquorum none`, /line 4: name "b" is already defined/],
      [`${head}witness none ${wv[2]}\nquorum none`, /line 4: "none" is predefined/],
      [`${head}witness d\nquorum none`, /line 4: expected "witness <name> <vkey> \[<url>\]"/],
      [`${head}witness d ${wv[2]} http://x extra\nquorum none`, /line 4: expected "witness/],
      [`${head}group g 2 b d\nquorum g`, /line 4: member "d" is not defined/],
      [`${head}group g 1 b b\nquorum g`, /line 4: member "b" is listed twice/],
      [`${head}group g 1 none\nquorum g`, /line 4: "none" cannot be a group member/],
      [`${head}group g 3 b c\nquorum g`, /line 4: threshold 3 is above the 2 member/],
      [`${head}group g 0 b c\nquorum g`, /line 4: threshold must be/],
      [`${head}group g 01 b c\nquorum g`, /line 4: threshold must be/],
      [`${head}group g most b c\nquorum g`, /line 4: threshold must be/],
      [`${head}group g all\nquorum g`, /line 4: expected "group/],
      [`${head}group b all c\nquorum b`, /line 4: name "b" is already defined/],
      [`${head}quorum g\ngroup g all b c`, /line 4: quorum "g" is not defined on an earlier line/],
      [`log ${logVkey}\r\nquorum none\r\n`, /line 1: carriage return/],
      [`log ${logVkey}\nquorum\u0001none\n`, /line 2: control character U\+0001/],
    ];
    for (const [text, re] of cases) {
      assert.throws(
        () => parsePolicy(text),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'E_NOTE', `${JSON.stringify(text.slice(-40))}: ${err.message}`);
          assert.match(err.message, re);
          return true;
        },
        `accepted: ${JSON.stringify(text.slice(-60))}`,
      );
    }
    assert.throws(() => parsePolicy('#'.repeat(70_000)), { code: 'E_TOO_LARGE' });
    // A witness sharing the operator's key parses (tlog-policy allows it) but is no flat witness set.
    const sameKey = `log ${logVkey}\nwitness b ${NoteVerifier.cosigner('b.example', op.publicKey)}\nquorum b\n`;
    assert.equal(parsePolicy(sameKey).witnesses.length, 1);
    assert.throws(() => importPolicy(sameKey), /operator key/);
  });
});
