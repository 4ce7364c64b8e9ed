import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { SMTPServer } from 'smtp-server';
import nodemailer from 'nodemailer';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { waitFor } from '../helpers/wait.js';

interface Received { from: string; to: string[]; data: Buffer }

function sink(reply?: (rcpt: string) => Error | undefined) {
  const got: Received[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onRcptTo(address, _s, cb) {
      cb(reply?.(address.address));
    },
    onData(stream, session, cb) {
      const parts: Buffer[] = [];
      stream.on('data', (d: Buffer) => parts.push(d));
      stream.on('end', () => {
        got.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), data: Buffer.concat(parts) });
        cb();
      });
    },
  });
  return new Promise<{ server: SMTPServer; port: number; got: Received[] }>((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.server.address() as { port: number }).port, got }));
  });
}



const masters: TestMaster[] = [];
after(async () => {
  for (const m of masters) await m.stop();
});

test('a submitted message is relayed through a worker to the routed destination, and leaves the queue', async () => {
  const dest = await sink();
  const m = await startMaster({ zones: { default: { processes: 1, connections: 2, route: { host: '127.0.0.1', port: dest.port } } } });
  masters.push(m);
  const t = nodemailer.createTransport({ host: '127.0.0.1', port: m.smtpPort, ignoreTLS: true });
  const info = await t.sendMail({ from: 'a@src.test', to: ['x@dest.test', 'y@dest.test'], subject: 'relay', text: 'hello\r\n' });
  const id = /queued as (\w+)/.exec(info.response)![1]!;
  await waitFor(() => dest.got.length >= 1);
  assert.equal(dest.got.length, 1, 'one transaction for two recipients of one domain');
  assert.deepEqual(dest.got[0]!.to.sort(), ['x@dest.test', 'y@dest.test']);
  assert.match(dest.got[0]!.data.toString(), /Subject: relay/);
  await waitFor(async () => (await fetch(`${m.api}/message/${id}`)).status === 404);
  const q = (await (await fetch(`${m.api}/queue/default`)).json()) as { queued: number; processed: number };
  assert.equal(q.queued, 0);
  assert.equal(q.processed, 2);
  dest.server.close();
});

test('a 5xx for one recipient bounces it with a DSN to the sender; the other is delivered', async () => {
  const dest = await sink((rcpt) => (rcpt.startsWith('bad') ? Object.assign(new Error('5.1.1 no such user'), { responseCode: 550 }) : undefined));
  const m = await startMaster({ zones: { default: { processes: 1, connections: 2, route: { host: '127.0.0.1', port: dest.port } } } });
  masters.push(m);
  const t = nodemailer.createTransport({ host: '127.0.0.1', port: m.smtpPort, ignoreTLS: true });
  await t.sendMail({ from: 'sender@src.test', to: ['good@dest.test', 'bad@dest.test'], subject: 'mixed', text: 'x' });
  await waitFor(() => dest.got.some((g) => g.from === ''));
  const dsn = dest.got.find((g) => g.from === '')!;
  assert.deepEqual(dsn.to, ['sender@src.test']);
  assert.match(dsn.data.toString(), /report-type=delivery-status/);
  assert.match(dsn.data.toString(), /bad@dest.test/);
  assert.ok(dest.got.some((g) => g.to.includes('good@dest.test') && g.from === 'sender@src.test'));
  dest.server.close();
});
