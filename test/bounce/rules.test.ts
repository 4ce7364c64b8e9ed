import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BounceRuleError, classifyReply, loadBounceRules, parseBounceRules } from '../../lib/bounce/classify.js';

function problemsOf(text: string, fileName?: string): string[] {
  try {
    parseBounceRules(text, fileName);
  } catch (err) {
    assert.ok(err instanceof BounceRuleError, String(err));
    return err.problems;
  }
  assert.fail('the rules were accepted');
}

test('a rule line: category, action, /regex/flags and an optional message; comments document it', () => {
  const rules = parseBounceRules(
    [
      '# header of the file',
      '',
      '# Postgrey:',
      '# > 450 4.2.0 <x@y.test>: Recipient address rejected: Greylisted',
      '# > 550-5.1.1 first line',
      '# > 550 5.1.1 second line',
      'greylist   defer   /greylisted/i   Greylisted, will try again',
      'auto auto /a\\/b|[/]c/',
      '',
      'unknown-user bounce /user unknown/ ',
    ].join('\r\n'),
    'my-rules.txt',
  );
  assert.equal(rules.length, 3);
  const [a, b, c] = rules as [(typeof rules)[0], (typeof rules)[0], (typeof rules)[0]];
  assert.equal(a.id, 'my-rules.txt:7');
  assert.equal(a.category, 'greylist');
  assert.equal(a.action, 'defer');
  assert.equal(a.pattern.flags, 'i');
  assert.equal(a.message, 'Greylisted, will try again');
  assert.equal(a.comment, 'Postgrey:');
  assert.deepEqual(a.examples, ['450 4.2.0 <x@y.test>: Recipient address rejected: Greylisted', '550-5.1.1 first line\n550 5.1.1 second line']);
  // a comment block belongs to the rule right below it only
  assert.deepEqual(b.examples, []);
  assert.equal(b.message, undefined);
  assert.ok(b.pattern.test('x a/b y') && b.pattern.test('/c'));
  assert.equal(c.id, 'my-rules.txt:10');
  assert.equal(c.comment, '');
});

test('each bad line is named as file:line, all of them at once', () => {
  const problems = problemsOf(
    [
      'greylist defer /ok/i',
      'greylisting defer /x/', // 2
      'greylist maybe /x/', // 3
      'greylist defer x', // 4
      'greylist defer /unterminated', // 5
      'greylist defer /(open/', // 6
      'greylist defer /x/g', // 7
      'greylist defer //', // 8
      'greylist defer /x/i,message', // 9
      'greylist', // 10
      'greylist defer /x/iz', // 11
    ].join('\n'),
    'ops.txt',
  );
  assert.equal(problems.length, 10, problems.join('\n'));
  const expect: [number, RegExp][] = [
    [2, /unknown category "greylisting" \(one of: greylist, blocklist, .*, auto\)/],
    [3, /unknown action "maybe"/],
    [4, /expected a \/regex\//],
    [5, /no closing "\/"/],
    [6, /bad regex: .*/],
    [7, /flags "g": only i, m, s and u/],
    [8, /empty \/regex\//],
    [9, /unexpected ","/],
    [10, /expected: CATEGORY ACTION \/REGEX\/FLAGS/],
    [11, /flags "iz"/],
  ];
  expect.forEach(([line, re], i) => {
    assert.ok(problems[i]!.startsWith(`ops.txt:${line}: `), problems[i]);
    assert.match(problems[i]!, re);
  });
  assert.match(new BounceRuleError(problems).message, /ops\.txt:2: unknown category/);
});

test('loadBounceRules reads a file an operator wrote, and names a file it cannot read', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-rules-'));
  try {
    const file = path.join(dir, 'rules.txt');
    writeFileSync(file, '# > 550 5.7.1 we do not like you\npolicy bounce /do not like you/i Disliked\n');
    const rules = loadBounceRules(file);
    assert.equal(rules.length, 1);
    assert.equal(rules[0]!.id, `${file}:2`);
    const r = classifyReply({ response: '550 5.7.1 We do not like you' }, rules);
    assert.deepEqual([r.action, r.category, r.message, r.rule], ['bounce', 'policy', 'Disliked', `${file}:2`]);
    // an empty list of rules is allowed: the reply code decides
    assert.equal(classifyReply({ response: '451 4.7.1 Greylisting in action' }, []).category, 'policy');
    assert.throws(() => loadBounceRules(path.join(dir, 'missing.txt')), (err: unknown) => err instanceof BounceRuleError && /missing\.txt: cannot read/.test(err.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the shipped rules file parses, and rules are stateless (no g or y flag) so a second match works', () => {
  const rules = loadBounceRules();
  for (const r of rules) assert.doesNotMatch(r.pattern.flags, /[gy]/, r.id);
  const reply = { response: '450 4.2.0 <x@y.test>: Recipient address rejected: Greylisted' };
  assert.equal(classifyReply(reply, rules).rule, classifyReply(reply, rules).rule);
});
