/**
 * F12, inbound side, on the submission door: SMTP smuggling. For each of
 * smtpsmug's ten bad endings of DATA (smtpsmug.ts), a message is sent whose body holds the bad
 * ending, then a smuggled MAIL/RCPT/DATA with "Subject: SMUGGLED", then the proper CRLF.CRLF. Only CRLF.CRLF ends the data: each probe gets
 * exactly one 250 and stores exactly one message, nobody ever answers the smuggled commands, and
 * nothing stored (header block or body) holds a bare CR or bare LF. The inbound receiver's
 * probes are f12-inbound-smuggling.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { SmtpTalk, type Reply } from '../helpers/smtp-talk.js';
import { SEQUENCES, smuggled } from './smtpsmug.js';
import { allMetas } from '../helpers/queue-census.js';

const SMUGGLED = smuggled('victim@y.test');
const BARE = /\r(?!\n)|(?<!\r)\n/;

let m: TestMaster;
before(async () => {
  m = await startMaster({ api: { enabled: false } });
});
after(() => m.stop());

async function messageIds(): Promise<string[]> {
  return (await allMetas(m.master.store)).map((meta) => meta.id);
}

async function readAll(c: SmtpTalk): Promise<Reply[]> {
  const replies: Reply[] = [];
  for (let r = await c.next(); r; r = await c.next()) replies.push(r);
  return replies;
}

for (const [name, ending] of SEQUENCES) {
  test(`F12 inbound: ${name} does not end DATA, and the smuggled message stays text`, async () => {
    const before = new Set(await messageIds());
    const c = await SmtpTalk.connect(m.smtpPort);
    try {
      await c.expect(220);
      await c.send('EHLO client.test', 250);
      await c.send('MAIL FROM:<outer@x.test>', 250);
      await c.send('RCPT TO:<r@y.test>', 250);
      await c.send('DATA', 354);
      c.write(`Subject: outer ${name}\r\n\r\nbefore the ending` + ending + SMUGGLED + '\r\n.\r\n');
      c.write('NOOP\r\nQUIT\r\n');
      const replies = await readAll(c);
      assert.deepEqual(
        replies.map((r) => r.code),
        [250, 250, 221],
        `the message, the NOOP, the QUIT and nothing else: ${replies.map((r) => r.text).join(' | ')}`,
      );
      assert.match(replies[0]!.text, /queued as/);
    } finally {
      c.close();
    }

    const added = (await messageIds()).filter((id) => !before.has(id));
    assert.equal(added.length, 1, 'one stored message per probe');
    const meta = await m.master.store.getMeta(added[0]!);
    assert.ok(meta);
    assert.equal(meta.from, 'outer@x.test');
    assert.equal(meta.subject, `outer ${name}`);
    assert.doesNotMatch(meta.headers, BARE, 'no bare CR/LF in the stored headers');
    const parts: Buffer[] = [];
    for await (const chunk of m.master.store.readBody(added[0]!)) parts.push(chunk);
    const body = Buffer.concat(parts).toString('latin1');
    assert.doesNotMatch(body, BARE, 'no bare CR/LF in the stored body');
    assert.match(body, /Subject: SMUGGLED/, 'the smuggled lines are body text');
  });
}

test('F12 inbound: no stored message anywhere is the smuggled one', async () => {
  for (const id of await messageIds()) {
    const meta = await m.master.store.getMeta(id);
    assert.notEqual(meta?.subject, 'SMUGGLED');
    assert.notEqual(meta?.from, 'smuggler@x.test');
  }
});
