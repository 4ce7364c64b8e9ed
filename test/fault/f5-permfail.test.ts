/**
 * F5: the destination answers 5xx. Pass: bounced within 5 s of the attempt,
 * exactly one attempt, exactly one DSN to the envelope sender (MAIL FROM:<>, multipart/report;
 * report-type=delivery-status, Action: failed, Status: 5.x.x, Final-Recipient, the remote's
 * reply in Diagnostic-Code, the original headers), never to the original recipients. A message
 * from the null sender that hard-fails is dropped with a log line and no DSN (no bounce loops).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeMx } from '../helpers/fakemx.js';
import { FAST, startLoggedMaster, submitter, waitFor, queueOf } from '../helpers/delivery-kit.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test('F5: 550 at RCPT → one attempt, one DSN to the sender with the real status and reply; a null-sender message is dropped, no DSN', async () => {
  const mx = await startFakeMx({ tls: false });
  cleanup.push(() => mx.stop());
  const REPLY = '550 5.1.1 <bad@dest.test>: Recipient address rejected: User unknown in virtual mailbox table';
  mx.setRecipientReply('bad@dest.test', REPLY);
  mx.setRecipientReply('bad2@dest.test', '550 5.1.1 no such user');
  // everything, the DSN to src.test included, goes to the one fakemx
  const m = await startLoggedMaster({ ...FAST, zones: { default: { processes: 1, connections: 5, route: mx.route } } });
  cleanup.push(() => m.stop());
  const smtp = submitter(m.smtpPort);
  cleanup.push(async () => smtp.close());

  const id = await smtp.send({ from: 'sender@src.test', to: 'bad@dest.test', testId: 'f5-1', subject: 'F5 original' });
  const nullId = await smtp.send({ from: 'mailer-daemon@src.test', envelopeFrom: '', to: 'bad2@dest.test', testId: 'f5-null' });

  await mx.waitUntil(() => mx.transactions.some((t) => t.from === '' && t.outcome === 'accepted' && t.to.includes('sender@src.test')), 10_000, () => 'no DSN arrived');
  const attempt = mx.transactions.find((t) => t.refused.some((r) => r.address === 'bad@dest.test'))!;
  const dsn = mx.transactions.find((t) => t.from === '' && t.to.includes('sender@src.test'))!;
  assert.ok(dsn.mailAt - attempt.mailAt <= 5000, `DSN ${dsn.mailAt - attempt.mailAt} ms after the attempt`);
  await waitFor(() => m.events('DROPPED').some((e) => e.id === nullId), 10_000, 'null-sender bounce dropped');
  await waitFor(async () => {
    const q = await queueOf(m.api);
    return q.queued + q.deferred === 0;
  }, 5000, 'queue empty');

  assert.equal(mx.transactions.filter((t) => t.refused.some((r) => r.address === 'bad@dest.test')).length, 1, 'exactly one attempt');
  assert.equal(mx.transactions.filter((t) => t.refused.some((r) => r.address === 'bad2@dest.test')).length, 1, 'exactly one attempt (null sender)');
  // the null-sender message's own attempt also says MAIL FROM:<>; a DSN is any other one
  const dsns = mx.transactions.filter((t) => t.from === '' && !t.refused.some((r) => r.address === 'bad2@dest.test'));
  assert.equal(dsns.length, 1, 'exactly one DSN in all (none for the null-sender message)');
  assert.deepEqual(dsn.to, ['sender@src.test'], 'the DSN goes to the envelope sender only');

  const text = dsn.data!.toString('utf8');
  const unfolded = text.replace(/\r\n[ \t]+/g, ' ');
  assert.match(unfolded, /^Content-Type: multipart\/report;.*report-type="?delivery-status/im);
  assert.match(text, /^Content-Type: message\/delivery-status/im);
  assert.match(text, /^Final-Recipient: rfc822; ?bad@dest\.test/im);
  assert.match(text, /^Action: failed/im);
  assert.match(text, /^Status: 5\.1\.1/im);
  assert.match(unfolded, /^Diagnostic-Code: smtp; ?550 5\.1\.1 <bad@dest\.test>: Recipient address rejected/im, 'the remote reply in Diagnostic-Code');
  assert.match(text, /Subject: F5 original/, 'the original headers are returned');
  assert.match(text, /^X-Test-Id: f5-1/im);

  const bounced = m.events('BOUNCED').filter((e) => e.id === id);
  assert.equal(bounced.length, 1);
  assert.equal(bounced[0]!.status, '5.1.1');
  assert.equal(m.events('BOUNCE_QUEUED').filter((e) => e.id === id).length, 1);
  assert.equal(m.events('BOUNCE_QUEUED').filter((e) => e.id === nullId).length, 0, 'no DSN for the null sender');
  assert.ok(String(m.events('DROPPED').find((e) => e.id === nullId)!.reason).length > 0, 'the drop says why');
});
