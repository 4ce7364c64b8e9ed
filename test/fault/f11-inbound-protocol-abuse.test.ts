/**
 * F11 on the inbound receiver's port: the golden transcripts every door
 * passes (transcript.ts), and the receiver's own, played from a stranger's address (127.11.0.1:
 * not exempt from anything) against a receiver as port 25 would run it (a 200 ms greeting delay,
 * STARTTLS offered).
 *
 * Policies of this door:
 * - AUTH is 503 5.5.1 (never offered);
 * - a refused recipient is a failed command: the 20th 5xx of a session is followed by 421 and
 *   the close (maxBadCommands), so a client cannot probe addresses without end;
 * - NOOP, RSET, VRFY and friends: the 101st between two MAILs gets 421 (Postfix's junk limit);
 * - a local part over 64 octets is 553 5.1.3;
 * - an 8-bit HELO name is taken as given: it is only recorded, never trusted (Postfix does the
 *   same unless told to check it).
 *
 * The receiver's fuzz run is in f11-fuzz.slow.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { testCert } from '../helpers/test-cert.js';
import { INBOX_DOMAIN, startInbound, type InboundMaster } from './inbound-kit.js';
import { line, play, protocolCases, type Step, type Transcript } from './transcript.js';

const STRANGER = '127.11.0.1';
const FROM = 'a@src.test';
const RCPT = `r@${INBOX_DOMAIN}`;
const MAX_RECIPIENTS = 100;
const MAX_BAD = 20;
const EHLO: Step[] = [line('EHLO client.test'), { reply: 250 }];
const MAIL: Step[] = [...EHLO, line(`MAIL FROM:<${FROM}>`), { reply: 250 }];

const OWN_CASES: Transcript[] = [
  { name: 'talking before the greeting', greet: false, steps: [line('EHLO client.test'), { reply: 421, text: /too soon/ }, { closed: true }] },
  { name: 'AUTH (never offered)', steps: [line('EHLO client.test'), { reply: 250, text: /^(?![\s\S]*AUTH)/ }, line('AUTH PLAIN AGFsaWNlAHB3'), { reply: 503, text: /^503 5\.5\.1 / }] },
  { name: 'STARTTLS with an argument', steps: [...EHLO, line('STARTTLS now'), { reply: 501 }, line('NOOP'), { reply: 250 }] },
  { name: 'a foreign recipient, then DATA', steps: [...MAIL, line('RCPT TO:<u@evil.test>'), { reply: 550, text: /^550 5\.7\.1 / }, line('DATA'), { reply: 503 }] },
  { name: 'a local part over 64 octets', steps: [...MAIL, line(`RCPT TO:<${'l'.repeat(65)}@${INBOX_DOMAIN}>`), { reply: 553, text: /^553 5\.1\.3 / }] },
  { name: 'an 8-bit HELO name is taken as given', steps: [line('EHLO cliënt.test'), { reply: 250 }, line('NOOP'), { reply: 250 }] },
  {
    name: `${MAX_BAD} refused recipients: 421 after the ${MAX_BAD}th`,
    steps: [
      ...MAIL,
      ...Array.from({ length: MAX_BAD - 1 }, (_, i): Step[] => [line(`RCPT TO:<u${i}@evil.test>`), { reply: 550 }]).flat(),
      line('RCPT TO:<last@evil.test>'),
      { reply: 550 },
      { reply: 421, text: /^421 4\.7\.0 / },
      { closed: true },
    ],
  },
  {
    name: '101 NOOPs: 421 on the 101st',
    steps: [...EHLO, ...Array.from({ length: 100 }, (): Step[] => [line('NOOP'), { reply: 250 }]).flat(), line('NOOP'), { reply: 421, text: /^421 4\.7\.0 / }, { closed: true }],
  },
];

let m: InboundMaster;
before(async () => {
  const { keyFile: key, certFile: cert } = testCert();
  m = await startInbound({ api: { enabled: false }, inbound: { key, cert, greetingDelay: '200ms', maxRecipients: MAX_RECIPIENTS, maxBadCommands: MAX_BAD, checkAuth: false } });
});
after(() => m.stop());

/** A stored message as text, exactly as received. */
async function stored(id: string): Promise<string> {
  const raw = await m.master.inbound!.inbox.raw(id);
  assert.ok(raw, `message ${id} is stored`);
  const parts: Buffer[] = [];
  for await (const c of raw.chunks) parts.push(c);
  return Buffer.concat(parts).toString('latin1');
}

const CASES: Transcript[] = [
  ...protocolCases({ from: FROM, rcpt: RCPT, maxRecipients: MAX_RECIPIENTS, nthRcpt: (i) => `r${i}@${INBOX_DOMAIN}`, stored }),
  ...OWN_CASES,
];

for (const c of CASES) {
  test(`F11 inbound transcript: ${c.name}`, async () => {
    const stats = m.master.inbound!.inbox.stats();
    const before = stats.messages;
    const ids = await play(m.inboundPort, c, STRANGER);
    assert.equal(stats.messages - before, ids.length, 'exactly the messages that got 250 are stored');
    await c.check?.(ids);
  });
}
