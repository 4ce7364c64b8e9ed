/**
 * GET /metrics (lib/api/metrics.ts, mta-metrics.ts): on by default, the MTA's figures with bounded
 * labels. The proof: mail from 1,000 sender domains to 1,000 recipient domains flows through a
 * real SMTP client, the queue and the workers to a loopback sink, and Sluice's own series stay the
 * same in number, none of them naming a sender or recipient domain.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeMx } from '../helpers/fakemx.js';
import { startMaster } from '../helpers/master.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { submitter, waitFor } from '../helpers/delivery-kit.js';

const DOMAINS = 1000;

/** Sluice's own series (Node's default process metrics have label sets of their own that change with the runtime: GC kinds, handle types). */
function ownSeries(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#') && !l.startsWith('sluice_nodejs_') && !l.startsWith('sluice_process_'))
    .map((l) => l.slice(0, l.lastIndexOf(' ')));
}

function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : NaN;
}

test('/metrics keeps the same series while mail from 1,000 sender and recipient domains flows', { timeout: 240_000 }, async () => {
  const mx = await startFakeMx({ tls: false });
  const m = await startMaster({ zones: { default: { processes: 2, connections: 20, connectionsPerDomain: 5, route: { host: mx.host, port: mx.port } } } });
  const smtp = submitter(m.smtpPort, 5);
  try {
    const scrape = async () => {
      const res = await fetch(`${m.api}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
      return res.text();
    };
    // warm-up: every series the steady flow touches exists once a first message went through
    // each door it uses and was delivered
    for (let i = 0; i < 3; i++) await smtp.send({ from: `a@warm${i}.test`, to: `b@warmr${i}.test`, testId: `warm-${i}` });
    await waitFor(() => mx.messages.length >= 3, 20_000, 'warm-up delivered');
    await waitFor(async () => value(await scrape(), 'sluice_deliveries_total{zone="default",result="delivered",category="none"}') === 3, 10_000, 'warm-up counted');
    const before = await scrape();
    const seriesBefore = ownSeries(before);

    // the flow: one sender domain and one recipient domain per message, 1,000 of each
    const sends: Promise<string>[] = [];
    for (let i = 0; i < DOMAINS; i++) sends.push(smtp.send({ from: `s${i}@sender${i}.test`, to: `r${i}@rcpt${i}.test`, testId: `flow-${i}` }));
    await Promise.all(sends);
    await waitFor(() => mx.messages.length >= DOMAINS + 3, 180_000, `all ${DOMAINS} delivered`);
    await waitFor(async () => value(await scrape(), 'sluice_deliveries_total{zone="default",result="delivered",category="none"}') === DOMAINS + 3, 10_000, 'all counted');
    const after = await scrape();

    assert.deepEqual(ownSeries(after).sort(), seriesBefore.sort(), 'the same series before and after');
    assert.doesNotMatch(after, /sender\d+\.test|rcpt\d+\.test|warm\d*\.test|warmr\d+\.test/, 'no sender or recipient domain in a label');
    // and the figures moved as the mail did
    assert.equal(value(after, 'sluice_messages_accepted_total{door="smtp"}'), DOMAINS + 3);
    assert.equal(value(after, 'sluice_queue_time_seconds_count{zone="default",result="delivered"}'), DOMAINS + 3);
    assert.equal(value(after, 'sluice_delivery_duration_seconds_count{zone="default",result="delivered"}'), DOMAINS + 3);
    assert.equal(value(after, 'sluice_queue_rows{zone="default",status="queued"}'), 0);
    assert.equal(value(after, 'sluice_leases_in_flight{zone="default"}'), 0);
    assert.equal(value(after, 'sluice_worker_restarts_total{zone="default"}'), 0);
    assert.ok(value(after, 'sluice_queue_db_bytes') > 0, 'the database has a size');
    for (const name of ['sluice_nodejs_eventloop_lag_seconds', 'sluice_process_cpu_seconds_total', 'sluice_queue_oldest_deferred_seconds{zone="default"}']) {
      assert.ok(after.includes(`\n${name} `) || after.startsWith(`${name} `), name);
    }
  } finally {
    smtp.close();
    await m.stop();
    await mx.stop();
  }
});

test('refusals are counted by door and reason class; deferred and bounced rows by reply category, with the oldest deferred age', { timeout: 60_000 }, async () => {
  const mx = await startFakeMx({ tls: false });
  const m = await startMaster({
    smtp: { maxSize: 2048, maxRecipients: 1 },
    queue: { retrySchedule: ['1h'] },
    zones: { default: { processes: 1, route: { host: mx.host, port: mx.port } } },
  });
  const smtp = submitter(m.smtpPort, 1);
  try {
    mx.setRecipientReply('later@dest.test', '451 4.7.1 Greylisted, try again later');
    mx.setRecipientReply('gone@dest.test', '550 5.1.1 No such user here');
    await smtp.send({ to: 'later@dest.test', testId: 'defer' });
    await smtp.send({ to: 'gone@dest.test', testId: 'bounce' });
    // a second recipient over smtp.maxRecipients: 452 4.5.3 at RCPT (protocol); a message over
    // smtp.maxSize at the API: 413 (5.3.4, size)
    const talk = await SmtpTalk.connect(m.smtpPort);
    await talk.expect(220);
    await talk.send('EHLO client.test', 250);
    await talk.send('MAIL FROM:<a@src.test>', 250);
    await talk.send('RCPT TO:<one@dest.test>', 250);
    await talk.send('RCPT TO:<two@dest.test>', 452);
    talk.close();
    const res = await fetch(`${m.api}/send`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ from: 'a@src.test', to: 'b@dest.test', raw: 'x'.repeat(4000) }) });
    assert.equal(res.status, 413);

    let text = '';
    await waitFor(async () => {
      text = await (await fetch(`${m.api}/metrics`)).text();
      return /sluice_deliveries_total\{zone="default",result="bounced",category="unknown-user"\} 1/.test(text) && /result="deferred",category="greylist"\} 1/.test(text);
    }, 30_000, 'deferred and bounced counted');
    assert.match(text, /sluice_messages_rejected_total\{door="smtp",reason="protocol"\} 1/);
    assert.match(text, /sluice_messages_rejected_total\{door="api",reason="size"\} 1/);
    // the bounce's DSN went through ingest too: its own door
    assert.match(text, /sluice_messages_accepted_total\{door="bounce"\} 1/);
    assert.match(text, /sluice_queue_rows\{zone="default",status="deferred"\} 1/);
    assert.match(text, /sluice_queue_time_seconds_count\{zone="default",result="bounced"\} 1/);
    const age = Number(/sluice_queue_oldest_deferred_seconds\{zone="default"\} (\S+)/.exec(text)?.[1]);
    assert.ok(age > 0 && age < 60, `oldest deferred age ${age}`);
  } finally {
    smtp.close();
    await m.stop();
    await mx.stop();
  }
});
