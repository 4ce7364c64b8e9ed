/**
 * The delivery failure policy, one row per rule: an error (as the SMTP client builds it) or a
 * reply, and what it means — next host or not, the host held back or not, and each recipient's
 * outcome, category and status. The protocol tests (relay, smtp-sink, mx-path, tls-discovery)
 * produce the same errors against real servers; this table pins the decisions themselves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeliveryError, type DeliveryErrorFields } from '../../lib/errors/delivery-error.js';
import { DestinationError } from '../../lib/deliver/destination.js';
import { phaseOf } from '../../lib/deliver/smtp-client.js';
import {
  cancelledResults,
  deliveredVerdict,
  destinationVerdict,
  errorVerdicts,
  expireIfDue,
  hostFailure,
  rejectionVerdict,
  type Verdict,
} from '../../lib/deliver/failure-policy.js';

type Expect = Pick<Verdict, 'outcome' | 'category' | 'status'> & { uncertain?: true };
interface Row {
  name: string;
  err: DeliveryErrorFields & { message: string };
  /** the failure is the host's: the next address or MX is tried */
  nextHost: boolean;
  /** the host did not answer and is held back (the circuit) */
  holdHost: boolean;
  /** each recipient's result when this failure is final (the last host's, for a host failure) */
  verdict: Expect;
}

const up = { connected: true, tls: false };

