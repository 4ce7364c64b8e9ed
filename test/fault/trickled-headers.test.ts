/**
 * Issue 8, item 9: a client that sends a 1 MB header block a few bytes at a time. Each piece
 * reaches ingest as its own chunk (the client waits a turn of the event loop after each write);
 * the header splitter must do work in proportion to the bytes, not rebuild the block so far for
 * every piece. The bound is the CPU time of the whole process (client and master) for the
 * trickled message, checked as the pieces go so that a quadratic splitter stops the loop early.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

let m: TestMaster;
before(async () => {
  m = await startMaster({ api: { enabled: false }, smtp: { maxSize: '4MB' }, queue: { maxHeaderSize: '1MB' } });
});
after(() => m.stop());

const PIECE_BYTES = 64;
/**
 * CPU for the trickled message: about 0.9 s on the build machine; a splitter that rebuilt the
 * block for each piece passed 4 s before the end of the header
 */
const CPU_BOUND_MS = 2500;

test('a 1 MB header trickled 64 bytes at a time is stored, within a CPU bound', async (t) => {
  const line = `X-Filler: ${'abcdefghij'.repeat(7)}\r\n`;
  const header = `Subject: trickled\r\n${line.repeat(Math.floor((1024 * 1024 - 1000) / line.length))}`;
  const message = Buffer.from(`${header}\r\nthe body\r\n.\r\n`, 'latin1');

  const c = await SmtpTalk.connect(m.smtpPort);
  c.socket.setNoDelay(true);
  try {
    await c.openData();
    const started = process.cpuUsage();
    const cpuMs = () => {
      const d = process.cpuUsage(started);
      return (d.user + d.system) / 1000;
    };
    const wallStart = performance.now();
    for (let at = 0, n = 0; at < message.length; at += PIECE_BYTES, n++) {
      c.write(message.subarray(at, at + PIECE_BYTES));
      await nextTurn();
      if (n % 500 === 0 && cpuMs() > CPU_BOUND_MS) {
        assert.fail(`${cpuMs().toFixed(0)} ms of CPU after ${at} of ${message.length} bytes (bound ${CPU_BOUND_MS} ms)`);
      }
    }
    const reply = await c.expect(250, 30_000);
    const spent = cpuMs();
    t.diagnostic(`${Math.ceil(message.length / PIECE_BYTES)} pieces: ${spent.toFixed(0)} ms CPU, ${(performance.now() - wallStart).toFixed(0)} ms wall`);
    assert.ok(spent <= CPU_BOUND_MS, `${spent.toFixed(0)} ms of CPU (bound ${CPU_BOUND_MS} ms)`);
    const id = /queued as ([0-9a-f]+)/.exec(reply.text)?.[1];
    assert.ok(id);
    const meta = await m.master.store.getMeta(id);
    assert.equal(meta?.subject, 'trickled');
    assert.equal(meta?.bodySize, 'the body\r\n'.length);
  } finally {
    c.close();
  }
});
