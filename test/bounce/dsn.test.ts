import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import mailsplit, { type MimeNode, type SplitterChunk } from 'mailsplit';
import { buildDsn, mayBounceTo, type DsnInput } from '../../lib/bounce/dsn.js';
import { classifyReply } from '../../lib/bounce/classify.js';

const { Splitter } = mailsplit;

interface Part {
  node: MimeNode;
  body: Buffer;
}

/** Splits a message with mailsplit into its MIME nodes and their bodies. */
async function parseMime(message: Buffer): Promise<Part[]> {
  const splitter = new Splitter();
  const parts: Part[] = [];
  const bodies: Buffer[][] = [];
  splitter.on('data', (chunk: SplitterChunk) => {
    if (chunk.type === 'node') {
      parts.push({ node: chunk, body: Buffer.alloc(0) });
      bodies.push([]);
    } else if (chunk.type === 'body') {
      bodies[bodies.length - 1]!.push(chunk.value);
    }
  });
  splitter.end(message);
  await once(splitter, 'end');
  // mailsplit keeps or drops the CRLF that ends a part depending on how chunks fell; compare without it
  parts.forEach((p, i) => (p.body = Buffer.from(Buffer.concat(bodies[i]!).toString('latin1').replace(/(\r\n)+$/, ''), 'latin1')));
  return parts;
}

/** The header value of a mailsplit node, unfolded. */
const header = (node: MimeNode, key: string) =>
  node.headers.get(key).map((l) => l.slice(l.indexOf(':') + 1).replace(/\r\n[ \t]/g, ' ').trim());

/** message/delivery-status body → [per-message fields, ...per-recipient fields] (RFC 3464 §2.1). */
function statusGroups(body: Buffer): Record<string, string>[] {
  return body
    .toString('latin1')
    .split(/\r\n\r\n/)
    .filter((g) => g.trim())
    .map((group) =>
      Object.fromEntries(
        group
          .replace(/\r\n[ \t]/g, ' ')
          .split('\r\n')
          .map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
      ),
    );
}

function assertWellFormed(message: Buffer) {
  const s = message.toString('latin1');
  assert.doesNotMatch(s, /\r(?!\n)/, 'bare CR');
  assert.doesNotMatch(s, /(?<!\r)\n/, 'bare LF');
  const longest = Math.max(...s.split('\r\n').map((l) => l.length));
  assert.ok(longest <= 998, `a line of ${longest} octets`);
}

const ORIGINAL_HEADERS =
  'Received: from client.test ([192.0.2.1]) by mta.sluice.test (Sluice) with ESMTP id 0123abcd; Mon, 23 Nov 2026 05:00:00 +0000\r\n' +
  'From: Alice <alice@src.test>\r\n' +
  'To: bob@dest.test, carol@dest.test\r\n' +
  'Subject: =?UTF-8?Q?Quarterly_r=C3=A9port?=\r\n' +
  'Message-ID: <orig-1@src.test>\r\n' +
  'Date: Mon, 23 Nov 2026 05:00:00 +0000\r\n\r\n';

const ARRIVAL = Date.parse('2026-11-23T05:00:00Z');
const base = (over: Partial<DsnInput> = {}): DsnInput => ({
  reportingMta: 'mta.sluice.test',
  queueId: '0123abcd0123abcd0123ab',
  arrivalDate: ARRIVAL,
  sender: 'alice@src.test',
  originalHeaders: ORIGINAL_HEADERS,
  now: new Date('2026-11-23T06:00:00Z'),
  recipients: [
    {
      recipient: 'bob@dest.test',
      action: 'failed',
      status: '5.1.1',
      remoteMta: 'mx.dest.test',
      diagnostic: '550 5.1.1 <bob@dest.test>: Recipient address rejected: User unknown in virtual mailbox table',
      lastAttempt: Date.parse('2026-11-23T05:59:00Z'),
      reason: 'Recipient address does not exist',
    },
  ],
  ...over,
});

