/**
 * F12 against the inbound receiver: SMTP smuggling. For each of smtpsmug's
 * ten bad endings of DATA (smtpsmug.ts), a stranger sends a message to an inbox whose body holds
 * the bad ending, then a smuggled MAIL/RCPT/DATA for another inbox (the victim), then the proper
 * CRLF.CRLF. Pass: the probe gets exactly one 250 and stores exactly one message, in the inbox
 * it was sent to, with the outer envelope and subject; the smuggled commands are never answered
 * and are body text of that message; the victim's inbox stays empty. The receiver keeps the
 * bytes as received (bare CR and LF included: it is an inbox, not a relay).
 *
 * Then smtpsmug's pipelining probe: a whole transaction in one write, and a second one behind
 * it, each stored once.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SmtpTalk, type Reply } from '../helpers/smtp-talk.js';
import { INBOX_DOMAIN, startInbound, type InboundMaster } from './inbound-kit.js';
import { SEQUENCES, smuggled } from './smtpsmug.js';

const STRANGER = '127.12.0.1';
const TARGET = `target@${INBOX_DOMAIN}`;
const VICTIM = `victim@${INBOX_DOMAIN}`;

let m: InboundMaster;
before(async () => {
  m = await startInbound({ api: { enabled: false }, inbound: { checkAuth: false } });
});
after(() => m.stop());

async function readAll(c: SmtpTalk): Promise<Reply[]> {
  const replies: Reply[] = [];
  for (let r = await c.next(); r; r = await c.next()) replies.push(r);
  return replies;
}

async function raw(id: string): Promise<string> {
  const found = await m.master.inbound!.inbox.raw(id);
  assert.ok(found);
  const parts: Buffer[] = [];
  for await (const chunk of found.chunks) parts.push(chunk);
  return Buffer.concat(parts).toString('latin1');
}

for (const [name, ending] of SEQUENCES) {
  test(`F12 inbound receiver: ${name} does not end DATA, and the smuggled message stays text`, async () => {
    const inbox = m.master.inbound!.inbox;
    const before = inbox.stats().messages;
    const c = await SmtpTalk.connect(m.inboundPort, '127.0.0.1', STRANGER);
    let replies: Reply[];
    try {
      await c.expect(220);
      await c.send('EHLO client.test', 250);
      await c.send('MAIL FROM:<outer@src.test>', 250);
      await c.send(`RCPT TO:<${TARGET}>`, 250);
      await c.send('DATA', 354);
      c.write(`Subject: outer ${name}\r\n\r\nbefore the ending` + ending + smuggled(VICTIM) + '\r\n.\r\n');
      c.write('NOOP\r\nQUIT\r\n');
      replies = await readAll(c);
    } finally {
      c.close();
    }
    assert.deepEqual(
      replies.map((r) => r.code),
      [250, 250, 221],
      `the message, the NOOP, the QUIT and nothing else: ${replies.map((r) => r.text).join(' | ')}`,
    );
    const id = /queued as (\S+)/.exec(replies[0]!.text)?.[1];
    assert.ok(id);
    assert.equal(inbox.stats().messages - before, 1, 'one stored message per probe');
    const msg = await inbox.message(id);
    assert.equal(msg?.envelope.from, 'outer@src.test');
    assert.deepEqual(msg?.envelope.inboxes, [TARGET]);
    assert.equal(msg?.parsed?.subject, `outer ${name}`);
    const text = await raw(id);
    assert.ok(text.includes(ending + smuggled(VICTIM)), 'the bad ending and the smuggled lines are body text, as received');
    assert.equal(await inbox.count(VICTIM), 0, 'nothing reached the victim');
  });
}

test('F12 inbound receiver: smtpsmug\'s pipelining probe, two transactions in one write, each stored once', async () => {
  const inbox = m.master.inbound!.inbox;
  const before = inbox.stats().messages;
  const transaction = (n: number) => `MAIL FROM:<p${n}@src.test>\r\nRCPT TO:<${TARGET}>\r\nDATA\r\nSubject: pipelined ${n}\r\n\r\nbody ${n}\r\n.\r\n`;
  const c = await SmtpTalk.connect(m.inboundPort, '127.0.0.1', STRANGER);
  let replies: Reply[];
  try {
    await c.expect(220);
    c.write('EHLO client.test\r\n' + transaction(1) + transaction(2) + 'QUIT\r\n');
    replies = await readAll(c);
  } finally {
    c.close();
  }
  assert.deepEqual(replies.map((r) => r.code), [250, 250, 250, 354, 250, 250, 250, 354, 250, 221], replies.map((r) => r.text).join(' | '));
  assert.equal(inbox.stats().messages - before, 2);
  assert.equal(await inbox.count(VICTIM), 0);
});

test('F12 inbound receiver: no stored message is the smuggled one', async () => {
  const { items } = await m.master.inbound!.inbox.list(TARGET, { limit: 200 });
  assert.equal(items.length, SEQUENCES.length + 2);
  assert.ok(items.every((i) => i.summary?.subject !== 'SMUGGLED' && i.envelope.from !== 'smuggler@x.test'));
});
