/**
 * Issue 12 item 3, "Reload", over the whole `sluice run` as a child process: its config file is
 * rewritten and the process gets SIGHUP.
 * - A static route change sends new mail to a second loopback sink, while an SMTP session
 *   opened before the signal completes its message (250) and the delivery the old worker had in
 *   flight still ends at the old sink: nothing accepted is lost, no session dropped.
 * - A bad config logs RELOAD_FAILED and the running config stays (level, port, acceptance).
 * - A log level change applies at once; a restart-only key (smtp.port) is reported as needing a
 *   restart and not applied (the old port still serves).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startFakeMx } from '../helpers/fakemx.js';
import { tempDir } from '../helpers/master.js';
import { childConfig, writeConfig } from '../helpers/app-dir.js';
import { startSluice, type LogLine, type SluiceChild } from '../helpers/sluice-child.js';
import { submitter, waitFor } from '../helpers/delivery-kit.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function started(dir: string): Promise<SluiceChild> {
  const child = await startSluice(dir);
  cleanup.push(async () => void (await child.stop()));
  return child;
}

/** Sends SIGHUP and resolves with the RELOADED or RELOAD_FAILED line it caused. */
async function hangup(child: SluiceChild): Promise<LogLine> {
  const before = child.lines.length;
  child.kill('SIGHUP');
  return child.waitForLine((l) => child.lines.indexOf(l) >= before && (l.event === 'RELOADED' || l.event === 'RELOAD_FAILED'), 10_000, 'a reload line');
}

test('SIGHUP with a new static route: new mail goes to the new sink, an open SMTP session gets its 250, the old worker finishes its delivery', { timeout: 90_000 }, async () => {
  // the old sink holds its reply to the dot, so a delivery is in flight when the signal comes
  const oldMx = await startFakeMx({ mode: { kind: 'delayDot', ms: 1500 }, tls: false });
  cleanup.push(() => oldMx.stop());
  const newMx = await startFakeMx({ tls: false });
  cleanup.push(() => newMx.stop());
  const dir = tempDir('sluice-reload-route-');
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  const config = (mx: { host: string; port: number }) => childConfig({ zones: { default: { processes: 1 } }, routes: { 'dest.test': { host: mx.host, port: mx.port, tls: 'none' } } });
  writeConfig(dir, config(oldMx));
  const child = await started(dir);
  await child.waitForLine((l) => l.event === 'WORKER_READY', 15_000, 'worker ready');

  const smtp = submitter(child.port('smtp'), 2);
  cleanup.push(async () => smtp.close());
  await smtp.send({ to: 'a@dest.test', testId: 'before' });
  await oldMx.waitUntil(() => oldMx.transactions.some((t) => t.testId === 'before' && t.dataEndAt !== undefined), 15_000, () => 'the first delivery never reached the dot');

  // a session opened before the signal, left in the middle of its DATA
  const talk = await SmtpTalk.connect(child.port('smtp'));
  cleanup.push(async () => talk.close());
  await talk.expect(220);
  await talk.send('EHLO client.test', 250);
  await talk.send('MAIL FROM:<s@src.test>', 250);
  await talk.send('RCPT TO:<b@dest.test>', 250);
  await talk.send('DATA', 354);
  talk.write('Subject: during\r\nX-Test-Id: during\r\n\r\nhalf of the body\r\n');

  writeConfig(dir, config(newMx));
  const reloaded = await hangup(child);
  assert.equal(reloaded.event, 'RELOADED', JSON.stringify(reloaded));
  assert.deepEqual(reloaded.applied, ['routes."dest.test".port']);
  assert.deepEqual(reloaded.restartNeeded, []);
  assert.equal(reloaded.workersReplaced, true);

  talk.write('the other half\r\n.\r\n');
  await talk.expect(250);
  await talk.send('QUIT', 221);

  await smtp.send({ to: 'c@dest.test', testId: 'after' });
  await newMx.waitUntil(() => ['during', 'after'].every((id) => newMx.copiesById().has(id)), 20_000, () => `new sink has ${[...newMx.copiesById().keys()]}`);
  // the old worker finished the delivery it held, then left
  await oldMx.waitUntil(() => oldMx.transactions.some((t) => t.testId === 'before' && t.outcome === 'accepted'), 15_000, () => 'the in-flight delivery did not finish');
  await child.waitForLine((l) => l.event === 'WORKER_RETIRED', 15_000, 'the old worker exited');
  assert.deepEqual([...oldMx.copiesById().keys()], ['before'], 'nothing new went to the old route');
  assert.deepEqual(child.lines.filter((l) => l.event === 'WORKER_EXITED'), [], 'no worker died');
  assert.ok(!child.lines.some((l) => l.event === 'LEASES_RELEASED'), 'the old worker was not cut off mid-delivery');
  smtp.close();
  assert.deepEqual(await child.stop(), { code: 0, signal: null });
});

test('SIGHUP with a bad config keeps the running one; then a new log level applies and smtp.port is reported as needing a restart', { timeout: 60_000 }, async () => {
  const dir = tempDir('sluice-reload-bad-');
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  writeConfig(dir, childConfig());
  const child = await started(dir);
  const port = child.port('smtp');
  const smtp = submitter(port, 1);
  cleanup.push(async () => smtp.close());
  const queuedLines = () => child.lines.filter((l) => l.event === 'QUEUED').length;

  // a quieter level together with a wrong key: nothing of it may apply
  writeConfig(dir, childConfig({ log: { level: 'warn' }, smtp: { maxSize: 'lots' } }));
  const failed = await hangup(child);
  assert.equal(failed.event, 'RELOAD_FAILED');
  assert.ok((failed.problems as string[]).some((p) => p.includes('smtp.maxSize')), JSON.stringify(failed.problems));
  await smtp.send({ to: 'x@elsewhere.test', testId: 'after-bad' });
  await waitFor(() => queuedLines() === 1, 5000, 'QUEUED still logged at the old level');

  writeConfig(dir, childConfig({ log: { level: 'warn' }, smtp: { port: 2599 } }));
  const reloaded = await hangup(child);
  assert.equal(reloaded.event, 'RELOADED');
  assert.equal(reloaded.level, 'warn', 'a pending restart is a warning');
  assert.deepEqual(reloaded.applied, ['log.level']);
  assert.deepEqual(reloaded.restartNeeded, ['smtp.port']);
  assert.match(String(reloaded.msg), /needs a restart: smtp\.port/);
  // the old port still serves (not applied), and info lines are gone (applied)
  const id = await smtp.send({ to: 'x@elsewhere.test', testId: 'after-good' });
  assert.ok(id);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(queuedLines(), 1, 'no QUEUED line at level warn');
  assert.ok(!child.lines.some((l) => l.event === 'LISTENING' && l.port === 2599), 'no listener moved');
  smtp.close();
  assert.deepEqual(await child.stop(), { code: 0, signal: null });
});
