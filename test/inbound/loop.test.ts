/**
 * The quick start shows the whole product on one machine: with the built-in defaults (only the
 * ports moved to free ones), a message submitted on the submission port for the default inbound
 * domain is queued, delivered by a worker to the local receiver (its static route is made by the
 * master), received, and listed in its inbox; the queue is empty afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import nodemailer from 'nodemailer';
import { childConfig, writeConfig } from '../helpers/app-dir.js';
import { startSluice } from '../helpers/sluice-child.js';
import { waitFor } from '../helpers/delivery-kit.js';
import { tempDir } from '../helpers/master.js';

test('defaults: submit on the SMTP port → queue → worker → receiver → inbox API', { timeout: 60_000 }, async () => {
  const dir = tempDir();
  // childConfig moves every port to 0 and keeps DNS on loopback; zones, routes and the inbound
  // domain are the defaults (one worker, routeLocal, "sluice.test")
  writeConfig(dir, childConfig());
  const child = await startSluice(dir);
  try {
    const api = `http://127.0.0.1:${child.port('api')}`;
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: child.port('smtp'), secure: false, ignoreTLS: true });
    const info = await transport.sendMail({ from: 'app@src.test', to: 'newcomer@sluice.test', subject: 'Hello from Sluice', text: 'It works: https://sluice.test/welcome' });
    transport.close();
    assert.match(info.response, /^250 .*queued as [0-9a-f]+/);

    let listed: { subject: string; envelope: { from: string }; links: { url: string }[] }[] = [];
    await waitFor(async () => {
      const res = await fetch(`${api}/api/inboxes/newcomer@sluice.test/messages`);
      listed = ((await res.json()) as { messages: typeof listed }).messages;
      return listed.length === 1;
    }, 20_000, 'the message in its inbox');
    assert.equal(listed[0]!.subject, 'Hello from Sluice');
    assert.equal(listed[0]!.envelope.from, 'app@src.test');
    assert.deepEqual(listed[0]!.links.map((l) => l.url), ['https://sluice.test/welcome']);

    const delivered = child.lines.find((l) => l.event === 'DELIVERED');
    assert.ok(delivered, 'the worker logged the delivery');
    await waitFor(async () => {
      const q = (await (await fetch(`${api}/queue/default`)).json()) as { queued: number; deferred: number };
      return q.queued + q.deferred === 0;
    }, 5000, 'the queue empty');
  } finally {
    await child.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
