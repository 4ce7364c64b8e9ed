/**
 * Routing at accept: each recipient's delivery row gets its zone, first match wins —
 * X-Sending-Zone (removed from the stored message), a zone's routingHeaders, senderDomains,
 * recipientDomains, else "default". An unknown zone named in the header is the client's error.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { SmtpTalk, type Reply } from '../helpers/smtp-talk.js';
import { messageCount } from '../helpers/queue-census.js';

let m: TestMaster;
before(async () => {
  m = await startMaster({
    api: { enabled: false },
    zones: {
      named: {},
      bulk: { routingHeaders: { 'X-User-Tier': 'bulk' } },
      marketing: { senderDomains: ['news.test'] },
      eu: { recipientDomains: ['eu.test'] },
    },
  });
});
after(() => m.stop());

async function submit(from: string, to: string[], headers: string): Promise<Reply> {
  const c = await SmtpTalk.connect(m.smtpPort);
  try {
    await c.expect(220);
    await c.send('EHLO client.test', 250);
    await c.send(`MAIL FROM:<${from}>`, 250);
    for (const r of to) await c.send(`RCPT TO:<${r}>`, 250);
    await c.send('DATA', 354);
    c.write(`${headers}Subject: routing\r\n\r\nbody\r\n.\r\n`);
    const r = await c.next();
    assert.ok(r);
    return r;
  } finally {
    c.close();
  }
}

async function zonesOf(reply: Reply): Promise<{ id: string; zones: string[] }> {
  const id = /queued as ([0-9a-f]+)/.exec(reply.text)?.[1];
  assert.ok(id, reply.text);
  const rows = await m.master.store.getRows(id);
  return { id, zones: rows.map((r) => r.zone) };
}

const CASES: { name: string; from: string; to: string[]; headers: string; zones: string[] }[] = [
  { name: 'nothing matches → default', from: 'a@x.test', to: ['r@y.test'], headers: '', zones: ['default'] },
  { name: 'X-Sending-Zone', from: 'a@x.test', to: ['r@y.test', 's@eu.test'], headers: 'X-Sending-Zone: named\r\n', zones: ['named', 'named'] },
  {
    name: 'X-Sending-Zone beats the other rules',
    from: 'a@news.test',
    to: ['r@eu.test'],
    headers: 'X-User-Tier: bulk\r\nX-Sending-Zone: named\r\n',
    zones: ['named'],
  },
  { name: 'routingHeaders (value compared without case)', from: 'a@news.test', to: ['r@eu.test'], headers: 'X-User-Tier: BULK\r\n', zones: ['bulk'] },
  { name: 'routing header with another value does not match', from: 'a@x.test', to: ['r@y.test'], headers: 'X-User-Tier: gold\r\n', zones: ['default'] },
  { name: 'senderDomains', from: 'promo@NEWS.test', to: ['r@eu.test', 'r@y.test'], headers: '', zones: ['marketing', 'marketing'] },
  { name: 'recipientDomains, per recipient', from: 'a@x.test', to: ['r@eu.test', 'r@y.test', 's@EU.test'], headers: '', zones: ['eu', 'default', 'eu'] },
];

for (const c of CASES) {
  test(`zone choice: ${c.name}`, async () => {
    const { id, zones } = await zonesOf(await submit(c.from, c.to, c.headers));
    assert.deepEqual(zones, c.zones);
    const meta = await m.master.store.getMeta(id);
    assert.doesNotMatch(meta?.headers ?? '', /x-sending-zone/i, 'the zone header does not travel on');
  });
}

test('an unknown zone in X-Sending-Zone is a 550 the client sees, and nothing is stored', async () => {
  const before = await messageCount(m.master.store);
  const r = await submit('a@x.test', ['r@y.test'], 'X-Sending-Zone: nosuchzone\r\n');
  assert.equal(r.code, 550, r.text);
  assert.match(r.text, /nosuchzone/);
  assert.equal(await messageCount(m.master.store), before);
});