test('a failure DSN is a multipart/report with the three parts, the real status and the remote reply', async () => {
  const dsn = buildDsn(base());
  assert.equal(dsn.from, '');
  assert.deepEqual(dsn.to, ['alice@src.test']);
  assertWellFormed(dsn.message);
  const parts = await parseMime(dsn.message);
  assert.deepEqual(
    parts.map((p) => p.node.contentType),
    ['multipart/report', 'text/plain', 'message/delivery-status', 'text/rfc822-headers'],
  );
  const root = parts[0]!.node;
  assert.match(header(root, 'content-type')[0]!, /^multipart\/report; report-type=delivery-status; boundary="[^"]+"$/);
  assert.deepEqual(header(root, 'from'), ['"Mail Delivery Subsystem" <MAILER-DAEMON@mta.sluice.test>']);
  assert.deepEqual(header(root, 'to'), ['<alice@src.test>']);
  assert.deepEqual(header(root, 'subject'), ['Delivery Status Notification (Failure)']);
  assert.deepEqual(header(root, 'auto-submitted'), ['auto-replied']);
  assert.deepEqual(header(root, 'mime-version'), ['1.0']);
  assert.deepEqual(header(root, 'date'), ['Mon, 23 Nov 2026 06:00:00 +0000']);
  assert.match(header(root, 'message-id')[0]!, /^<[0-9a-f-]+@mta\.sluice\.test>$/);
  assert.deepEqual(header(root, 'in-reply-to'), ['<orig-1@src.test>']);

  const text = parts[1]!.body.toString('utf8').replace(/\r\n {4}(?=\S)/g, ' ');
  assert.match(header(parts[1]!.node, 'content-type')[0]!, /charset=utf-8/);
  assert.match(text, /could not be delivered/);
  assert.match(text, /permanent/);
  assert.match(text, /<bob@dest\.test>/);
  assert.match(text, /mx\.dest\.test said: 550 5\.1\.1 <bob@dest\.test>: Recipient address rejected: User unknown/);
  assert.match(text, /Recipient address does not exist \(status 5\.1\.1\)/);
  assert.match(text.replace(/\r\n/g, ' '), /subject "Quarterly réport"/);

  const [perMessage, perRecipient, extra] = statusGroups(parts[2]!.body);
  assert.equal(extra, undefined);
  assert.deepEqual(perMessage, {
    'reporting-mta': 'dns; mta.sluice.test',
    'x-sluice-queue-id': '0123abcd0123abcd0123ab',
    'arrival-date': 'Mon, 23 Nov 2026 05:00:00 +0000',
  });
  assert.deepEqual(perRecipient, {
    'final-recipient': 'rfc822; bob@dest.test',
    action: 'failed',
    status: '5.1.1',
    'remote-mta': 'dns; mx.dest.test',
    'diagnostic-code': 'smtp; 550 5.1.1 <bob@dest.test>: Recipient address rejected: User unknown in virtual mailbox table',
    'last-attempt-date': 'Mon, 23 Nov 2026 05:59:00 +0000',
  });
  assert.equal(parts[3]!.body.toString('latin1'), ORIGINAL_HEADERS.replace(/\r\n\r\n$/, ''));
});

test('a delay DSN says until when we keep trying, with Will-Retry-Until and a 4.x.x status', async () => {
  const until = Date.parse('2026-11-28T05:00:00Z');
  const dsn = buildDsn(
    base({
      recipients: [{ recipient: 'carol@dest.test', action: 'delayed', status: '4.2.2', remoteMta: 'mx.dest.test', diagnostic: '452 4.2.2 <carol@dest.test>: Mailbox is full', lastAttempt: ARRIVAL + 4 * 3600_000, willRetryUntil: until }],
      envelopeId: 'env id+1',
    }),
  );
  assertWellFormed(dsn.message);
  const parts = await parseMime(dsn.message);
  assert.deepEqual(header(parts[0]!.node, 'subject'), ['Delivery Status Notification (Delay)']);
  const text = parts[1]!.body.toString('utf8');
  assert.match(text.replace(/\r\n/g, ' '), /keep trying until Sat, 28 Nov 2026 05:00:00 \+0000/);
  assert.match(text, /do not need to send it again/);
  const [perMessage, r] = statusGroups(parts[2]!.body);
  assert.equal(perMessage!['original-envelope-id'], 'env+20id+2B1');
  assert.equal(r!.action, 'delayed');
  assert.equal(r!.status, '4.2.2');
  assert.equal(r!['will-retry-until'], 'Sat, 28 Nov 2026 05:00:00 +0000');
  assert.equal(r!['diagnostic-code'], 'smtp; 452 4.2.2 <carol@dest.test>: Mailbox is full');
});

