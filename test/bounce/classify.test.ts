import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CATEGORY_INFO, REPLY_CATEGORIES, classifyReply, loadBounceRules, type ReplyInput } from '../../lib/bounce/classify.js';
import { readReply } from '../../lib/bounce/reply-text.js';

const rules = loadBounceRules();

/** [reply or error, action, category, status] — real-world wordings (IPs and hosts documentation ones). */
type Row = [ReplyInput | string, 'defer' | 'bounce', string, string];
const gmail = (code: string, lines: string[]) => lines.map((l, i) => `${code.slice(0, 3)}${i < lines.length - 1 ? '-' : ' '}${code.slice(4)} ${l}`).join('\n');

const TABLE: Row[] = [
  // unknown users
  [gmail('550 5.1.1', ['The email account that you tried to reach does not exist. Please try', "double-checking the recipient's email address for typos or", ' https://support.google.com/mail/?p=NoSuchUser a1b2 - gsmtp']), 'bounce', 'unknown-user', '5.1.1'],
  [gmail('550 5.2.1', ['The email account that you tried to reach is disabled.', ' https://support.google.com/mail/?p=DisabledUser a1b2 - gsmtp']), 'bounce', 'unknown-user', '5.2.1'],
  ['550 5.1.1 <x@dest.test>: Recipient address rejected: User unknown in virtual mailbox table', 'bounce', 'unknown-user', '5.1.1'],
  ['550 5.1.1 <x@dest.test>... User unknown', 'bounce', 'unknown-user', '5.1.1'],
  ['550 sorry, no mailbox here by that name. (#5.1.1)', 'bounce', 'unknown-user', '5.1.1'],
  ['550 No Such User Here', 'bounce', 'unknown-user', '5.1.1'],
  ['550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302). [AM4PR0101MB1234.eurprd01.prod.exchangelabs.com]', 'bounce', 'unknown-user', '5.5.0'],
  ['550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup', 'bounce', 'unknown-user', '5.1.10'],
  ['554 delivery error: dd This user doesn\'t have a yahoo.com account (x@yahoo.test) [0] - mta1234.mail.gq1.yahoo.com', 'bounce', 'unknown-user', '5.1.1'],
  ['550 5.1.1 <x@icloud.test>: user does not exist', 'bounce', 'unknown-user', '5.1.1'],
  // a 4xx "unknown user" stays a deferral: the receiver is not sure yet
  ['450 4.1.1 <x@dest.test>: Recipient address rejected: unverified address: connect to mx.dest.test[192.0.2.20]:25: Connection refused', 'defer', 'unknown-user', '4.1.1'],
  // mailbox full: 4xx defers, 5xx bounces
  [gmail('452 4.2.2', ["The recipient's inbox is out of storage space. Please direct the", 'recipient to', ' https://support.google.com/mail/?p=OverQuotaTemp a1b2 - gsmtp']), 'defer', 'mailbox-full', '4.2.2'],
  [gmail('552 5.2.2', ["The recipient's inbox is out of storage space and inactive.", ' https://support.google.com/mail/?p=OverQuotaPerm a1b2 - gsmtp']), 'bounce', 'mailbox-full', '5.2.2'],
  ['452 4.2.2 <x@dest.test>: Mailbox is full', 'defer', 'mailbox-full', '4.2.2'],
  ['552 5.2.2 <x@dest.test> Quota exceeded (mailbox for user is full)', 'bounce', 'mailbox-full', '5.2.2'],
  ['554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded; Failed to process message', 'bounce', 'mailbox-full', '5.2.2'],
  // blocklists: always defer (rotate the IP), status class follows the action
  ['554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.10', 'defer', 'blocklist', '4.7.1'],
  ['554 Service unavailable; Client host [192.0.2.10] blocked using Barracuda Reputation; http://www.barracudanetworks.com/reputation/?r=1&ip=192.0.2.10', 'defer', 'blocklist', '4.7.1'],
  ["550 5.7.1 Unfortunately, messages from [192.0.2.10] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150).", 'defer', 'blocklist', '4.7.1'],
  ['550 5.7.606 Access denied, banned sending IP [192.0.2.10]. To request removal from this list please visit https://sender.office.com/', 'defer', 'blocklist', '4.7.606'],
  ["553 5.7.1 [BL21] Connections will not be accepted from 192.0.2.10, because the ip is in Spamhaus's list; see http://postmaster.yahoo.com/errors/550-bl21.html", 'defer', 'blocklist', '4.7.1'],
  ['421 4.7.0 [TS03] All messages from 192.0.2.10 will be permanently deferred; Retrying will NOT succeed.', 'defer', 'blocklist', '4.7.0'],
  ['554 5.7.1 Blocked - see https://ipcheck.proofpoint.com/?ip=192.0.2.10', 'defer', 'blocklist', '4.7.1'],
  ['550 5.7.1 Mail from 192.0.2.10 refused - see http://www.spamcop.net/bl.shtml?192.0.2.10', 'defer', 'blocklist', '4.7.1'],
  ['554-gmx.net (mxgmx017) Nemesis ESMTP Service not available\n554-No SMTP service\n554-IP address is black listed.\n554 For explanation visit https://www.gmx.net/mail/senderguidelines?ip=192.0.2.10&c=bl', 'defer', 'blocklist', '4.7.1'],
  [gmail('421 4.7.0', ['[192.0.2.10      15] Our system has detected that this message is', 'suspicious due to the very low reputation of the sending IP address.', 'been temporarily rate limited.']), 'defer', 'blocklist', '4.7.0'],
  // a sender domain on a domain blocklist is about the message: bounce
  ['554 5.7.1 Service unavailable; Sender address [news@shop.test] blocked using dbl.spamhaus.org; https://www.spamhaus.org/query/domain/shop.test', 'bounce', 'spam', '5.7.1'],
  // greylisting
  ['450 4.2.0 <x@dest.test>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/dest.test.html', 'defer', 'greylist', '4.2.0'],
  ['451 4.7.1 Greylisting in action, please come back later', 'defer', 'greylist', '4.7.1'],
  ['451 Internal resource temporarily unavailable - https://community.mimecast.com/docs/DOC-1369#451', 'defer', 'greylist', '4.7.1'],
  // rate limits
  [gmail('421 4.7.28', ['[192.0.2.10      15] Our system has detected an unusual rate of', 'unsolicited mail originating from your IP address.', ' https://support.google.com/mail/?p=UnsolicitedRateLimitError a1b2 - gsmtp']), 'defer', 'rate-limit', '4.7.28'],
  ['451 4.7.500 Server busy. Please try again later from [192.0.2.10]. (S77719) [SN1NAM02FT047.eop-nam02.prod.protection.outlook.com]', 'defer', 'rate-limit', '4.7.500'],
  ['421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes', 'defer', 'rate-limit', '4.7.0'],
  ['421 4.7.0 mx.dest.test Error: too many connections from 192.0.2.10', 'defer', 'rate-limit', '4.7.0'],
  ['550 5.7.1 Message rejected: too many messages in a short time, try again later', 'defer', 'rate-limit', '4.7.1'],
  // spam and content
  [gmail('550 5.7.1', ['[192.0.2.10      12] Our system has detected that this message is', 'likely unsolicited mail. To reduce the amount of spam sent to Gmail,', ' https://support.google.com/mail/?p=UnsolicitedMessageError a1b2 - gsmtp']), 'bounce', 'spam', '5.7.1'],
  ['554 5.7.1 [CS01] Message rejected due to local policy. Please visit https://support.apple.com/en-us/HT204137', 'bounce', 'spam', '5.7.1'],
  ['554 5.7.0 Reject, id=12345-01 - INFECTED: Eicar-Signature', 'bounce', 'spam', '5.7.0'],
  // policy
  [gmail('550 5.7.26', ['This mail has been blocked because the sender is unauthenticated.', 'Gmail requires all senders to authenticate with either SPF or DKIM.']), 'bounce', 'policy', '5.7.26'],
  ['550 5.7.509 Access denied, sending domain shop.test does not pass DMARC verification and has a DMARC policy of reject.', 'bounce', 'policy', '5.7.509'],
  ['554 5.7.1 <x@dest.test>: Relay access denied', 'bounce', 'policy', '5.7.1'],
  ['554 5.7.9 Message not accepted for policy reasons.  See https://postmaster.yahooinc.com/error-codes', 'bounce', 'policy', '5.7.9'],
  // our PTR / HELO: keep the message
  [gmail('550 5.7.25', ['[192.0.2.10] The IP address sending this message does not have a', 'PTR record setup, or the corresponding forward DNS entry does not']), 'defer', 'dns', '4.7.25'],
  // size
  [gmail('552 5.3.4', ["Your message exceeded Google's message size limits. For more", ' https://support.google.com/mail/?p=MaxSizeError a1b2 - gsmtp']), 'bounce', 'message-size', '5.3.4'],
  ['552 5.3.4 Message size exceeds fixed limit', 'bounce', 'message-size', '5.3.4'],
  // 5xx that say they are temporary
  ['550 5.7.1 Service temporarily unavailable, try again later', 'defer', 'policy', '4.7.1'],
  ['554 5.7.1 Message temporarily deferred due to unresolvable RFC.5321 from domain', 'defer', 'policy', '4.7.1'],
  ['550 Please try again later', 'defer', 'other', '4.0.0'],
  // TLS, protocol, receiver trouble
  ['530 5.7.0 Must issue a STARTTLS command first', 'defer', 'tls', '4.7.0'],
  ['454 4.7.0 TLS not available due to local problem', 'defer', 'tls', '4.7.0'],
  ['451 4.3.0 <x@dest.test>: Temporary lookup failure', 'defer', 'other', '4.3.0'],
  ['500 5.5.1 Command unrecognized: "XYZ"', 'bounce', 'protocol', '5.5.1'],
  // no rule: the code decides the action, the enhanced status the category
  ['450 4.3.0 Error: command failed', 'defer', 'other', '4.3.0'],
  ['500 5.3.0 Error: command failed', 'bounce', 'other', '5.3.0'],
  ['550 5.7.1 Message blocked', 'bounce', 'policy', '5.7.1'],
  ['421 mx.dest.test Service not available, closing transmission channel', 'defer', 'other', '4.0.0'],
  ['550 Requested action not taken', 'bounce', 'other', '5.0.0'],
  ['552 5.2.3 Message length exceeds administrative limit', 'bounce', 'message-size', '5.2.3'],
  // errors without a reply
  [{ code: 'ESOCKET', originalCode: 'ECONNREFUSED', phase: 'CONN' }, 'defer', 'network', '4.4.1'],
  [{ code: 'ECONNREFUSED' }, 'defer', 'network', '4.4.1'],
  [{ code: 'ETIMEDOUT', phase: 'CONN' }, 'defer', 'network', '4.4.1'],
  [{ code: 'ETIMEDOUT', phase: 'DOT' }, 'defer', 'network', '4.4.2'],
  [{ code: 'ECONNECTION', phase: 'EHLO' }, 'defer', 'network', '4.4.2'],
  [{ code: 'ESOCKET', originalCode: 'ECONNRESET', phase: 'RCPT' }, 'defer', 'network', '4.4.2'],
  [{ code: 'ESOCKET', originalCode: 'EHOSTUNREACH' }, 'defer', 'network', '4.4.1'],
  [{ code: 'EDNS', originalCode: 'ESERVFAIL' }, 'defer', 'dns', '4.4.3'],
  [{ code: 'EDNS', originalCode: 'ETIMEOUT' }, 'defer', 'dns', '4.4.3'],
  [{ code: 'EDNS', originalCode: 'ENOTFOUND' }, 'bounce', 'dns', '5.1.2'],
  [{ code: 'EDNS', errorMessage: 'queryMx ENODATA nomx.test' }, 'bounce', 'dns', '5.4.4'],
  [{ code: 'ETLS', errorMessage: 'Error initiating TLS - unable to verify the first certificate' }, 'defer', 'tls', '4.7.5'],
  [{ code: 'ETLS', response: '454 4.7.0 STARTTLS failed: handshake failure', phase: 'STARTTLS' }, 'defer', 'tls', '4.7.0'],
  [{ code: 'ETLS', response: '500 5.5.1 Command unrecognized: "STARTTLS"', phase: 'STARTTLS' }, 'defer', 'tls', '4.5.1'],
  [{ code: 'EREQUIRETLS' }, 'bounce', 'tls', '5.7.10'],
  [{ code: 'EPROTOCOL', errorMessage: 'Server response exceeds maximum allowed size' }, 'defer', 'protocol', '4.5.0'],
  [{ code: 'EMESSAGE', errorMessage: 'Message size larger than allowed 1000', phase: 'MAIL FROM' }, 'bounce', 'message-size', '5.3.4'],
  [{ code: 'EENVELOPE', errorMessage: 'Invalid recipient "a b@x"' }, 'bounce', 'unknown-user', '5.1.3'],
  [{ code: 'EAUTH', response: '535 5.7.8 Error: authentication failed' }, 'defer', 'other', '4.7.8'],
  [{ code: 'EAUTH' }, 'defer', 'other', '4.7.8'],
  [{}, 'defer', 'other', '4.0.0'],
  [{ code: 'ECONNECTION', response: '220 mx.dest.test ESMTP' }, 'defer', 'network', '4.4.2'],
  // responseCode given apart from the text
  [{ responseCode: 550, response: 'User unknown' }, 'bounce', 'unknown-user', '5.1.1'],
];

