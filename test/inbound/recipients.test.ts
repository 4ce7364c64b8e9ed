/**
 * Which addresses have an inbox (lib/inbound/recipients.ts): exact domains without case, "*."
 * for subdomains, everything else refused as relaying; routed local parts refused; plus tags
 * folded or kept; the API's lookup of an address it is given.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SmtpError } from '../../lib/errors/smtp-error.js';
import { RecipientPolicy } from '../../lib/inbound/recipients.js';

const fold = new RecipientPolicy(['inbox.test', '*.wild.test'], 'fold');
const keep = new RecipientPolicy(['inbox.test'], 'keep');

function refusal(policy: RecipientPolicy, address: string): string {
  try {
    policy.target(address);
  } catch (err) {
    assert.ok(err instanceof SmtpError);
    return `${err.responseCode} ${err.enhancedStatus}`;
  }
  return 'accepted';
}

test('any local part at a configured domain has an inbox, named by the whole address in lower case', () => {
  assert.deepEqual(fold.target('John.Doe@Inbox.TEST'), { inbox: 'john.doe@inbox.test', tag: '', original: 'John.Doe@Inbox.TEST' });
  assert.equal(fold.target('x@a.wild.test').inbox, 'x@a.wild.test');
  assert.equal(fold.target('x@deep.a.wild.test').inbox, 'x@deep.a.wild.test');
});

test('other domains are relaying: 550 5.7.1, whatever the spelling', () => {
  for (const address of [
    'u@evil.test',
    'u@sub.inbox.test', // a subdomain of an exact entry is not ours
    'u@wild.test', // "*.wild.test" takes subdomains, not wild.test itself
    'u@INBOX.TEST.', // the trailing dot
    'u@inbox.test.evil.test',
    'u@[127.0.0.1]',
    'u@xn--nbox-qqa.test', // a look-alike
    'u@inbox.tést',
  ]) {
    assert.equal(refusal(fold, address), '550 5.7.1', address);
  }
});

test('local parts that name another route are refused at our domains too, never stored', () => {
  for (const address of ['u%evil.test@inbox.test', 'evil.test!u@inbox.test', '"u@evil.test"@inbox.test']) {
    assert.equal(refusal(fold, address), '550 5.7.1', address);
  }
});

test('a malformed address at our domain is 553 5.1.3', () => {
  assert.equal(refusal(fold, `${'a'.repeat(65)}@inbox.test`), '553 5.1.3');
  assert.equal(refusal(fold, 'a b@inbox.test'), '553 5.1.3');
  assert.equal(refusal(fold, '.a@inbox.test'), '553 5.1.3');
  assert.equal(refusal(fold, 'nodomain'), '553 5.1.3');
  assert.equal(refusal(fold, '@inbox.test'), '553 5.1.3');
});

test('plus addressing: fold keeps the tag on the base inbox, keep makes its own inbox', () => {
  assert.deepEqual(fold.target('Bob+Signup@inbox.test'), { inbox: 'bob@inbox.test', tag: 'signup', original: 'Bob+Signup@inbox.test' });
  assert.deepEqual(keep.target('bob+signup@inbox.test'), { inbox: 'bob+signup@inbox.test', tag: '', original: 'bob+signup@inbox.test' });
  // nothing before the "+": no base to fold into
  assert.equal(fold.target('+x@inbox.test').inbox, '+x@inbox.test');
});

test('the API looks up any address (an unknown domain is just an empty inbox) and refuses what is not one', () => {
  assert.deepEqual(fold.lookup('Bob+a@Inbox.test'), { inbox: 'bob@inbox.test', tag: 'a' });
  assert.deepEqual(fold.lookup('someone@elsewhere.test'), { inbox: 'someone@elsewhere.test', tag: '' });
  for (const bad of ['../../etc/passwd', '..%2f', 'no-at-sign', `${'a'.repeat(400)}@inbox.test`, 'a@[1.2.3.4', '']) {
    assert.equal(fold.lookup(bad), undefined, bad);
  }
});
