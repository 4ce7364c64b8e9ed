/**
 * DANE and MTA-STS on the delivery path, one job at a time through deliverJob, with real peers on
 * loopback: the test DNS server (MX, A, TLSA with AD where "signed", TXT), fakemx servers with
 * STARTTLS and certificates made for the test, and an HTTPS server for the policies. Each case
 * checks what the destination saw (nothing at all when the policy forbade it), the row's outcome,
 * category and `tlsPolicy`, and the worker's log events.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { Job, RowResult } from '../../../lib/channel/protocol.js';
import { loadConfig } from '../../../lib/config/load.js';
import { loadBounceRules } from '../../../lib/bounce/classify.js';
import { Circuit } from '../../../lib/deliver/circuit.js';
import { TlsaResolver } from '../../../lib/deliver/tls/dane.js';
import { deliverJob, type DeliveryContext } from '../../../lib/deliver/deliver-job.js';
import { DestinationResolver } from '../../../lib/deliver/destination.js';
import { WireResolver } from '../../../lib/deliver/tls/dns-wire.js';
import { MtaStsResolver } from '../../../lib/deliver/tls/mta-sts.js';
import { SessionPool } from '../../../lib/deliver/session-pool.js';
import { trustList } from '../../../lib/deliver/tls/trust.js';
import { HookRunner } from '../../../lib/plugins/runner.js';
import { captureLog, type CapturedLog } from '../../helpers/capture-log.js';
import { startDnsServer, type NameRecords, type TestDnsServer } from '../../helpers/dns-server.js';
import { startFakeMx, type FakeMx, type FakeMxOptions } from '../../helpers/fakemx.js';
import { tempDir, testOverrides } from '../../helpers/master.js';
import { policyText, startPolicyServer, type PolicyServer } from '../../helpers/policy-server.js';
import { issue, makeCa, selfSigned, tlsaData, type IssuedPem, type Pem } from '../../helpers/test-pki.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

let ca: Pem;
let eeCert: Pem;
let otherCert: Pem;
let caLeaf: IssuedPem;
let stsLeaf: IssuedPem;
let dns: TestDnsServer;
let web: PolicyServer;
/** MX host name → the port of the fakemx playing it */
const ports = new Map<string, number>();

before(async () => {
  ca = await makeCa();
  [eeCert, otherCert, caLeaf, stsLeaf] = await Promise.all([
    selfSigned(['mx.dane.test']),
    selfSigned(['elsewhere.test']),
    issue(ca, ['mx.ta.test']),
    issue(ca, ['mx.sts.test', 'mx.stale.test', 'mx.ok.test']),
  ]);
  const webCert = await issue(ca, ['mta-sts.sts.test', 'mta-sts.badmx.test', 'mta-sts.badcert.test', 'mta-sts.testing.test', 'mta-sts.stale.test', 'mta-sts.both.test', 'mta-sts.optout.test']);
  web = await startPolicyServer({ key: webCert.key, cert: webCert.chain });
  dns = await startDnsServer({});
  cleanup.push(() => web.stop(), () => dns.stop());
});

/** A fakemx for `host`, its MX and A records for `domain`, and optional TLSA records at its port. */
async function mxFor(domain: string, host: string, opts: FakeMxOptions & { tlsa?: NameRecords } = {}): Promise<FakeMx> {
  const { tlsa, ...mxOpts } = opts;
  const mx = await startFakeMx({ name: host, ...mxOpts });
  cleanup.push(() => mx.stop());
  ports.set(host, mx.port);
  dns.set(domain, { MX: [{ priority: 10, exchange: host }] });
  dns.set(host, { A: ['127.0.0.1'] });
  if (tlsa) dns.set(`_${mx.port}._tcp.${host}`, tlsa);
  return mx;
}

function publishPolicy(domain: string, id: string, text: string): void {
  dns.set(`_mta-sts.${domain}`, { TXT: [`v=STSv1; id=${id}`] });
  dns.set(`mta-sts.${domain}`, { A: ['127.0.0.1'] });
  web.set(`mta-sts.${domain}`, { body: text });
}

interface Rig {
  ctx: DeliveryContext;
  log: CapturedLog;
  deliver(domain: string, testId: string): Promise<RowResult>;
}

