/**
 * F14: the inbound receiver is never a relay. The sixteen MAIL/RCPT
 * combinations of nmap's smtp-open-relay script (server name inbox.test, our address 127.0.0.1,
 * the relay target evil.test) and the extras of the fault plan, each on its own connection from
 * a stranger's address, while a canary MX sits on every outbound route (the default zone's and
 * evil.test's, one delivery worker running) and the master's queue is watched.
 *
 * Pass: every such RCPT is refused — 550 5.7.1 when the address parses and its domain is not
 * exactly ours (percent and bang forms at our domain too), 501 or 553 when it does not parse,
 * in ASCII (a look-alike domain is named by its xn-- form) — and the DATA after it gets 503; nothing is stored in any inbox, nothing enters the queue, the
 * canary sees no connection. The door offers no AUTH, in clear or after STARTTLS. The legitimate
 * address is taken and stored locally, also after a refused recipient in the same transaction.
 *
 * Instead of waiting 30 s for a delivery that should never come, a control message to evil.test
 * is submitted at the end: once the canary has it, anything queued before it would have gone too,
 * and the canary must have seen that message and nothing else.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../helpers/delivery-kit.js';
import { startFakeMx, type FakeMx } from '../helpers/fakemx.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { testCert } from '../helpers/test-cert.js';
import { deliver, startInbound, type InboundMaster } from './inbound-kit.js';
import { messageCount } from '../helpers/queue-census.js';

const SRV = 'inbox.test';
const IP = '127.0.0.1';
const DOM = 'evil.test';
const STRANGER = '127.14.0.1';
/** a look-alike of inbox.test with a Cyrillic "о", as typed and in its ASCII form */
const LOOKALIKE = 'inbоx.test';
const LOOKALIKE_ASCII = new URL(`http://${LOOKALIKE}`).hostname;

interface Probe {
  name: string;
  from: string;
  to: string;
}

const relay = (name: string, from: string, to: string): Probe => ({ name, from, to });
const FROM_IP = `relaytest@[${IP}]`;
const NMAP: Probe[] = [
  relay('null sender', '', `relaytest@${DOM}`),
  relay('sender at the target', `antispam@${DOM}`, `relaytest@${DOM}`),
  relay('sender at the server', `antispam@${SRV}`, `relaytest@${DOM}`),
  relay('sender at our address', FROM_IP, `relaytest@${DOM}`),
  relay('percent hack at our address', FROM_IP, `relaytest%${DOM}@[${IP}]`),
  relay('percent hack at the server', FROM_IP, `relaytest%${DOM}@${SRV}`),
  relay('quoted address', FROM_IP, `"relaytest@${DOM}"`),
  relay('quoted percent hack', FROM_IP, `"relaytest%${DOM}"`),
  relay('double at, our address', FROM_IP, `relaytest@${DOM}@[${IP}]`),
  relay('quoted address at our address', FROM_IP, `"relaytest@${DOM}"@[${IP}]`),
  relay('double at, the server', FROM_IP, `relaytest@${DOM}@${SRV}`),
  relay('source route via our address', FROM_IP, `@[${IP}]:relaytest@${DOM}`),
  relay('source route via the server', FROM_IP, `@${SRV}:relaytest@${DOM}`),
  relay('bang path', FROM_IP, `${DOM}!relaytest`),
  relay('bang path at our address', FROM_IP, `${DOM}!relaytest@[${IP}]`),
  relay('bang path at the server', FROM_IP, `${DOM}!relaytest@${SRV}`),
];
const EXTRAS: Probe[] = [
  relay('address literal', 'a@src.test', `u@[${IP}]`),
  relay('a subdomain of ours', 'a@src.test', `u@sub.${SRV}`),
  relay('ours in capitals with a trailing dot', 'a@src.test', `u@${SRV.toUpperCase()}.`),
  relay('ours as a prefix of theirs', 'a@src.test', `u@${SRV}.${DOM}`),
  relay('percent hack (the fault plan)', 'a@src.test', `u%${DOM}@${SRV}`),
  relay('quoted address at ours', 'a@src.test', `"u@${DOM}"@${SRV}`),
  relay('source route through ours', 'a@src.test', `@${SRV}:u@${DOM}`),
  relay('punycode look-alike', 'a@src.test', `u@${LOOKALIKE_ASCII}`),
  relay('unicode look-alike', 'a@src.test', `u@${LOOKALIKE}`),
  relay('null sender to theirs', '', `u@${DOM}`),
  relay('plain foreign address', 'a@src.test', `u@${DOM}`),
];

