/**
 * The destination resolver against a real DNS server on loopback (test/helpers/dns-server.ts):
 * MX priorities and fallback, the implicit MX, IPv6 handling, every DNS failure class, the
 * local-address refusal, static routes and address literals, IDN, caching.
 * Addresses in answers are documentation ranges (192.0.2.0/24, 2001:db8::/32): nothing here
 * connects anywhere, it only resolves.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { DestinationError, DestinationResolver, type ResolverOptions } from '../../lib/deliver/destination.js';
import { isLocalAddress } from '../../lib/deliver/local-address.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';

let dns: TestDnsServer;

before(async () => {
  dns = await startDnsServer({
    'prio.test': { MX: [{ priority: 20, exchange: 'mx-b.prio.test' }, { priority: 10, exchange: 'mx-a.prio.test' }] },
    'mx-a.prio.test': { A: ['192.0.2.10'], AAAA: ['2001:db8::10'] },
    'mx-b.prio.test': { A: ['192.0.2.20'] },
    'fallback.test': {
      MX: [
        { priority: 10, exchange: 'dead.fallback.test' },
        { priority: 20, exchange: 'noaddr.fallback.test' },
        { priority: 30, exchange: 'live.fallback.test' },
      ],
    },
    'noaddr.fallback.test': { TXT: ['exists, but has no address'] },
    'live.fallback.test': { A: ['192.0.2.30'] },
    'implicit.test': { A: ['192.0.2.40'], AAAA: ['2001:db8::40'] },
    'v6only.test': { MX: [{ priority: 10, exchange: 'mx.v6only.test' }] },
    'mx.v6only.test': { AAAA: ['2001:db8::41'] },
    'null.test': { MX: [{ priority: 0, exchange: '.' }] },
    'nomail.test': { TXT: ['no MX, no A'] },
    'gone.test': 'NXDOMAIN',
    'broken.test': 'SERVFAIL',
    'refused.test': 'REFUSED',
    'slow.test': 'DROP',
    'hostfail.test': { MX: [{ priority: 10, exchange: 'mx.hostfail.test' }] },
    'mx.hostfail.test': 'SERVFAIL',
    'hostfail2.test': { MX: [{ priority: 10, exchange: 'mx.hostfail.test' }, { priority: 20, exchange: 'live.fallback.test' }] },
    'local.test': { MX: [{ priority: 10, exchange: 'mx.local.test' }] },
    'mx.local.test': { A: ['127.0.0.1'], AAAA: ['::1'] },
    'mixed.test': { MX: [{ priority: 10, exchange: 'mx.mixed.test' }] },
    'mx.mixed.test': { A: ['10.1.2.3', '192.0.2.50', '169.254.1.1'], AAAA: ['fd00::1', '2001:db8::50'] },
    'localbackup.test': { MX: [{ priority: 10, exchange: 'mx.local.test' }, { priority: 20, exchange: 'live.fallback.test' }] },
    'localimplicit.test': { A: ['192.168.1.1'] },
    'equal.test': {
      MX: [
        { priority: 10, exchange: 'a.equal.test' },
        { priority: 10, exchange: 'b.equal.test' },
        { priority: 10, exchange: 'c.equal.test' },
        { priority: 20, exchange: 'd.equal.test' },
      ],
    },
    'a.equal.test': { A: ['192.0.2.61'] },
    'b.equal.test': { A: ['192.0.2.62'] },
    'c.equal.test': { A: ['192.0.2.63'] },
    'd.equal.test': { A: ['192.0.2.64'] },
    'xn--bcher-kva.test': { MX: [{ priority: 5, exchange: 'mx.xn--bcher-kva.test' }] },
    'mx.xn--bcher-kva.test': { A: ['192.0.2.70'] },
    'alias.test': { MX: [{ priority: 10, exchange: 'mx.alias.test' }] },
    'mx.alias.test': { CNAME: 'live.fallback.test' },
    'cache.test': { MX: [{ priority: 10, exchange: 'mx.cache.test' }] },
    'mx.cache.test': { A: ['192.0.2.80'], ttl: 300 },
    'shortttl.test': { MX: [{ priority: 10, exchange: 'mx.shortttl.test' }] },
    'mx.shortttl.test': { A: ['192.0.2.81'], ttl: 0 },
    'dup.test': { MX: [{ priority: 10, exchange: 'mx1.dup.test' }, { priority: 20, exchange: 'mx2.dup.test' }] },
    'mx1.dup.test': { A: ['192.0.2.90'] },
    'mx2.dup.test': { A: ['192.0.2.90', '192.0.2.91'] },
  });
});
after(() => dns.stop());

function resolver(opts: ResolverOptions = {}): DestinationResolver {
  return new DestinationResolver({ servers: [dns.address], timeoutMs: 2000, cacheMaxMs: 0, ...opts });
}

function queriesFor(name: string, type?: string): number {
  return dns.queries.filter((q) => q.name.toLowerCase() === name && (!type || q.type === type)).length;
}

async function rejectsWith(p: Promise<unknown>, status: string, temporary: boolean, text?: RegExp): Promise<DestinationError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof DestinationError, `expected a DestinationError, got ${String(caught)}`);
  assert.equal(caught.code, 'EDNS');
  assert.equal(caught.enhancedStatus, status, caught.message);
  assert.equal(caught.temporary, temporary, caught.message);
  assert.equal(caught.responseCode, temporary ? 451 : 550);
  assert.ok(caught.response.startsWith(`${caught.responseCode} ${status} `));
  if (text) assert.match(caught.message, text);
  return caught;
}

test('MX hosts come in priority order, each with A then AAAA addresses, on port 25', async () => {
  const hosts = await resolver().resolve('prio.test');
  assert.deepEqual(
    hosts.map((h) => [h.host, h.priority, h.port, h.source, h.addresses.map((a) => `${a.family}:${a.address}`)]),
    [
      ['mx-a.prio.test', 10, 25, 'mx', ['4:192.0.2.10', '6:2001:db8::10']],
      ['mx-b.prio.test', 20, 25, 'mx', ['4:192.0.2.20']],
    ],
  );
});

test('preferIPv6 puts AAAA first; ignoreIPv6 drops AAAA and never asks for it', async () => {
  const v6first = await resolver({ preferIPv6: true }).resolve('prio.test');
  assert.deepEqual(v6first[0]!.addresses.map((a) => a.address), ['2001:db8::10', '192.0.2.10']);

  const before = queriesFor('mx-a.prio.test', 'AAAA');
  const v4 = await resolver({ ignoreIPv6: true }).resolve('prio.test');
  assert.deepEqual(v4[0]!.addresses, [{ address: '192.0.2.10', family: 4 }]);
  assert.equal(queriesFor('mx-a.prio.test', 'AAAA'), before);

  // an MX with only IPv6 addresses is unusable when IPv6 is ignored
  await rejectsWith(resolver({ ignoreIPv6: true }).resolve('v6only.test'), '5.4.4', false);
  assert.deepEqual((await resolver().resolve('v6only.test'))[0]!.addresses, [{ address: '2001:db8::41', family: 6 }]);
});

test('the port option maps MX names to ports (how tests point MX hosts at fake MX servers)', async () => {
  const hosts = await resolver({ port: (h) => (h === 'mx-a.prio.test' ? 2601 : 2602) }).resolve('prio.test');
  assert.deepEqual(hosts.map((h) => h.port), [2601, 2602]);
  assert.deepEqual((await resolver({ port: 2525 }).resolve('prio.test')).map((h) => h.port), [2525, 2525]);
});

test('an MX host that does not exist or has no address is skipped: the next MX is used', async () => {
  const hosts = await resolver().resolve('fallback.test');
  assert.deepEqual(hosts.map((h) => [h.host, h.priority]), [['live.fallback.test', 30]]);
});

test('an MX host whose lookup fails temporarily is skipped when another MX works, else 4.4.3', async () => {
  const hosts = await resolver().resolve('hostfail2.test');
  assert.deepEqual(hosts.map((h) => h.host), ['live.fallback.test']);
  await rejectsWith(resolver().resolve('hostfail.test'), '4.4.3', true, /ESERVFAIL/);
});

test('an MX host that is a CNAME is followed', async () => {
  const hosts = await resolver().resolve('alias.test');
  assert.deepEqual(hosts.map((h) => [h.host, h.addresses[0]!.address]), [['mx.alias.test', '192.0.2.30']]);
});

test('an address reached through two MX names is tried once, under the better MX', async () => {
  const hosts = await resolver().resolve('dup.test');
  assert.deepEqual(hosts.map((h) => [h.host, h.addresses.map((a) => a.address)]), [
    ['mx1.dup.test', ['192.0.2.90']],
    ['mx2.dup.test', ['192.0.2.91']],
  ]);
});

test('no MX records: the domain itself is the mail host (RFC 5321 §5.1 implicit MX)', async () => {
  const hosts = await resolver().resolve('implicit.test');
  assert.deepEqual(hosts, [
    { host: 'implicit.test', port: 25, priority: 0, source: 'implicit', addresses: [{ address: '192.0.2.40', family: 4 }, { address: '2001:db8::40', family: 6 }] },
  ]);
  // no MX and no address: permanent, unroutable
  await rejectsWith(resolver().resolve('nomail.test'), '5.4.4', false, /implicit MX/);
});

test('a null MX (RFC 7505) is a permanent 5.1.10', async () => {
  await rejectsWith(resolver().resolve('null.test'), '5.1.10', false, /null MX/);
});

test('NXDOMAIN is a permanent 5.1.2; an invalid domain too', async () => {
  const err = await rejectsWith(resolver().resolve('gone.test'), '5.1.2', false, /NXDOMAIN/);
  assert.equal(err.dnsCode, 'ENOTFOUND');
  assert.equal(err.domain, 'gone.test');
  await rejectsWith(resolver().resolve('not a domain'), '5.1.2', false);
  await rejectsWith(resolver().resolve('nodot'), '5.1.2', false);
  await rejectsWith(resolver().resolve(`${'a'.repeat(64)}.test`), '5.1.2', false);
});

test('SERVFAIL and REFUSED are a temporary 4.4.3', async () => {
  const err = await rejectsWith(resolver().resolve('broken.test'), '4.4.3', true);
  assert.equal(err.dnsCode, 'ESERVFAIL');
  await rejectsWith(resolver().resolve('refused.test'), '4.4.3', true);
});

test('a server that never answers is a temporary 4.4.3 within the timeout', async () => {
  const started = Date.now();
  await rejectsWith(resolver({ timeoutMs: 300 }).resolve('slow.test'), '4.4.3', true, /ETIMEOUT/);
  const tookMs = Date.now() - started;
  assert.ok(tookMs < 1000, `took ${tookMs} ms`);
});

test('an unreachable DNS server is a temporary 4.4.3', async () => {
  // a UDP port that was free a moment ago: nobody listens there now
  const probe = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve));
  const { port } = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const started = Date.now();
  await rejectsWith(new DestinationResolver({ servers: [`127.0.0.1:${port}`], timeoutMs: 500, cacheMaxMs: 0 }).resolve('prio.test'), '4.4.3', true);
  assert.ok(Date.now() - started < 1500);
});

test('local and private answers are refused unless allowLocalAddresses', async () => {
  // an MX pointing at loopback only: refused, permanently (nothing to try)
  await rejectsWith(resolver().resolve('local.test'), '5.4.4', false, /local addresses/);
  const allowed = await resolver({ allowLocalAddresses: true }).resolve('local.test');
  assert.deepEqual(allowed[0]!.addresses.map((a) => a.address), ['127.0.0.1', '::1']);

  // private, link-local and unique-local addresses are dropped, public ones kept
  const mixed = await resolver().resolve('mixed.test');
  assert.deepEqual(mixed[0]!.addresses.map((a) => a.address), ['192.0.2.50', '2001:db8::50']);

  // a local primary MX is skipped for a public backup
  assert.deepEqual((await resolver().resolve('localbackup.test')).map((h) => h.host), ['live.fallback.test']);

  // the implicit MX too
  await rejectsWith(resolver().resolve('localimplicit.test'), '5.4.4', false);
});

test('isLocalAddress covers loopback, private, link-local, v4-mapped and non-addresses', () => {
  for (const a of ['127.0.0.1', '127.9.9.9', '10.0.0.1', '172.16.5.5', '192.168.0.1', '169.254.0.1', '100.64.0.1', '0.0.0.0', '::1', '::', 'fe80::1', 'fd12::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', '224.0.0.1', 'not-an-ip']) {
    assert.equal(isLocalAddress(a), true, a);
  }
  for (const a of ['192.0.2.1', '8.8.8.8', '2001:db8::1', '2a00:1450::1', '::ffff:8.8.8.8']) assert.equal(isLocalAddress(a), false, a);
});

test('a static route skips DNS, may point at loopback, and keeps its port', async () => {
  const before = dns.queries.length;
  const hosts = await resolver().resolve('gone.test', { host: '127.0.0.1', port: 2600 });
  assert.deepEqual(hosts, [{ host: '127.0.0.1', port: 2600, priority: 0, source: 'route', addresses: [{ address: '127.0.0.1', family: 4 }] }]);
  const v6 = await resolver().resolve('x.test', { host: '[::1]', port: 2601 });
  assert.deepEqual(v6[0]!.addresses, [{ address: '::1', family: 6 }]);
  // a route host name is resolved by the system (here: localhost from /etc/hosts), not by DNS
  const named = await resolver({ ignoreIPv6: true }).resolve('x.test', { host: 'localhost', port: 2602 });
  assert.equal(named[0]!.host, 'localhost');
  assert.equal(named[0]!.port, 2602);
  assert.ok(named[0]!.addresses.length > 0);
  assert.ok(named[0]!.addresses.every((a) => a.family === 4 && a.address.startsWith('127.')));
  assert.equal(dns.queries.length, before, 'no DNS query for a routed destination');
});

test('a static route whose host does not resolve is temporary (a config fix must not bounce mail)', async () => {
  // the system resolver would ask the network for an unknown name, so this one is stood in for
  const routeLookup = async (host: string) => {
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  };
  const err = await rejectsWith(resolver({ routeLookup }).resolve('x.test', { host: 'smarthost.test', port: 2600 }), '4.4.3', true, /Static route/);
  assert.equal(err.dnsCode, 'ENOTFOUND');
  const empty = resolver({ ignoreIPv6: true, routeLookup: async () => [{ address: '::1', family: 6 }] });
  await rejectsWith(empty.resolve('x.test', { host: 'smarthost.test', port: 2600 }), '4.4.3', true, /no usable address/);
});

test('an address literal is delivered to directly, local ones refused unless allowed', async () => {
  const before = dns.queries.length;
  assert.deepEqual(await resolver().resolve('[192.0.2.1]'), [{ host: '192.0.2.1', port: 25, priority: 0, source: 'literal', addresses: [{ address: '192.0.2.1', family: 4 }] }]);
  assert.deepEqual((await resolver().resolve('[IPv6:2001:db8::1]'))[0]!.addresses, [{ address: '2001:db8::1', family: 6 }]);
  await rejectsWith(resolver().resolve('[127.0.0.1]'), '5.4.4', false, /local/);
  assert.equal((await resolver({ allowLocalAddresses: true, port: 2600 }).resolve('[127.0.0.1]'))[0]!.port, 2600);
  await rejectsWith(resolver({ ignoreIPv6: true }).resolve('[IPv6:2001:db8::1]'), '5.4.4', false);
  await rejectsWith(resolver().resolve('[999.1.1.1]'), '5.1.2', false);
  await rejectsWith(resolver().resolve('[2001:db8::1]'), '5.1.2', false); // RFC 5321 wants the IPv6: tag
  assert.equal(dns.queries.length, before);
});

test('an IDN domain is looked up in its punycode form', async () => {
  const hosts = await resolver().resolve('BÜCHER.test.');
  assert.deepEqual(hosts.map((h) => h.host), ['mx.xn--bcher-kva.test']);
  assert.ok(queriesFor('xn--bcher-kva.test', 'MX') >= 1);
});

test('equal MX priorities are shuffled per call; lower priorities stay behind', async () => {
  const r = resolver({ cacheMaxMs: 60_000 });
  const firsts = new Set<string>();
  for (let i = 0; i < 40; i++) {
    const hosts = await r.resolve('equal.test');
    assert.equal(hosts.length, 4);
    assert.equal(hosts[3]!.host, 'd.equal.test');
    firsts.add(hosts[0]!.host);
  }
  assert.ok(firsts.size >= 2, `always ${[...firsts].join()} first`);
  // a seeded random source makes it reproducible
  const fixed = resolver({ random: () => 0 });
  assert.deepEqual((await fixed.resolve('equal.test')).map((h) => h.host), ['b.equal.test', 'c.equal.test', 'a.equal.test', 'd.equal.test']);
});

test('positive answers are cached (shared by concurrent lookups) within their TTL', async () => {
  const r = resolver({ cacheMaxMs: 60_000 });
  const before = queriesFor('cache.test', 'MX');
  const all = await Promise.all(Array.from({ length: 5 }, () => r.resolve('cache.test')));
  assert.equal(queriesFor('cache.test', 'MX'), before + 1, 'five concurrent lookups, one query');
  assert.ok(all.every((h) => h[0]!.addresses[0]!.address === '192.0.2.80'));

  // a change in DNS is not seen while the entry lives; a fresh resolver sees it
  dns.set('mx.cache.test', { A: ['192.0.2.82'], ttl: 300 });
  assert.equal((await r.resolve('cache.test'))[0]!.addresses[0]!.address, '192.0.2.80');
  assert.equal((await resolver().resolve('cache.test'))[0]!.addresses[0]!.address, '192.0.2.82');

  // callers may mutate what they get without harming the cache
  const mine = await r.resolve('cache.test');
  mine[0]!.addresses.length = 0;
  assert.equal((await r.resolve('cache.test'))[0]!.addresses.length, 1);

  // TTL 0 is not cached; failures are never cached
  const b2 = queriesFor('shortttl.test', 'MX');
  await r.resolve('shortttl.test');
  await r.resolve('shortttl.test');
  assert.equal(queriesFor('shortttl.test', 'MX'), b2 + 2);
  const b3 = queriesFor('broken.test', 'MX');
  await rejectsWith(r.resolve('broken.test'), '4.4.3', true);
  await rejectsWith(r.resolve('broken.test'), '4.4.3', true);
  assert.ok(queriesFor('broken.test', 'MX') >= b3 + 2);
});

test('the cache is bounded: the least recently used domain goes first', async () => {
  const r = resolver({ cacheMaxMs: 60_000, cacheSize: 2 });
  await r.resolve('prio.test');
  await r.resolve('implicit.test');
  await r.resolve('prio.test'); // prio is now the most recent
  await r.resolve('live.fallback.test'); // evicts implicit.test
  const p = queriesFor('prio.test', 'MX');
  const b = queriesFor('implicit.test', 'MX');
  await r.resolve('prio.test');
  assert.equal(queriesFor('prio.test', 'MX'), p, 'still cached');
  await r.resolve('implicit.test');
  assert.equal(queriesFor('implicit.test', 'MX'), b + 1, 'evicted, asked again');
});
