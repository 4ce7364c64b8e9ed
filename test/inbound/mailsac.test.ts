/**
 * The Mailsac-compatible routes (lib/inbound/api/mailsac-routes.ts) answer Mailsac's official
 * client, @mailsac/api (generated from Mailsac's OpenAPI document, over axios), pointed at Sluice
 * by its base URL alone: the way a suite written against Mailsac moves over.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Mailsac } from '@mailsac/api';
import { startReceiver, type TestReceiver } from '../helpers/inbound.js';

let r: TestReceiver;
let mailsac: Mailsac<unknown>;
before(async () => {
  r = await startReceiver({ api: { ratePerMinute: 0 } }, { api: { token: 'k3y' } });
  mailsac = new Mailsac({ baseURL: `${r.api}/api`, headers: { 'Mailsac-Key': 'k3y' } });
});
after(() => r.stop());

test('a test suite written for Mailsac: list, read, links, raw, text, HTML, headers, attachments, read flag, count, delete', async () => {
  const address = 'signup@inbox.test';
  const photo = Buffer.from('\x89PNG fake image bytes');
  const first = await r.send({ to: address, subject: 'older' });
  const id = await r.send({
    from: 'Shop <shop@src.test>',
    to: address,
    cc: 'boss@elsewhere.test',
    subject: 'Confirm your account',
    text: 'Confirm at https://shop.test/confirm?t=abc',
    html: '<p>Click <a href="https://shop.test/confirm?t=abc">confirm</a> <script>x()</script></p>',
    attachments: [{ filename: 'photo.png', content: photo, contentType: 'image/png' }],
  });

  const list = await mailsac.messages.listMessages(address);
  assert.equal(list.status, 200);
  assert.deepEqual(list.data.map((m) => m._id), [id, first], 'newest first');
  const m = list.data[0]!;
  assert.equal(m.inbox, address);
  assert.equal(m.domain, 'inbox.test');
  assert.equal(m.subject, 'Confirm your account');
  assert.deepEqual(m.from, [{ name: 'Shop', address: 'shop@src.test' }]);
  assert.deepEqual(m.to, [{ address, name: '' }]);
  assert.deepEqual(m.links, ['https://shop.test/confirm?t=abc']);
  const md5 = createHash('md5').update(photo).digest('hex');
  assert.deepEqual(m.attachments, [md5]);
  assert.equal(m.rtls, false);
  assert.equal(m.read, false);
  assert.ok(!Number.isNaN(Date.parse(m.received!)));

  assert.equal((await mailsac.messages.countMessages(address)).data.count, 2);
  const meta = await mailsac.messages.getMessageMetadata(address, id);
  assert.equal(meta.data._id, id);

  const raw = await mailsac.messages.getFullRawMessage(address, id, {});
  assert.match(String(raw.data), /^Content-Type: multipart\/mixed|Subject: Confirm your account/m);
  const text = await mailsac.messages.getBodyPlainText(address, id, {});
  assert.match(String(text.data), /Confirm at https:\/\/shop\.test\/confirm\?t=abc/);
  const dirty = await mailsac.messages.getBodyDirty(address, id, {});
  assert.match(String(dirty.data), /<script>/);
  const clean = await mailsac.messages.getBodySanitized(address, id, {});
  assert.doesNotMatch(String(clean.data), /<script>/);
  assert.match(String(clean.data), /confirm<\/a>/);

  const ordered = await mailsac.messages.getHeaders(address, id, { messageHeadersFormat: 'json-ordered' });
  assert.ok((ordered.data as unknown as { name: string; value: string }[]).some((h) => h.name === 'subject' && h.value === 'Confirm your account'));
  const grouped = await mailsac.messages.getHeaders(address, id, { messageHeadersFormat: 'json' });
  assert.deepEqual((grouped.data as unknown as Record<string, string[]>).subject, ['Confirm your account']);

  const attachments = await mailsac.attachments.listMessageAttachments(address, id);
  assert.deepEqual(attachments.data, [{ checksum: md5, contentDisposition: 'attachment', contentId: null, contentType: 'image/png', fileName: 'photo.png', length: photo.length }]);
  const download = await mailsac.attachments.downloadAttachment(address, id, md5, { format: 'arraybuffer' });
  assert.deepEqual(Buffer.from(download.data as unknown as ArrayBuffer), photo);
  const byName = await mailsac.attachments.downloadAttachment(address, id, 'photo.png', { format: 'arraybuffer' });
  assert.deepEqual(Buffer.from(byName.data as unknown as ArrayBuffer), photo);

  await mailsac.messages.setMessageReadStatus(address, id, true);
  assert.equal((await mailsac.messages.getMessageMetadata(address, id)).data.read, true);

  const deleted = await mailsac.messages.deleteMessage(address, id);
  assert.deepEqual(deleted.data, { _id: id, inbox: address, message: 'Message was deleted.' });
  await assert.rejects(mailsac.messages.getMessageMetadata(address, id), (err: { response?: { status: number } }) => err.response?.status === 404);
  await mailsac.messages.deleteAllMessages(address, {});
  assert.deepEqual((await mailsac.messages.listMessages(address)).data, []);
});

test('Mailsac semantics: an unknown inbox is an empty list, another inbox\'s message is 404, a wrong key is 401', async () => {
  assert.deepEqual((await mailsac.messages.listMessages('never@inbox.test')).data, []);
  const id = await r.send({ to: 'mine@inbox.test' });
  await assert.rejects(mailsac.messages.getMessageMetadata('yours@inbox.test', id), (err: { response?: { status: number } }) => err.response?.status === 404);
  const stranger = new Mailsac({ baseURL: `${r.api}/api`, headers: { 'Mailsac-Key': 'wrong' } });
  await assert.rejects(stranger.messages.listMessages('mine@inbox.test'), (err: { response?: { status: number } }) => err.response?.status === 401);
});