const TABLE: Row[] = [
  // the host did not answer: next host, held back; with none left, deferred
  { name: 'connection refused', err: { message: 'connect ECONNREFUSED 192.0.2.1:25', code: 'ESOCKET', originalCode: 'ECONNREFUSED', phase: 'CONN' }, nextHost: true, holdHost: true, verdict: { outcome: 'deferred', category: 'network', status: '4.4.1' } },
  { name: 'connect timeout', err: { message: 'Connection timeout', code: 'ETIMEDOUT', phase: 'CONN' }, nextHost: true, holdHost: true, verdict: { outcome: 'deferred', category: 'network', status: '4.4.1' } },
  { name: 'no route to host', err: { message: 'connect EHOSTUNREACH 192.0.2.1:25', code: 'ESOCKET', originalCode: 'EHOSTUNREACH', phase: 'CONN' }, nextHost: true, holdHost: true, verdict: { outcome: 'deferred', category: 'network', status: '4.4.1' } },
  { name: 'greeting timeout', err: { message: 'Greeting never received', code: 'ETIMEDOUT', phase: 'CONN' }, nextHost: true, holdHost: true, verdict: { outcome: 'deferred', category: 'network', status: '4.4.1' } },
  { name: 'closed before the greeting', err: { message: 'Connection closed unexpectedly', code: 'ECONNECTION', phase: 'CONN' }, nextHost: true, holdHost: true, verdict: { outcome: 'deferred', category: 'network', status: '4.4.2' } },
  // the host answered with a refusal before the transaction: next host, not held back
  { name: '421 greeting', err: { message: 'Invalid greeting', code: 'EPROTOCOL', phase: 'CONN', responseCode: 421, response: '421 4.3.2 Service shutting down' }, nextHost: true, holdHost: false, verdict: { outcome: 'deferred', category: 'other', status: '4.3.2' } },
  { name: '554 greeting (the last host\'s refusal bounces)', err: { message: 'Invalid greeting', code: 'EPROTOCOL', phase: 'CONN', responseCode: 554, response: '554 5.3.2 No SMTP service here' }, nextHost: true, holdHost: false, verdict: { outcome: 'bounced', category: 'other', status: '5.3.2' } },
  { name: '550 to EHLO', err: { message: 'Invalid response', code: 'EPROTOCOL', phase: 'EHLO', responseCode: 550, response: '550 5.7.1 Access denied' }, nextHost: true, holdHost: false, verdict: { outcome: 'bounced', category: 'policy', status: '5.7.1' } },
  { name: 'dropped between commands, no command in flight', err: { message: 'Connection closed unexpectedly', code: 'ECONNECTION', phase: 'CONN', ...up }, nextHost: true, holdHost: false, verdict: { outcome: 'deferred', category: 'network', status: '4.4.2' } },
  // TLS: next host, never held back (another domain's policy may use it), never a bounce
  { name: 'STARTTLS 454', err: { message: 'Error upgrading connection with STARTTLS', code: 'ETLS', phase: 'STARTTLS', responseCode: 454, response: '454 4.7.0 TLS not available due to local problem' }, nextHost: true, holdHost: false, verdict: { outcome: 'deferred', category: 'tls', status: '4.7.0' } },
  // the server's own enhanced status, its class digit set to agree with the deferral
  { name: 'STARTTLS not understood', err: { message: 'Error upgrading connection with STARTTLS', code: 'ETLS', phase: 'STARTTLS', responseCode: 500, response: '500 5.5.1 Command unrecognized' }, nextHost: true, holdHost: false, verdict: { outcome: 'deferred', category: 'tls', status: '4.5.1' } },
  { name: 'STARTTLS not understood, no enhanced status', err: { message: 'Error upgrading connection with STARTTLS', code: 'ETLS', phase: 'STARTTLS', responseCode: 502, response: '502 Command not implemented' }, nextHost: true, holdHost: false, verdict: { outcome: 'deferred', category: 'tls', status: '4.7.5' } },
  { name: 'TLS required, not offered', err: { message: 'mx.dest.test: TLS is required and the session is not encrypted', code: 'ETLS', phase: 'STARTTLS', ...up }, nextHost: true, holdHost: false, verdict: { outcome: 'deferred', category: 'tls', status: '4.7.5' } },
  { name: 'self-signed certificate under "verify"', err: { message: 'self-signed certificate', code: 'ESOCKET', originalCode: 'DEPTH_ZERO_SELF_SIGNED_CERT', phase: 'STARTTLS' }, nextHost: true, holdHost: false, verdict: { outcome: 'deferred', category: 'tls', status: '4.7.5' } },
  { name: 'certificate for another name', err: { message: "Hostname/IP does not match certificate's altnames", code: 'ESOCKET', originalCode: 'ERR_TLS_CERT_ALTNAME_INVALID', phase: 'STARTTLS' }, nextHost: true, holdHost: false, verdict: { outcome: 'deferred', category: 'tls', status: '4.7.5' } },
  { name: 'DANE mismatch', err: { message: 'DANE: mx.dest.test: no TLSA record matches', code: 'ETLS', originalCode: 'DANE_MISMATCH', phase: 'STARTTLS', connected: true, tls: true }, nextHost: true, holdHost: false, verdict: { outcome: 'deferred', category: 'tls', status: '4.7.5' } },
  { name: 'DANE lookup failed', err: { message: 'DANE: TLSA lookup failed', code: 'ETLS', originalCode: 'DANE_LOOKUP', phase: 'STARTTLS' }, nextHost: true, holdHost: false, verdict: { outcome: 'deferred', category: 'tls', status: '4.7.5' } },
  { name: 'MTA-STS: MX not in the policy', err: { message: 'MTA-STS: mx.other.test is not in the mx list', code: 'ETLS', originalCode: 'MTA_STS_MX', phase: 'STARTTLS' }, nextHost: true, holdHost: false, verdict: { outcome: 'deferred', category: 'tls', status: '4.7.5' } },
  // the transaction: the answer is the answer
  { name: '5xx to MAIL FROM', err: { message: 'Mail command failed', code: 'EENVELOPE', phase: 'MAIL', responseCode: 553, response: '553 5.1.8 Sender address rejected: Domain not found', ...up }, nextHost: false, holdHost: false, verdict: { outcome: 'bounced', category: 'policy', status: '5.1.8' } },
  { name: '4xx to MAIL FROM', err: { message: 'Mail command failed', code: 'EENVELOPE', phase: 'MAIL', responseCode: 451, response: '451 4.3.0 Temporary lookup failure', ...up }, nextHost: false, holdHost: false, verdict: { outcome: 'deferred', category: 'other', status: '4.3.0' } },
  { name: '5xx to RCPT TO', err: { message: "Can't send mail - all recipients were rejected", code: 'EENVELOPE', phase: 'RCPT', responseCode: 550, response: '550 5.1.1 <x@dest.test>: Recipient address rejected: User unknown', ...up }, nextHost: false, holdHost: false, verdict: { outcome: 'bounced', category: 'unknown-user', status: '5.1.1' } },
  { name: '4xx to RCPT TO (greylisting)', err: { message: "Can't send mail - all recipients were rejected", code: 'EENVELOPE', phase: 'RCPT', responseCode: 450, response: '450 4.2.0 <x@dest.test>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/dest.test.html', ...up }, nextHost: false, holdHost: false, verdict: { outcome: 'deferred', category: 'greylist', status: '4.2.0' } },
  { name: '5xx to DATA', err: { message: 'Data command failed', code: 'EENVELOPE', phase: 'DATA', responseCode: 554, response: '554 5.5.1 Error: no valid recipients', ...up }, nextHost: false, holdHost: false, verdict: { outcome: 'bounced', category: 'protocol', status: '5.5.1' } },
  { name: '5xx after the dot', err: { message: 'Message failed', code: 'EMESSAGE', phase: 'DATA', responseCode: 552, response: '552 5.3.4 Message size exceeds fixed limit', ...up, dataSent: true }, nextHost: false, holdHost: false, verdict: { outcome: 'bounced', category: 'message-size', status: '5.3.4' } },
  { name: '4xx after the dot', err: { message: 'Message failed', code: 'EMESSAGE', phase: 'DATA', responseCode: 451, response: '451 4.3.0 Error: queue file write error', ...up, dataSent: true }, nextHost: false, holdHost: false, verdict: { outcome: 'deferred', category: 'other', status: '4.3.0' } },
  { name: 'blocklisted (5xx that defers)', err: { message: 'Mail command failed', code: 'EENVELOPE', phase: 'MAIL', responseCode: 554, response: '554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org', ...up }, nextHost: false, holdHost: false, verdict: { outcome: 'deferred', category: 'blocklist', status: '4.7.1' } },
  { name: 'larger than the server\'s SIZE', err: { message: 'Message size larger than allowed 1000', code: 'EMESSAGE', phase: 'MAIL', ...up }, nextHost: false, holdHost: false, verdict: { outcome: 'bounced', category: 'message-size', status: '5.3.4' } },
  { name: 'connection lost in the transaction', err: { message: 'Connection closed unexpectedly', code: 'ECONNECTION', phase: 'RCPT', ...up }, nextHost: false, holdHost: false, verdict: { outcome: 'deferred', category: 'network', status: '4.4.2' } },
  { name: 'smarthost refused our credentials', err: { message: 'Invalid login', code: 'EAUTH', phase: 'AUTH', responseCode: 535, response: '535 5.7.8 Error: authentication failed', ...up }, nextHost: false, holdHost: false, verdict: { outcome: 'deferred', category: 'other', status: '4.7.8' } },
  // the whole message went out and the reply never came: it may have arrived
  { name: 'dropped after the dot', err: { message: 'Connection closed unexpectedly', code: 'ECONNECTION', phase: 'DOT', ...up, dataSent: true }, nextHost: false, holdHost: false, verdict: { outcome: 'deferred', category: 'network', status: '4.4.2', uncertain: true } },
  { name: 'timed out after the dot', err: { message: 'Timeout', code: 'ETIMEDOUT', phase: 'DOT', ...up, dataSent: true }, nextHost: false, holdHost: false, verdict: { outcome: 'deferred', category: 'network', status: '4.4.2', uncertain: true } },
];

