/**
 * SPF, DKIM and DMARC of received mail (lib/inbound/parse/auth.ts), checked with mailauth against
 * a DNS server on loopback that serves the test records, stored with the message and never
 * enforced: a message that fails all three is stored like any other. The signatures are made by
 * mailauth's own signer, not ours, so the check does not grade its own homework.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { dkimSign } from 'mailauth';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { rawMessage, startReceiver, type TestReceiver } from '../helpers/inbound.js';

interface Auth {
  spf: { result: string; domain: string | null };
  dkim: { result: string; domain: string | null; selector: string | null; aligned: boolean }[];
  dmarc: { result: string; domain: string | null; policy: string | null } | null;
  header: string;
}

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
const dkimRecord = (key: typeof publicKey) => `v=DKIM1; k=rsa; p=${key.export({ type: 'spki', format: 'der' }).toString('base64')}`;

let dns: TestDnsServer;
let r: TestReceiver;
before(async () => {
  dns = await startDnsServer({
    'good.test': { TXT: ['v=spf1 ip4:127.0.0.0/8 -all'] },
    's1._domainkey.good.test': { TXT: [dkimRecord(publicKey)] },
    '_dmarc.good.test': { TXT: ['v=DMARC1; p=reject'] },
    'bad.test': { TXT: ['v=spf1 ip4:192.0.2.1 -all'] },
    // the published key is not the one that signed
    's1._domainkey.bad.test': { TXT: [dkimRecord(other.publicKey)] },
    '_dmarc.bad.test': { TXT: ['v=DMARC1; p=quarantine'] },
  });
  r = await startReceiver({ checkAuth: true }, { dns: { servers: [dns.address], timeout: '2s' } });
});
after(async () => {
  await r.stop();
  await dns.stop();
});

async function signedAndSent(domain: string): Promise<Auth> {
  const message = rawMessage({ From: `App <app@${domain}>`, To: 'auth@inbox.test', Subject: `from ${domain}`, 'Message-ID': `<1@${domain}>` }, 'Signed body\n');
  const key = { signingDomain: domain, selector: 's1', privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
  // mailauth 4.13.3 signs with signatureData; its bundled types want the key fields at the top too
  const signed = await dkimSign(message, { canonicalization: 'relaxed/relaxed', ...key, signatureData: [key] });
  const c = await r.session();
  await c.send(`MAIL FROM:<bounces@${domain}>`, 250);
  await c.send('RCPT TO:<auth@inbox.test>', 250);
  await c.send('DATA', 354);
  c.write(signed.signatures + message + '.\r\n');
  const id = /queued as (\S+)/.exec((await c.expect(250)).text)![1]!;
  c.close();
  const { body } = await r.json<{ auth: Auth }>(`/api/messages/${id}`);
  return body.auth;
}

test('a message that passes SPF, DKIM and DMARC is stored with the three results', async () => {
  const auth = await signedAndSent('good.test');
  assert.equal(auth.spf.result, 'pass');
  assert.equal(auth.spf.domain, 'good.test');
  assert.deepEqual(auth.dkim.map((d) => [d.result, d.domain, d.selector, d.aligned]), [['pass', 'good.test', 's1', true]]);
  assert.equal(auth.dmarc?.result, 'pass');
  assert.equal(auth.dmarc?.policy, 'reject');
  assert.match(auth.header, /spf=pass/);
  assert.match(auth.header, /dkim=pass/);
  assert.match(auth.header, /dmarc=pass/);
});

test('a message that fails all three is stored all the same, with the failures', async () => {
  const auth = await signedAndSent('bad.test');
  assert.equal(auth.spf.result, 'fail');
  assert.equal(auth.dkim[0]?.result, 'fail');
  assert.equal(auth.dmarc?.result, 'fail');
  assert.equal(auth.dmarc?.policy, 'quarantine');
});

test('with checkAuth off, no lookups are made and auth is null', async () => {
  const quiet = await startReceiver({ checkAuth: false }, { dns: { servers: [dns.address] } });
  try {
    const before = dns.queries.length;
    const id = await quiet.send({ from: 'app@good.test', to: 'noauth@inbox.test' });
    const { body } = await quiet.json<{ auth: Auth | null }>(`/api/messages/${id}`);
    assert.equal(body.auth, null);
    assert.equal(dns.queries.length, before);
  } finally {
    await quiet.stop();
  }
});
