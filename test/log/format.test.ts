/**
 * Log lines (lib/log/logger.ts, pretty.ts): JSON or readable, the same fields in both, the level
 * by name and the hostname in every line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { createLogger, logEvent, resolveLogFormat } from '../../lib/log/logger.js';
import { formatPretty } from '../../lib/log/pretty.js';

function capture() {
  const lines: string[] = [];
  return { lines, write: (s: string) => void lines.push(s) };
}

test('JSON lines carry the level by name, hostname and pid', () => {
  const out = capture();
  const logger = createLogger('info', { role: 'master' }, 'json', out);
  logEvent(logger, 'QUEUED', { id: 'abc', from: 'a@src.test' });
  logger.warn({ event: 'SIGHUP' }, 'hangup');
  logger.debug('not shown');
  assert.equal(out.lines.length, 2);
  const [first, second] = out.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(first!.level, 'info');
  assert.equal(second!.level, 'warn');
  for (const rec of [first!, second!]) {
    assert.equal(rec.hostname, hostname());
    assert.equal(rec.pid, process.pid);
    assert.equal(rec.role, 'master');
    assert.match(String(rec.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  }
  assert.equal(first!.event, 'QUEUED');
});

test('pretty lines: time, level, [event], message, then every other field as key=value', () => {
  const out = capture();
  const logger = createLogger('info', { role: 'worker', zone: 'default' }, 'pretty', out);
  logger.info({ event: 'DELIVERED', id: '01a2', recipient: 'b@dest.test', response: '250 2.0.0 Ok: queued', tls: true }, 'delivered');
  logger.error({ err: new Error('boom') }, 'failed');
  assert.equal(out.lines.length, 2);
  const [line, err] = out.lines;
  assert.ok(line!.endsWith('\n') && !line!.slice(0, -1).includes('\n'), 'one line');
  assert.match(line!, /^\d{4}-\d\d-\d\dT\S+Z INFO {2}\[DELIVERED\] delivered /);
  assert.ok(line!.includes(`hostname=${hostname()}`));
  assert.ok(line!.includes(`pid=${process.pid}`));
  assert.ok(line!.includes('role=worker zone=default'));
  assert.ok(line!.includes('id=01a2 recipient=b@dest.test response="250 2.0.0 Ok: queued" tls=true'));
  assert.doesNotMatch(line!, /^\{/);
  assert.match(err!, /^\S+ ERROR failed .*err=\{"type":"Error","message":"boom"/);
  assert.ok(!err!.slice(0, -1).includes('\n'), 'a stack stays on its line');
});

test('formatPretty keeps a line that is not JSON as it is', () => {
  assert.equal(formatPretty('plain text'), 'plain text\n');
});

test('"auto" is pretty at a terminal and JSON otherwise; an explicit format wins', () => {
  assert.equal(resolveLogFormat('auto', true), 'pretty');
  assert.equal(resolveLogFormat('auto', false), 'json');
  assert.equal(resolveLogFormat('json', true), 'json');
  assert.equal(resolveLogFormat('pretty', false), 'pretty');
});
