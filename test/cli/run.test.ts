/**
 * `sluice run` as a real child process: a bad config stops it with one line naming the key; a
 * good one logs one LISTENING line per listener with its address, serves on it, and stops
 * cleanly (exit 0) on SIGTERM.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { lines, runCli, startCli } from './sluice-cli.js';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-run-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface LogLine {
  event?: string;
  listener?: string;
  kind?: string;
  address?: string;
  port?: number;
}

test('run with a bad config exits non-zero with one line naming the key', async (t) => {
  const dir = tempDir(t);
  writeFileSync(path.join(dir, 'config.toml'), '[smtp]\nport = "twenty-five"\n');
  const res = await runCli(['run', '-d', dir]);
  assert.notEqual(res.code, 0);
  assert.deepEqual(lines(res.stderr), ['sluice: config error: smtp.port: expected a whole number from 0 to 65535, got "twenty-five"']);
  assert.equal(res.stdout, '', 'nothing started, nothing logged');
});

test('run logs one LISTENING line per listener, accepts a connection, and exits 0 on SIGTERM', async (t) => {
  const dir = tempDir(t);
  writeFileSync(
    path.join(dir, 'config.toml'),
    ['hostname = "cli.sluice.test"', '[smtp]', 'port = 0', '[smtp.interfaces.submission]', 'port = 0', 'auth = "always"', '[api]', 'port = 0', '[channel]', 'port = 0', '[inbound]', 'port = 0', '[inbound.pop3]', 'port = 0', '[queue]', 'minFreeSpace = 0', '[zones.default]', 'processes = 0', '[dns]', 'servers = ["127.0.0.1:9"]'].join('\n'),
  );
  const child = startCli(['run', '-d', dir]);
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = once(child, 'exit');

  // read JSON lines until STARTED, within a bound
  const logged: LogLine[] = [];
  const reader = createInterface({ input: child.stdout! });
  const readerClosed = once(reader, 'close');
  const started = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no STARTED line within 10 s; stderr: ${stderr}`)), 10_000);
    reader.on('line', (line) => {
      const entry = JSON.parse(line) as LogLine;
      logged.push(entry);
      if (entry.event === 'STARTED') {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`exited (${code}) before STARTED; stderr: ${stderr}`)));
  });
  await started;

  const listening = logged.filter((l) => l.event === 'LISTENING');
  assert.deepEqual(listening.map((l) => l.listener).sort(), ['api', 'channel', 'inbound', 'pop3', 'smtp', 'smtp.interfaces.submission']);
  assert.equal(listening.find((l) => l.listener === 'pop3')?.kind, 'pop3');
  for (const l of listening) {
    assert.equal(l.address, '127.0.0.1');
    assert.ok(typeof l.port === 'number' && l.port > 0, `${l.listener} has a real port`);
  }
  const smtpPort = listening.find((l) => l.listener === 'smtp')!.port!;
  const talk = await SmtpTalk.connect(smtpPort);
  const greeting = await talk.expect(220);
  assert.match(greeting.text, /cli\.sluice\.test/);
  await talk.send('QUIT', 221);
  talk.close();
  const api = listening.find((l) => l.listener === 'api')!;
  const health = await fetch(`http://${api.address}:${api.port}/health`);
  assert.equal(health.status, 200);

  assert.ok(child.pid);
  process.kill(child.pid, 'SIGTERM');
  const [code, signal] = (await Promise.race([
    exited,
    new Promise((_, reject) => setTimeout(() => reject(new Error('no exit within 10 s of SIGTERM')), 10_000).unref()),
  ])) as [number | null, string | null];
  assert.equal(signal, null);
  assert.equal(code, 0, stderr);
  await readerClosed;
  assert.ok(logged.some((l) => l.event === 'STOPPED'), 'logged its clean stop');
});
