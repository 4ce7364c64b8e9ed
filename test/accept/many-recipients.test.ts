/**
 * One message with 10,000 recipients (pipelined by nodemailer) is accepted within seconds and
 * has 10,000 delivery rows, readable back through GET /message/:id.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import { startMaster, type TestMaster } from '../helpers/master.js';

const RCPTS = 10_000;

let m: TestMaster;
before(async () => {
  m = await startMaster({ smtp: { maxRecipients: RCPTS }, zones: { eu: { recipientDomains: ['eu.test'] } } });
});
after(() => m.stop());

test(`one message to ${RCPTS} recipients: accepted, ${RCPTS} delivery rows`, async () => {
  const to = Array.from({ length: RCPTS }, (_, i) => `user${i}@${i % 10 === 0 ? 'eu' : `d${i % 97}`}.test`);
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: m.smtpPort, ignoreTLS: true });
  const started = Date.now();
  const info = await transport.sendMail({ envelope: { from: 'a@x.test', to }, raw: 'Subject: many\r\n\r\nhello all\r\n' });
  const tookMs = Date.now() - started;
  assert.equal(info.accepted.length, RCPTS);
  assert.ok(tookMs < 10_000, `took ${tookMs} ms`);
  const id = /queued as ([0-9a-f]+)/.exec(info.response)?.[1];
  assert.ok(id, info.response);

  const rows = await m.master.store.getRows(id);
  assert.equal(rows.length, RCPTS);
  assert.deepEqual(
    rows.map((r) => r.seq),
    Array.from({ length: RCPTS }, (_, i) => i + 1),
  );
  assert.equal(new Set(rows.map((r) => r.recipient)).size, RCPTS);
  assert.equal(rows.filter((r) => r.zone === 'eu').length, RCPTS / 10);

  const res = await fetch(`${m.api}/message/${id}`);
  const body = (await res.json()) as { meta: { rcptCount: number }; messages: unknown[] };
  assert.equal(body.meta.rcptCount, RCPTS);
  assert.equal(body.messages.length, RCPTS);
  console.log(`# ${RCPTS} recipients accepted in ${tookMs} ms`);
});
