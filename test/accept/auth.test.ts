/**
 * SMTP AUTH against [smtp.users] (scrypt hashes): PLAIN and LOGIN log in, a wrong password is
 * 535, a logged-in client outside trustedNetworks may send, and a plaintext connection gets no
 * AUTH at all unless allowInsecureAuth says so (credentials never cross the wire in clear by
 * default).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import { hashPassword } from '../../lib/accept/passwords.js';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

const PASSWORD = 'correct horse battery';

let insecure: TestMaster;
let strict: TestMaster;
before(async () => {
  const users = { alice: await hashPassword(PASSWORD), bob: await hashPassword('other') };
  [insecure, strict] = await Promise.all([
    startMaster({ smtp: { trustedNetworks: [], allowInsecureAuth: true, users } }),
    startMaster({ smtp: { trustedNetworks: [], allowInsecureAuth: false, users } }),
  ]);
});
after(() => Promise.all([insecure.stop(), strict.stop()]));

const transport = (port: number, auth: { user: string; pass: string }, method: 'PLAIN' | 'LOGIN') =>
  nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, auth, authMethod: method });

for (const method of ['PLAIN', 'LOGIN'] as const) {
  test(`AUTH ${method}: the right password sends, the user is recorded`, async () => {
    const info = await transport(insecure.smtpPort, { user: 'alice', pass: PASSWORD }, method).sendMail({
      from: 'alice@x.test',
      to: 'r@y.test',
      subject: method,
      text: 'hi',
    });
    const id = /queued as ([0-9a-f]+)/.exec(info.response)?.[1];
    assert.ok(id, info.response);
    const meta = await insecure.master.store.getMeta(id);
    assert.equal(meta?.origin.user, 'alice');
    assert.match(meta?.origin.transmissionType ?? '', /A$/);
  });

  test(`AUTH ${method}: a wrong password or an unknown user is 535`, async () => {
    const cases = [
      { user: 'alice', pass: 'wrong' },
      { user: 'bob', pass: PASSWORD },
      { user: 'mallory', pass: PASSWORD },
    ];
    // each wrong password costs a full scrypt; LOGIN needs fewer of them to make the point
    for (const auth of method === 'PLAIN' ? cases : cases.slice(0, 2)) {
      await assert.rejects(
        transport(insecure.smtpPort, auth, method).sendMail({ from: 'a@x.test', to: 'r@y.test', text: 'x' }),
        (err: { responseCode?: number; response?: string }) => {
          assert.equal(err.responseCode, 535, err.response);
          assert.match(err.response ?? '', /^535 5\.7\.8 /);
          return true;
        },
      );
    }
  });
}

test('raw AUTH PLAIN: 235, then MAIL is accepted; without AUTH the same client gets 530', async () => {
  const c = await SmtpTalk.connect(insecure.smtpPort);
  await c.expect(220);
  const ehlo = await c.send('EHLO client.test', 250);
  assert.match(ehlo.text, /AUTH PLAIN LOGIN/);
  await c.send('MAIL FROM:<a@x.test>', 530);
  await c.send('AUTH PLAIN ' + Buffer.from(`\0alice\0${PASSWORD}`).toString('base64'), 235);
  await c.send('AUTH PLAIN ' + Buffer.from(`\0alice\0${PASSWORD}`).toString('base64'), 503); // no identity change
  await c.send('MAIL FROM:<a@x.test>', 250);
  await c.send('RCPT TO:<r@y.test>', 250);
  await c.send('DATA', 354);
  c.write('Subject: raw auth\r\n\r\nok\r\n.\r\n');
  await c.expect(250);
  c.close();
});

test('user names that are Object.prototype keys are unknown users (535), not a server error', async () => {
  const c = await SmtpTalk.connect(insecure.smtpPort);
  await c.expect(220);
  await c.send('EHLO client.test', 250);
  for (const user of ['constructor', '__proto__']) {
    const r = await c.send('AUTH PLAIN ' + Buffer.from(`\0${user}\0${PASSWORD}`).toString('base64'), 535);
    assert.match(r.text, /^535 5\.7\.8 /);
  }
  c.close();
});

test('AUTH LOGIN step by step, and a broken base64 answer is refused', async () => {
  const c = await SmtpTalk.connect(insecure.smtpPort);
  await c.expect(220);
  await c.send('EHLO client.test', 250);
  await c.send('AUTH LOGIN', 334);
  await c.send(Buffer.from('alice').toString('base64'), 334);
  await c.send(Buffer.from('nope').toString('base64'), 535);
  await c.send('AUTH LOGIN ' + Buffer.from('alice').toString('base64'), 334);
  await c.send(Buffer.from(PASSWORD).toString('base64'), 235);
  await c.send('MAIL FROM:<a@x.test>', 250);
  c.close();
});

test('without TLS and without allowInsecureAuth, AUTH is neither offered nor accepted', async () => {
  const c = await SmtpTalk.connect(strict.smtpPort);
  await c.expect(220);
  const ehlo = await c.send('EHLO client.test', 250);
  assert.doesNotMatch(ehlo.text, /AUTH/);
  const r = await c.send('AUTH PLAIN ' + Buffer.from(`\0alice\0${PASSWORD}`).toString('base64'), 503);
  assert.match(r.text, /^503 5\.5\.1 /);
  await c.send('MAIL FROM:<a@x.test>', 530);
  c.close();
});

test('password guessing: from the third failure answers wait, the fifth failure ends the session with 421', async () => {
  const c = await SmtpTalk.connect(insecure.smtpPort);
  await c.expect(220);
  await c.send('EHLO client.test', 250);
  const plain = (pass: string) => 'AUTH PLAIN ' + Buffer.from(`\0alice\0${pass}`).toString('base64');
  const times: number[] = [];
  for (let i = 1; i <= 4; i++) {
    const t0 = Date.now();
    await c.send(plain(`guess${i}`), 535);
    times.push(Date.now() - t0);
  }
  assert.ok(times[2]! >= 900 && times[3]! >= 900, `the third and fourth answers waited: ${times.join(', ')} ms`);
  const last = await c.send(plain('guess5'), 421);
  assert.match(last.text, /4\.7\.0 Too many failed logins/);
  await c.waitClosed(5000);
});
