/**
 * Golden SMTP transcripts for F11, in the manner of Postfix's smtpd_*.in/.ref
 * files: each case is data — the bytes a client sends and the replies it must get, in order, down
 * to the server closing the connection — and one runner plays it against any SMTP door
 * (f11-protocol-abuse.test.ts for submission, f11-inbound-protocol-abuse.test.ts for the
 * receiver). A new case is a new row. protocolCases() holds the rows every door must pass alike,
 * given an envelope that door accepts; each test file adds the rows of its own door.
 *
 * Policies these rows pin down:
 * - message content sent right behind DATA, before the 354, is taken as the message (the client
 *   broke PIPELINING's rule, but the bytes are unambiguous);
 * - a command line ended by a bare LF is accepted as a line, as Postfix does;
 * - a client that half-closes (FIN after its last command) still gets every reply, the 250 for
 *   a message included, and then the server closes: no reply lost, no duplicate by retry.
 */
import assert from 'node:assert/strict';
import { SmtpTalk } from '../helpers/smtp-talk.js';

export type Step =
  /** bytes exactly as given (no CRLF added) */
  | { send: string | Buffer }
  /** the next reply: one of these codes, and the text matching */
  | { reply: number | number[]; text?: RegExp }
  /** the server closes the connection with no further reply */
  | { closed: true }
  /** the client half-closes its side (FIN) */
  | { end: true };

export interface Transcript {
  name: string;
  /** wait for the 220 greeting before the first step (default true) */
  greet?: boolean;
  steps: Step[];
  /** checks on what the door stored afterwards; gets the ids the 250s named */
  check?: (ids: string[]) => Promise<void>;
}

/** A command line: the text and CRLF. */
export const line = (s: string): Step => ({ send: s + '\r\n' });

export interface Door {
  /** an envelope the door takes */
  from: string;
  rcpt: string;
  /** recipients one message may have */
  maxRecipients: number;
  /** the i-th distinct recipient the door takes */
  nthRcpt: (i: number) => string;
  /** a stored message as text, its header block and its body */
  stored: (id: string) => Promise<string>;
}