test('one DSN can report failed and delayed recipients; our own errors are X-Sluice diagnostics', async () => {
  const dsn = buildDsn(
    base({
      recipients: [
        { recipient: 'bob@dest.test', action: 'failed', status: '5.4.4', diagnostic: 'Recipient domain has no mail server address' },
        { recipient: 'carol@dest.test', action: 'delayed', status: 'nonsense', willRetryUntil: ARRIVAL + 86_400_000 },
      ],
    }),
  );
  const parts = await parseMime(dsn.message);
  assert.deepEqual(header(parts[0]!.node, 'subject'), ['Delivery Status Notification (Failure)']);
  const [, failed, delayed] = statusGroups(parts[2]!.body);
  assert.equal(failed!['diagnostic-code'], 'X-Sluice; Recipient domain has no mail server address');
  assert.equal(failed!.status, '5.4.4');
  assert.equal(delayed!.status, '4.0.0', 'a malformed status falls back to the class default');
  const text = parts[1]!.body.toString('utf8');
  assert.match(text, /could not be delivered/);
  assert.match(text, /has not been delivered yet/);
});

test('a multi-line, very long reply is folded into lines of at most 998 octets, cut, and kept on one field', async () => {
  const longReply = ['550-5.7.1 first line', `550-5.7.1 ${'word '.repeat(700)}`, `550 5.7.1 ${'x'.repeat(1500)}`].join('\n');
  const dsn = buildDsn(base({ recipients: [{ recipient: 'bob@dest.test', action: 'failed', status: '5.7.1', diagnostic: longReply }] }));
  assertWellFormed(dsn.message);
  const parts = await parseMime(dsn.message);
  const raw = parts[2]!.body.toString('latin1');
  const diagLines = raw.slice(raw.indexOf('Diagnostic-Code:')).split('\r\n');
  const fieldEnd = diagLines.findIndex((l, i) => i > 0 && !/^[ \t]/.test(l));
  const fieldLines = fieldEnd === -1 ? diagLines : diagLines.slice(0, fieldEnd);
  assert.ok(fieldLines.length > 10, 'folded');
  // folded at spaces to at most 78 characters; only a word longer than that stands alone on a longer line
  for (const l of fieldLines) assert.ok(l.length <= 78 || !/\S \S/.test(l.trim()), `${l.length}: ${l.slice(0, 60)}`);
  const [, r] = statusGroups(parts[2]!.body);
  assert.match(r!['diagnostic-code']!, /^smtp; 550 5\.7\.1 first line word word/);
  assert.ok(r!['diagnostic-code']!.length <= 2100, `${r!['diagnostic-code']!.length} chars`);
  // a word longer than a line is hard-wrapped, never a line past 998
  const word = buildDsn(base({ recipients: [{ recipient: 'bob@dest.test', action: 'failed', status: '5.7.1', diagnostic: `550 5.7.1 ${'y'.repeat(1900)}` }] }));
  assertWellFormed(word.message);
});

test('CR/LF in a remote reply, host, address or id cannot add a header or a MIME part', async () => {
  const evil = 'x\r\nBcc: victim@evil.test\r\nX-Injected: yes\r\n\r\n--fake-boundary\r\nContent-Type: text/html\r\n\r\n<b>hi</b>';
  const dsn = buildDsn(
    base({
      reportingMta: `mta.sluice.test\r\nX-Injected: host`,
      queueId: `abc\nX-Injected: id`,
      sender: `alice@src.test\r\nX-Injected: sender`,
      recipients: [
        {
          recipient: `bob@dest.test\r\nX-Injected: rcpt`,
          action: 'failed',
          status: '5.1.1\r\nX-Injected: status',
          remoteMta: `mx.dest.test\rX-Injected: mta`,
          diagnostic: `550 5.1.1 ${evil}`,
          reason: `why\nX-Injected: reason`,
        },
      ],
    }),
  );
  assertWellFormed(dsn.message);
  const parts = await parseMime(dsn.message);
  assert.equal(parts.length, 4, 'still exactly one multipart with three parts');
  for (const p of parts) {
    assert.deepEqual(p.node.headers.get('x-injected'), []);
    assert.deepEqual(p.node.headers.get('bcc'), []);
  }
  const groups = statusGroups(parts[2]!.body);
  assert.equal(groups.length, 2);
  for (const g of groups) for (const key of Object.keys(g)) assert.match(key, /^(reporting-mta|x-sluice-queue-id|arrival-date|final-recipient|action|status|diagnostic-code|remote-mta)$/, key);
  assert.equal(groups[1]!.status, '5.0.0');
  assert.match(groups[1]!['diagnostic-code']!, /^smtp; 550 5\.1\.1 x Bcc: victim@evil\.test X-Injected: yes --fake-boundary Content-Type: text\/html <b>hi<\/b>$/);
  assert.deepEqual(dsn.to, ['alice@src.testX-Injected:sender']);
});

