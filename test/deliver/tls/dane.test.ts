/**
 * DANE's parts without SMTP: TLSA records (parse, usable or not), matching a presented chain
 * (DANE-EE by certificate or key, each digest; DANE-TA with its chain, name and dates), and the
 * lookup through a "validating" resolver (the test DNS server sets AD on names marked secure):
 * secure, insecure, none, and failures that defer only in a signed zone.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { checkDane, DaneLookupError, isUsableTlsa, parseTlsa, TlsaResolver, type TlsaRecord } from '../../../lib/deliver/tls/dane.js';
import { WireResolver } from '../../../lib/deliver/tls/dns-wire.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { der, issue, makeCa, selfSigned, tlsaData, type IssuedPem, type Pem } from '../../helpers/test-pki.js';

let ca: Pem;
let otherCa: Pem;
let leaf: IssuedPem;
let self: Pem;
before(async () => {
  [ca, otherCa, self] = await Promise.all([makeCa(), makeCa('Other CA'), selfSigned(['mx.dane.test'])]);
  leaf = await issue(ca, ['mx.dane.test']);
});

const rec = (usage: number, selector: number, matching: number, hex: string): TlsaRecord => ({ usage, selector, matching, data: Buffer.from(hex, 'hex') });

test('TLSA records: parsed from RDATA; usable only as DANE-TA/EE with a known selector, matching type and digest length', () => {
  assert.deepEqual(parseTlsa(Buffer.from([3, 1, 1, 0xab])), { usage: 3, selector: 1, matching: 1, data: Buffer.from([0xab]) });
  assert.equal(parseTlsa(Buffer.from([3, 1, 1])), undefined, 'no association data');
  const sha256 = 'aa'.repeat(32);
  assert.ok(isUsableTlsa(rec(3, 1, 1, sha256)));
  assert.ok(isUsableTlsa(rec(2, 0, 2, 'bb'.repeat(64))));
  assert.ok(isUsableTlsa(rec(3, 0, 0, 'cc'.repeat(10))));
  assert.ok(!isUsableTlsa(rec(1, 1, 1, sha256)), 'PKIX-EE is unusable for SMTP (RFC 7672 §3.1.3)');
  assert.ok(!isUsableTlsa(rec(0, 1, 1, sha256)), 'PKIX-TA too');
  assert.ok(!isUsableTlsa(rec(4, 1, 1, sha256)), 'unknown usage');
  assert.ok(!isUsableTlsa(rec(3, 2, 1, sha256)), 'unknown selector');
  assert.ok(!isUsableTlsa(rec(3, 1, 3, sha256)), 'unknown matching type');
  assert.ok(!isUsableTlsa(rec(3, 1, 1, 'aa'.repeat(31))), 'a SHA-256 digest of the wrong length');
  assert.ok(!isUsableTlsa(rec(3, 1, 2, sha256)), 'a SHA-256 digest labelled SHA-512');
});

test('DANE-EE: the leaf matches by key or certificate, every digest; no name or CA needed', () => {
  const chain = [der(self.cert)];
  for (const [selector, matching] of [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]] as const) {
    const verdict = checkDane([rec(3, selector, matching, tlsaData(self.cert, selector, matching))], chain, ['other.name.test']);
    assert.equal(verdict.ok, true, `3 ${selector} ${matching}`);
  }
  const wrong = checkDane([rec(3, 1, 1, tlsaData(leaf.cert, 1, 1))], chain, ['mx.dane.test']);
  assert.equal(wrong.ok, false);
  assert.match((wrong as { reason: string }).reason, /matches no TLSA record/);
  assert.equal(checkDane([rec(3, 1, 1, tlsaData(self.cert, 1, 1))], [], ['mx.dane.test']).ok, false, 'no certificate at all');
  assert.equal(checkDane([rec(3, 1, 1, tlsaData(self.cert, 1, 1))], [Buffer.from('junk')], ['mx.dane.test']).ok, false, 'an unreadable certificate');
  // EE records match the leaf only: a record for the CA with usage 3 does not make the leaf trusted
  assert.equal(checkDane([rec(3, 1, 1, tlsaData(ca.cert, 1, 1))], [der(leaf.cert), der(ca.cert)], ['mx.dane.test']).ok, false);
});

test('DANE-TA: the anchor is in the chain, the leaf chains to it, names the MX and is in date', () => {
  const chain = [der(leaf.cert), der(ca.cert)];
  const ta = rec(2, 1, 1, tlsaData(ca.cert, 1, 1));
  assert.deepEqual(checkDane([ta], chain, ['mx.dane.test']), { ok: true, match: 'TLSA 2 1 1' });
  assert.equal(checkDane([rec(2, 0, 2, tlsaData(ca.cert, 0, 2))], chain, ['MX.dane.test']).ok, true, 'full certificate, SHA-512; names compare case-insensitively');

  const wrongName = checkDane([ta], chain, ['mx.other.test']);
  assert.equal(wrongName.ok, false);
  assert.match((wrongName as { reason: string }).reason, /does not name mx\.other\.test/);

  const anotherAnchor = checkDane([rec(2, 1, 1, tlsaData(otherCa.cert, 1, 1))], chain, ['mx.dane.test']);
  assert.equal(anotherAnchor.ok, false, 'an anchor the server does not present');

  // a chain that claims the CA but whose leaf it did not sign: our CA cert after a self-signed leaf
  const forged = checkDane([ta], [der(self.cert), der(ca.cert)], ['mx.dane.test']);
  assert.equal(forged.ok, false);
  assert.match((forged as { reason: string }).reason, /not signed/);

  const later = Date.now() + 10 * 24 * 3600_000;
  const expired = checkDane([ta], chain, ['mx.dane.test'], later);
  assert.equal(expired.ok, false);
  assert.match((expired as { reason: string }).reason, /out of date/);

  // a leaf is no trust anchor for another leaf: a TA record for a non-CA certificate above it
  const notCa = checkDane([rec(2, 1, 1, tlsaData(self.cert, 1, 1))], [der(leaf.cert), der(self.cert)], ['mx.dane.test']);
  assert.equal(notCa.ok, false);
});

test('TLSA lookups: secure, insecure, none, and failures (deferred only in a signed zone)', async (t) => {
  const data = tlsaData(self.cert, 1, 1);
  const dns: TestDnsServer = await startDnsServer({
    '_25._tcp.secure.dane.test': { TLSA: [{ usage: 3, selector: 1, matching: 1, data }, { usage: 1, selector: 1, matching: 1, data }], secure: true },
    '_25._tcp.unusable.dane.test': { TLSA: [{ usage: 0, selector: 1, matching: 1, data }], secure: true },
    '_25._tcp.insecure.dane.test': { TLSA: [{ usage: 3, selector: 1, matching: 1, data }] },
    '_25._tcp.nodata.dane.test': { A: ['192.0.2.1'], secure: true },
    '_25._tcp.broken-signed.dane.test': 'SERVFAIL',
    'broken-signed.dane.test': { A: ['192.0.2.1'], secure: true },
    '_25._tcp.broken-unsigned.dane.test': 'SERVFAIL',
    'broken-unsigned.dane.test': { A: ['192.0.2.1'] },
    '_25._tcp.all-broken.dane.test': 'SERVFAIL',
    'all-broken.dane.test': 'SERVFAIL',
    '_25._tcp.alias.dane.test': { CNAME: '_25._tcp.secure.dane.test', secure: true },
  });
  t.after(() => dns.stop());
  const tlsa = new TlsaResolver(new WireResolver({ servers: [dns.address], timeoutMs: 2000 }));

  const secure = await tlsa.lookup('secure.dane.test', 25);
  assert.equal(secure.state, 'secure');
  assert.equal((secure as { records: TlsaRecord[] }).records.length, 1, 'the PKIX-EE record is left out');
  assert.equal((secure as { unusable: number }).unusable, 1);
  assert.deepEqual(await tlsa.lookup('unusable.dane.test', 25), { state: 'secure', records: [], unusable: 1 });
  assert.deepEqual(await tlsa.lookup('insecure.dane.test', 25), { state: 'insecure' }, 'records without AD do not count');
  assert.deepEqual(await tlsa.lookup('nodata.dane.test', 25), { state: 'none' });
  assert.deepEqual(await tlsa.lookup('nothing.dane.test', 25), { state: 'none' }, 'NXDOMAIN');
  assert.equal((await tlsa.lookup('alias.dane.test', 25)).state, 'secure', 'a CNAME to the records is followed');
  assert.deepEqual(await tlsa.lookup('broken-unsigned.dane.test', 25), { state: 'insecure' }, 'SERVFAIL in an unsigned zone cannot hide DANE');
  await assert.rejects(tlsa.lookup('broken-signed.dane.test', 25), (err: Error) => err instanceof DaneLookupError && /SERVFAIL.*signed zone/.test(err.message));
  await assert.rejects(tlsa.lookup('all-broken.dane.test', 25), DaneLookupError, 'when even the zone probe fails: defer');

  const before = dns.queries.length;
  await tlsa.lookup('secure.dane.test', 25);
  assert.equal(dns.queries.length, before, 'a secure answer is cached');
});
