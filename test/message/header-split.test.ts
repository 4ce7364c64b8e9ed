/**
 * The header splitter: the same header block and body whatever the chunking (the blank line may
 * straddle any seam), and work linear in the bytes, so that a client trickling a 1 MB header a
 * few bytes at a time costs no more CPU than one sending it at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeaderSplitter, HeaderTooLargeError } from '../../lib/message/header-split.js';

/** Feeds `input` cut at `cuts`; returns the header block and the body. */
function split(input: Buffer, cuts: number[], maxHeaderBytes = 1024 * 1024): { headers: string; body: string } {
  const s = new HeaderSplitter(maxHeaderBytes);
  const body: Buffer[] = [];
  let from = 0;
  for (const at of [...cuts, input.length]) {
    body.push(s.push(input.subarray(from, at)));
    from = at;
  }
  s.finish();
  return { headers: s.headerBlock.toString('latin1'), body: Buffer.concat(body).toString('latin1') };
}

test('the header block and body are the same at every cut, in two and three pieces', () => {
  const messages = [
    'Subject: a\r\nX-B: b\r\n\r\nbody\r\n\r\nmore\r\n',
    'Subject: a\r\n\r\n',
    '\r\nno headers at all\r\n',
    'Subject: only headers\r\n',
    'Subject: a\r\n\r\n\r\n\r\n',
  ];
  for (const text of messages) {
    const input = Buffer.from(text, 'latin1');
    const whole = split(input, []);
    for (let i = 0; i <= input.length; i++) {
      assert.deepEqual(split(input, [i]), whole, `${JSON.stringify(text)} cut at ${i}`);
      for (let j = i; j <= input.length; j++) assert.deepEqual(split(input, [i, j]), whole, `${JSON.stringify(text)} cut at ${i}, ${j}`);
    }
    assert.deepEqual(split(input, Array.from({ length: input.length }, (_, k) => k)), whole, `${JSON.stringify(text)} byte by byte`);
  }
});

test('a header block over the limit throws HeaderTooLargeError, trickled or not', () => {
  const input = Buffer.from(`Subject: ${'x'.repeat(2000)}\r\n\r\nbody`, 'latin1');
  assert.throws(() => split(input, [], 1024), HeaderTooLargeError);
  assert.throws(() => split(input, Array.from({ length: 300 }, (_, k) => k * 5), 1024), HeaderTooLargeError);
  assert.equal(split(input, Array.from({ length: 300 }, (_, k) => k * 5), 4096).body, 'body');
});

test('a 1 MB header trickled 7 bytes at a time: linear work, within a CPU bound', () => {
  const line = `X-Filler: ${'abcdefghij'.repeat(7)}\r\n`;
  const header = line.repeat(Math.floor((1024 * 1024 - 100) / line.length));
  const input = Buffer.from(`${header}\r\nthe body\r\n`, 'latin1');
  const splitter = new HeaderSplitter(1024 * 1024);
  const body: Buffer[] = [];
  // a bound in CPU time: the trickle must cost about what one 1 MB chunk costs, not a copy of the
  // block so far for every piece (that was 75 GB of copying here); checked as it goes, so the loop
  // stops at the bound rather than running for minutes
  const boundMs = 1500;
  const started = process.cpuUsage();
  const cpuMs = () => {
    const d = process.cpuUsage(started);
    return (d.user + d.system) / 1000;
  };
  const STEP = 7;
  for (let at = 0, n = 0; at < input.length; at += STEP, n++) {
    body.push(splitter.push(input.subarray(at, at + STEP)));
    if (n % 1000 === 0 && cpuMs() > boundMs) {
      assert.fail(`${cpuMs().toFixed(0)} ms of CPU after ${at} of ${input.length} bytes (bound ${boundMs} ms)`);
    }
  }
  splitter.finish();
  const spent = cpuMs();
  assert.ok(spent <= boundMs, `${spent.toFixed(0)} ms of CPU (bound ${boundMs} ms)`);
  assert.equal(splitter.headerBlock.length, header.length + 2);
  assert.equal(Buffer.concat(body).toString('latin1'), 'the body\r\n');
});