for (const row of TABLE) {
  test(`policy: ${row.name}`, () => {
    const { message, ...fields } = row.err;
    const err = new DeliveryError(message, fields);
    assert.deepEqual(hostFailure(err), { nextHost: row.nextHost, holdHost: row.holdHost });
    // a host failure becomes the recipients' result only when no host is left
    const [v] = errorVerdicts(err, ['x@dest.test'], undefined, row.nextHost);
    assert.ok(v);
    const got: Expect = { outcome: v.outcome, category: v.category, status: v.status, ...(v.uncertain ? { uncertain: true as const } : {}) };
    assert.deepEqual(got, row.verdict);
    assert.equal(v.code, fields.code);
    assert.equal(v.response, fields.response ?? `${fields.code}: ${message}`);
  });
}

test('policy: every recipient refused, each with its own reply', () => {
  const err = new DeliveryError("Can't send mail - all recipients were rejected", {
    code: 'EENVELOPE',
    phase: 'RCPT',
    responseCode: 452,
    response: '452 4.2.2 <b@dest.test>: Mailbox is full',
    connected: true,
    rejected: [
      { recipient: 'A@dest.test', responseCode: 550, response: '550 5.1.1 <a@dest.test>: Recipient address rejected: User unknown' },
      { recipient: 'b@dest.test', responseCode: 452, response: '452 4.2.2 <b@dest.test>: Mailbox is full' },
    ],
  });
  const [a, b, c] = errorVerdicts(err, ['a@dest.test', 'b@dest.test', 'c@dest.test'], undefined);
  assert.deepEqual([a?.outcome, a?.category, a?.status, a?.responseCode], ['bounced', 'unknown-user', '5.1.1', 550]);
  assert.deepEqual([b?.outcome, b?.category, b?.status], ['deferred', 'mailbox-full', '4.2.2']);
  // one the server named no reply for gets the error's own
  assert.deepEqual([c?.outcome, c?.response], ['deferred', '452 4.2.2 <b@dest.test>: Mailbox is full']);
});

