/**
 * Every JSON log line names each field once. A child logger's bindings (role, component, the
 * process's own pid) and a line's own fields share one object; a field of the same name written
 * twice is kept by some collectors first and by others last. Checked on the lines of a real
 * `sluice run` that forks a worker and receives a message at its inbound door.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import { startSluiceWith } from '../helpers/sluice-child.js';

/** The top-level keys of a JSON object text, in order, duplicates kept. */
function topLevelKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"') {
      const start = i;
      for (i++; line[i] !== '"'; i++) if (line[i] === '\\') i++;
      if (depth === 1 && line[i + 1] === ':') keys.push(JSON.parse(line.slice(start, i + 1)) as string);
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return keys;
}

test('the key scan finds a repeated field and ignores nested and quoted ones', () => {
  assert.deepEqual(topLevelKeys('{"a":1,"b":{"a":2},"c":"\\"a\\":","a":3}'), ['a', 'b', 'c', 'a']);
});

test('no log line of a running Sluice carries a field twice', { timeout: 60_000 }, async () => {
  const child = await startSluiceWith({ zones: { default: { processes: 1 } } });
  try {
    await child.waitForLine((l) => l.event === 'WORKER_READY', 15_000, 'a ready worker');
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: child.port('inbound'), secure: false, ignoreTLS: true });
    await transport.sendMail({ from: 'app@src.test', to: 'qa@sluice.test', subject: 'keys', text: 'once each' });
    transport.close();
    await child.waitForLine((l) => l.event === 'RECEIVED', 10_000, 'RECEIVED');
  } finally {
    await child.stop();
  }
  const lines = child.stdout().split('\n').filter((l) => l.startsWith('{'));
  assert.ok(lines.length > 5, 'the run logged');
  const repeated = lines.flatMap((line) => {
    const keys = topLevelKeys(line);
    const twice = keys.filter((k, i) => keys.indexOf(k) !== i);
    return twice.length ? [`${twice.join(',')}: ${line.slice(0, 200)}`] : [];
  });
  assert.deepEqual(repeated, []);
});
