/**
 * What the parser makes of received mail (lib/inbound/parse/): links from HTML (entities decoded,
 * anchor text, an image's alt for an anchor without text) and from plain text, de-duplicated in
 * order; decoded text in any transfer encoding and charset; text made from HTML when there is no
 * text part; inline images; a message whose MIME is broken is still kept and served whole.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { linksFromHtml, linksFromText, mergeLinks } from '../../lib/inbound/parse/links.js';
import { startReceiver, type TestReceiver } from '../helpers/inbound.js';

let r: TestReceiver;
before(async () => {
  r = await startReceiver({ api: { ratePerMinute: 0 } });
});
after(() => r.stop());

interface Full {
  text: string | null;
  html: string | null;
  subject: string;
  links: { url: string; text: string }[];
  attachments: { filename: string | null; contentId: string | null; related: boolean; disposition: string | null }[];
  parseError?: string;
}

async function sendRaw(to: string, raw: string): Promise<string> {
  const c = await r.session();
  await c.send('MAIL FROM:<raw@src.test>', 250);
  await c.send(`RCPT TO:<${to}>`, 250);
  await c.send('DATA', 354);
  c.write(raw.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..') + '\r\n.\r\n');
  const id = /queued as (\S+)/.exec((await c.expect(250)).text)![1]!;
  c.close();
  return id;
}

test('links from HTML: http(s) anchors only, entities decoded, their text squashed, an image alt for an anchor without text', () => {
  const html = `
    <a href="https://app.test/verify?token=a1&amp;user=7">Verify
       your   email</a>
    <a href="mailto:help@app.test">mail</a> <a href="javascript:x()">js</a> <a href="/relative">rel</a>
    <a href=" HTTPS://app.test/reset "><img src="x.png" alt="Reset password"></a>
    <a href="https://app.test/&#x3F;q=1">encoded</a>`;
  assert.deepEqual(linksFromHtml(html), [
    { url: 'https://app.test/verify?token=a1&user=7', text: 'Verify your email' },
    { url: 'HTTPS://app.test/reset', text: 'Reset password' },
    { url: 'https://app.test/?q=1', text: 'encoded' },
  ]);
});

test('links from text: explicit http(s) URLs, trailing punctuation left out; bare names and mail addresses are not links', () => {
  const text = 'Open https://app.test/a?b=c, or http://app.test/b. Not ftp://x.test/f, not app.test, not me@app.test.';
  assert.deepEqual(linksFromText(text), [
    { url: 'https://app.test/a?b=c', text: '' },
    { url: 'http://app.test/b', text: '' },
  ]);
});

test('links merge: each URL once, in the order first seen, the first text that names it', () => {
  assert.deepEqual(
    mergeLinks([{ url: 'https://a.test/', text: '' }, { url: 'https://b.test/', text: 'B' }], [{ url: 'https://a.test/', text: 'A' }, { url: 'https://c.test/', text: '' }, { url: 'https://b.test/', text: 'other' }]),
    [
      { url: 'https://a.test/', text: 'A' },
      { url: 'https://b.test/', text: 'B' },
      { url: 'https://c.test/', text: '' },
    ],
  );
});

test('a message with HTML and text: links from both, HTML first, each once', async () => {
  const id = await r.send({
    to: 'links@inbox.test',
    text: 'Verify: https://app.test/verify?token=a1&user=7 or https://app.test/help',
    html: '<p><a href="https://app.test/verify?token=a1&amp;user=7">Verify</a></p>',
  });
  const { body } = await r.json<Full>(`/api/messages/${id}`);
  assert.deepEqual(body.links, [
    { url: 'https://app.test/verify?token=a1&user=7', text: 'Verify' },
    { url: 'https://app.test/help', text: '' },
  ]);
});

test('codes: found in the subject and text, listed with the message and in its inbox listing', async () => {
  const id = await r.send({ to: 'otp@inbox.test', subject: 'Sign in to Acme', text: 'Your code is 482913. It expires at 10:45.', html: '<p>Your code is <b>482913</b>.</p>' });
  const { body } = await r.json<Full & { codes: string[] }>(`/api/messages/${id}`);
  assert.deepEqual(body.codes, ['482913']);
  const listed = await r.json<{ messages: { codes: string[] }[] }>('/api/inboxes/otp@inbox.test/messages');
  assert.deepEqual(listed.body.messages[0]?.codes, ['482913']);
});

test('quoted-printable and base64 bodies in other charsets come out decoded', async () => {
  const qp = await sendRaw('decode@inbox.test', [
    'Subject: =?ISO-8859-1?Q?Gr=FC=DFe?=',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=ISO-8859-1',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    'Sch=F6ne Gr=FC=DFe, a long line that is soft =',
    'broken here.',
  ].join('\n'));
  const a = (await r.json<Full>(`/api/messages/${qp}`)).body;
  assert.equal(a.subject, 'Grüße');
  assert.equal(a.text?.trim(), 'Schöne Grüße, a long line that is soft broken here.');
  const b64 = await sendRaw('decode@inbox.test', ['Subject: b', 'Content-Type: text/html; charset=utf-8', 'Content-Transfer-Encoding: base64', '', Buffer.from('<p>Dein Code: <b>123456</b></p>').toString('base64')].join('\n'));
  const b = (await r.json<Full>(`/api/messages/${b64}`)).body;
  assert.equal(b.html, '<p>Dein Code: <b>123456</b></p>');
  assert.match(b.text ?? '', /Dein Code: 123456/, 'text made from the HTML when there is no text part');
});

test('an inline image of the HTML is an attachment with its Content-ID, marked related', async () => {
  const id = await r.send({
    to: 'inline@inbox.test',
    html: '<p><img src="cid:logo@app.test"></p>',
    attachments: [{ filename: 'logo.png', content: Buffer.from('png'), cid: 'logo@app.test' }],
  });
  const { body } = await r.json<Full>(`/api/messages/${id}`);
  assert.equal(body.attachments.length, 1);
  assert.equal(body.attachments[0]!.contentId, '<logo@app.test>');
  assert.equal(body.attachments[0]!.related, true);
  assert.match(body.html ?? '', /cid:logo@app\.test/);
});

test('a message the parser gives up on (over 1,000 MIME parts) is kept: what could be read, a parseError, and the raw source whole', async () => {
  const parts = Array.from({ length: 1100 }, (_, i) => `--b\nContent-Type: text/plain\n\npart ${i}`).join('\n');
  const raw = ['Subject: broken', 'Content-Type: multipart/mixed; boundary="b"', '', parts, '--b--', ''].join('\n');
  const id = await sendRaw('broken@inbox.test', raw);
  const { status, body } = await r.json<Full>(`/api/messages/${id}`);
  assert.equal(status, 200);
  assert.equal(body.subject, 'broken');
  assert.match(body.parseError ?? '', /./, 'the parser said why');
  const rawRes = await fetch(`${r.api}/api/messages/${id}/raw`);
  assert.equal((await rawRes.text()).replace(/\r\n/g, '\n'), raw + '\n');
});
