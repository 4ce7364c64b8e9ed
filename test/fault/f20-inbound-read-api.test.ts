/**
 * F20: the inbox read API serves attacker-written mail from its own origin,
 * and must not be a way into the file system, into other people's mail, or into a browser.
 *
 * - Paths that try to climb (../, %2e%2e%2f, %2F) or are overlong get 400/404/414 with a JSON
 *   error, never a file and never a 5xx.
 * - Message ids carry 128 random bits: guesses made from real ids (same time prefix, the next
 *   counter, another id's random part) and random well-formed ids never hit, over HTTP (1,000,
 *   from two addresses) and in the process (100,000).
 * - HTML with scripts, handlers, javascript: links, frames, forms and remote images is served as
 *   sent only with a sandboxing Content-Security-Policy that runs no script, and sanitised
 *   without any of them; every body the API serves says nosniff, and raw sources and
 *   attachments (an HTML and an SVG one here) also carry a sandboxing policy.
 * - The raw source is message/rfc822 with Content-Disposition: attachment (Mailsac's /api/raw is
 *   text/plain, as Mailsac serves it).
 * - One address past ratePerMinute gets 429 with Retry-After and a JSON error; another address
 *   is not affected.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { rawHttp, startInbound, type InboundMaster, type RawResponse } from './inbound-kit.js';

const RATE = 600;
const INBOX = 'target@inbox.test';
const HTML = [
  '<html><body><p>Hello</p>',
  "<script>alert('xss')</script>",
  '<img src="x" onerror="alert(2)">',
  '<a href="javascript:alert(3)">click</a>',
  '<img src="http://tracker.test/pixel.gif">',
  '<iframe src="http://evil.test/"></iframe>',
  '<form action="http://evil.test/steal"><input name="a"></form>',
  '<a href="https://ok.test/page">a link</a>',
  '</body></html>',
].join('\r\n');
const EVIL_SVG = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(4)</script></svg>';

function message(subject: string): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64').replace(/.{76}/g, '$&\r\n');
  return [
    'From: <attacker@evil.test>',
    `To: <${INBOX}>`,
    `Subject: ${subject}`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="outer"',
    '',
    '--outer',
    'Content-Type: multipart/alternative; boundary="alt"',
    '',
    '--alt',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Hello in plain text',
    '--alt',
    'Content-Type: text/html; charset=utf-8',
    '',
    HTML,
    '--alt--',
    '--outer',
    'Content-Type: text/html; name="evil.html"',
    'Content-Disposition: attachment; filename="evil.html"',
    'Content-Transfer-Encoding: base64',
    '',
    b64(`<script>alert('attachment')</script>`),
    '--outer',
    'Content-Type: image/svg+xml; name="evil.svg"',
    'Content-Disposition: attachment; filename="evil.svg"',
    'Content-Transfer-Encoding: base64',
    '',
    b64(EVIL_SVG),
    '--outer--',
    '',
  ].join('\r\n');
}

let m: InboundMaster;
const ids: string[] = [];
before(async () => {
  m = await startInbound({ inbound: { api: { ratePerMinute: RATE }, checkAuth: false } });
  for (let i = 0; i < 5; i++) {
    const c = await SmtpTalk.connect(m.inboundPort, '127.0.0.1', '127.20.0.1');
    await c.expect(220);
    await c.send('EHLO evil.test', 250);
    await c.send('MAIL FROM:<attacker@evil.test>', 250);
    await c.send(`RCPT TO:<${INBOX}>`, 250);
    await c.send('DATA', 354);
    c.write(message(`payload ${i}`).replace(/^\./gm, '..') + '.\r\n');
    const done = await c.expect(250);
    ids.push(/queued as (\S+)/.exec(done.text)![1]!);
    c.close();
  }
});
after(() => m.stop());

const get = (path: string, localAddress = '127.20.0.2') => rawHttp(m.api, path, { localAddress });
const header = (r: RawResponse, name: string) => String(r.headers[name] ?? '');

/** A JSON error a person can read, never a stack, never a file. */
function assertRefused(r: RawResponse, path: string): void {
  assert.ok([400, 404, 414].includes(r.status), `${path}: ${r.status} ${r.body.toString().slice(0, 200)}`);
  assert.doesNotMatch(r.body.toString(), /root:|\/bin\/|at .*\.js:\d+/, `${path}: nothing of a file or a stack`);
  if (r.status !== 414) {
    const body = JSON.parse(r.body.toString()) as { error?: unknown; message?: unknown };
    assert.ok(typeof body.error === 'string' && typeof body.message === 'string', `${path}: a JSON error`);
  }
}

