/**
 * PROXY protocol (v1) on a listener: the address in the header is the client's address for
 * everything after it (relay policy, Received, the recorded origin); only listed peers may send
 * one; without proxyProtocol configured a PROXY line is just an unknown command. A proxy never
 * lends its own trust: a header that names no client (UNKNOWN) or names a listed proxy leaves the
 * client untrusted, and "any peer" cannot be configured.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import net from 'node:net';
import { loadConfig } from '../../lib/config/load.js';
import { startMaster, tempDir, testOverrides, type TestMaster } from '../helpers/master.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

let m: TestMaster;
let noProxyPort: number;
let otherPeerPort: number;
let cidrPort: number;
let lendingPort: number;
before(async () => {
  m = await startMaster({
    smtp: {
      proxyProtocol: ['127.0.0.1'],
      // the proxied client is trusted; the proxy itself (loopback) is not
      trustedNetworks: ['203.0.113.5/32'],
      interfaces: {
        noproxy: { port: 0, proxyProtocol: [], trustedNetworks: ['127.0.0.0/8'] },
        otherpeer: { port: 0, proxyProtocol: ['127.0.0.2'], trustedNetworks: ['127.0.0.0/8'] },
        cidr: { port: 0, proxyProtocol: ['127.0.0.0/8'] },
        // the usual set-up of a proxy on this host: the proxy's own address is also trusted
        lending: { port: 0, proxyProtocol: ['127.0.0.1'], trustedNetworks: ['127.0.0.0/8', '203.0.113.9/32'] },
      },
    },
  });
  noProxyPort = m.port('smtp.interfaces.noproxy');
  otherPeerPort = m.port('smtp.interfaces.otherpeer');
  cidrPort = m.port('smtp.interfaces.cidr');
  lendingPort = m.port('smtp.interfaces.lending');
});
after(() => m.stop());

async function sendOne(c: SmtpTalk, subject: string): Promise<string> {
  await c.send('MAIL FROM:<a@x.test>', 250);
  await c.send('RCPT TO:<r@y.test>', 250);
  await c.send('DATA', 354);
  c.write(`Subject: ${subject}\r\n\r\nbody\r\n.\r\n`);
  const id = /queued as ([0-9a-f]+)/.exec((await c.expect(250)).text)?.[1];
  assert.ok(id);
  return id;
}

test('a PROXY v1 header is honoured: origin, Received and relay policy use the claimed address', async () => {
  const c = await SmtpTalk.connect(m.smtpPort);
  c.write('PROXY TCP4 203.0.113.5 127.0.0.1 51000 2525\r\n');
  await c.expect(220);
  await c.send('EHLO client.test', 250);
  const id = await sendOne(c, 'proxied');
  c.close();

  const res = await fetch(`${m.api}/message/${id}`);
  const body = (await res.json()) as { meta: { origin: { remoteAddress: string } } };
  assert.equal(body.meta.origin.remoteAddress, '203.0.113.5');
  const meta = await m.master.store.getMeta(id);
  const received = /^Received:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*/m.exec(meta?.headers ?? '')?.[0] ?? '';
  assert.match(received, /\[203\.0\.113\.5\]/);
  assert.doesNotMatch(received, /127\.0\.0\.1/);
});

test('an untrusted address in the PROXY header must authenticate (the proxy does not lend its trust)', async () => {
  const c = await SmtpTalk.connect(m.smtpPort);
  c.write('PROXY TCP4 198.51.100.7 127.0.0.1 51000 2525\r\n');
  await c.expect(220);
  await c.send('EHLO client.test', 250);
  await c.send('MAIL FROM:<a@x.test>', 530);
  c.close();
});

test('a proxy listener refuses a connection that starts with something other than PROXY', async () => {
  const raw = net.connect({ port: m.smtpPort, host: '127.0.0.1' });
  const seen: Buffer[] = [];
  raw.on('data', (d) => seen.push(d));
  raw.on('error', () => undefined);
  raw.write('EHLO client.test\r\n');
  await new Promise((resolve) => raw.once('close', resolve));
  const text = Buffer.concat(seen).toString('latin1');
  assert.doesNotMatch(text, /^220/);
  assert.match(text, /BAD/);
});

test('without proxyProtocol a PROXY line is refused and changes nothing', async () => {
  for (const port of [noProxyPort, otherPeerPort]) {
    const c = await SmtpTalk.connect(port);
    await c.expect(220);
    const r = await c.send('PROXY TCP4 203.0.113.5 127.0.0.1 51000 2525', 500);
    assert.match(r.text, /^500 /);
    await c.send('EHLO client.test', 250);
    const id = await sendOne(c, 'not proxied');
    c.close();
    const meta = await m.master.store.getMeta(id);
    assert.equal(meta?.origin.remoteAddress, '127.0.0.1');
  }
});

test('proxyProtocol takes CIDR blocks, like trustedNetworks', async () => {
  const c = await SmtpTalk.connect(cidrPort, '127.0.0.1', '127.0.9.9');
  c.write('PROXY TCP4 203.0.113.5 127.0.0.1 51000 2525\r\n');
  await c.expect(220);
  await c.send('EHLO client.test', 250);
  const id = await sendOne(c, 'proxied via a block');
  c.close();
  assert.equal((await m.master.store.getMeta(id))?.origin.remoteAddress, '203.0.113.5');
});

test('a proxyProtocol entry that is not an address or a block stops the start, naming the key', () => {
  const dir = tempDir();
  try {
    assert.throws(
      () => loadConfig({ appDir: dir, env: {}, overrides: testOverrides({ smtp: { interfaces: { edge: { port: 0, proxyProtocol: ['proxy.example.test'] } } } }) }),
      (err: Error) => /smtp\.interfaces\.edge\.proxyProtocol\[0\]/.test(err.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a PROXY header never lends the proxy its trust: UNKNOWN, or the proxy\'s own address, must authenticate', async () => {
  for (const header of ['PROXY UNKNOWN', 'PROXY TCP4 127.0.0.1 127.0.0.1 51000 2525']) {
    const c = await SmtpTalk.connect(lendingPort);
    c.write(`${header}\r\n`);
    await c.expect(220);
    await c.send('EHLO client.test', 250);
    await c.send('MAIL FROM:<a@x.test>', 530);
    c.close();
  }
  // a listed client behind the same proxy is trusted as before
  const c = await SmtpTalk.connect(lendingPort);
  c.write('PROXY TCP4 203.0.113.9 127.0.0.1 51000 2525\r\n');
  await c.expect(220);
  await c.send('EHLO client.test', 250);
  await sendOne(c, 'listed client behind the proxy');
  c.close();
});

test('proxyProtocol = ["*"] (or a block as wide) stops the start with a message that says why', () => {
  const dir = tempDir();
  try {
    for (const any of ['*', '0.0.0.0/0', '::/0']) {
      assert.throws(
        () => loadConfig({ appDir: dir, env: {}, overrides: testOverrides({ smtp: { proxyProtocol: [any] } }) }),
        (err: Error) => {
          assert.match(err.message, /smtp\.proxyProtocol\[0\]/);
          assert.match(err.message, /list the addresses of your proxies/);
          return true;
        },
        `proxyProtocol = ["${any}"]`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
