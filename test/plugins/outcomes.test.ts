import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import nodemailer from 'nodemailer';
import { startFakeMx, type FakeMx } from '../helpers/fakemx.js';
import { startMaster, tempDir, type TestMaster } from '../helpers/master.js';
import { userPlugin, waitFor, writePlugin } from '../helpers/plugins.js';

// A destination that refuses recipients named bad* (550 5.1.1) and takes the rest.
let sink: FakeMx;
const received = () => sink.messages;

// The bounce endpoint: the first POST fails (500) so the retry is exercised.
const SECRET = 'bounce-secret';
const posts: { body: string; timestamp: string; signature: string; status: number }[] = [];
const endpoint = http.createServer((req, res) => {
  const parts: Buffer[] = [];
  req.on('data', (d: Buffer) => parts.push(d));
  req.on('end', () => {
    const status = posts.length === 0 ? 500 : 200;
    posts.push({ body: Buffer.concat(parts).toString('utf8'), timestamp: String(req.headers['x-sluice-timestamp']), signature: String(req.headers['x-sluice-signature']), status });
    res.writeHead(status).end();
  });
});

const RECORDER = `
export function init(app) {
  const seen = (globalThis.__sluiceOutcomes = { outcome: [], release: [], bounce: [] });
  app.addHook('queue:outcome', (o) => { seen.outcome.push([o.recipient, o.result, o.zone]); });
  app.addHook('queue:release', (zone, d) => { seen.release.push([d.recipient, d.reason, zone]); });
  app.addHook('queue:bounce', (b) => { seen.bounce.push([b.to, b.dsn, b.status]); });
}`;
interface Seen {
  outcome: [string, string, string][];
  release: [string, string, string][];
  bounce: [string, boolean, string | undefined][];
}
const seen = () => (globalThis as unknown as { __sluiceOutcomes: Seen }).__sluiceOutcomes;

const listen = (server: { listen: (port: number, host: string, cb: () => void) => unknown }, addr: () => net.AddressInfo) =>
  new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve(addr().port)));

let m: TestMaster;
before(async () => {
  sink = await startFakeMx({ tls: false, keepData: false, recipientReply: (a) => (a.startsWith('bad') ? '550 5.1.1 No such user' : undefined) });
  const endpointPort = await listen(endpoint, () => endpoint.address() as net.AddressInfo);
  // a port with nothing behind it: deliveries there are deferred
  const closed = net.createServer();
  const closedPort = await listen(closed, () => closed.address() as net.AddressInfo);
  await new Promise((r) => closed.close(r));
  const dir = tempDir();
  const rec = writePlugin(dir, 'recorder.js', RECORDER);
  m = await startMaster(
    {
      zones: { default: { processes: 1, connections: 2, route: sink.route }, bulk: { processes: 0, senderDomains: ['bulk.test'] } },
      routes: { 'down.test': { host: '127.0.0.1', port: closedPort } },
      plugins: {
        recorder: userPlugin(rec),
        'core/http-bounce': { enabled: ['main'], url: `http://127.0.0.1:${endpointPort}/bounces`, secret: SECRET, retryDelay: '50ms', maxAttempts: 3 },
        'core/delivery-counters': { enabled: ['main'] },
      },
    },
    dir,
  );
});
after(async () => {
  await m.stop();
  await sink.stop();
  endpoint.closeAllConnections();
  endpoint.close();
});

async function metrics(): Promise<string> {
  return (await fetch(`${m.api}/metrics`)).text();
}

test('delivered, bounced and deferred results reach queue:outcome, queue:release, queue:bounce, core/http-bounce and core/delivery-counters', async () => {
  const empty = await metrics();
  assert.match(empty, /^# TYPE sluice_deliveries_total counter$/m);
  for (const zone of ['default', 'bulk']) for (const result of ['delivered', 'deferred', 'bounced']) assert.match(empty, new RegExp(`^sluice_deliveries_total\\{zone="${zone}",result="${result}"\\} 0$`, 'm'));

  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: m.smtpPort, ignoreTLS: true });
  await transport.sendMail({ from: 'sender@src.test', to: ['good@dest.test', 'bad@dest.test', 'later@down.test'], subject: 'outcomes', text: 'x' });

  // the message to good@ and the DSN to sender@ are delivered; bad@ bounces; later@ waits
  await waitFor(async () => /result="delivered"\} 2$/m.test(await metrics()) && /result="bounced"\} 1$/m.test(await metrics()) && /result="deferred"\} 1$/m.test(await metrics()), 30_000, 'the counters');
  const text = await metrics();
  assert.match(text, /^sluice_deliveries_total\{zone="default",result="delivered"\} 2$/m);
  assert.match(text, /^sluice_deliveries_total\{zone="default",result="bounced"\} 1$/m);
  assert.match(text, /^sluice_deliveries_total\{zone="default",result="deferred"\} 1$/m);
  assert.doesNotMatch(text, /dest\.test|src\.test|down\.test/, 'no sender, recipient or domain labels');
  assert.ok(received().some((r) => r.from === '' && r.to.includes('sender@src.test')), 'the DSN went out');

  const s = seen();
  assert.deepEqual(s.bounce, [['bad@dest.test', true, s.bounce[0]?.[2]]]);
  assert.deepEqual(
    s.release.filter((r) => r[0] !== 'sender@src.test').sort(),
    [
      ['bad@dest.test', 'bounced', 'default'],
      ['good@dest.test', 'delivered', 'default'],
    ],
  );
  assert.ok(s.outcome.some((o) => o[0] === 'later@down.test' && o[1] === 'deferred'));
  assert.ok(!s.release.some((r) => r[0] === 'later@down.test'), 'a deferred row has not left the queue');

  // core/http-bounce: the first POST got a 500, the retry got through, both signed
  await waitFor(() => posts.length >= 2, 10_000, 'the retried bounce POST');
  assert.deepEqual(posts.map((p) => p.status), [500, 200]);
  const post = posts[1]!;
  assert.equal(post.body, posts[0]!.body);
  assert.equal(post.signature, 'sha256=' + createHmac('sha256', SECRET).update(`${post.timestamp}.${post.body}`).digest('hex'));
  const body = JSON.parse(post.body) as Record<string, unknown>;
  assert.equal(body.to, 'bad@dest.test');
  assert.equal(body.returnPath, 'sender@src.test');
  assert.equal(body.zone, 'default');
  assert.equal(body.seq, 2);
  assert.match(String(body.response), /No such user/);
});
