/**
 * The receiver's metrics (lib/inbound/metrics.ts) at GET /metrics: counters move with the
 * traffic, and the number of series does not — mail from many sender domains to many inboxes,
 * refused relaying to many domains, adds no label value (research/F19: a label
 * per sender took Mailsac's monitoring down).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startReceiver } from '../helpers/inbound.js';

function inboundSeries(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!/^sluice_(inbound|inbox)_/.test(line)) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

test('traffic from 60 sender domains to 60 inboxes, and relaying refused for 20 domains, adds no series', async () => {
  const r = await startReceiver();
  try {
    const scrape = async () => inboundSeries(await (await fetch(`${r.api}/metrics`)).text());
    const before = await scrape();
    assert.ok(before.size > 10, `${before.size} series`);
    for (let i = 0; i < 60; i++) await r.send({ from: `s@host${i}.sender${i}.test`, to: `user${i}@inbox.test` });
    const c = await r.session();
    await c.send('MAIL FROM:<s@src.test>', 250);
    for (let i = 0; i < 20; i++) await c.send(`RCPT TO:<u@relay${i}.test>`, 550);
    c.close();
    const after = await scrape();
    assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), 'the same series');
    assert.equal(after.get('sluice_inbound_messages_total{domain="inbox.test"}'), 60);
    assert.equal(after.get('sluice_inbound_rejected_total{reason="relay_denied"}'), 20);
    assert.equal(after.get('sluice_inbox_messages'), 60);
    assert.ok((after.get('sluice_inbound_connections_total{result="accepted"}') ?? 0) >= 61);
  } finally {
    await r.stop();
  }
});
