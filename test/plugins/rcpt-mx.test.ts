import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

let dns: TestDnsServer;
let m: TestMaster;
before(async () => {
  dns = await startDnsServer({
    'mx.test': { MX: [{ priority: 10, exchange: 'mx1.mx.test' }] },
    'mx1.mx.test': { A: ['127.0.0.1'] },
    'a-only.test': { A: ['127.0.0.2'] },
    'v6-only.test': { AAAA: ['::1'] },
    'no-mail.test': { MX: [{ priority: 0, exchange: '.' }] },
    'txt-only.test': { TXT: ['v=spf1 -all'] },
    'gone.test': 'NXDOMAIN',
    'broken.test': 'SERVFAIL',
    'slow.test': 'DROP',
  });
  m = await startMaster({
    dns: { servers: [dns.address], timeout: '300ms' },
    routes: { 'routed.test': { host: '127.0.0.1', port: 2600 } },
    plugins: { 'core/rcpt-mx': { enabled: ['main'], skipDomains: ['skipped.test'] } },
  });
});
after(async () => {
  await m.stop();
  await dns.stop();
});

async function rcpt(address: string): Promise<string> {
  const c = await SmtpTalk.connect(m.smtpPort);
  try {
    await c.expect(220);
    await c.send('EHLO client.test', 250);
    await c.send('MAIL FROM:<a@src.test>', 250);
    c.write(`RCPT TO:<${address}>\r\n`);
    return (await c.next())!.text;
  } finally {
    c.close();
  }
}

test('core/rcpt-mx accepts recipients whose domain has MX, or only A or AAAA (implicit MX)', async () => {
  for (const a of ['u@mx.test', 'u@a-only.test', 'u@v6-only.test']) assert.match(await rcpt(a), /^250 /, a);
});

test('no such domain, or no MX/A/AAAA: 550 5.1.2; a null MX: 556 5.1.10', async () => {
  assert.equal(await rcpt('u@gone.test'), '550 5.1.2 Recipient domain gone.test has no mail server (no MX or address record)');
  assert.equal(await rcpt('u@txt-only.test'), '550 5.1.2 Recipient domain txt-only.test has no mail server (no MX or address record)');
  assert.equal(await rcpt('u@no-mail.test'), '556 5.1.10 Recipient domain no-mail.test does not accept mail (null MX)');
});

test('a DNS failure or timeout is a temporary 451 4.4.3, and is not cached', async () => {
  assert.equal(await rcpt('u@broken.test'), '451 4.4.3 Temporary DNS failure looking up the recipient domain, try again later');
  const t0 = Date.now();
  assert.equal(await rcpt('u@slow.test'), '451 4.4.3 Temporary DNS failure looking up the recipient domain, try again later');
  assert.ok(Date.now() - t0 < 3000, 'the [dns] timeout applies');
  dns.set('broken.test', { A: ['127.0.0.3'] });
  assert.match(await rcpt('u@broken.test'), /^250 /, 'the failure was not remembered');
});

test('answers are cached; statically routed and skipped domains and address literals are not looked up', async () => {
  await rcpt('u@mx.test');
  const before = dns.queries.length;
  assert.match(await rcpt('other@mx.test'), /^250 /);
  assert.match(await rcpt('u@routed.test'), /^250 /);
  assert.match(await rcpt('u@skipped.test'), /^250 /);
  assert.match(await rcpt('u@[127.0.0.1]'), /^250 /);
  assert.equal(dns.queries.length, before, 'no DNS query');
});
