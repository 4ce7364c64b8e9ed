/**
 * F4b: the reply to the final dot is lost (RFC 1047's window). The fakemx
 * reads the whole message, then closes without a word, for the first copy of each message, and
 * accepts later copies. Pass: treated as a temporary failure (deferred, never bounced), retried,
 * copies per message ≥ 1 (typically 2) and never 0, and the deferral logged as uncertain (a
 * possible duplicate).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeMx } from '../helpers/fakemx.js';
import { FAST, startLoggedMaster, submitter, waitFor, queueOf } from '../helpers/delivery-kit.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test('F4b: reply lost after the dot → deferred as uncertain, retried, delivered (≥ 1 copy, never 0), no bounce', async () => {
  const mx = await startFakeMx({ mode: { kind: 'dropAfterDot', firstAttemptPerId: true }, tls: false });
  cleanup.push(() => mx.stop());
  const m = await startLoggedMaster({ ...FAST, zones: { default: { processes: 1, connections: 5, route: mx.route } } });
  cleanup.push(() => m.stop());
  const smtp = submitter(m.smtpPort);
  cleanup.push(async () => smtp.close());

  const N = 5;
  const ids = await Promise.all(Array.from({ length: N }, (_, i) => smtp.send({ to: `r${i}@dest.test`, testId: `f4b-${i}` })));
  await mx.waitUntil(() => mx.transactions.filter((t) => t.outcome === 'accepted').length >= N, 15_000, () => 'not every message was accepted on a retry');
  await waitFor(async () => {
    const q = await queueOf(m.api);
    return q.queued + q.deferred === 0;
  }, 5000, 'queue empty');

  const copies = mx.copiesById();
  let duplicates = 0;
  for (let i = 0; i < N; i++) {
    const n = copies.get(`f4b-${i}`) ?? 0;
    assert.ok(n >= 1, `f4b-${i}: ${n} copies`);
    duplicates += n - 1;
  }
  assert.equal(mx.transactions.filter((t) => t.outcome === 'dropped').length, N, 'the first copy of each was dropped after the dot');
  assert.equal(m.events('BOUNCED').length, 0, 'never bounced');
  assert.equal(mx.transactions.filter((t) => t.from === '').length, 0, 'no DSN');
  for (const id of ids) {
    const deferred = m.events('DEFERRED').filter((e) => e.id === id);
    assert.equal(deferred.length, 1, `${id}: deferred once`);
    assert.equal(deferred[0]!.uncertain, true, `${id}: logged as uncertain (possible duplicate)`);
    assert.equal(m.events('DELIVERED').filter((e) => e.id === id).length, 1, `${id}: delivered on the retry`);
  }
  console.log(`# F4b: ${N} messages, ${duplicates} duplicate copies (expected ${N}: each first copy may have been delivered)`);
});