test('policy: no host could be tried at all', () => {
  const [v] = errorVerdicts(DeliveryError.unreachable('no host could be reached'), ['x@dest.test'], undefined, true);
  assert.deepEqual([v?.outcome, v?.category, v?.status, v?.code], ['deferred', 'network', '4.4.2', 'ECONNECTION']);
});

test('policy: a transaction that went through, one recipient refused at RCPT', () => {
  assert.deepEqual(deliveredVerdict('250 2.0.0 Ok: queued as 4B1C2', true), { outcome: 'delivered', response: '250 2.0.0 Ok: queued as 4B1C2', responseCode: 250, tls: true });
  const unknown = rejectionVerdict({ responseCode: 550, response: '550 5.1.1 <x@dest.test>: Recipient address rejected: User unknown' }, true, undefined);
  assert.deepEqual([unknown.outcome, unknown.category, unknown.status, unknown.tls], ['bounced', 'unknown-user', '5.1.1', true]);
  const grey = rejectionVerdict({ responseCode: 451, response: '451 4.7.1 Greylisting in action, please come back later' }, false, undefined);
  assert.deepEqual([grey.outcome, grey.category, grey.status], ['deferred', 'greylist', '4.7.1']);
});

test('policy: the destination could not be resolved', () => {
  const rows: [unknown, Verdict['outcome'], string][] = [
    [new DestinationError('5.1.2', 'Domain dest.test does not exist (NXDOMAIN)', 'dest.test', 'ENOTFOUND'), 'bounced', '5.1.2'],
    [new DestinationError('5.1.10', 'Domain dest.test accepts no mail (null MX)', 'dest.test'), 'bounced', '5.1.10'],
    [new DestinationError('5.4.4', 'No address found for its MX hosts of dest.test', 'dest.test'), 'bounced', '5.4.4'],
    [new DestinationError('4.4.3', 'DNS lookup of MX for dest.test failed (ESERVFAIL)', 'dest.test', 'ESERVFAIL'), 'deferred', '4.4.3'],
    [new Error('resolver crashed'), 'deferred', '4.4.3'],
    [undefined, 'deferred', '4.4.4'],
  ];
  for (const [err, outcome, status] of rows) {
    const v = destinationVerdict(err, 'dest.test');
    assert.deepEqual([v.outcome, v.status, v.category, v.code], [outcome, status, 'dns', 'EDNS'], String(err));
  }
});

