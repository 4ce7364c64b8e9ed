/**
 * F9c on the inbound receiver: one address opens and closes 200 connections
 * in about ten seconds against connectionsPerMinutePerIp = 30. Pass: its first 30 are greeted,
 * then it gets 421 4.7.0 naming the rate (and the close), with at most a few more let through as
 * the sliding minute moves on (the counter weighs the previous minute down as time passes);
 * meanwhile other addresses deliver as usual, p95 ≤ 1 s.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { deliver, percentile, startInbound, type InboundMaster } from './inbound-kit.js';

const RATE = 30;
const FLOOD = 200;
const FLOOD_EVERY_MS = 50;
const FLOODER = '127.9.0.1';

let m: InboundMaster;
before(async () => {
  m = await startInbound({ api: { enabled: false }, inbound: { throttle: { connectionsPerMinutePerIp: RATE }, checkAuth: false } });
});
after(() => m.stop());

/** One connection: the greeting's first line, then QUIT (or the server's close). */
async function knock(): Promise<{ greeting: string; closedMs?: number }> {
  const c = await SmtpTalk.connect(m.inboundPort, '127.0.0.1', FLOODER);
  try {
    const r = await c.next(5000);
    const greeting = r?.text.split('\r\n')[0] ?? '(closed)';
    if (greeting.startsWith('220')) return { greeting };
    const t0 = Date.now();
    await c.waitClosed(5000);
    return { greeting, closedMs: Date.now() - t0 };
  } finally {
    c.close();
  }
}

test(`F9c inbound: ${FLOOD} connections in ~10 s from one address against ${RATE} per minute; others unaffected`, { timeout: 60_000 }, async () => {
  let flooding = true;
  const others: number[] = [];
  const bystanders = (async () => {
    for (let i = 0; flooding && i < 100; i++) {
      const r = await deliver(m.inboundPort, { localAddress: `127.9.1.${(i % 20) + 1}`, to: 'other@inbox.test', testId: `f9c-${i}` });
      assert.equal(r.outcome, '250', `bystander ${i}: ${r.outcome} ${r.text ?? r.errorCode ?? ''}`);
      others.push(r.ms);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();

  const knocks: Awaited<ReturnType<typeof knock>>[] = [];
  try {
    for (let i = 0; i < FLOOD; i++) {
      knocks.push(await knock());
      await new Promise((resolve) => setTimeout(resolve, FLOOD_EVERY_MS));
    }
  } finally {
    flooding = false;
    await bystanders;
  }

  const greeted = knocks.filter((k) => k.greeting.startsWith('220')).length;
  const refused = knocks.filter((k) => !k.greeting.startsWith('220'));
  console.log(`# flooder: ${greeted} greeted, ${refused.length} refused; bystanders: ${others.length} messages, p95 ${percentile(others, 95)} ms`);
  assert.ok(knocks.slice(0, RATE).every((k) => k.greeting.startsWith('220')), 'the first 30 are greeted');
  // over ~10 s the previous minute's weight falls by a sixth at most: ≤ 5 more of 30
  assert.ok(greeted <= RATE + 5, `${greeted} greeted`);
  for (const k of refused) {
    assert.match(k.greeting, /^421 4\.7\.0 .*connections per minute/, 'the refusal names the rate');
    assert.ok(k.closedMs !== undefined && k.closedMs <= 1000, `closed after the 421 (${k.closedMs} ms)`);
  }
  // the few let through as the minute slides may come at any point of the flood, the end too
  const lateGreeted = knocks.slice(-100).filter((k) => k.greeting.startsWith('220')).length;
  assert.ok(lateGreeted <= greeted - RATE, `of the last 100, ${lateGreeted} greeted: only the sliding minute's few`);
  assert.ok(others.length >= 10 && percentile(others, 95) <= 1000, `bystanders p95 ${percentile(others, 95)} ms over ${others.length}`);
});