test(`a table of ${TABLE.length} real-world replies and errors is classified as expected`, () => {
  assert.ok(TABLE.length >= 40);
  const wrong: string[] = [];
  for (const [input, action, category, status] of TABLE) {
    const r = classifyReply(typeof input === 'string' ? { response: input } : input, rules);
    const got = `${r.action} ${r.category} ${r.status}`;
    if (got !== `${action} ${category} ${status}`) wrong.push(`${JSON.stringify(input).slice(0, 120)}\n    want ${action} ${category} ${status}, got ${got} (rule ${r.rule ?? '-'})`);
  }
  assert.deepEqual(wrong, []);
});

test('every rule in config/bounce-rules.txt quotes real replies, and each quote is classified by that very rule', () => {
  assert.ok(rules.length >= 30, `${rules.length} rules`);
  for (const rule of rules) {
    assert.ok(rule.examples.length > 0, `${rule.id} has no quoted reply ("# > ...") above it`);
    for (const example of rule.examples) {
      assert.match(example, /^\d{3}[ -]/, `${rule.id}: a quoted reply starts with its code`);
      const r = classifyReply({ response: example }, rules);
      assert.equal(r.rule, rule.id, `${rule.id}: ${JSON.stringify(example.slice(0, 100))} was taken by ${r.rule ?? 'no rule'}`);
    }
  }
});

