/**
 * The MX path for real: a DNS server on loopback serves MX records for .test domains, and the
 * workers resolve and connect to what it says (delivery.mxPort is the fakemx's port; every
 * host listens on its own loopback address with that port).
 *   - priorities: the lower preference is used while it works;
 *   - fallback: when the first MX refuses connections, the next MX takes the message;
 *   - an MX that resolves to 127.0.0.1 for a normal domain is NOT delivered to unless
 *     delivery.allowLocalAddresses is set: the resolver's decision (a bounce, 5.4.4) is applied
 *     and nothing connects.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeMx } from '../helpers/fakemx.js';
import { startDnsServer } from '../helpers/dns-server.js';
import { startLoggedMaster, submitter, waitFor } from '../helpers/delivery-kit.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test('MX priorities and fallback to the next MX, resolved by a loopback DNS server', async () => {
  const mx = await startFakeMx({ tls: false });
  cleanup.push(() => mx.stop());
  const preferred = await startFakeMx({ tls: false, host: '127.0.0.2', port: mx.port });
  cleanup.push(() => preferred.stop());
  const dns = await startDnsServer({
    // listed in the "wrong" order: the preference decides, not the order in the answer
    'prio.test': { MX: [{ priority: 20, exchange: 'mx-b.prio.test' }, { priority: 10, exchange: 'mx-a.prio.test' }] },
    'mx-a.prio.test': { A: ['127.0.0.2'] },
    'mx-b.prio.test': { A: ['127.0.0.1'] },
    // the first MX refuses connections (nothing listens on 127.0.0.3), the second works
    'fallback.test': { MX: [{ priority: 10, exchange: 'dead.fallback.test' }, { priority: 20, exchange: 'live.fallback.test' }] },
    'dead.fallback.test': { A: ['127.0.0.3'] },
    'live.fallback.test': { A: ['127.0.0.1'] },
  });
  cleanup.push(() => dns.stop());
  const m = await startLoggedMaster({
    dns: { servers: [dns.address], timeout: '2s' },
    delivery: { mxPort: mx.port, allowLocalAddresses: true, unreachableHold: '0s', connectTimeout: '2s' },
    zones: { default: { processes: 1, connections: 4 } },
  });
  cleanup.push(() => m.stop());
  const smtp = submitter(m.smtpPort);
  cleanup.push(async () => smtp.close());

  const prioId = await smtp.send({ to: 'u@prio.test', testId: 'mx-prio' });
  const fallbackId = await smtp.send({ to: 'u@fallback.test', testId: 'mx-fallback' });
  await waitFor(() => preferred.messages.length >= 1 && mx.copiesById().get('mx-fallback') === 1, 10_000, 'both delivered');

  assert.deepEqual(preferred.messages.map((g) => g.to), [['u@prio.test']], 'prio.test went to its preference-10 MX');
  assert.equal(mx.copiesById().get('mx-prio'), undefined, 'not to the preference-20 MX');
  assert.equal(mx.copiesById().get('mx-fallback'), 1, 'fallback.test reached its second MX');
  // the destinations see the message before the master has logged the worker's report
  await waitFor(() => [prioId, fallbackId].every((id) => m.events('DELIVERED').some((e) => e.id === id)), 10_000, 'both DELIVERED logged');
  const delivered = m.events('DELIVERED');
  assert.equal(delivered.find((e) => e.id === prioId)?.mx, 'mx-a.prio.test');
  assert.equal(delivered.find((e) => e.id === fallbackId)?.mx, 'live.fallback.test');
  assert.equal(m.events('DEFERRED').length, 0, 'the refusing MX cost no deferral: the next MX was tried at once');
  assert.ok(dns.queries.some((q) => q.name === 'prio.test' && q.type === 'MX'), 'the MX was asked of the configured DNS server');
});

test('an MX resolving to 127.0.0.1 for a normal domain is refused unless allowLocalAddresses: nothing connects, the resolver decides', async () => {
  const mx = await startFakeMx({ tls: false });
  cleanup.push(() => mx.stop());
  const dns = await startDnsServer({
    'local.test': { MX: [{ priority: 10, exchange: 'mx.local.test' }] },
    'mx.local.test': { A: ['127.0.0.1'] },
  });
  cleanup.push(() => dns.stop());
  const m = await startLoggedMaster({
    dns: { servers: [dns.address], timeout: '2s' },
    delivery: { mxPort: mx.port, allowLocalAddresses: false },
    // the DSN to the sender is routed statically (static routes may point anywhere)
    routes: { 'src.test': mx.route },
    zones: { default: { processes: 1, connections: 4 } },
  });
  cleanup.push(() => m.stop());
  const smtp = submitter(m.smtpPort);
  cleanup.push(async () => smtp.close());

  const id = await smtp.send({ to: 'u@local.test', testId: 'mx-local' });
  await waitFor(() => m.logs.some((l) => l.id === id && (l.event === 'BOUNCED' || l.event === 'DEFERRED')), 10_000, 'an outcome for the local-MX message');
  const outcome = m.logs.find((l) => l.id === id && (l.event === 'BOUNCED' || l.event === 'DEFERRED'))!;
  assert.equal(mx.transactions.filter((t) => t.to.includes('u@local.test') || t.refused.some((r) => r.address === 'u@local.test')).length, 0, 'nothing was sent to the local address');
  assert.match(String(outcome.response), /local|usable address/i, `the reason says why: ${String(outcome.response)}`);
  if (outcome.event === 'BOUNCED') {
    assert.match(String(outcome.status), /^5\./);
    await mx.waitUntil(() => mx.transactions.some((t) => t.from === '' && t.to.includes('sender@src.test')), 10_000, () => 'no DSN to the sender');
  }
  console.log(`# MX to 127.0.0.1: ${outcome.event} ${String(outcome.status)} "${String(outcome.response)}"`);
});
