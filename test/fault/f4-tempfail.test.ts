/**
 * F4 and F4c: a destination that answers 4xx, then recovers.
 *
 * F4  — 450 at RCPT until the fakemx switches to accept. Pass: every message delivered exactly
 *       once (a 4xx means the MX did not take it), gaps between attempts of one message ≥ the
 *       configured step − 10 %, attempts ≤ 1 + steps elapsed, delivery within one step + 2 s of
 *       the recovery, and no DSN at all.
 * F4c — 421 at MAIL, 421 at DATA, 451 after the final dot, each on its own destination: deferred,
 *       retried, delivered exactly once, no DSN.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeMx, type FakeMx } from '../helpers/fakemx.js';
import { FAST, startLoggedMaster, submitter, waitFor, queueOf, type LoggedMaster } from '../helpers/delivery-kit.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

const STEPS_MS = [1000, 2000, 4000, 8000];

test('F4: 450 at RCPT, then the MX recovers → each message delivered exactly once after its retries, no DSN', async () => {
  const mx = await startFakeMx({ mode: { kind: 'tempfail', at: 'RCPT', reply: '450 4.3.0 try again later' }, tls: false });
  cleanup.push(() => mx.stop());
  const m = await startLoggedMaster({ ...FAST, zones: { default: { processes: 1, connections: 10, connectionsPerDomain: 10, route: mx.route } } });
  cleanup.push(() => m.stop());
  const smtp = submitter(m.smtpPort);
  cleanup.push(async () => smtp.close());

  const N = 10;
  const recipients = Array.from({ length: N }, (_, i) => `r${i}@dest.test`);
  await Promise.all(recipients.map((to, i) => smtp.send({ to, testId: `f4-${i}` })));
  // two attempts each (t0 and t0 + 1 s) fail; switch while the third waits for its 2 s step
  await mx.waitUntil(() => recipients.every((r) => refusals(mx, r) >= 2), 10_000, () => 'fakemx: not every message was tried twice');
  const recoveredAt = Date.now();
  mx.setMode('accept');
  await mx.waitFor(N, 15_000);
  await waitFor(async () => (await queueOf(m.api)).queued + (await queueOf(m.api)).deferred === 0, 5000, 'queue empty');

  const copies = mx.copiesById();
  for (let i = 0; i < N; i++) assert.equal(copies.get(`f4-${i}`), 1, `f4-${i} delivered exactly once`);
  assert.equal(mx.transactions.filter((t) => t.from === '').length, 0, 'no DSN');
  assert.equal(m.events('BOUNCED').length, 0, 'nothing bounced');

  for (const r of recipients) {
    const attempts = mx.transactions.filter((t) => t.to.includes(r) || t.refused.some((x) => x.address === r)).map((t) => t.mailAt);
    const first = attempts[0]!;
    for (let k = 1; k < attempts.length; k++) {
      const gap = attempts[k]! - attempts[k - 1]!;
      assert.ok(gap >= STEPS_MS[k - 1]! * 0.9, `${r}: gap ${k} is ${gap} ms, the step is ${STEPS_MS[k - 1]} ms; ${JSON.stringify(mx.transactions.filter((t) => t.to.includes(r) || t.refused.some((x) => x.address === r)).map((t) => [t.mailAt - first, t.connectionId, t.outcome, t.remotePort]))}`);
    }
    // attempts ≤ 1 + the number of steps that had elapsed by the last one
    const last = attempts[attempts.length - 1]!;
    let elapsed = 0;
    let steps = 0;
    for (const s of STEPS_MS) {
      if (first + elapsed + s > last + 50) break;
      elapsed += s;
      steps++;
    }
    assert.ok(attempts.length <= 1 + steps, `${r}: ${attempts.length} attempts within ${last - first} ms`);
    const delivered = mx.transactions.find((t) => t.to.includes(r) && t.outcome === 'accepted')!;
    assert.ok(delivered.mailAt - recoveredAt <= 2000 + 2000, `${r}: delivered ${delivered.mailAt - recoveredAt} ms after the recovery (one step + 2 s)`);
  }
  const deferred = m.events('DEFERRED');
  assert.ok(deferred.length >= 2 * N, 'every failed attempt logged as DEFERRED');
  assert.ok(deferred.every((e) => typeof e.response === 'string' && (e.response as string).includes('450')), 'the remote reply is kept');
});

function refusals(mx: FakeMx, recipient: string): number {
  return mx.transactions.filter((t) => t.refused.some((r) => r.address === recipient)).length;
}

test('F4c: 421 at MAIL, 421 at DATA and 451 after the dot → deferred, retried, delivered exactly once, no DSN', async () => {
  const stages = [
    { domain: 'mail.test', mode: { kind: 'tempfail', at: 'MAIL', reply: '421 4.3.2 shutting down' } },
    { domain: 'data.test', mode: { kind: 'tempfail', at: 'DATA', reply: '421 4.3.2 shutting down' } },
    { domain: 'dot.test', mode: { kind: 'tempfail', at: 'DOT', reply: '451 4.3.0 queue file write error' } },
  ] as const;
  const mxs = new Map<string, FakeMx>();
  for (const s of stages) {
    const mx = await startFakeMx({ mode: s.mode, tls: false });
    cleanup.push(() => mx.stop());
    mxs.set(s.domain, mx);
  }
  const routes = Object.fromEntries(stages.map((s) => [s.domain, mxs.get(s.domain)!.route]));
  const m: LoggedMaster = await startLoggedMaster({ ...FAST, routes, zones: { default: { processes: 1, connections: 10 } } });
  cleanup.push(() => m.stop());
  const smtp = submitter(m.smtpPort);
  cleanup.push(async () => smtp.close());

  const PER = 3;
  for (const s of stages) for (let i = 0; i < PER; i++) await smtp.send({ to: `u${i}@${s.domain}`, testId: `${s.domain}-${i}` });

  // each destination refuses at least one attempt of every message, then recovers
  for (const s of stages) {
    const mx = mxs.get(s.domain)!;
    await mx.waitUntil(() => mx.transactions.filter((t) => t.outcome === 'rejected').length >= PER, 10_000, () => `${s.domain}: fewer than ${PER} refusals`);
    mx.setMode('accept');
  }
  for (const s of stages) await mxs.get(s.domain)!.waitFor(PER, 15_000);
  await waitFor(async () => {
    const q = await queueOf(m.api);
    return q.queued + q.deferred === 0;
  }, 5000, 'queue empty');

  for (const s of stages) {
    const mx = mxs.get(s.domain)!;
    const copies = mx.copiesById();
    for (let i = 0; i < PER; i++) assert.equal(copies.get(`${s.domain}-${i}`), 1, `${s.domain}-${i} delivered exactly once`);
    assert.equal(mx.transactions.filter((t) => t.from === '').length, 0, `${s.domain}: no DSN`);
  }
  assert.equal(m.events('BOUNCED').length, 0, 'nothing bounced');
  const deferred = m.events('DEFERRED');
  for (const s of stages) {
    const reply = s.mode.reply.slice(0, 3);
    assert.ok(deferred.some((e) => (e.recipient as string).endsWith(s.domain) && String(e.response).includes(reply)), `${s.domain}: the ${reply} is kept as the last reply`);
  }
});