function rig(overrides: Record<string, unknown> = {}, sessionIdleMs = 0): Rig {
  const { config } = loadConfig({ appDir: tempDir(), env: {}, overrides: testOverrides({ delivery: { allowLocalAddresses: true }, ...overrides }) });
  const log = captureLog();
  const extraCa = [ca.cert.toString()];
  const ctx: DeliveryContext = {
    config,
    zone: config.zones.default!,
    resolver: new DestinationResolver({ servers: [dns.address], allowLocalAddresses: true, timeoutMs: 2000, cacheMaxMs: 0, port: (h) => ports.get(h) ?? 9 }),
    dkimKeys: [],
    bounceRules: loadBounceRules(),
    circuit: new Circuit(0),
    sessions: new SessionPool({ idleMs: sessionIdleMs, maxIdlePerKey: 2, maxMessagesPerSession: 10, minGapMs: 0 }),
    hooks: new HookRunner(pino({ level: 'silent' }), 1000),
    discovery: {
      dane: new TlsaResolver(new WireResolver({ servers: [dns.address], timeoutMs: 2000 }), 0),
      mtaSts: new MtaStsResolver({ servers: [dns.address], timeoutMs: 2000, allowLocalAddresses: true, extraCa, httpsPort: web.port, txtCacheMs: 0, logger: log.logger }),
    },
    ca: trustList(extraCa)!,
    logger: log.logger,
    chunk: (_id, n) => Promise.resolve(n === 0 ? [Buffer.from('Hello over a checked channel.\r\n')] : undefined),
  };
  cleanup.push(async () => ctx.sessions.closeAll());
  let seq = 0;
  return {
    ctx,
    log,
    async deliver(domain, testId) {
      const job: Job = {
        leaseId: `lease-${testId}`,
        id: `id-${testId}`,
        zone: 'default',
        domain,
        from: 'sender@src.test',
        rows: [{ seq: seq++, recipient: `user@${domain}` }],
        headers: `From: sender@src.test\r\nTo: user@${domain}\r\nSubject: ${testId}\r\nX-Test-Id: ${testId}\r\n\r\n`,
        bodyHash: '',
        size: 200,
        chunks: 1,
        messageId: `<${testId}@src.test>`,
        created: Date.now(),
        attempts: 0,
      };
      const { results } = await deliverJob(job, ctx);
      assert.equal(results.length, 1);
      console.log(`# ${testId}: ${results[0]!.outcome} ${results[0]!.status ?? ''} [${results[0]!.tlsPolicy ?? ''}] ${results[0]!.response}`);
      return results[0]!;
    },
  };
}

const secureTlsa = (cert: Buffer, usage: 2 | 3 = 3): NameRecords => ({ TLSA: [{ usage, selector: 1, matching: 1, data: tlsaData(cert, 1, 1) }], secure: true });

test('DANE-EE: a matching self-signed certificate is delivered over TLS; the row says dane', async () => {
  const mx = await mxFor('ee.dane.test', 'mx.dane.test', { tlsKey: eeCert.key, tlsCert: eeCert.cert, tlsa: secureTlsa(eeCert.cert) });
  const r = rig();
  const row = await r.deliver('ee.dane.test', 'dane-ee');
  assert.equal(row.outcome, 'delivered', row.response);
  assert.equal(row.tls, true);
  assert.equal(row.tlsPolicy, 'dane');
  assert.equal(mx.transactions.find((t) => t.testId === 'dane-ee')?.tls, true);
});

test('DANE-EE mismatch: deferred as a TLS failure, nothing said after STARTTLS', async () => {
  const mx = await mxFor('mismatch.dane.test', 'mx.mismatch.dane.test', { tlsKey: eeCert.key, tlsCert: eeCert.cert, tlsa: secureTlsa(otherCert.cert) });
  const r = rig();
  const row = await r.deliver('mismatch.dane.test', 'dane-mismatch');
  assert.equal(row.outcome, 'deferred', row.response);
  assert.equal(row.category, 'tls');
  assert.equal(row.status, '4.7.5');
  assert.equal(row.tlsPolicy, 'dane');
  assert.match(row.response, /DANE.*matches no TLSA record/);
  assert.equal(mx.transactions.length, 0, 'no MAIL FROM, in plaintext or otherwise');
  assert.ok(mx.connections.length >= 1 && mx.connections.every((c) => c.tls), 'the server was reached, over TLS, and left');
  assert.equal(r.log.events('DANE_FAILED').length, 1);
});

test('DANE without STARTTLS at the server: deferred, never plaintext', async () => {
  const mx = await mxFor('plain.dane.test', 'mx.plain.dane.test', { tls: false, tlsa: secureTlsa(eeCert.cert) });
  const row = await rig().deliver('plain.dane.test', 'dane-plain');
  assert.equal(row.outcome, 'deferred', row.response);
  assert.equal(row.category, 'tls');
  assert.match(String(row.status), /^4\./);
  assert.equal(mx.transactions.length, 0);
});