test('policy: a deferral past the queue lifetime bounces (4.4.7), nothing else changes', () => {
  const day = 86_400_000;
  const deferred = { seq: 1, outcome: 'deferred' as const, response: '451 4.3.0 try later', status: '4.3.0', category: 'other' };
  assert.deepEqual(expireIfDue(deferred, 0, 5 * day - 1, 5 * day), deferred);
  const expired = expireIfDue(deferred, 0, 5 * day, 5 * day);
  assert.deepEqual([expired.outcome, expired.status, expired.category, expired.response], ['bounced', '4.4.7', 'other', 'delivery time expired; last error: 451 4.3.0 try later']);
  // a status that is no deferral's keeps its code; no status at all gets 4.4.7
  assert.equal(expireIfDue({ ...deferred, status: '5.7.1' }, 0, 6 * day, 5 * day).status, '5.7.1');
  assert.equal(expireIfDue({ seq: 1, outcome: 'deferred', response: 'no result reported by the worker' }, 0, 6 * day, 5 * day).status, '4.4.7');
  const delivered = { seq: 1, outcome: 'delivered' as const, response: '250 ok' };
  const bounced = { seq: 1, outcome: 'bounced' as const, response: '550 no', status: '5.1.1' };
  assert.equal(expireIfDue(delivered, 0, 6 * day, 5 * day), delivered);
  assert.equal(expireIfDue(bounced, 0, 6 * day, 5 * day), bounced);
});

test('policy: a cancelled attempt keeps what was delivered and defers the rest', () => {
  const results = [
    { seq: 1, outcome: 'delivered' as const, response: '250 ok' },
    { seq: 2, outcome: 'bounced' as const, response: '550 5.1.1 unknown', status: '5.1.1' },
  ];
  const [one, two, three] = cancelledResults([1, 2, 3], results, 'attempt timeout');
  assert.equal(one, results[0]);
  assert.deepEqual([two?.outcome, two?.status, two?.category, two?.code, two?.response], ['deferred', '4.4.2', 'network', 'ETIMEDOUT', 'delivery attempt cancelled: attempt timeout; last reply: 550 5.1.1 unknown']);
  assert.deepEqual([three?.seq, three?.outcome, three?.response], [3, 'deferred', 'delivery attempt cancelled: attempt timeout']);
});

test('client: the SMTP phase of a library error', () => {
  const rows: [string, string | undefined, boolean, string][] = [
    ['ECONNECTION', undefined, false, 'CONN'],
    ['ECONNECTION', 'CONN', false, 'CONN'],
    ['ETIMEDOUT', undefined, false, 'CONN'],
    ['EPROTOCOL', 'EHLO', false, 'EHLO'],
    ['EPROTOCOL', 'LHLO', false, 'EHLO'],
    ['ETLS', 'CONN', false, 'STARTTLS'],
    ['ETLS', 'STARTTLS', false, 'STARTTLS'],
    ['EAUTH', 'AUTH PLAIN', false, 'AUTH'],
    ['EENVELOPE', 'MAIL FROM', false, 'MAIL'],
    ['EMESSAGE', 'MAIL FROM', false, 'MAIL'],
    ['EENVELOPE', 'RCPT TO', false, 'RCPT'],
    ['EENVELOPE', 'DATA', false, 'DATA'],
    ['EMESSAGE', 'DATA', true, 'DATA'],
    ['ECONNECTION', 'CONN', true, 'DOT'],
    ['ETIMEDOUT', undefined, true, 'DOT'],
    ['ECONNECTION', 'RSET', false, 'RSET'],
    ['ESTREAM', 'API', false, 'CLIENT'],
    ['EMESSAGE', 'API', false, 'DATA'],
  ];
  for (const [code, command, dataSent, phase] of rows) assert.equal(phaseOf(code, command, dataSent), phase, `${code} ${command} dataSent=${dataSent}`);
});
