/**
 * The receiver's limits per client, each tier on its own (lib/inbound/throttle.ts, load-gate.ts,
 * and the shared guards): concurrent connections per IP, connections and messages per minute per
 * IP, messages per minute per registrable sender domain (unique subdomains count as one), per
 * inbox, the load gate, the command deadline, failed and junk command limits, and the shedding of
 * idle connections when the server is full. Each test uses its own loopback source addresses.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { clientKey, networkMatcher } from '../../lib/config/net.js';
import { RateWindow, registrableDomain } from '../../lib/inbound/throttle.js';
import { startReceiver, type TestReceiver } from '../helpers/inbound.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { checkSlash64Cap } from '../helpers/lo-addresses.js';

const receivers: TestReceiver[] = [];
after(() => Promise.all(receivers.map((r) => r.stop())));

async function receiver(inbound: Record<string, unknown>, throttle: Record<string, unknown> = {}): Promise<TestReceiver> {
  const r = await startReceiver({ ...inbound, throttle: { exempt: [], ...throttle } });
  receivers.push(r);
  return r;
}

test('a sliding minute: the limit holds across the minute boundary and frees up as the window moves', () => {
  let now = 60_000 * 100 + 30_000; // half-way through a minute
  const w = new RateWindow(10, () => now);
  for (let i = 0; i < 10; i++) assert.ok(w.take('k'));
  assert.equal(w.take('k'), false, 'the 11th in the same minute');
  assert.ok(w.take('other'), 'keys are apart');
  const takeAll = () => {
    let taken = 0;
    while (w.take('k')) taken++;
    return taken;
  };
  now += 40_000; // 10 s into the next minute: 10 × 5/6 of the last one still count (8.3)
  assert.equal(takeAll(), 2);
  now += 30_000; // 40 s in: 10 × 1/3 count (3.3), and the 2 of this minute
  assert.equal(takeAll(), 5);
  now += 120_000;
  assert.ok(w.take('k'), 'an idle key starts afresh');
  assert.ok(new RateWindow(0, () => now).take('k'), '0 is no limit');
});

test('limits are keyed by IPv4 address, an IPv6 client by its /64, and a sender by its registrable domain', () => {
  assert.equal(clientKey('192.0.2.7'), '192.0.2.7');
  assert.equal(clientKey('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(clientKey('2001:db8:1:2:aaaa::1'), clientKey('2001:db8:1:2:ffff:1:2:3'));
  assert.notEqual(clientKey('2001:db8:1:2::1'), clientKey('2001:db8:1:3::1'));
  assert.equal(clientKey(undefined), 'unknown');
  assert.equal(clientKey('not an address'), 'not an address');
  // answers are remembered per address string, boundedly: past the bound they are still right
  for (let i = 0; i < 5000; i++) assert.equal(clientKey(`10.0.${i >> 8}.${i & 255}`), `10.0.${i >> 8}.${i & 255}`);
  assert.equal(clientKey('::ffff:192.0.2.7'), '192.0.2.7');
  const exempt = networkMatcher(['10.1.0.0/16', '2001:db8::/32']);
  for (let i = 0; i < 5000; i++) assert.equal(exempt(`10.${i & 1 ? 1 : 2}.${i >> 8}.${i & 255}`), (i & 1) === 1);
  assert.ok(exempt('::ffff:10.1.2.3') && exempt('2001:db8:5::1') && !exempt(undefined) && !exempt('junk'));
  assert.equal(networkMatcher([])('127.0.0.1'), false);
  assert.equal(registrableDomain('x@a.b.c.flood.test'), 'flood.test');
  assert.equal(registrableDomain('x@mail.example.co.uk'), 'example.co.uk');
  assert.equal(registrableDomain(''), '');
});

test('concurrent connections per IP: the one over the cap gets 421 4.7.0 in the banner and is closed; other IPs and exempt ones are not affected', async () => {
  const r = await startReceiver({ maxConnectionsPerIp: 2, throttle: { exempt: ['127.0.0.9'] } });
  receivers.push(r);
  const open = [await SmtpTalk.connect(r.port, '127.0.0.1', '127.0.0.8'), await SmtpTalk.connect(r.port, '127.0.0.1', '127.0.0.8')];
  for (const c of open) await c.expect(220);
  const third = await SmtpTalk.connect(r.port, '127.0.0.1', '127.0.0.8');
  assert.match((await third.next())!.text, /^421 4\.7\.0 /);
  await third.waitClosed(2000);
  const elsewhere = await SmtpTalk.connect(r.port, '127.0.0.1', '127.0.0.10');
  await elsewhere.expect(220);
  const exempt = await Promise.all([0, 1, 2].map(() => SmtpTalk.connect(r.port, '127.0.0.1', '127.0.0.9')));
  for (const c of exempt) await c.expect(220);
  for (const c of [...open, elsewhere, ...exempt]) c.close();
});

test('IPv6 clients are capped by their /64: three addresses of one /64 are one client, another /64 is another', async (t) => {
  const r = await receiver({ host: '::1', maxConnectionsPerIp: 2 });
  await checkSlash64Cap(t, r.port, ['fd00:5c1c:0:1::a', 'fd00:5c1c:0:1::b', 'fd00:5c1c:0:1::c'], 'fd00:5c1c:0:2::a');
});

test('connections per minute per IP: past the rate, 421 4.7.0; another IP still connects', async () => {
  const r = await receiver({}, { connectionsPerMinutePerIp: 3 });
  for (let i = 0; i < 3; i++) {
    const c = await SmtpTalk.connect(r.port, '127.0.0.1', '127.0.0.11');
    await c.expect(220);
    c.close();
  }
  const fourth = await SmtpTalk.connect(r.port, '127.0.0.1', '127.0.0.11');
  assert.match((await fourth.next())!.text, /^421 4\.7\.0 Too many connections per minute from your address/);
  await fourth.waitClosed(2000);
  const other = await SmtpTalk.connect(r.port, '127.0.0.1', '127.0.0.12');
  await other.expect(220);
  other.close();
});

test('messages per minute per IP: the MAIL over the rate gets 421 4.7.0 and the session ends', async () => {
  const r = await receiver({}, { messagesPerMinutePerIp: 2 });
  const c = await r.session('127.0.0.13');
  for (let i = 0; i < 2; i++) {
    await c.send('MAIL FROM:<a@src.test>', 250);
    await c.send('RSET', 250);
  }
  assert.match((await c.send('MAIL FROM:<a@src.test>', 421)).text, /^421 4\.7\.0 Too many messages per minute from your address/);
  await c.waitClosed(2000);
});

test('messages per minute per sender domain: unique subdomains from many IPs count as one sender', async () => {
  const r = await receiver({}, { messagesPerMinutePerSenderDomain: 3 });
  const replies: number[] = [];
  for (let i = 0; i < 5; i++) {
    const c = await r.session(`127.0.1.${10 + i}`);
    c.write(`MAIL FROM:<s@a${i}.b.c.flood.test>\r\n`);
    const reply = await c.next();
    replies.push(reply!.code);
    if (i === 4) assert.match(reply!.text, /^421 4\.7\.0 Too many messages per minute from flood\.test/);
    c.close();
  }
  assert.deepEqual(replies, [250, 250, 250, 421, 421]);
  const other = await r.session('127.0.1.20');
  await other.send('MAIL FROM:<s@ham.test>', 250);
  other.close();
});

test('messages per minute per inbox: 450 4.2.1 for that inbox only; the other recipients of the transaction are taken', async () => {
  const r = await receiver({}, { messagesPerMinutePerInbox: 2 });
  for (let i = 0; i < 2; i++) await r.send({ to: 'popular@inbox.test' }, { localAddress: '127.0.0.14' });
  const c = await r.session('127.0.0.14');
  await c.send('MAIL FROM:<a@src.test>', 250);
  assert.match((await c.send('RCPT TO:<popular@inbox.test>', 450)).text, /^450 4\.2\.1 The inbox popular@inbox\.test is receiving mail too fast/);
  await c.send('RCPT TO:<quiet@inbox.test>', 250);
  c.close();
});

test('the load gate: while the event loop lags, a new connection waits and then gets 421 4.3.2; once it recovers, 220', async () => {
  const r = await receiver({}, { maxEventLoopDelay: '40ms', loadWait: '500ms' });
  // keep the event loop busy: 80 ms of work every 100 ms
  const busy = setInterval(() => {
    const until = Date.now() + 80;
    while (Date.now() < until);
  }, 100);
  try {
    await new Promise((resolve) => setTimeout(resolve, 600)); // the gate samples every 250 ms
    const started = Date.now();
    const c = await SmtpTalk.connect(r.port, '127.0.0.1', '127.0.0.15');
    const reply = await c.next(5000);
    assert.match(reply!.text, /^421 4\.3\.2 /);
    assert.ok(Date.now() - started >= 450, `it waited first (${Date.now() - started} ms)`);
    await c.waitClosed(2000);
  } finally {
    clearInterval(busy);
  }
  await new Promise((resolve) => setTimeout(resolve, 600));
  const c = await SmtpTalk.connect(r.port, '127.0.0.1', '127.0.0.15');
  await c.expect(220);
  c.close();
});

test('a command line not finished within commandTimeout ends the session with 421 4.4.2', async () => {
  const r = await receiver({ commandTimeout: '300ms' });
  const c = await r.session('127.0.0.16');
  c.write('MAIL FROM:<slow');
  const reply = await c.next(3000);
  assert.match(reply!.text, /^421 4\.4\.2 Command timed out/);
  await c.waitClosed(2000);
});

test('too many failed commands: 421 4.7.0 and the connection closes', async () => {
  const r = await receiver({ maxBadCommands: 3 });
  const c = await r.session('127.0.0.17');
  await c.send('MAIL FROM:<a@src.test>', 250);
  await c.send('RCPT TO:<x@one.test>', 550);
  await c.send('RCPT TO:<x@two.test>', 550);
  c.write('RCPT TO:<x@three.test>\r\n');
  assert.equal((await c.next())!.code, 550);
  assert.match((await c.next())!.text, /^421 4\.7\.0 Too many errors/);
  await c.waitClosed(2000);
});

test('junk commands: past 100 NOOPs between two messages the session ends with 421 4.7.0; a MAIL starts the count again', async () => {
  const r = await receiver({});
  const c = await r.session('127.0.0.18');
  c.write('NOOP\r\n'.repeat(100));
  for (let i = 0; i < 100; i++) assert.equal((await c.next())!.code, 250);
  await c.send('MAIL FROM:<a@src.test>', 250);
  c.write('NOOP\r\n'.repeat(101));
  for (let i = 0; i < 100; i++) assert.equal((await c.next())!.code, 250);
  assert.match((await c.next())!.text, /^421 4\.7\.0 Too many commands that send no mail/);
  await c.waitClosed(2000);
});

test('a full server sheds the connection idle the longest for a newcomer; busy sessions are kept', async () => {
  const r = await receiver({ maxClients: 4, maxConnectionsPerIp: 10 });
  const idle: SmtpTalk[] = [];
  for (let i = 0; i < 3; i++) {
    const c = await SmtpTalk.connect(r.port, '127.0.0.1', `127.0.2.${i + 1}`);
    await c.expect(220);
    idle.push(c);
  }
  const busy = await r.session('127.0.2.9');
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await busy.send('NOOP', 250); // progress: not a candidate
  const newcomer = await r.session('127.0.2.10');
  await newcomer.send('MAIL FROM:<a@src.test>', 250);
  const shed = idle[0]!;
  assert.match((await shed.next(2000))!.text, /^421 4\.4\.2 Server busy and this connection idle/);
  await shed.waitClosed(2000);
  await busy.send('MAIL FROM:<a@src.test>', 250);
  for (const c of [...idle, busy, newcomer]) c.close();
});