let m: InboundMaster;
let canary: FakeMx;
before(async () => {
  canary = await startFakeMx({ tls: false });
  const { keyFile: key, certFile: cert } = testCert();
  m = await startInbound({
    api: { enabled: false },
    inbound: { key, cert, checkAuth: false },
    zones: { default: { processes: 1, route: canary.route } },
    routes: { [DOM]: canary.route },
  });
});
after(async () => {
  await m.stop();
  await canary.stop();
});

function queueEntries(): Promise<number> {
  return messageCount(m.master.store);
}

async function greeted(): Promise<SmtpTalk> {
  const c = await SmtpTalk.connect(m.inboundPort, '127.0.0.1', STRANGER);
  await c.expect(220);
  const ehlo = await c.send('EHLO relay.probe.test', 250);
  assert.doesNotMatch(ehlo.text, /AUTH/, 'no AUTH offered');
  return c;
}

const refusals: string[] = [];
const queueBefore = { n: 0 };

test('F14: the sixteen nmap combinations and the extras are all refused, nothing stored', { timeout: 60_000 }, async () => {
  queueBefore.n = await queueEntries();
  for (const p of [...NMAP, ...EXTRAS]) {
    const c = await greeted();
    try {
      const mail = await c.send(`MAIL FROM:<${p.from}>${/[^\x00-\x7f]/.test(p.to) ? ' SMTPUTF8' : ''}`, 250);
      assert.ok(mail);
      c.write(`RCPT TO:<${p.to}>\r\n`);
      const rcpt = await c.next();
      assert.ok(rcpt, `${p.name}: the server closed at RCPT`);
      refusals.push(`${p.name}: ${rcpt.text}`);
      assert.notEqual(rcpt.code, 250, `${p.name}: RCPT TO:<${p.to}> was accepted`);
      assert.match(rcpt.text, /^[\x20-\x7e]*$/, `${p.name}: the reply is ASCII, whoever reads it`);
      if (rcpt.code === 550) assert.match(rcpt.text, /^550 5\.7\.1 /, p.name);
      else assert.ok([501, 553].includes(rcpt.code), `${p.name}: ${rcpt.text}`);
      await c.send('DATA', 503);
      await c.send('QUIT', 221);
    } finally {
      c.close();
    }
  }
  console.log(refusals.map((r) => `# ${r}`).join('\n'));
  assert.equal((m.master.inbound!.inbox.stats()).messages, 0, 'nothing stored in any inbox');
  assert.equal(await queueEntries(), queueBefore.n, 'nothing entered the queue');
});

test('F14: no AUTH on the receiver, before or after STARTTLS', async () => {
  const c = await greeted();
  try {
    await c.send('AUTH PLAIN AGFsaWNlAHB3', 503);
    const t = await c.startTls();
    const ehlo = await t.send('EHLO relay.probe.test', 250);
    assert.doesNotMatch(ehlo.text, /AUTH/, 'no AUTH offered inside TLS');
    await t.send('AUTH PLAIN AGFsaWNlAHB3', 503);
    await t.send(`MAIL FROM:<a@src.test>`, 250);
    await t.send(`RCPT TO:<u@${DOM}>`, 550);
    t.close();
  } finally {
    c.close();
  }
});

test('F14: the legitimate address is taken and stored here, also after a refused one', async () => {
  const c = await greeted();
  try {
    await c.send('MAIL FROM:<a@src.test>', 250);
    await c.send(`RCPT TO:<relaytest@${DOM}>`, 550);
    await c.send(`RCPT TO:<relaytest@${SRV}>`, 250);
    await c.send('DATA', 354);
    c.write('Subject: legit\r\n\r\nfor the inbox\r\n.\r\n');
    const done = await c.expect(250);
    const id = /queued as (\S+)/.exec(done.text)?.[1];
    assert.ok(id);
    const msg = await m.master.inbound!.inbox.message(id);
    assert.deepEqual(msg?.envelope.rcpts.map((r) => r.address), [`relaytest@${SRV}`], 'only the accepted recipient is in the envelope');
  } finally {
    c.close();
  }
  assert.equal(await queueEntries(), queueBefore.n, 'still nothing in the queue');
});

test('F14: the canary MX saw nothing but the control message', { timeout: 30_000 }, async () => {
  assert.equal(canary.connections.length, 0, 'no connection to the canary during the run');
  const control = await deliver(m.smtpPort, { localAddress: '127.0.0.1', to: `control@${DOM}`, testId: 'f14-control' });
  assert.equal(control.outcome, '250', `the control message was submitted: ${control.text}`);
  await waitFor(() => canary.transactions.some((t) => t.testId === 'f14-control' && t.outcome === 'accepted'), 20_000, 'the control message at the canary');
  const others = canary.transactions.filter((t) => t.testId !== 'f14-control');
  assert.deepEqual(others.map((t) => `${t.from} -> ${t.to.join(',')}`), [], 'nothing but the control reached the canary');
});
