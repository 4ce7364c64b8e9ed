/**
 * F13, server side: STARTTLS command injection (CVE-2011-0411 class).
 * Commands pipelined behind STARTTLS in the same TCP segment arrived in plaintext and must be
 * thrown away: inside TLS nothing answers them, the injected MAIL does not exist (so the client's
 * own MAIL gets 250, not 503 "nested MAIL"), and the message stored is the legitimate one.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { testCert } from '../helpers/test-cert.js';
import { allMetas } from '../helpers/queue-census.js';

let m: TestMaster;
before(async () => {
  const { keyFile: key, certFile: cert } = testCert();
  m = await startMaster({ api: { enabled: false }, smtp: { key, cert } });
});
after(() => m.stop());

const INJECTIONS: [name: string, bytes: string][] = [
  ['RSET + MAIL', 'RSET\r\nMAIL FROM:<injected@evil.test>\r\n'],
  ['a whole transaction', 'MAIL FROM:<injected@evil.test>\r\nRCPT TO:<victim@y.test>\r\nDATA\r\nSubject: injected\r\n\r\nx\r\n.\r\n'],
  ['a partial line', 'MAIL FROM:<injected@evil'],
  ['many commands (past the parser yielding every 100)', 'NOOP\r\n'.repeat(250) + 'MAIL FROM:<injected@evil.test>\r\n'],
];

for (const [name, injected] of INJECTIONS) {
  test(`F13 server: ${name} pipelined behind STARTTLS is discarded`, async () => {
    const plain = await SmtpTalk.connect(m.smtpPort);
    await plain.expect(220);
    await plain.send('EHLO client.test', 250);
    plain.write('STARTTLS\r\n' + injected);
    await plain.expect(220);
    // whatever else arrives in plaintext now is an answer to an injected command
    const leaked: Buffer[] = [];
    plain.socket.removeAllListeners('data');
    plain.socket.on('data', (d: Buffer) => leaked.push(d));
    const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ socket: plain.socket, rejectUnauthorized: false }, () => resolve(s));
      s.once('error', reject);
    });
    const c = SmtpTalk.wrap(secure);
    try {
      // the first reply inside TLS is the one to our EHLO
      const ehlo = await c.send('EHLO client.test', 250);
      assert.match(ehlo.text, /^250-sluice\.test/);
      await c.send('MAIL FROM:<legit@x.test>', 250);
      await c.send('RCPT TO:<r@y.test>', 250);
      await c.send('DATA', 354);
      c.write('Subject: legit\r\n\r\nok\r\n.\r\n');
      const id = /queued as ([0-9a-f]+)/.exec((await c.expect(250)).text)?.[1];
      assert.ok(id);
      await c.send('QUIT', 221);
      const meta = await m.master.store.getMeta(id);
      assert.equal(meta?.from, 'legit@x.test');
      assert.equal(meta?.subject, 'legit');
      assert.equal(meta?.origin.transmissionType, 'ESMTPS');
    } finally {
      c.close();
    }
    // TLS records only: a plaintext SMTP reply would start with three digits
    assert.doesNotMatch(Buffer.concat(leaked).toString('latin1'), /(^|\n)\d{3}[ -]/);
  });
}

test('F13 server: no injected message was ever stored', async () => {
  for (const meta of await allMetas(m.master.store)) assert.notEqual(meta.from, 'injected@evil.test');
});
