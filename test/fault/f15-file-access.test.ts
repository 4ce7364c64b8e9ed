/**
 * F15 (4–8): POST /send must never read a local file or fetch a URL. Every place nodemailer's
 * composer would take `path` or `href` — attachments, alternatives, raw, text, html, watchHtml,
 * amp, icalEvent — is refused with a 400 naming the field, and a loopback canary HTTP server
 * sees 0 requests. (The slow twin, f15-file-access.slow.test.ts, runs Sluice under strace and
 * proves 0 openat of the named files.)
 *
 * data: URIs: nodemailer would decode `path: "data:…"` itself, with no file read. We refuse
 * them anyway: "no path, no href" is one rule with no exceptions to get wrong, and the same bytes
 * can be sent as `content` with `encoding: "base64"`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { startCanary, type Canary } from '../helpers/canary.js';
import { isErrorShape, postJson, type Json } from '../helpers/http.js';

let m: TestMaster;
let canary: Canary;
before(async () => {
  [m, canary] = await Promise.all([startMaster(), startCanary()]);
});
after(() => Promise.all([m.stop(), canary.close()]));

const base = { from: 'a@src.test', to: 'r@dest.test', subject: 'f15' };

/** [label, extra fields, the field the 400 must name] */
function vectors(): [string, Json, RegExp][] {
  const c = canary.url;
  return [
    ['attachment path /etc/passwd', { text: 'x', attachments: [{ path: '/etc/passwd' }] }, /^attachments\[0\]\.path: /],
    ['attachment path file:///etc/passwd', { text: 'x', attachments: [{ filename: 'p', path: 'file:///etc/passwd' }] }, /^attachments\[0\]\.path: /],
    ['attachment path http URL', { text: 'x', attachments: [{ path: `${c}/attachment-path` }] }, /^attachments\[0\]\.path: /],
    ['attachment href', { text: 'x', attachments: [{ filename: 'a.txt', href: `${c}/attachment-href` }] }, /^attachments\[0\]\.href: /],
    ['second attachment path', { text: 'x', attachments: [{ content: 'fine' }, { path: '/etc/hostname' }] }, /^attachments\[1\]\.path: /],
    ['raw path /etc/shadow', { raw: { path: '/etc/shadow' } }, /^raw\.path: /],
    ['raw href', { raw: { href: `${c}/raw` } }, /^raw\.href: /],
    ['text path', { text: { path: '/etc/passwd' } }, /^text\.path: /],
    ['html path URL', { html: { path: `${c}/html` } }, /^html\.path: /],
    ['watchHtml path', { watchHtml: { path: '/etc/passwd' } }, /^watchHtml\.path: /],
    ['icalEvent path', { text: 'x', icalEvent: { path: '/etc/passwd' } }, /^icalEvent\.path: /],
    ['icalEvent href', { text: 'x', icalEvent: { method: 'REQUEST', href: `${c}/ical` } }, /^icalEvent\.href: /],
    ['amp href', { text: 'x', amp: { href: `${c}/amp` } }, /^amp\.href: /],
    ['alternative path', { text: 'x', alternatives: [{ contentType: 'text/x-a', path: '/etc/passwd' }] }, /^alternatives\[0\]\.path: /],
    ['alternative href', { text: 'x', alternatives: [{ contentType: 'text/x-a', href: `${c}/alt` }] }, /^alternatives\[0\]\.href: /],
    ['data: URI in attachment path', { text: 'x', attachments: [{ filename: 'd.txt', path: 'data:text/plain;base64,aGVsbG8=' }] }, /^attachments\[0\]\.path: /],
    ['data: URI in html path', { html: { path: 'data:text/html,<b>x</b>' } }, /^html\.path: /],
    // a string where nodemailer expects content is content, never a path: stored as text
  ];
}

test('path and href are refused with 400 everywhere, and the canary is never hit', async () => {
  for (const [label, extra, field] of vectors()) {
    const r = await postJson(`${m.api}/send`, { ...base, ...extra });
    assert.equal(r.status, 400, `${label}: ${JSON.stringify(r.body)}`);
    assert.ok(isErrorShape(r.body), label);
    assert.match(String(r.body.message), field, label);
    assert.match(String(r.body.message), /content must be given inline.*not allowed/, label);
  }
  assert.deepEqual(canary.hits, [], 'no request reached the canary');
  assert.equal(m.master.store.counters.totals().queued, 0, 'nothing was queued');
});

test('a path-looking string given as content is stored as text, not read', async () => {
  const r = await postJson(`${m.api}/send`, { ...base, text: '/etc/passwd', attachments: [{ filename: 'x.txt', content: 'file:///etc/passwd' }] });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const chunks: Buffer[] = [];
  for await (const c of m.master.store.readBody(String(r.body.id))) chunks.push(c);
  const body = Buffer.concat(chunks).toString('latin1');
  assert.doesNotMatch(body, /root:x:0:0/, 'no /etc/passwd content');
  assert.match(body, /\/etc\/passwd/);
  assert.deepEqual(canary.hits, []);
});