test('F20: paths that climb, or are overlong, are refused with a JSON error', async () => {
  const id = ids[0]!;
  const paths = [
    '/api/inboxes/../../etc/passwd/messages',
    '/api/inboxes/..%2F..%2Fetc%2Fpasswd/messages',
    '/api/inboxes/%2e%2e%2f%2e%2e%2fetc%2fpasswd/messages',
    '/api/inboxes/..%252F..%252Fetc%252Fpasswd/messages',
    `/api/inboxes/${INBOX}/messages/..%2F..%2F..%2Fetc%2Fpasswd`,
    '/api/messages/..%2F..%2F..%2Fetc%2Fpasswd',
    '/api/messages/..%2F..%2F..%2Fetc%2Fpasswd/raw',
    `/api/messages/${id}/attachments/..%2F..%2Fetc%2Fpasswd`,
    `/api/messages/${id}/attachments/-1`,
    `/api/messages/${id}/attachments/99`,
    '/api/raw/..%2F..%2Fetc%2Fpasswd/x',
    `/api/raw/${INBOX}/..%2F..%2Fetc%2Fpasswd`,
    `/api/addresses/${INBOX}/messages/${id}/attachments/..%2F..%2Fetc%2Fpasswd`,
    `/api/inboxes/${'a'.repeat(65)}@inbox.test/messages`,
    `/api/inboxes/${'a'.repeat(64)}@${'b'.repeat(300)}.test/messages`,
    `/api/inboxes/${'a'.repeat(5000)}@inbox.test/messages`,
    `/api/messages/${'0'.repeat(65)}`,
    `/api/messages/${'0'.repeat(10_000)}/raw`,
    '/api/messages/%00',
    `/api/inboxes/a%00b@inbox.test/messages`,
  ];
  for (const path of paths) assertRefused(await get(path), path);
});

test('F20: ids carry 128 random bits; 1,000 guesses over HTTP and 100,000 in the process never hit', { timeout: 120_000 }, async () => {
  for (const id of ids) assert.match(id, /^[0-9a-f]{16}[A-Za-z0-9_-]{22}$/);
  const tails = new Set(ids.map((id) => id.slice(16)));
  assert.equal(tails.size, ids.length, 'no two ids share their random part');
  assert.ok(ids.every((id) => Buffer.from(id.slice(16), 'base64url').length === 16), '22 base64url characters: 16 random bytes');

  const tail = () => randomBytes(16).toString('base64url');
  const guesses: string[] = [];
  for (const id of ids) {
    const prefix = id.slice(0, 16);
    const time = id.slice(0, 12);
    const counter = parseInt(id.slice(12, 16), 16);
    for (let d = 1; d <= 5; d++) guesses.push(time + (counter + d).toString(16).padStart(4, '0') + id.slice(16));
    for (const other of ids) if (other !== id) guesses.push(prefix + other.slice(16));
    while (guesses.length % 200) guesses.push(prefix + tail());
  }
  while (guesses.length < 1000) guesses.push(Date.now().toString(16).padStart(12, '0') + '0000' + tail());
  let hits = 0;
  for (const [i, guess] of guesses.entries()) {
    const path = i % 2 ? `/api/messages/${guess}` : `/api/addresses/${INBOX}/messages/${guess}`;
    const r = await get(path, i % 2 ? '127.20.1.1' : '127.20.1.2');
    if (r.status === 200) hits++;
    else assert.equal(r.status, 404, `${path}: ${r.status}`);
  }
  assert.equal(hits, 0, 'no guess over HTTP found a message');

  const inbox = m.master.inbound!.inbox;
  const started = Date.now();
  let found = 0;
  for (let i = 0; i < 100_000; i++) {
    const prefix = ids[i % ids.length]!.slice(0, 16);
    if (await inbox.message(prefix + tail())) found++;
  }
  console.log(`# 100,000 guesses in the process in ${Date.now() - started} ms, ${found} hits`);
  assert.equal(found, 0);
  for (const id of ids) assert.ok(await inbox.message(id), 'the real ids are there');
});

