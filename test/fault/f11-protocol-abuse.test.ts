/**
 * F11 (reliability.md §2): malformed commands and protocol abuse, as golden transcripts in the
 * manner of Postfix's smtpd_*.in/.ref files. Each case is data: the bytes the client sends and the
 * replies it must get, in order, down to the server closing the connection. The runner is one
 * function; a new case is a new row. The fuzz half of F11 is f11-fuzz.slow.test.ts.
 *
 * Policies these transcripts pin down:
 * - message content sent right behind DATA, before the 354, is taken as the message (the client
 *   broke PIPELINING's rule, but the bytes are unambiguous);
 * - a command line ended by a bare LF is accepted as a line, as Postfix does;
 * - AUTH where it is not offered is 503 5.5.1, STARTTLS where it is not offered is 500;
 * - a client that half-closes (FIN after its last command) still gets every reply, the 250 for
 *   a message included, and then the server closes: no reply lost, no duplicate by retry.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { testCert } from '../helpers/tls-cert.js';

type Listener = 'smtp' | 'tls' | 'early' | 'noauth';

type Step =
  /** bytes exactly as given (no CRLF added) */
  | { send: string | Buffer }
  /** the next reply: one of these codes, and the text matching */
  | { reply: number | number[]; text?: RegExp }
  /** the server closes the connection with no further reply */
  | { closed: true }
  /** the client half-closes its side (FIN) */
  | { end: true };

interface Case {
  name: string;
  listener?: Listener;
  /** wait for the 220 greeting before the first step (default true) */
  greet?: boolean;
  steps: Step[];
  /** checks on the queue afterwards; gets the ids the 250s named */
  check?: (ids: string[]) => Promise<void>;
}

const line = (s: string): Step => ({ send: s + '\r\n' });
const EHLO: Step[] = [line('EHLO client.test'), { reply: 250 }];
const ENVELOPE: Step[] = [...EHLO, line('MAIL FROM:<a@x.test>'), { reply: 250 }, line('RCPT TO:<r@y.test>'), { reply: 250 }];