/** The rows every SMTP door must pass alike. */
export function protocolCases(door: Door): Transcript[] {
  const { from, rcpt } = door;
  const EHLO: Step[] = [line('EHLO client.test'), { reply: 250 }];
  const ENVELOPE: Step[] = [...EHLO, line(`MAIL FROM:<${from}>`), { reply: 250 }, line(`RCPT TO:<${rcpt}>`), { reply: 250 }];
  const [local, domain] = from.split('@') as [string, string];
  return [
    { name: 'MAIL before EHLO', steps: [line(`MAIL FROM:<${from}>`), { reply: 503 }] },
    { name: 'RCPT before MAIL', steps: [...EHLO, line(`RCPT TO:<${rcpt}>`), { reply: 503 }] },
    { name: 'DATA before RCPT', steps: [...EHLO, line(`MAIL FROM:<${from}>`), { reply: 250 }, line('DATA'), { reply: 503 }] },
    { name: 'nested MAIL', steps: [...EHLO, line(`MAIL FROM:<${from}>`), { reply: 250 }, line(`MAIL FROM:<b${from}>`), { reply: 503 }] },
    { name: 'RSET ends the transaction', steps: [...ENVELOPE, line('RSET'), { reply: 250 }, line('DATA'), { reply: 503 }] },
    {
      name: `RCPT #${door.maxRecipients + 1} (pipelined in one write)`,
      steps: [
        ...EHLO,
        { send: `MAIL FROM:<${from}>\r\n` + Array.from({ length: door.maxRecipients + 1 }, (_, i) => `RCPT TO:<${door.nthRcpt(i)}>\r\n`).join('') },
        { reply: 250 },
        ...Array.from({ length: door.maxRecipients }, (): Step => ({ reply: 250 })),
        { reply: 452, text: /^452 4\.5\.3 / },
      ],
    },
    { name: '600-byte EHLO argument', steps: [line('EHLO ' + 'h'.repeat(600)), { reply: 501 }] },
    { name: '600-byte address', steps: [...EHLO, line(`MAIL FROM:<${'l'.repeat(580)}@${domain}>`), { reply: [501, 553] }] },
    { name: '17 KB command line', steps: [...EHLO, line('NOOP ' + 'x'.repeat(17 * 1024)), { reply: 421 }, { closed: true }] },
    { name: '17 KB without a line end', steps: [...EHLO, { send: 'MAIL FROM:<' + 'x'.repeat(17 * 1024) }, { reply: 421 }, { closed: true }] },
    { name: 'NUL in an address', steps: [...EHLO, line(`MAIL FROM:<${local}\0b@${domain}>`), { reply: 501 }] },
    { name: 'CR in an address', steps: [...EHLO, line(`MAIL FROM:<${local}\rb@${domain}>`), { reply: 501 }] },
    { name: 'NUL in a recipient', steps: [...EHLO, line(`MAIL FROM:<${from}>`), { reply: 250 }, line(`RCPT TO:<${rcpt}\0>`), { reply: 501 }] },
    { name: 'an HTTP request', steps: [line('GET / HTTP/1.1'), { reply: 421, text: /HTTP/ }, { closed: true }] },
    {
      name: '12 unknown verbs: 421 on the 10th',
      steps: [
        ...EHLO,
        ...Array.from({ length: 9 }, (_, i): Step[] => [line(`FOO${i} bar`), { reply: 500 }]).flat(),
        line('FOO9 bar'),
        { reply: 421 },
        { closed: true },
      ],
    },
    { name: 'BDAT without CHUNKING', steps: [...ENVELOPE, line('BDAT 10 LAST'), { reply: [500, 502] }, line('NOOP'), { reply: 250 }] },
    {
      name: 'message content pipelined before the 354 is the message',
      steps: [...ENVELOPE, { send: 'DATA\r\nSubject: eager\r\n\r\nbody\r\n.\r\n' }, { reply: 354 }, { reply: 250 }],
      check: async ([id]) => assert.match(await door.stored(id!), /^Subject: eager\r$/m),
    },
    {
      name: 'QUIT inside DATA is message text',
      steps: [...ENVELOPE, line('DATA'), { reply: 354 }, { send: 'Subject: q\r\n\r\nQUIT\r\nRSET\r\n.\r\n' }, { reply: 250 }, line('QUIT'), { reply: 221 }, { closed: true }],
      check: async ([id]) => assert.match(await door.stored(id!), /\r\n\r\nQUIT\r\nRSET\r\n$/),
    },
    {
      name: 'commands ended by a bare LF',
      steps: [{ send: 'EHLO client.test\n' }, { reply: 250 }, { send: 'NOOP\n' }, { reply: 250 }],
    },
    {
      name: 'TCP half-close after a pipelined transaction and QUIT',
      steps: [
        ...EHLO,
        { send: `MAIL FROM:<${from}>\r\nRCPT TO:<${rcpt}>\r\nDATA\r\n` },
        { reply: 250 },
        { reply: 250 },
        { reply: 354 },
        { send: 'Subject: half\r\n\r\nclose\r\n.\r\nQUIT\r\n' },
        { end: true },
        { reply: 250 },
        { reply: 221 },
        { closed: true },
      ],
      check: async ([id]) => assert.match(await door.stored(id!), /close\r\n$/),
    },
    {
      name: 'TCP half-close in the middle of DATA stores nothing',
      steps: [...ENVELOPE, line('DATA'), { reply: 354 }, { send: 'Subject: cut\r\n\r\nhalf a mess' }, { end: true }, { closed: true }],
    },
    {
      name: 'TCP half-close after a message, without QUIT: the 250 still comes, then the close',
      steps: [...ENVELOPE, line('DATA'), { reply: 354 }, { send: 'Subject: no quit\r\n\r\nbye\r\n.\r\n' }, { end: true }, { reply: 250 }, { closed: true }],
    },
    // the partial line is read as the last command (the library flushes it at the end of input)
    { name: 'TCP half-close after a partial command', steps: [...EHLO, { send: `MAIL FROM:<${from.slice(0, -2)}` }, { end: true }, { reply: 501 }, { closed: true }] },
    {
      name: 'after all of that, a message still gets 250',
      steps: [...ENVELOPE, line('DATA'), { reply: 354 }, { send: 'Subject: legit\r\n\r\nstill here\r\n.\r\n' }, { reply: 250 }, line('QUIT'), { reply: 221 }, { closed: true }],
    },
  ];
}

/**
 * Plays one transcript on a new connection (from `localAddress` when given); returns the ids the
 * 250 replies named ("queued as <id>": a queue id or an inbox id).
 */
export async function play(port: number, t: Transcript, localAddress?: string): Promise<string[]> {
  const talk = await SmtpTalk.connect(port, '127.0.0.1', localAddress);
  const ids: string[] = [];
  const transcript: string[] = [];
  try {
    if (t.greet ?? true) await talk.expect(220);
    for (const [i, step] of t.steps.entries()) {
      const where = `step ${i} of "${t.name}"; so far:\n${transcript.slice(-6).join('\n')}`;
      if ('send' in step) {
        talk.write(step.send);
        transcript.push(`C: ${JSON.stringify(step.send.toString().slice(0, 80))}`);
      } else if ('end' in step) {
        talk.socket.end();
        transcript.push('C: <FIN>');
      } else if ('reply' in step) {
        const r = await talk.next();
        assert.ok(r, `expected a ${step.reply} reply, the server closed; ${where}`);
        transcript.push(`S: ${r.text.split('\r\n').pop()}`);
        const codes = Array.isArray(step.reply) ? step.reply : [step.reply];
        assert.ok(codes.includes(r.code), `expected ${codes.join('/')}, got ${r.text}; ${where}`);
        if (step.text) assert.match(r.text, step.text, where);
        const id = /queued as ([0-9A-Za-z_-]+)/.exec(r.text)?.[1];
        if (id) ids.push(id);
      } else {
        await talk.waitClosed();
        const extra = await talk.next();
        assert.equal(extra, undefined, `no reply expected before the close; ${where}`);
      }
    }
    return ids;
  } finally {
    talk.close();
  }
}
