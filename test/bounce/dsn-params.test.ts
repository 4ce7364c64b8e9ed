/**
 * Issue 8, item 14: the DSN parameters of RFC 3461, end to end (submission, a worker, a real
 * destination that refuses bad* recipients, the DSNs delivered back to the sender there):
 * - NOTIFY=NEVER: no bounce (logged DROPPED); NOTIFY=FAILURE: a bounce; NOTIFY=SUCCESS: a success
 *   DSN (Action: relayed: the destination was not asked to report further); a recipient without
 *   FAILURE in its NOTIFY gets no bounce either;
 * - ENVID comes back as Original-Envelope-Id, ORCPT as Original-Recipient;
 * - RET=HDRS: the DSN carries the original's headers, not its body;
 * - the same through POST /send with nodemailer's `dsn` field.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { captureLog } from '../helpers/capture-log.js';
import { startFakeMx, type FakeMx } from '../helpers/fakemx.js';
import { postJson } from '../helpers/http.js';
import { startMaster, tempDir, type TestMaster } from '../helpers/master.js';
import { waitFor } from '../helpers/plugins.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

/** The destination: refuses bad* recipients, keeps what arrives (envelope and raw message). */
let sink: FakeMx;
const arrived = () => sink.messages.map((t) => ({ from: t.from, to: t.to, raw: t.data!.toString('latin1') }));

let m: TestMaster;
const log = captureLog('info');
before(async () => {
  sink = await startFakeMx({ tls: false, recipientReply: (a) => (a.startsWith('bad') ? '550 5.1.1 No such user here' : undefined) });
  m = await startMaster({ zones: { default: { processes: 1, route: sink.route } } }, tempDir(), log.logger);
});
after(async () => {
  await m.stop();
  await sink.stop();
});

const dsnsTo = (sender: string) => arrived().filter((a) => a.from === '' && a.to.includes(sender));
const unfold = (raw: string) => raw.replace(/\r\n[ \t]+/g, ' ');

test('SMTP: NOTIFY=NEVER gets no bounce, NOTIFY=FAILURE one with ORCPT and ENVID, NOTIFY=SUCCESS a success DSN; RET=HDRS sends headers only', async () => {
  const c = await SmtpTalk.connect(m.smtpPort);
  await c.expect(220);
  await c.send('EHLO client.test', 250);
  await c.send('MAIL FROM:<smtp-sender@src.test> RET=HDRS ENVID=env+2Bsmtp-1', 250);
  await c.send('RCPT TO:<bad-never@dest.test> NOTIFY=NEVER', 250);
  await c.send('RCPT TO:<bad-fail@dest.test> NOTIFY=FAILURE ORCPT=rfc822;list+2Bmember@dest.test', 250);
  await c.send('RCPT TO:<bad-success-only@dest.test> NOTIFY=SUCCESS', 250);
  await c.send('RCPT TO:<good@dest.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;good-orig@dest.test', 250);
  await c.send('DATA', 354);
  c.write('Subject: dsn params\r\nX-Marker: header-line\r\n\r\nBODY-TEXT-THAT-MUST-NOT-COME-BACK\r\n.\r\n');
  await c.expect(250);
  c.close();

  await waitFor(() => dsnsTo('smtp-sender@src.test').length >= 2, 30_000, 'the failure and the success DSN');
  // nothing more comes: one lease, one outcome batch
  await new Promise((resolve) => setTimeout(resolve, 500));
  const dsns = dsnsTo('smtp-sender@src.test').map((d) => unfold(d.raw));
  assert.equal(dsns.length, 2, `two DSNs, got ${dsns.length}`);
  const failure = dsns.find((d) => /Action: failed/.test(d));
  const success = dsns.find((d) => /Action: relayed/.test(d));
  assert.ok(failure && success, 'one failure, one success DSN');

  assert.match(failure, /Final-Recipient: rfc822; bad-fail@dest\.test/);
  assert.match(failure, /Original-Recipient: rfc822; list\+member@dest\.test/);
  assert.match(failure, /Original-Envelope-Id: env\+2Bsmtp-1/);
  assert.doesNotMatch(failure, /bad-never@|bad-success-only@/, 'NEVER, and a NOTIFY without FAILURE, get no bounce');
  assert.match(failure, /Content-Type: text\/rfc822-headers/);
  assert.match(failure, /X-Marker: header-line/);
  assert.doesNotMatch(failure, /BODY-TEXT-THAT-MUST-NOT-COME-BACK/);

  assert.match(success, /Subject: Delivery Status Notification \(Relayed\)/);
  assert.match(success, /Final-Recipient: rfc822; good@dest\.test/);
  assert.match(success, /Original-Recipient: rfc822; good-orig@dest\.test/);
  assert.match(success, /Status: 2\.\d\.\d/);
  assert.match(success, /Original-Envelope-Id: env\+2Bsmtp-1/);
  assert.doesNotMatch(success, /bad-/);

  const dropped = log.events('DROPPED').map((l) => l.recipient);
  assert.ok(dropped.includes('bad-never@dest.test') && dropped.includes('bad-success-only@dest.test'), `DROPPED logged: ${JSON.stringify(dropped)}`);
});

test('POST /send: dsn { id, return, notify, recipient } works like the SMTP parameters', async () => {
  const ok = await postJson(`${m.api}/send`, {
    from: 'api-sender@src.test',
    to: ['good-api@dest.test'],
    subject: 'api dsn',
    text: 'API-BODY-TEXT',
    dsn: { id: 'api-env-1', return: 'headers', notify: ['success', 'failure'], recipient: 'api-orig@dest.test' },
  });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  const never = await postJson(`${m.api}/send`, { from: 'api-sender@src.test', to: 'bad-api@dest.test', subject: 'never', text: 'x', dsn: { notify: 'never' } });
  assert.equal(never.status, 200, JSON.stringify(never.body));

  await waitFor(() => dsnsTo('api-sender@src.test').length >= 1 && log.events('DROPPED').some((l) => l.recipient === 'bad-api@dest.test'), 30_000, 'the success DSN and the dropped bounce');
  await new Promise((resolve) => setTimeout(resolve, 500));
  const dsns = dsnsTo('api-sender@src.test').map((d) => unfold(d.raw));
  assert.equal(dsns.length, 1, 'the success DSN only: no bounce for NOTIFY=NEVER');
  assert.match(dsns[0]!, /Action: relayed/);
  assert.match(dsns[0]!, /Original-Envelope-Id: api-env-1/);
  assert.match(dsns[0]!, /Original-Recipient: rfc822; api-orig@dest\.test/);
  assert.doesNotMatch(dsns[0]!, /API-BODY-TEXT/);

  const bad = await postJson(`${m.api}/send`, { from: 'a@src.test', to: 'r@dest.test', text: 'x', dsn: { notify: ['never', 'success'] } });
  assert.equal(bad.status, 400);
  assert.match(String(bad.body.message), /NEVER/);
});