const CASES: Case[] = [
  { name: 'MAIL before EHLO', steps: [line('MAIL FROM:<a@x.test>'), { reply: 503 }] },
  { name: 'RCPT before MAIL', steps: [...EHLO, line('RCPT TO:<r@y.test>'), { reply: 503 }] },
  { name: 'DATA before RCPT', steps: [...EHLO, line('MAIL FROM:<a@x.test>'), { reply: 250 }, line('DATA'), { reply: 503 }] },
  { name: 'nested MAIL', steps: [...EHLO, line('MAIL FROM:<a@x.test>'), { reply: 250 }, line('MAIL FROM:<b@x.test>'), { reply: 503 }] },
  { name: 'RSET ends the transaction', steps: [...ENVELOPE, line('RSET'), { reply: 250 }, line('DATA'), { reply: 503 }] },
  {
    name: 'RCPT #1001 (pipelined in one write)',
    steps: [
      ...EHLO,
      { send: 'MAIL FROM:<a@x.test>\r\n' + Array.from({ length: 1001 }, (_, i) => `RCPT TO:<r${i}@y.test>\r\n`).join('') },
      ...Array.from({ length: 1001 }, (): Step => ({ reply: 250 })),
      { reply: 452, text: /^452 4\.5\.3 / },
    ],
  },
  { name: '600-byte EHLO argument', steps: [line('EHLO ' + 'h'.repeat(600)), { reply: 501 }] },
  { name: '600-byte address', steps: [...EHLO, line(`MAIL FROM:<${'l'.repeat(580)}@x.test>`), { reply: [501, 553] }] },
  { name: '17 KB command line', steps: [...EHLO, line('NOOP ' + 'x'.repeat(17 * 1024)), { reply: 421 }, { closed: true }] },
  { name: '17 KB without a line end', steps: [...EHLO, { send: 'MAIL FROM:<' + 'x'.repeat(17 * 1024) }, { reply: 421 }, { closed: true }] },
  { name: 'NUL in an address', steps: [...EHLO, line('MAIL FROM:<a\0b@x.test>'), { reply: 501 }] },
  { name: 'CR in an address', steps: [...EHLO, line('MAIL FROM:<a\rb@x.test>'), { reply: 501 }] },
  { name: 'NUL in a recipient', steps: [...EHLO, line('MAIL FROM:<a@x.test>'), { reply: 250 }, line('RCPT TO:<r@y.test\0>'), { reply: 501 }] },
  { name: 'an HTTP request', greet: true, steps: [line('GET / HTTP/1.1'), { reply: 421, text: /HTTP/ }, { closed: true }] },
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
  { name: 'talking before the greeting', listener: 'early', greet: false, steps: [line('EHLO client.test'), { reply: 421, text: /too soon/ }, { closed: true }] },
  {
    name: 'AUTH when it is not offered',
    listener: 'noauth',
    steps: [line('EHLO client.test'), { reply: 250, text: /^(?![\s\S]*AUTH)/ }, line('AUTH PLAIN AGFsaWNlAHB3'), { reply: 503, text: /^503 5\.5\.1 / }],
  },
  { name: 'STARTTLS with an argument', listener: 'tls', steps: [...EHLO, line('STARTTLS now'), { reply: 501 }, line('NOOP'), { reply: 250 }] },
  { name: 'STARTTLS when it is not offered', steps: [...EHLO, line('STARTTLS'), { reply: [500, 502] }, line('NOOP'), { reply: 250 }] },
  { name: 'BDAT without CHUNKING', steps: [...ENVELOPE, line('BDAT 10 LAST'), { reply: [500, 502] }, line('NOOP'), { reply: 250 }] },
  {
    name: 'message content pipelined before the 354 is the message',
    steps: [...ENVELOPE, { send: 'DATA\r\nSubject: eager\r\n\r\nbody\r\n.\r\n' }, { reply: 354 }, { reply: 250 }],
    check: async ([id]) => assert.match((await m.master.store.getMeta(id!))!.subject, /eager/),
  },
  {
    name: 'QUIT inside DATA is message text',
    steps: [...ENVELOPE, line('DATA'), { reply: 354 }, { send: 'Subject: q\r\n\r\nQUIT\r\nRSET\r\n.\r\n' }, { reply: 250 }, line('QUIT'), { reply: 221 }, { closed: true }],
    check: async ([id]) => assert.equal((await body(id!)).toString(), 'QUIT\r\nRSET\r\n'),
  },
  {
    name: 'commands ended by a bare LF',
    steps: [{ send: 'EHLO client.test\n' }, { reply: 250 }, { send: 'NOOP\n' }, { reply: 250 }],
  },
  {
    name: 'TCP half-close after a pipelined transaction and QUIT',
    steps: [
      ...EHLO,
      { send: 'MAIL FROM:<a@x.test>\r\nRCPT TO:<r@y.test>\r\nDATA\r\n' },
      { reply: 250 },
      { reply: 250 },
      { reply: 354 },
      { send: 'Subject: half\r\n\r\nclose\r\n.\r\nQUIT\r\n' },
      { end: true },
      { reply: 250 },
      { reply: 221 },
      { closed: true },
    ],
    check: async ([id]) => assert.ok(await m.master.store.getMeta(id!)),
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
  { name: 'TCP half-close after a partial command', steps: [...EHLO, { send: 'MAIL FROM:<a@x.te' }, { end: true }, { reply: 501 }, { closed: true }] },
];

let m: TestMaster;
const ports = new Map<Listener, number>();
before(async () => {
  const { key, cert } = testCert();
  m = await startMaster({
    api: { enabled: false },
    smtp: {
      interfaces: {
        tls: { port: 0, key, cert },
        early: { port: 0, greetingDelay: '200ms' },
        noauth: { port: 0, authMethods: [] },
      },
    },
  });
  ports.set('smtp', m.smtpPort);
  for (const name of ['tls', 'early', 'noauth'] as const) ports.set(name, m.port(`smtp.interfaces.${name}`));
});
after(() => m.stop());

async function body(id: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of m.master.store.readBody(id)) parts.push(c);
  return Buffer.concat(parts);
}

async function messageCount(): Promise<number> {
  let n = 0;
  for await (const _ of m.master.store.db.keys({ gte: 'm:', lt: 'm;' })) n++;
  return n;
}

/** Plays one transcript; returns the queue ids of the messages it got 250 for. */
async function play(c: Case): Promise<string[]> {
  const talk = await SmtpTalk.connect(ports.get(c.listener ?? 'smtp')!);
  const ids: string[] = [];
  const transcript: string[] = [];
  try {
    if (c.greet ?? true) await talk.expect(220);
    for (const [i, step] of c.steps.entries()) {
      const where = `step ${i} of "${c.name}"; so far:\n${transcript.slice(-6).join('\n')}`;
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
        const id = /queued as ([0-9a-f]+)/.exec(r.text)?.[1];
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

for (const c of CASES) {
  test(`F11 transcript: ${c.name}`, async () => {
    const before = await messageCount();
    const ids = await play(c);
    const stored = (await messageCount()) - before;
    assert.equal(stored, ids.length, 'exactly the messages that got 250 are stored');
    await c.check?.(ids);
  });
}

test('F11: after all of that, the server still takes a message', async () => {
  const ids = await play({
    name: 'legit',
    steps: [...ENVELOPE, line('DATA'), { reply: 354 }, { send: 'Subject: legit\r\n\r\nstill here\r\n.\r\n' }, { reply: 250 }, line('QUIT'), { reply: 221 }, { closed: true }],
  });
  assert.equal(ids.length, 1);
});