test('insecure TLSA records (no AD) are ignored: the normal policy delivers', async () => {
  const mx = await mxFor('insecure.dane.test', 'mx.insecure.dane.test', { tlsKey: eeCert.key, tlsCert: eeCert.cert, tlsa: { ...secureTlsa(otherCert.cert), secure: false } });
  const row = await rig().deliver('insecure.dane.test', 'dane-insecure');
  assert.equal(row.outcome, 'delivered', row.response);
  assert.equal(row.tlsPolicy, 'may');
  assert.equal(mx.transactions.length, 1);
});

test('a TLSA lookup that fails in a signed zone defers that host; in an unsigned zone it is ignored', async () => {
  const signed = await mxFor('servfail.dane.test', 'mx.servfail.dane.test', { tlsKey: eeCert.key, tlsCert: eeCert.cert });
  dns.set(`_${signed.port}._tcp.mx.servfail.dane.test`, 'SERVFAIL');
  dns.set('mx.servfail.dane.test', { A: ['127.0.0.1'], secure: true });
  const unsigned = await mxFor('servfail2.dane.test', 'mx.servfail2.dane.test', { tlsKey: eeCert.key, tlsCert: eeCert.cert });
  dns.set(`_${unsigned.port}._tcp.mx.servfail2.dane.test`, 'SERVFAIL');
  const r = rig();
  const row = await r.deliver('servfail.dane.test', 'dane-servfail');
  assert.equal(row.outcome, 'deferred', row.response);
  assert.equal(row.category, 'tls');
  assert.equal(signed.connections.length, 0, 'not even connected');
  assert.equal(r.log.events('DANE_LOOKUP_FAILED').length, 1);
  const row2 = await r.deliver('servfail2.dane.test', 'dane-servfail-unsigned');
  assert.equal(row2.outcome, 'delivered', row2.response);
});

test('DANE-TA: the leaf chains to the anchor and names the MX → delivered; another name → deferred', async () => {
  const mx = await mxFor('ta.test', 'mx.ta.test', { tlsKey: caLeaf.key, tlsCert: caLeaf.chain, tlsa: secureTlsa(ca.cert, 2) });
  const r = rig();
  const row = await r.deliver('ta.test', 'dane-ta');
  assert.equal(row.outcome, 'delivered', row.response);
  assert.equal(row.tlsPolicy, 'dane');
  assert.equal(mx.transactions.find((t) => t.testId === 'dane-ta')?.tls, true);

  // the same certificate served for a host it does not name
  const wrong = await mxFor('ta2.test', 'mx.ta2.test', { tlsKey: caLeaf.key, tlsCert: caLeaf.chain, tlsa: secureTlsa(ca.cert, 2) });
  const row2 = await r.deliver('ta2.test', 'dane-ta-name');
  assert.equal(row2.outcome, 'deferred', row2.response);
  assert.match(row2.response, /does not name mx\.ta2\.test/);
  assert.equal(wrong.transactions.length, 0);
});

test('MTA-STS enforce: a listed MX with a valid certificate is delivered', async () => {
  const mx = await mxFor('sts.test', 'mx.sts.test', { tlsKey: stsLeaf.key, tlsCert: stsLeaf.chain });
  publishPolicy('sts.test', 'a1', policyText('enforce', ['mx.sts.test']));
  const r = rig();
  const row = await r.deliver('sts.test', 'sts-ok');
  assert.equal(row.outcome, 'delivered', row.response);
  assert.equal(row.tlsPolicy, 'mta-sts');
  assert.equal(mx.transactions.find((t) => t.testId === 'sts-ok')?.tls, true);
  assert.equal(r.log.events('MTA_STS_POLICY')[0]?.mode, 'enforce');
});

test('MTA-STS enforce: an MX the policy does not list is never contacted; deferred', async () => {
  const mx = await mxFor('badmx.test', 'mx.badmx.test', { tlsKey: stsLeaf.key, tlsCert: stsLeaf.chain });
  publishPolicy('badmx.test', 'b1', policyText('enforce', ['mx.elsewhere.test', '*.other.test']));
  const r = rig();
  const row = await r.deliver('badmx.test', 'sts-badmx');
  assert.equal(row.outcome, 'deferred', row.response);
  assert.equal(row.category, 'tls');
  assert.equal(row.tlsPolicy, 'mta-sts');
  assert.match(row.response, /not in the mx list/);
  assert.equal(mx.connections.length, 0);
  assert.equal(r.log.events('MTA_STS_REFUSED').length, 1);
});

test('MTA-STS enforce: a certificate that is not valid for the MX → deferred, nothing sent', async () => {
  const mx = await mxFor('badcert.test', 'mx.badcert.test', { tlsKey: stsLeaf.key, tlsCert: stsLeaf.chain }); // names other hosts
  publishPolicy('badcert.test', 'c1', policyText('enforce', ['mx.badcert.test']));
  const row = await rig().deliver('badcert.test', 'sts-badcert');
  assert.equal(row.outcome, 'deferred', row.response);
  assert.equal(row.category, 'tls');
  assert.equal(row.status, '4.7.5');
  assert.match(row.response, /altnames/);
  assert.equal(mx.transactions.length, 0);
});