test('F20: HTML is served only under a sandboxing CSP, sanitised without scripts, handlers, frames, forms or remote images', async () => {
  const id = ids[0]!;
  for (const path of [`/api/messages/${id}/html`, `/api/dirty/${INBOX}/${id}`]) {
    const r = await get(path);
    assert.equal(r.status, 200, path);
    assert.match(header(r, 'content-type'), /^text\/html/);
    assert.match(r.body.toString(), /<script>/, `${path} is the HTML as sent`);
    const csp = header(r, 'content-security-policy');
    assert.match(csp, /(^|;)\s*sandbox\s*(;|$)/, `${path}: sandboxed, with no allow-scripts (${csp})`);
    assert.match(csp, /default-src 'none'/, path);
    assert.doesNotMatch(csp, /script-src|unsafe-eval|allow-scripts/, path);
    assert.equal(header(r, 'x-content-type-options'), 'nosniff', path);
  }
  for (const path of [`/api/messages/${id}/html?sanitized=1`, `/api/body/${INBOX}/${id}`]) {
    const r = await get(path);
    assert.equal(r.status, 200, path);
    const html = r.body.toString();
    for (const bad of [/<script/i, /onerror/i, /javascript:/i, /tracker\.test/, /<iframe/i, /<form/i]) assert.doesNotMatch(html, bad, `${path}: ${bad}`);
    assert.match(html, /https:\/\/ok\.test\/page/, `${path}: an ordinary link stays`);
    assert.match(header(r, 'content-security-policy'), /(^|;)\s*sandbox\s*(;|$)/, path);
    assert.equal(header(r, 'x-content-type-options'), 'nosniff', path);
  }
});

test('F20: raw sources and attachments are downloads that never run as a page of the API', async () => {
  const id = ids[0]!;
  const raw = await get(`/api/messages/${id}/raw`);
  assert.equal(raw.status, 200);
  assert.equal(header(raw, 'content-type'), 'message/rfc822');
  assert.match(header(raw, 'content-disposition'), /^attachment;/);
  assert.equal(header(raw, 'x-content-type-options'), 'nosniff');
  assert.match(header(raw, 'content-security-policy'), /(^|;)\s*sandbox\s*(;|$)/, 'raw: sandboxed');

  const mailsacRaw = await get(`/api/raw/${INBOX}/${id}`);
  assert.equal(mailsacRaw.status, 200);
  assert.match(header(mailsacRaw, 'content-type'), /^text\/plain/);
  assert.equal(header(mailsacRaw, 'x-content-type-options'), 'nosniff');
  assert.match(header(mailsacRaw, 'content-security-policy'), /(^|;)\s*sandbox\s*(;|$)/, 'Mailsac raw: sandboxed');

  const text = await get(`/api/messages/${id}/text`);
  assert.match(header(text, 'content-type'), /^text\/plain/);
  assert.equal(header(text, 'x-content-type-options'), 'nosniff');

  for (const [n, type, name] of [[0, /^text\/html/, 'evil.html'], [1, /^image\/svg\+xml/, 'evil.svg']] as const) {
    for (const path of [`/api/messages/${id}/attachments/${n}`, `/api/addresses/${INBOX}/messages/${id}/attachments/${name}`]) {
      const r = await get(path);
      assert.equal(r.status, 200, path);
      assert.match(header(r, 'content-type'), type, path);
      assert.match(header(r, 'content-disposition'), /^attachment;/, path);
      assert.equal(header(r, 'x-content-type-options'), 'nosniff', path);
      assert.match(header(r, 'content-security-policy'), /(^|;)\s*sandbox\s*(;|$)/, `${path}: attacker's ${name} is sandboxed too`);
    }
  }
});

test(`F20: one address past ${RATE} requests a minute gets 429 with Retry-After; another is not affected`, { timeout: 60_000 }, async () => {
  const path = `/api/inboxes/${INBOX}/messages`;
  let first429: RawResponse | undefined;
  let n = 0;
  for (; n < RATE + 10 && !first429; n++) {
    const r = await get(path, '127.20.2.1');
    if (r.status === 429) first429 = r;
    else assert.equal(r.status, 200);
  }
  assert.ok(first429, `no 429 after ${n} requests`);
  assert.equal(n, RATE + 1, `the first refusal is request ${RATE + 1}`);
  const retryAfter = Number(header(first429, 'retry-after'));
  assert.ok(Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= 60, `Retry-After: ${header(first429, 'retry-after')}`);
  const body = JSON.parse(first429.body.toString()) as { error?: unknown; message?: unknown; stack?: unknown };
  assert.ok(typeof body.error === 'string' && typeof body.message === 'string' && body.stack === undefined, `a JSON error: ${first429.body}`);
  assert.equal((await get(path, '127.20.2.2')).status, 200, 'another address is served');
});
