/**
 * DANE through a whole master with its workers, from config alone: `[dns] servers` points at the
 * loopback DNS server (which plays a validating resolver: AD on the signed names), `delivery.dane`
 * is on by default. One MX host publishes TLSA records matching the fakemx's self-signed
 * certificate, another publishes records that match nothing: the first domain is delivered over
 * TLS and logged with tlsPolicy "dane", the second is deferred as a TLS failure with nothing sent.
 * And a delivery.ca file that cannot be read stops the start, naming the file.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { startFakeMx } from '../helpers/fakemx.js';
import { startDnsServer } from '../helpers/dns-server.js';
import { messageOf, startLoggedMaster, submitter, waitFor } from '../helpers/delivery-kit.js';
import { startMaster, tempDir } from '../helpers/master.js';
import { selfSigned, tlsaData } from '../helpers/test-pki.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test('DANE from config: a matching TLSA record delivers over TLS, a mismatching one defers with nothing sent', async () => {
  const [cert, other] = await Promise.all([selfSigned(['mx.good.dane.test']), selfSigned(['nobody.test'])]);
  const mx = await startFakeMx({ tlsKey: cert.key, tlsCert: cert.cert });
  cleanup.push(() => mx.stop());
  const record = (pem: Buffer) => ({ TLSA: [{ usage: 3, selector: 1, matching: 1, data: tlsaData(pem, 1, 1) }], secure: true });
  const dns = await startDnsServer({
    'good.dane.test': { MX: [{ priority: 10, exchange: 'mx.good.dane.test' }] },
    'mx.good.dane.test': { A: ['127.0.0.1'] },
    [`_${mx.port}._tcp.mx.good.dane.test`]: record(cert.cert),
    'bad.dane.test': { MX: [{ priority: 10, exchange: 'mx.bad.dane.test' }] },
    'mx.bad.dane.test': { A: ['127.0.0.1'] },
    [`_${mx.port}._tcp.mx.bad.dane.test`]: record(other.cert),
  });
  cleanup.push(() => dns.stop());
  const m = await startLoggedMaster({
    dns: { servers: [dns.address], timeout: '2s' },
    delivery: { mxPort: mx.port, allowLocalAddresses: true, unreachableHold: '0s', connectTimeout: '2s' },
    queue: { retrySchedule: ['1m'] },
    zones: { default: { processes: 1, connections: 2 } },
  });
  cleanup.push(() => m.stop());
  const smtp = submitter(m.smtpPort);
  cleanup.push(async () => smtp.close());

  const good = await smtp.send({ to: 'u@good.dane.test', testId: 'dane-good' });
  const bad = await smtp.send({ to: 'u@bad.dane.test', testId: 'dane-bad' });
  const outcome = (id: string) => m.logs.find((l) => l.id === id && (l.event === 'DELIVERED' || l.event === 'DEFERRED' || l.event === 'BOUNCED'));
  await waitFor(() => outcome(good) !== undefined && outcome(bad) !== undefined, 15_000, 'both outcomes logged');

  const g = outcome(good)!;
  assert.equal(g.event, 'DELIVERED', String(g.response));
  assert.equal(g.tls, true);
  assert.equal(g.tlsPolicy, 'dane');
  assert.equal(mx.transactions.find((t) => t.testId === 'dane-good')?.tls, true);

  const b = outcome(bad)!;
  assert.equal(b.event, 'DEFERRED', String(b.response));
  assert.equal(b.category, 'tls');
  assert.equal(b.status, '4.7.5');
  assert.equal(b.tlsPolicy, 'dane');
  // and GET /message/:id says why the row waits
  const deferred = (await messageOf(m.api, bad))?.messages[0]?.deferred;
  assert.equal(deferred?.category, 'tls');
  assert.equal(deferred?.tlsPolicy, 'dane');
  assert.equal(mx.transactions.filter((t) => t.to.includes('u@bad.dane.test')).length, 0, 'nothing of the bad domain reached the MX');
  assert.ok(dns.queries.some((q) => q.type === 'TLSA' && q.name === `_${mx.port}._tcp.mx.good.dane.test`), 'TLSA asked of the configured server');
});

test('an unreadable delivery.ca file stops the start, naming it', async () => {
  const dir = tempDir();
  writeFileSync(path.join(dir, 'not-a-ca.pem'), 'hello\n');
  await assert.rejects(startMaster({ delivery: { ca: 'not-a-ca.pem' } }, dir), /delivery\.ca: .*not-a-ca\.pem holds no PEM certificate/);
  await assert.rejects(startMaster({ delivery: { ca: 'missing.pem' } }, tempDir()), /delivery\.ca: cannot read .*missing\.pem \(ENOENT\)/);
});