test('MTA-STS testing: delivered as usual, and what enforce would refuse is logged', async () => {
  const mx = await mxFor('testing.test', 'mx.testing.test'); // self-signed for mx.test, not listed either
  publishPolicy('testing.test', 't1', policyText('testing', ['mx.listed.test']));
  const r = rig();
  const row = await r.deliver('testing.test', 'sts-testing');
  assert.equal(row.outcome, 'delivered', row.response);
  assert.equal(row.tlsPolicy, 'mta-sts-testing');
  assert.equal(mx.transactions.length, 1);
  const reasons = r.log.events('MTA_STS_TESTING').map((e) => String(e.reason));
  assert.equal(reasons.length, 2, JSON.stringify(reasons));
  assert.match(reasons[0]!, /not in the policy/);
  assert.match(reasons[1]!, /certificate is not valid/);
});

test('MTA-STS: when a refresh fails, the cached policy is still enforced', async () => {
  const mx = await mxFor('stale.test', 'mx.stale.test', { tlsKey: stsLeaf.key, tlsCert: stsLeaf.chain });
  publishPolicy('stale.test', 's1', policyText('enforce', ['mx.stale.test']));
  const r = rig();
  assert.equal((await r.deliver('stale.test', 'stale-1')).outcome, 'delivered');
  // the domain moves its MX, announces a new policy id, and its policy host breaks
  const moved = await mxFor('stale.test', 'mx.moved.stale.test');
  dns.set('_mta-sts.stale.test', { TXT: ['v=STSv1; id=s2'] });
  web.set('mta-sts.stale.test', { status: 500, body: 'down' });
  const row = await r.deliver('stale.test', 'stale-2');
  assert.equal(row.outcome, 'deferred', row.response);
  assert.match(row.response, /not in the mx list/);
  assert.equal(moved.connections.length, 0);
  assert.equal(mx.transactions.length, 1);
  assert.equal(r.log.events('MTA_STS_FETCH_FAILED')[0]?.cached, 's1');
});

test('DANE wins over MTA-STS; an explicit [tlsPolicies] entry is looked up for neither', async () => {
  // enforce lists another MX, but this MX has DANE-EE records: DANE decides
  const mx = await mxFor('both.test', 'mx.both.test', { tlsKey: eeCert.key, tlsCert: eeCert.cert, tlsa: secureTlsa(eeCert.cert) });
  publishPolicy('both.test', 'd1', policyText('enforce', ['mx.nothere.test']));
  const r = rig({ tlsPolicies: { 'optout.test': 'may' } });
  const row = await r.deliver('both.test', 'both');
  assert.equal(row.outcome, 'delivered', row.response);
  assert.equal(row.tlsPolicy, 'dane');
  assert.equal(mx.transactions.length, 1);

  // the operator's entry: neither the (mismatching) TLSA records nor the policy are asked for
  const opt = await mxFor('optout.test', 'mx.optout.test', { tlsa: secureTlsa(otherCert.cert) });
  publishPolicy('optout.test', 'e1', policyText('enforce', ['mx.nothere.test']));
  const before = dns.queries.length;
  const row2 = await r.deliver('optout.test', 'optout');
  assert.equal(row2.outcome, 'delivered', row2.response);
  assert.equal(row2.tlsPolicy, 'may');
  assert.equal(opt.transactions.length, 1);
  assert.deepEqual(dns.queries.slice(before).filter((q) => q.type === 'TXT' || q.type === 'TLSA'), [], 'no TXT or TLSA query');
});

test('a session opened under a weaker policy is not reused for DANE', async () => {
  // two domains share an MX whose TLSA records do not match; one is opted out by the operator
  const mx = await mxFor('weak.test', 'mx.shared.test', { tlsa: secureTlsa(otherCert.cert) });
  dns.set('strict.test', { MX: [{ priority: 10, exchange: 'mx.shared.test' }] });
  const r = rig({ tlsPolicies: { 'weak.test': 'may' } }, 5000);
  const weak = await r.deliver('weak.test', 'weak');
  assert.equal(weak.outcome, 'delivered', weak.response);
  const strict = await r.deliver('strict.test', 'strict');
  assert.equal(strict.outcome, 'deferred', `the idle "may" session was not used: ${strict.response}`);
  assert.equal(mx.transactions.length, 1);
  assert.equal(mx.connections.length, 2, 'a new connection was opened for the DANE delivery');
});
