/**
 * MTA-STS discovery over real sockets: the TXT record from the loopback DNS server, the policy
 * from a loopback HTTPS server whose certificate a test CA signed (trusted as delivery.ca would
 * be). The fetch's rules (valid certificate, no redirects, text/plain, 64 KiB, local addresses
 * only when allowed) and the cache's (id changes, failed refresh keeps the policy in date, no
 * refetch storm, mode none is no policy).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MtaStsResolver } from '../../../lib/deliver/tls/mta-sts.js';
import { captureLog } from '../../helpers/capture-log.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { policyText, startPolicyServer, type PolicyServer } from '../../helpers/policy-server.js';
import { issue, makeCa, type Pem } from '../../helpers/test-pki.js';

const DOMAINS = ['good.test', 'redirect.test', 'html.test', 'huge.test', 'notfound.test', 'bad.test', 'none.test', 'cache.test', 'storm.test'];
let ca: Pem;
let dns: TestDnsServer;
let web: PolicyServer;

before(async () => {
  ca = await makeCa();
  const cert = await issue(ca, DOMAINS.map((d) => `mta-sts.${d}`));
  web = await startPolicyServer({ key: cert.key, cert: cert.chain });
  const zone: Record<string, { TXT?: string[]; A?: string[] }> = {};
  for (const d of DOMAINS) {
    zone[`_mta-sts.${d}`] = { TXT: ['v=STSv1; id=one'] };
    zone[`mta-sts.${d}`] = { A: ['127.0.0.1'] };
  }
  dns = await startDnsServer(zone);
});
after(async () => {
  await web?.stop();
  await dns?.stop();
});

function resolver(extra: Partial<ConstructorParameters<typeof MtaStsResolver>[0]> = {}) {
  const log = captureLog();
  const sts = new MtaStsResolver({ servers: [dns.address], timeoutMs: 2000, allowLocalAddresses: true, extraCa: [ca.cert.toString()], httpsPort: web.port, txtCacheMs: 0, logger: log.logger, ...extra });
  return { sts, log };
}

test('a good policy is fetched, parsed and cached by its id', async () => {
  web.set('mta-sts.good.test', { body: policyText('enforce', ['mx.good.test', '*.good.test']) });
  const { sts, log } = resolver();
  const policy = await sts.policyFor('good.test');
  assert.equal(policy?.mode, 'enforce');
  assert.deepEqual(policy?.mx, ['mx.good.test', '*.good.test']);
  assert.equal(policy?.id, 'one');
  assert.equal(log.events('MTA_STS_POLICY').length, 1);
  await sts.policyFor('good.test');
  assert.equal(web.hits.get('mta-sts.good.test'), 1, 'the same id: no second fetch');
});

test('the fetch refuses redirects, other content types, 404, oversized files and certificates it cannot trust', async () => {
  web.set('mta-sts.redirect.test', { status: 302, location: 'https://mta-sts.good.test/.well-known/mta-sts.txt' });
  web.set('mta-sts.html.test', { body: policyText('enforce', ['mx.html.test']), contentType: 'text/html' });
  web.set('mta-sts.huge.test', { body: policyText('enforce', ['mx.huge.test']) + `x-pad: ${'a'.repeat(70 * 1024)}\r\n` });
  web.set('mta-sts.bad.test', { body: 'version: STSv1\r\nmode: enforce\r\nmax_age: 100\r\n' });
  const { sts, log } = resolver();
  for (const d of ['redirect.test', 'html.test', 'huge.test', 'notfound.test', 'bad.test']) {
    assert.equal(await sts.policyFor(d), undefined, d);
  }
  const reasons = log.events('MTA_STS_FETCH_FAILED').map((e) => `${String(e.domain)}: ${String(e.err)}`);
  assert.match(reasons.find((r) => r.startsWith('redirect.test'))!, /HTTP 302/);
  assert.match(reasons.find((r) => r.startsWith('html.test'))!, /not text\/plain/);
  assert.match(reasons.find((r) => r.startsWith('huge.test'))!, /larger than 65536/);
  assert.match(reasons.find((r) => r.startsWith('notfound.test'))!, /HTTP 404/);
  assert.match(reasons.find((r) => r.startsWith('bad.test'))!, /without any mx/);

  const untrusting = resolver({ extraCa: undefined });
  web.set('mta-sts.good.test', { body: policyText('enforce', ['mx.good.test']) });
  assert.equal(await untrusting.sts.policyFor('good.test'), undefined, 'a certificate from an unknown CA is no policy');
  assert.match(String(untrusting.log.events('MTA_STS_FETCH_FAILED')[0]?.err), /certificate|issuer/i);

  const strict = resolver({ allowLocalAddresses: false });
  assert.equal(await strict.sts.policyFor('good.test'), undefined);
  assert.match(String(strict.log.events('MTA_STS_FETCH_FAILED')[0]?.err), /local addresses/, 'a policy host on loopback is refused like a local MX');
});

test('mode none is no policy; no TXT record is no policy', async () => {
  web.set('mta-sts.none.test', { body: policyText('none', []) });
  const { sts } = resolver();
  assert.equal(await sts.policyFor('none.test'), undefined);
  assert.equal(await sts.policyFor('unpublished.test'), undefined);
});

test('cache: a new id refetches; a failed refresh keeps the policy in date; an expired one is dropped', async () => {
  let nowMs = Date.now();
  web.set('mta-sts.cache.test', { body: policyText('enforce', ['mx1.cache.test'], 3600) });
  const { sts, log } = resolver({ now: () => nowMs });
  assert.deepEqual((await sts.policyFor('cache.test'))?.mx, ['mx1.cache.test']);

  dns.set('_mta-sts.cache.test', { TXT: ['v=STSv1; id=two'] });
  web.set('mta-sts.cache.test', { body: policyText('enforce', ['mx2.cache.test'], 3600) });
  const fresh = await sts.policyFor('cache.test');
  assert.deepEqual(fresh?.mx, ['mx2.cache.test'], 'the changed id was noticed');
  assert.equal(fresh?.id, 'two');

  dns.set('_mta-sts.cache.test', { TXT: ['v=STSv1; id=three'] });
  web.set('mta-sts.cache.test', { status: 500, body: 'oops' });
  const kept = await sts.policyFor('cache.test');
  assert.equal(kept?.id, 'two', 'the refresh failed: the cached policy still applies');
  assert.equal(log.events('MTA_STS_FETCH_FAILED').at(-1)?.cached, 'two');

  dns.set('_mta-sts.cache.test', undefined);
  assert.equal((await sts.policyFor('cache.test'))?.id, 'two', 'the TXT record went away: the policy holds until max_age');

  nowMs += 3601_000;
  assert.equal(await sts.policyFor('cache.test'), undefined, 'past max_age, with no record: no policy');
});

test('a failing policy host is not asked again on every delivery', async () => {
  web.set('mta-sts.storm.test', { status: 503 });
  const { sts } = resolver();
  await Promise.all(Array.from({ length: 5 }, () => sts.policyFor('storm.test')));
  for (let i = 0; i < 5; i++) await sts.policyFor('storm.test');
  assert.equal(web.hits.get('mta-sts.storm.test'), 1, 'concurrent lookups share one fetch; a failure is remembered');
});
