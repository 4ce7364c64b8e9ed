/**
 * F12, outbound side: the 10 smtpsmug end-of-data sequences, submitted over
 * SMTP (raw bytes, no client-side fix-ups) and through POST /send (in the text), each followed by
 * a smuggled MAIL/RCPT/DATA, are relayed to a capture MX that keeps the DATA bytes exactly as
 * they crossed the wire. With a DKIM key configured for the sender's domain.
 *
 * Pass, per message: the wire DATA has 0 bare CR and 0 bare LF (it matches
 * ^(?:[^\r\n]|\r\n)*$); exactly one end of data, at the end (the whole message, through its
 * last line, comes before the first CRLF.CRLF, and the smuggled command is never seen as a
 * command); one message at the capture per probe, RCPT only for the intended recipient; the
 * DKIM signature verifies over what the capture received.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { startRawCaptureMx, unstuff } from '../helpers/raw-capture-mx.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { tempDir } from '../helpers/master.js';
import { startLoggedMaster, waitFor } from '../helpers/delivery-kit.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

/** hannob/smtpsmug's end-of-data variants */
const SEQUENCES: [string, string][] = [
  ['LF.LF', '\n.\n'],
  ['CR.CR', '\r.\r'],
  ['CR.LF', '\r.\n'],
  ['LF.CR', '\n.\r'],
  ['LF.CRLF', '\n.\r\n'],
  ['CRLF.LF', '\r\n.\n'],
  ['CR.CRLF', '\r.\r\n'],
  ['CRLF.CR', '\r\n.\r'],
  ['CRLF NUL.CRLF', '\r\n\0.\r\n'],
  ['CRLF.NUL CRLF', '\r\n.\0\r\n'],
];

const SMUGGLED = 'MAIL FROM:<ceo@bank.test>\r\nRCPT TO:<victim@evil.test>\r\nDATA\r\nFrom: ceo@bank.test\r\nSubject: SMUGGLED\r\n\r\nwire the money\r\n';
const WIRE_CLEAN = /^(?:[^\r\n]|\r\n)*$/;

test('F12 outbound: 10 smuggling sequences via SMTP and POST /send → clean CRLF on the wire, one end of data, DKIM verifies', async () => {
  const capture = await startRawCaptureMx();
  cleanup.push(() => capture.stop());

  const dir = tempDir('sluice-f12-');
  mkdirSync(path.join(dir, 'keys'));
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyFile = path.join(dir, 'keys', 'src.test.s1.pem');
  writeFileSync(keyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), { mode: 0o600 });
  chmodSync(keyFile, 0o600);
  const record = `v=DKIM1; k=rsa; p=${publicKey.export({ format: 'der', type: 'spki' }).toString('base64')}`;
  const resolver = async (name: string, rrtype: string): Promise<string[][]> => {
    if (rrtype === 'TXT' && name === 's1._domainkey.src.test') return [[record]];
    throw Object.assign(new Error(`no ${rrtype} for ${name}`), { code: 'ENOTFOUND' });
  };

  const m = await startLoggedMaster(
    {
      dkim: { keys: [{ domain: 'src.test', selector: 's1', privateKey: 'keys/src.test.s1.pem' }] },
      zones: { default: { processes: 1, connections: 4, route: capture.route } },
    },
    dir,
  );
  cleanup.push(() => m.stop());

  // over SMTP: raw bytes, exactly as a hostile client would send them
  const talk = await SmtpTalk.connect(m.smtpPort);
  cleanup.push(async () => talk.close());
  await talk.expect(220);
  await talk.send('EHLO client.test', 250);
  for (const [i, [name, seq]] of SEQUENCES.entries()) {
    await talk.send('MAIL FROM:<sender@src.test>', 250);
    await talk.send('RCPT TO:<rcpt@dest.test>', 250);
    await talk.send('DATA', 354);
    const head = `From: sender@src.test\r\nTo: rcpt@dest.test\r\nSubject: probe ${name}\r\nX-Test-Id: smtp-${i}\r\n\r\n`;
    talk.write(Buffer.from(`${head}outer body${seq}${SMUGGLED}END-OF-PROBE smtp-${i}\r\n.\r\n`, 'latin1'));
    await talk.expect(250);
  }
  await talk.send('QUIT', 221);

  // through POST /send: the same sequences inside the text
  for (const [i, [name, seq]] of SEQUENCES.entries()) {
    const res = await fetch(`${m.api}/send`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        from: 'sender@src.test',
        to: 'rcpt@dest.test',
        subject: `probe ${name}`,
        headers: { 'X-Test-Id': `api-${i}` },
        text: `outer body${seq}${SMUGGLED}\r\nEND-OF-PROBE api-${i}\r\n`,
      }),
    });
    assert.equal(res.status, 200, `POST /send ${name}: ${await res.text()}`);
  }

  const total = 2 * SEQUENCES.length;
  await waitFor(() => capture.messages.length >= total, 20_000, `${total} messages at the capture`);
  await new Promise((r) => setTimeout(r, 300)); // anything smuggled would arrive right behind
  assert.equal(capture.messages.length, total, 'one message per probe, nothing smuggled through');
  assert.ok(capture.commands.every((c) => !/bank\.test|evil\.test/i.test(c)), 'the smuggled commands were never read as commands');
  assert.ok(capture.messages.every((msg) => msg.from === 'sender@src.test' && msg.to.length === 1 && msg.to[0] === 'rcpt@dest.test'), 'RCPT only for the intended recipient');

  const seen = new Set<string>();
  for (const msg of capture.messages) {
    const raw = msg.raw.toString('latin1');
    const id = /^X-Test-Id: (\S+)/im.exec(raw)?.[1] ?? '?';
    seen.add(id);
    assert.ok(raw.endsWith('\r\n.\r\n'), `${id}: ends with the terminator`);
    const body = raw.slice(0, -3); // keep the CRLF before the dot
    assert.match(body, WIRE_CLEAN, `${id}: no bare CR or LF on the wire`);
    assert.ok(!body.includes('\r\n.\r\n'), `${id}: no second end of data`);
    const message = unstuff(msg.raw);
    const text = message.toString('latin1');
    if (id.startsWith('smtp-')) assert.match(text, new RegExp(`END-OF-PROBE ${id}\\r\\n$`), `${id}: the whole message came before the end of data`);
    else assert.match(text.replace(/=\r\n/g, ''), new RegExp(`END-OF-PROBE ${id}`), `${id}: the whole message came before the end of data`);
    const res = await dkimVerify(message, { resolver });
    const results = res.results.map((r) => `${r.signingDomain}:${r.status.result}${r.status.comment ? ` (${r.status.comment})` : ''}`);
    assert.deepEqual(results, ['src.test:pass'], `${id}: DKIM`);
  }
  assert.equal(seen.size, total, 'every probe arrived once');
});
