/**
 * F13, client side, and the TLS policies of delivery.
 *   - a destination answers STARTTLS with "220 go\r\n250 injected\r\n" in one write: the message
 *     is delivered normally over TLS (a fresh EHLO inside TLS, nothing else in plaintext after
 *     STARTTLS) or deferred; "250 injected" is never taken as a reply (it would shift every later
 *     reply by one, so a normal delivery proves it was not);
 *   - policy "may" with a self-signed certificate: delivered over TLS;
 *   - "verify" against that self-signed certificate: deferred as a TLS failure, no MAIL FROM at all
 *     (never sent in plaintext);
 *   - "encrypt" against a server without STARTTLS: deferred, nothing sent in plaintext;
 *   - "none": plaintext, even where STARTTLS is offered.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeMx } from '../helpers/fakemx.js';
import { FAST, startLoggedMaster, submitter, waitFor } from '../helpers/delivery-kit.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test('F13 client side: STARTTLS injection is not taken as a reply; TLS policies may / verify / encrypt / none', async () => {
  const inject = await startFakeMx({ mode: 'starttlsInject' });
  const tlsMx = await startFakeMx({ tls: true });
  const plainMx = await startFakeMx({ tls: false });
  for (const mx of [inject, tlsMx, plainMx]) cleanup.push(() => mx.stop());
  const m = await startLoggedMaster({
    ...FAST,
    routes: { 'inject.test': inject.route, 'may.test': tlsMx.route, 'verify.test': tlsMx.route, 'none.test': tlsMx.route, 'encrypt.test': plainMx.route },
    tlsPolicies: { 'inject.test': 'may', 'may.test': 'may', 'verify.test': 'verify', 'none.test': 'none', 'encrypt.test': 'encrypt' },
    zones: { default: { processes: 1, connections: 8 } },
  });
  cleanup.push(() => m.stop());
  const smtp = submitter(m.smtpPort);
  cleanup.push(async () => smtp.close());

  const ids: Record<string, string> = {};
  for (const d of ['inject', 'may', 'verify', 'none', 'encrypt']) ids[d] = await smtp.send({ to: `u@${d}.test`, testId: `f13-${d}`, text: `body of ${d}\r\nsecond line\r\n` });
  const outcome = (d: string) => m.logs.find((l) => l.id === ids[d] && (l.event === 'DELIVERED' || l.event === 'DEFERRED' || l.event === 'BOUNCED'));
  await waitFor(() => ['inject', 'may', 'verify', 'none', 'encrypt'].every((d) => outcome(d)), 15_000, 'a first outcome for every domain');

  // injection: delivered over TLS after a fresh EHLO, or deferred — never a shifted dialogue
  const inj = outcome('inject')!;
  const conn = inject.connections[0]!;
  const afterStarttls = conn.commands.slice(conn.commands.findIndex((c) => /^STARTTLS/i.test(c)) + 1);
  assert.ok(afterStarttls.length > 0 && afterStarttls.every((c) => c.startsWith('tls:') || c.startsWith('(')), `nothing in plaintext after STARTTLS: ${JSON.stringify(conn.commands)}`);
  if (inj.event === 'DELIVERED') {
    assert.match(afterStarttls[0]!, /^tls:EHLO /i, 'a new EHLO inside TLS comes first');
    const t = inject.transactions.find((x) => x.testId === 'f13-inject')!;
    assert.equal(t.tls, true);
    assert.equal(t.outcome, 'accepted');
    assert.match(t.data!.toString(), /body of inject\r\nsecond line/);
    assert.equal(inj.tls, true);
  } else {
    assert.equal(inj.event, 'DEFERRED', `injection: deferred, not bounced (${String(inj.response)})`);
  }
  console.log(`# F13 injection: ${inj.event} (${String(inj.response)}); commands ${JSON.stringify(conn.commands)}`);

  const may = outcome('may')!;
  assert.equal(may.event, 'DELIVERED', `may: ${String(may.response)}`);
  assert.equal(tlsMx.transactions.find((t) => t.testId === 'f13-may')?.tls, true, 'may: over TLS despite the self-signed certificate');

  const verify = outcome('verify')!;
  assert.equal(verify.event, 'DEFERRED', `verify: ${String(verify.response)}`);
  assert.match(String(verify.response), /certificate|TLS|self[- ]signed/i, 'verify: deferred as a TLS failure');
  assert.equal(verify.category, 'tls');
  assert.equal(tlsMx.transactions.filter((t) => t.to.includes('u@verify.test') || t.from === 'sender@src.test' && t.testId === 'f13-verify').length, 0, 'verify: no MAIL FROM, never in plaintext');

  const enc = outcome('encrypt')!;
  assert.equal(enc.event, 'DEFERRED', `encrypt: ${String(enc.response)}`);
  assert.equal(enc.category, 'tls');
  assert.match(String(enc.status), /^4\./);
  assert.equal(plainMx.transactions.length, 0, 'encrypt: nothing sent without TLS');
  assert.ok(plainMx.connections.length >= 1, 'encrypt: the server was reached, and left');

  const none = outcome('none')!;
  assert.equal(none.event, 'DELIVERED', `none: ${String(none.response)}`);
  assert.equal(tlsMx.transactions.find((t) => t.testId === 'f13-none')?.tls, false, 'none: plaintext although STARTTLS was offered');
  console.log(`# F13 policies: may→${may.event}/tls, verify→${verify.event} "${String(verify.response)}", encrypt→${enc.event} "${String(enc.response)}", none→${none.event}/plain`);
});
