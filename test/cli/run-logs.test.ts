/**
 * What `sluice run` logs about itself (lib/app/run.ts, master.ts, lib/log/): QUEUE_LOADED with the
 * rows found and how long loading took, the level by name and the hostname in every line, what a
 * stop still waits for, and readable lines when the format is pretty (what a terminal gets; the
 * TTY check sets the same switch, SLUICE_LOG__FORMAT forces it here).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { hostname } from 'node:os';
import { createInterface } from 'node:readline';
import { makeAppDir } from '../helpers/app-dir.js';
import { startSluice } from '../helpers/sluice-child.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { startCli } from './sluice-cli.js';

test('QUEUE_LOADED counts the rows found at start; every line has hostname and a level name; STOPPING and STOP_WAITING say what is still open', { timeout: 90_000 }, async () => {
  const dir = makeAppDir();
  const first = await startSluice(dir);
  try {
    const loaded = first.lines.find((l) => l.event === 'QUEUE_LOADED');
    assert.ok(loaded, 'a QUEUE_LOADED line');
    assert.equal(loaded.rows, 0);
    assert.equal(typeof loaded.ms, 'number');
    // two recipients stay queued: the zone has no workers
    const talk = await SmtpTalk.connect(first.smtpPort);
    await talk.expect(220);
    await talk.send('EHLO client.test', 250);
    await talk.send('MAIL FROM:<a@src.test>', 250);
    await talk.send('RCPT TO:<b@dest.test>', 250);
    await talk.send('RCPT TO:<c@dest.test>', 250);
    await talk.send('DATA', 354);
    await talk.send('Subject: kept\r\n\r\nhello\r\n.', 250);
    talk.close();
  } finally {
    assert.equal((await first.stop()).code, 0);
  }

  const second = await startSluice(dir);
  let talk: SmtpTalk | undefined;
  try {
    const loaded = second.lines.find((l) => l.event === 'QUEUE_LOADED');
    assert.equal(loaded?.rows, 2);
    assert.equal(loaded?.queued, 2);
    for (const line of second.lines) {
      assert.equal(line.hostname, hostname(), JSON.stringify(line));
      assert.ok(['trace', 'debug', 'info', 'warn', 'error', 'fatal'].includes(String(line.level)), JSON.stringify(line));
    }
    // a session in the middle of DATA holds the stop at its first step
    talk = await SmtpTalk.connect(second.smtpPort);
    await talk.expect(220);
    await talk.send('EHLO client.test', 250);
    await talk.send('MAIL FROM:<a@src.test>', 250);
    await talk.send('RCPT TO:<b@dest.test>', 250);
    await talk.send('DATA', 354);
    talk.write('Subject: half\r\n\r\n');
    second.kill('SIGTERM');
    const deadline = Date.now() + 20_000;
    while (!second.lines.some((l) => l.event === 'STOP_WAITING') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const stopping = second.lines.find((l) => l.event === 'STOPPING') as { open?: { smtpSessions: number; leases: number; workers: number } } | undefined;
    assert.deepEqual(stopping?.open, { smtpSessions: 1, leases: 0, workers: 0 });
    const waiting = second.lines.find((l) => l.event === 'STOP_WAITING');
    assert.ok(waiting, 'a STOP_WAITING line while the session is open');
    assert.equal(waiting.step, 'listeners');
    assert.equal(waiting.smtpSessions, 1);
    talk.close();
    talk = undefined;
  } finally {
    talk?.close();
    assert.equal((await second.stop()).code, 0);
  }
});

test('with log.format = "pretty" every line is readable: time, level name, [event], message, fields with hostname', { timeout: 30_000 }, async () => {
  const dir = makeAppDir();
  const child = startCli(['run', '-d', dir], { env: { SLUICE_LOG__FORMAT: 'pretty' } });
  const exited = once(child, 'close');
  const seen: string[] = [];
  // a failure while running is the one to report, not the stop's that follows it
  let failure: unknown;
  try {
    // read to the end (a closed pipe would fail the child's own log writes), noting STARTED
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        seen.push(line);
        if (line.includes('[STARTED]')) resolve();
      });
      child.once('exit', () => reject(new Error(`exited before STARTED: ${stderr}\n${seen.join('\n')}`)));
    });
    assert.ok(seen.some((l) => l.includes('[STARTED]')), seen.join('\n'));
    for (const line of seen) {
      assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (TRACE|DEBUG|INFO |WARN |ERROR|FATAL) /, line);
      assert.ok(line.includes(` hostname=${hostname()}`), line);
    }
    assert.ok(seen.some((l) => /INFO {2}\[QUEUE_LOADED\] queue loaded: 0 rows in \d+ ms .*rows=0/.test(l)), seen.join('\n'));
    assert.ok(seen.some((l) => /\[LISTENING\] smtp listening on 127\.0\.0\.1:\d+ .*kind=smtp/.test(l)), seen.join('\n'));
  } catch (err) {
    failure = err;
  }
  child.kill('SIGTERM');
  const [code, signal] = (await exited) as [number | null, string | null];
  if (failure) throw failure;
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, seen.slice(-5).join('\n'));
  assert.ok(seen.some((l) => l.includes('[STOPPED]')), seen.slice(-3).join('\n'));
});