test('the original headers part is CRLF-only, cut at the end of the header block, and keeps 8-bit octets', async () => {
  const headers = 'Subject: caf\xe9 au lait\nX-Long: ' + 'z'.repeat(2500) + '\rFrom: a@src.test\r\n\r\nbody line that must not appear\r\n';
  const dsn = buildDsn(base({ originalHeaders: headers }));
  assertWellFormed(dsn.message);
  const parts = await parseMime(dsn.message);
  const part = parts[3]!;
  assert.deepEqual(header(part.node, 'content-transfer-encoding'), ['8bit']);
  const body = part.body.toString('latin1');
  assert.ok(body.startsWith('Subject: caf\xe9 au lait\r\nX-Long: zzz'));
  assert.ok(body.endsWith('\r\nFrom: a@src.test'));
  assert.doesNotMatch(body, /body line/);
});

test('a non-ASCII recipient is written as RFC 6533 utf-8 with escapes', async () => {
  const dsn = buildDsn(base({ recipients: [{ recipient: 'jürgen@dest.test', action: 'failed', status: '5.1.1' }] }));
  const [, r] = statusGroups((await parseMime(dsn.message))[2]!.body);
  assert.equal(r!['final-recipient'], 'utf-8; j\\x{FC}rgen@dest.test');
});

test('classification and DSN fit together: the reply class gives the status and the reason', async () => {
  const reply = '550-5.1.1 The email account that you tried to reach does not exist. Please try\n550 5.1.1 https://support.google.com/mail/?p=NoSuchUser a1 - gsmtp';
  const c = classifyReply({ response: reply, code: 'EENVELOPE', phase: 'RCPT' });
  const dsn = buildDsn(base({ recipients: [{ recipient: 'bob@dest.test', action: 'failed', status: c.status, diagnostic: reply, remoteMta: 'mx.dest.test', reason: c.message }] }));
  const [, r] = statusGroups((await parseMime(dsn.message))[2]!.body);
  assert.equal(r!.status, '5.1.1');
  assert.equal(r!['diagnostic-code'], `smtp; ${c.reply}`);
});

test('buildDsn refuses the null sender and an empty recipient list', () => {
  assert.throws(() => buildDsn(base({ sender: '' })), /null sender/);
  assert.throws(() => buildDsn(base({ sender: '<>' })), /null sender/);
  assert.throws(() => buildDsn(base({ recipients: [] })), /no recipients/);
});

test('mayBounceTo: never to the null sender, auto-submitted mail or reports; list and bulk mail do get DSNs', () => {
  const h = (extra: string) => `From: a@src.test\r\nSubject: s\r\n${extra}`;
  const cases: [string, string, boolean][] = [
    ['', h(''), false],
    ['<>', h(''), false],
    ['  ', h(''), false],
    ['alice@src.test', h(''), true],
    ['alice@src.test', h('Auto-Submitted: auto-replied\r\n'), false],
    ['alice@src.test', h('Auto-Submitted: auto-generated\r\n'), false],
    ['alice@src.test', h('AUTO-SUBMITTED: Auto-Notified; owner-email="x@src.test"\r\n'), false],
    ['alice@src.test', h('Auto-Submitted:\r\n auto-generated\r\n'), false],
    ['alice@src.test', h('Auto-Submitted: no\r\n'), true],
    ['alice@src.test', h('Auto-Submitted: No (a person wrote this)\r\n'), true],
    ['alice@src.test', h('Content-Type: multipart/report; report-type=delivery-status;\r\n boundary="b"\r\n'), false],
    ['alice@src.test', h('Content-Type: Multipart/Report; report-type=disposition-notification; boundary="b"\r\n'), false],
    ['alice@src.test', h('Content-Type: multipart/mixed; boundary="b"\r\n'), true],
    ['list-bounces+bob=dest.test@lists.src.test', h('Precedence: list\r\nList-Id: <news.lists.src.test>\r\n'), true],
    ['bulk@src.test', h('Precedence: bulk\r\n'), true],
    ['junk@src.test', h('Precedence: junk\r\n'), true],
  ];
  for (const [sender, originalHeaders, want] of cases) assert.equal(mayBounceTo({ sender, originalHeaders }), want, `${JSON.stringify(sender)} ${JSON.stringify(originalHeaders)}`);
});