test('blocklist rules always defer, and rules use only known categories', () => {
  for (const rule of rules) {
    if (rule.category === 'blocklist') assert.equal(rule.action, 'defer', rule.id);
    assert.ok(rule.category === 'auto' || REPLY_CATEGORIES.includes(rule.category), rule.id);
  }
  assert.equal(new Set(rules.map((r) => r.id)).size, rules.length);
});

test('REPLY_CATEGORIES is the catalogue: every category has its description, message and status detail', () => {
  assert.equal(REPLY_CATEGORIES.length, 13);
  assert.deepEqual(Object.keys(CATEGORY_INFO).sort(), [...REPLY_CATEGORIES].sort());
  for (const c of REPLY_CATEGORIES) {
    assert.ok(CATEGORY_INFO[c].description && CATEGORY_INFO[c].message, c);
    assert.match(CATEGORY_INFO[c].statusDetail, /^\d{1,3}\.\d{1,3}$/, c);
  }
});

test('the result carries the remote status, code and the reply on one line', () => {
  const r = classifyReply({ response: '554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org' });
  assert.equal(r.remoteStatus, '5.7.1');
  assert.equal(r.status, '4.7.1');
  assert.equal(r.responseCode, 554);
  assert.match(r.rule ?? '', /^config\/bounce-rules\.txt:\d+$/);
  const multi = classifyReply({ response: '550-5.1.1 first\r\n550-5.1.1 second\r\n550 5.1.1 third' });
  assert.equal(multi.reply, '550 5.1.1 first second third');
});

test('the default rules are used when none are passed', () => {
  assert.equal(classifyReply({ response: '451 4.7.1 Greylisting in action, please come back later' }).category, 'greylist');
});

test('readReply finds the enhanced status where servers put it, and not in versions or addresses', () => {
  const cases: [string, string | undefined][] = [
    ['550 5.1.1 user unknown', '5.1.1'],
    ['550-5.7.26 first\n550 5.7.26 last', '5.7.26'],
    ['550 sorry, no mailbox here by that name. (#5.1.1)', '5.1.1'],
    ['550 User unknown [5.1.1]', '5.1.1'],
    ['421 mx.test Exim 4.94.2 busy', undefined],
    ['554 Client 192.0.2.10 refused', undefined],
    ['550 relay denied, see 4.7.1', undefined], // another class than the reply code
    ['250 2.0.0 Ok', '2.0.0'],
  ];
  for (const [reply, enhanced] of cases) assert.equal(readReply(reply).enhanced, enhanced, reply);
  const long = readReply(`550 5.7.1 ${'x'.repeat(5000)}\r\ninjected: header`);
  assert.ok(long.text.length <= 2000);
  assert.doesNotMatch(long.text, /[\r\n]/);
});
