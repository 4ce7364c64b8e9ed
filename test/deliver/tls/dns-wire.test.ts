/**
 * The wire DNS client DANE relies on, against the loopback test server and raw UDP peers: what it
 * asks (RD, AD, EDNS0 with DO), what it believes (AD only from the server asked, our id and
 * question only), its fallbacks (next server after SERVFAIL, TCP after a truncated reply) and its
 * bounds (one deadline for all tries, junk ignored).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { DNS_TYPE, DnsWireError, parseServer, RCODE, recordsFor, WireResolver } from '../../../lib/deliver/tls/dns-wire.js';
import { startDnsServer } from '../../helpers/dns-server.js';

/** A UDP peer on loopback that hands every query to `onQuery` and sends back what it returns. */
async function rawPeer(onQuery: (msg: Buffer) => Buffer | undefined): Promise<{ address: string; stop: () => Promise<void> }> {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (msg, rinfo) => {
    const out = onQuery(msg);
    if (out) socket.send(out, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { address: `127.0.0.1:${socket.address().port}`, stop: () => new Promise((r) => socket.close(() => r())) };
}

test('servers: address, address:port, [v6]:port, bare v6; names are refused', () => {
  assert.deepEqual(parseServer('127.0.0.1:5353'), { address: '127.0.0.1', port: 5353, family: 4 });
  assert.deepEqual(parseServer('192.0.2.53'), { address: '192.0.2.53', port: 53, family: 4 });
  assert.deepEqual(parseServer('[::1]:5300'), { address: '::1', port: 5300, family: 6 });
  assert.deepEqual(parseServer('2001:db8::53'), { address: '2001:db8::53', port: 53, family: 6 });
  assert.equal(parseServer('dns.example.test'), undefined);
  assert.equal(parseServer('127.0.0.1:0'), undefined);
});

test('a TLSA query carries RD, AD and EDNS0 DO; the AD of the reply is read', async (t) => {
  const dns = await startDnsServer({
    '_25._tcp.mx.signed.test': { TLSA: [{ usage: 3, selector: 1, matching: 1, data: 'ab'.repeat(32) }], secure: true },
    '_25._tcp.mx.plain.test': { TLSA: [{ usage: 3, selector: 1, matching: 1, data: 'cd'.repeat(32) }] },
  });
  t.after(() => dns.stop());
  const wire = new WireResolver({ servers: [dns.address], timeoutMs: 2000 });
  const signed = await wire.query('_25._tcp.MX.signed.test.', DNS_TYPE.TLSA);
  assert.equal(signed.rcode, RCODE.NOERROR);
  assert.equal(signed.authenticated, true);
  const records = recordsFor(signed, '_25._tcp.mx.signed.test', DNS_TYPE.TLSA);
  assert.equal(records.length, 1);
  assert.deepEqual(records[0]!.data, Buffer.concat([Buffer.from([3, 1, 1]), Buffer.alloc(32, 0xab)]));
  assert.equal((await wire.query('_25._tcp.mx.plain.test', DNS_TYPE.TLSA)).authenticated, false);
  assert.equal((await wire.query('_25._tcp.none.test', DNS_TYPE.TLSA)).rcode, RCODE.NXDOMAIN);

  let seen: Buffer | undefined;
  const peer = await rawPeer((msg) => {
    seen = msg;
    return undefined;
  });
  t.after(() => peer.stop());
  await assert.rejects(new WireResolver({ servers: [peer.address], timeoutMs: 300, tries: 1 }).query('x.test', DNS_TYPE.TLSA), DnsWireError);
  assert.ok(seen);
  const flags = seen.readUInt16BE(2);
  assert.ok(flags & 0x0100, 'RD');
  assert.ok(flags & 0x0020, 'AD asked for (RFC 6840 §5.7)');
  assert.equal(seen.readUInt16BE(10), 1, 'one additional record: OPT');
  const opt = seen.subarray(seen.length - 11);
  assert.equal(opt.readUInt16BE(1), DNS_TYPE.OPT);
  assert.ok(opt.readUInt32BE(5) & 0x8000, 'DO set');
});

test('SERVFAIL from the first server: the second is asked; SERVFAIL everywhere is returned as such', async (t) => {
  const bad = await startDnsServer({ '_25._tcp.mx.a.test': 'SERVFAIL' });
  const good = await startDnsServer({ '_25._tcp.mx.a.test': { TLSA: [{ usage: 3, selector: 1, matching: 1, data: 'ef'.repeat(32) }], secure: true } });
  t.after(() => Promise.all([bad.stop(), good.stop()]));
  const answer = await new WireResolver({ servers: [bad.address, good.address], timeoutMs: 2000 }).query('_25._tcp.mx.a.test', DNS_TYPE.TLSA);
  assert.equal(answer.rcode, RCODE.NOERROR);
  assert.equal(answer.authenticated, true);
  const onlyBad = await new WireResolver({ servers: [bad.address], timeoutMs: 2000 }).query('_25._tcp.mx.a.test', DNS_TYPE.TLSA);
  assert.equal(onlyBad.rcode, RCODE.SERVFAIL);
});

test('a truncated UDP reply is asked again over TCP', async (t) => {
  // 40 SHA-512 records: about 3 KB, more than the 1232 bytes offered over UDP
  const many = Array.from({ length: 40 }, (_, i) => ({ usage: 3, selector: 1, matching: 2, data: i.toString(16).padStart(2, '0').repeat(64) }));
  const dns = await startDnsServer({ '_25._tcp.big.test': { TLSA: many, secure: true } }, { tcp: true });
  t.after(() => dns.stop());
  const answer = await new WireResolver({ servers: [dns.address], timeoutMs: 3000 }).query('_25._tcp.big.test', DNS_TYPE.TLSA);
  assert.equal(recordsFor(answer, '_25._tcp.big.test', DNS_TYPE.TLSA).length, 40);
  assert.equal(answer.authenticated, true);
  assert.equal(dns.queries.filter((q) => q.name === '_25._tcp.big.test').length, 2, 'once over UDP, once over TCP');
});

test('bounded: silence, junk and replies to other queries end in one deadline, never a wrong answer', async (t) => {
  const dns = await startDnsServer({ 'slow.test': 'DROP' });
  t.after(() => dns.stop());
  const started = Date.now();
  await assert.rejects(new WireResolver({ servers: [dns.address], timeoutMs: 600, tries: 3 }).query('slow.test', DNS_TYPE.TLSA), (err: DnsWireError) => err.code === 'ETIMEOUT');
  assert.ok(Date.now() - started < 3000, 'one deadline for all the tries');

  // a forged reply: another id, AD set, a record; and junk bytes: both ignored
  const liar = await rawPeer((msg) => {
    const forged = Buffer.from(msg);
    forged.writeUInt16BE((msg.readUInt16BE(0) + 1) & 0xffff, 0);
    forged.writeUInt16BE(0x8000 | 0x0020, 2);
    return Buffer.concat([forged.subarray(0, 12), Buffer.from('garbage')]);
  });
  t.after(() => liar.stop());
  await assert.rejects(new WireResolver({ servers: [liar.address], timeoutMs: 400, tries: 1 }).query('x.test', DNS_TYPE.TLSA), (err: DnsWireError) => err.code === 'ETIMEOUT');

  // a reply with our id and question whose records run past the end: malformed, not believed
  const broken = await rawPeer((msg) => {
    const reply = Buffer.from(msg.subarray(0, msg.length - 11)); // drop the OPT record
    reply.writeUInt16BE(0x8000 | 0x0020, 2);
    reply.writeUInt16BE(1, 6); // one answer…
    reply.writeUInt16BE(0, 10);
    return Buffer.concat([reply, Buffer.from([0xc0, 12, 0, 52, 0, 1, 0, 0, 0, 60, 0x10, 0x00, 3, 1, 1])]); // …claiming 4096 bytes
  });
  t.after(() => broken.stop());
  await assert.rejects(new WireResolver({ servers: [broken.address], timeoutMs: 400, tries: 1 }).query('x.test', DNS_TYPE.TLSA), (err: DnsWireError) => err.code === 'EBADRESP');
});
