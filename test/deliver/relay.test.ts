import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import { startFakeMx } from '../helpers/fakemx.js';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { waitFor } from '../helpers/wait.js';

/** The destination: a fakemx without STARTTLS that refuses the addresses `refuse` names. */
const sink = (refuse?: (rcpt: string) => string | undefined) => startFakeMx({ tls: false, recipientReply: refuse });

const masters: TestMaster[] = [];
after(async () => {
  for (const m of masters) await m.stop();
});

test('a submitted message is relayed through a worker to the routed destination, and leaves the queue', async () => {
  const dest = await sink();
  const m = await startMaster({ zones: { default: { processes: 1, connections: 2, route: dest.route } } });
  masters.push(m);
  const t = nodemailer.createTransport({ host: '127.0.0.1', port: m.smtpPort, ignoreTLS: true });
  const info = await t.sendMail({ from: 'a@src.test', to: ['x@dest.test', 'y@dest.test'], subject: 'relay', text: 'hello\r\n' });
  const id = /queued as (\w+)/.exec(info.response)![1]!;
  await waitFor(() => dest.messages.length >= 1);
  assert.equal(dest.messages.length, 1, 'one transaction for two recipients of one domain');
  assert.deepEqual(dest.messages[0]!.to.sort(), ['x@dest.test', 'y@dest.test']);
  assert.match(dest.messages[0]!.data!.toString(), /Subject: relay/);
  await waitFor(async () => (await fetch(`${m.api}/message/${id}`)).status === 404);
  const q = (await (await fetch(`${m.api}/queue/default`)).json()) as { queued: number; processed: number };
  assert.equal(q.queued, 0);
  assert.equal(q.processed, 2);
  await dest.stop();
});

test('a 5xx for one recipient bounces it with a DSN to the sender; the other is delivered', async () => {
  const dest = await sink((rcpt) => (rcpt.startsWith('bad') ? '550 5.1.1 no such user' : undefined));
  const m = await startMaster({ zones: { default: { processes: 1, connections: 2, route: dest.route } } });
  masters.push(m);
  const t = nodemailer.createTransport({ host: '127.0.0.1', port: m.smtpPort, ignoreTLS: true });
  await t.sendMail({ from: 'sender@src.test', to: ['good@dest.test', 'bad@dest.test'], subject: 'mixed', text: 'x' });
  await waitFor(() => dest.messages.some((g) => g.from === ''));
  const dsn = dest.messages.find((g) => g.from === '')!;
  assert.deepEqual(dsn.to, ['sender@src.test']);
  assert.match(dsn.data!.toString(), /report-type=delivery-status/);
  assert.match(dsn.data!.toString(), /bad@dest.test/);
  assert.ok(dest.messages.some((g) => g.to.includes('good@dest.test') && g.from === 'sender@src.test'));
  await dest.stop();
});
