/**
 * The submission door's defences against clients that hold it without sending mail, on real
 * sockets: IPv6 clients capped per /64 rather than per address, a full server shedding the
 * connection idle the longest for a newcomer, and junk commands (NOOP and friends) cut off past
 * Postfix's 100. The receiver shares these guards (GuardedSmtpServer) and tests them in
 * test/inbound/throttle.test.ts; this file proves them on the door that accepts outbound mail.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { checkSlash64Cap } from '../helpers/lo-addresses.js';

const masters: TestMaster[] = [];
after(() => Promise.all(masters.map((m) => m.stop())));

async function master(smtp: Record<string, unknown>): Promise<TestMaster> {
  const m = await startMaster({ api: { enabled: false }, smtp });
  masters.push(m);
  return m;
}

async function greeted(m: TestMaster, localAddress: string, host = '127.0.0.1'): Promise<SmtpTalk> {
  const c = await SmtpTalk.connect(m.smtpPort, host, localAddress);
  await c.expect(220);
  await c.send('EHLO client.test', 250);
  return c;
}

test('submission: IPv6 clients are capped by their /64, so one host cannot take a slot per address', async (t) => {
  // addresses of their own: the receiver's test adds others to lo at the same time
  const m = await master({ host: '::1', maxConnectionsPerIp: 2 });
  await checkSlash64Cap(t, m.smtpPort, ['fd00:5c1c:0:11::a', 'fd00:5c1c:0:11::b', 'fd00:5c1c:0:11::c'], 'fd00:5c1c:0:12::a');
});

test('submission: a full server sheds the connection idle the longest for a newcomer, keeps busy sessions, and the newcomer submits', async () => {
  const m = await master({ maxClients: 4, maxConnectionsPerIp: 10 });
  const idle: SmtpTalk[] = [];
  for (let i = 0; i < 3; i++) {
    const c = await SmtpTalk.connect(m.smtpPort, '127.0.0.1', `127.0.6.${i + 1}`);
    await c.expect(220);
    idle.push(c);
  }
  const busy = await greeted(m, '127.0.6.9');
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await busy.send('NOOP', 250); // progress: not a candidate
  const newcomer = await greeted(m, '127.0.6.10');
  await newcomer.send('MAIL FROM:<a@src.test>', 250);
  await newcomer.send('RCPT TO:<r@dest.test>', 250);
  await newcomer.send('DATA', 354);
  await newcomer.send('Subject: made room\r\n\r\nhello\r\n.', 250);
  const shed = idle[0]!;
  assert.match((await shed.next(2000))!.text, /^421 4\.4\.2 Server busy and this connection idle/);
  await shed.waitClosed(2000);
  await busy.send('MAIL FROM:<a@src.test>', 250);
  for (const c of [...idle, busy, newcomer]) c.close();
});

test('submission: past 100 junk commands (NOOP, RSET, VRFY, HELP) between two messages the session ends with 421 4.7.0; a MAIL starts the count again', async () => {
  const m = await master({});
  const c = await greeted(m, '127.0.6.20');
  c.write('NOOP\r\n'.repeat(50) + 'RSET\r\n'.repeat(25) + 'HELP\r\n'.repeat(25));
  for (let i = 0; i < 100; i++) assert.ok([214, 250].includes((await c.next())!.code), 'each junk command is answered');
  await c.send('MAIL FROM:<a@src.test>', 250);
  c.write('NOOP\r\n'.repeat(101));
  for (let i = 0; i < 100; i++) assert.equal((await c.next())!.code, 250);
  assert.match((await c.next())!.text, /^421 4\.7\.0 Too many commands that send no mail/);
  await c.waitClosed(2000);
});
