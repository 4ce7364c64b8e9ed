/**
 * Delivery events webhook (lib/bounce/webhook.ts) end to end: a local HTTP endpoint receives one
 * signed POST per recipient outcome (delivered, deferred, bounced). The signature is checked here
 * with our own HMAC (sha256 over "<X-Sluice-Timestamp>.<body>"), and the endpoint answers 500 to
 * the first POST it gets: that event arrives again, once, about a second later.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { startFakeMx } from '../helpers/fakemx.js';
import { FAST, startLoggedMaster, submitter, waitFor } from '../helpers/delivery-kit.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

interface Received {
  at: number;
  status: number;
  signatureOk: boolean;
  body: string;
  event: { event: string; id: string; seq: number; recipient: string; attempts: number; response: string; status?: string };
}

test('the events webhook gets one signed POST per outcome, and a POST answered 500 is retried', async () => {
  const SECRET = 'test-webhook-secret';
  const got: Received[] = [];
  let first = true;
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      const body = Buffer.concat(parts).toString('utf8');
      const ts = String(req.headers['x-sluice-timestamp'] ?? '');
      const expected = Buffer.from('sha256=' + createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex'));
      const given = Buffer.from(String(req.headers['x-sluice-signature'] ?? ''));
      const signatureOk = given.length === expected.length && timingSafeEqual(given, expected) && Math.abs(Date.now() / 1000 - Number(ts)) < 60;
      const status = first ? 500 : 200;
      first = false;
      got.push({ at: Date.now(), status, signatureOk, body, event: JSON.parse(body) as Received['event'] });
      res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanup.push(() => new Promise<void>((r) => server.close(() => r())));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;

  const mx = await startFakeMx({ tls: false });
  cleanup.push(() => mx.stop());
  mx.setRecipientReply('bad@dest.test', '550 5.1.1 no such user');
  mx.setRecipientReply('grey@dest.test', '450 4.2.0 greylisted');
  const m = await startLoggedMaster({ ...FAST, events: { url, secret: SECRET, timeout: '2s' }, zones: { default: { processes: 1, connections: 4, route: mx.route } } });
  cleanup.push(() => m.stop());
  const smtp = submitter(m.smtpPort);
  cleanup.push(async () => smtp.close());

  const id = await smtp.send({ to: ['good@dest.test', 'bad@dest.test', 'grey@dest.test'], testId: 'hook' });
  const ofMessage = () => got.filter((g) => g.event.id === id);
  await waitFor(() => {
    const kinds = new Set(ofMessage().filter((g) => g.status === 200).map((g) => `${g.event.event}:${g.event.recipient}`));
    return kinds.has('delivered:good@dest.test') && kinds.has('bounced:bad@dest.test') && kinds.has('deferred:grey@dest.test');
  }, 10_000, 'delivered, bounced and deferred events');
  await new Promise((r) => setTimeout(r, 300));

  assert.ok(got.every((g) => g.signatureOk), 'every POST carries a valid signature');
  const failed = got[0]!;
  assert.equal(failed.status, 500);
  const again = got.filter((g) => g.body === failed.body);
  assert.equal(again.length, 2, 'the POST answered 500 came again, once');
  assert.ok(again[1]!.at - failed.at >= 900, `retried after ${again[1]!.at - failed.at} ms`);

  // one event per outcome: distinct bodies, each accepted exactly once
  const accepted = got.filter((g) => g.status === 200);
  assert.equal(new Set(accepted.map((g) => g.body)).size, accepted.length, 'no event delivered twice');
  const mine = accepted.filter((g) => g.event.id === id);
  const byKind = (e: string, r: string) => mine.filter((g) => g.event.event === e && g.event.recipient === r);
  assert.equal(byKind('delivered', 'good@dest.test').length, 1);
  assert.equal(byKind('bounced', 'bad@dest.test').length, 1);
  assert.equal(byKind('bounced', 'bad@dest.test')[0]!.event.status, '5.1.1');
  assert.match(byKind('bounced', 'bad@dest.test')[0]!.event.response, /550 5\.1\.1 no such user/);
  const deferrals = byKind('deferred', 'grey@dest.test');
  assert.equal(new Set(deferrals.map((g) => g.event.attempts)).size, deferrals.length, 'one deferred event per attempt');
  assert.equal(m.events('DEFERRED').filter((e) => e.id === id).length >= deferrals.length, true);
  console.log(`# webhook: ${got.length} POSTs (1 answered 500, retried after ${again[1]!.at - failed.at} ms), all signatures valid`);
});
