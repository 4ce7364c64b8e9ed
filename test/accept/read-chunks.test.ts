/**
 * readChunks (lib/accept/read-chunks.ts): chunks come out as they were written (the same Buffers,
 * never joined), the stream waits while the reader does, and its failures reach the reader: an
 * error, a close before the end (a client gone mid-DATA), a reader that stops early.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { readChunks } from '../../lib/accept/read-chunks.js';

test('each chunk comes out as the Buffer written, in order, never joined', async () => {
  const s = new PassThrough();
  const written = [Buffer.from('one'), Buffer.from('two'), Buffer.from('three')];
  for (const b of written) s.write(b);
  s.end();
  const got: Buffer[] = [];
  for await (const c of readChunks(s)) got.push(c as Buffer);
  assert.equal(got.length, 3);
  got.forEach((c, i) => assert.equal(c.buffer, written[i]!.buffer, `chunk ${i} is the written Buffer, not a copy`));
});

test('while the reader is busy the stream is paused, so its writer sees backpressure', async () => {
  const s = new PassThrough({ highWaterMark: 16 });
  const it = readChunks(s);
  s.write(Buffer.alloc(8, 1));
  const first = await it.next();
  assert.equal((first.value as Buffer).length, 8);
  // the reader holds the first chunk; more writes fill the stream's buffer and are refused
  let accepted = 0;
  for (let i = 0; i < 10 && s.write(Buffer.alloc(8, 2)); i++) accepted++;
  assert.ok(accepted < 10, 'write() said stop');
  assert.equal(s.isPaused(), true);
  s.end();
  let rest = 0;
  for (let r = await it.next(); !r.done; r = await it.next()) rest += (r.value as Buffer).length;
  assert.equal(rest, 8 * (accepted + 1));
});

test('an error on the stream reaches the reader after the chunks before it', async () => {
  const s = new PassThrough();
  s.write(Buffer.from('before'));
  const it = readChunks(s);
  assert.equal(String((await it.next()).value), 'before');
  s.destroy(new Error('socket reset'));
  await assert.rejects(it.next(), /socket reset/);
});

test('a close before the end (the client went away mid-DATA) is an error, never a short message', async () => {
  const s = new PassThrough();
  s.write(Buffer.from('half a message'));
  const it = readChunks(s);
  await it.next();
  s.destroy();
  await assert.rejects(it.next(), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
});

test('a reader that stops early destroys the stream', async () => {
  const s = new PassThrough();
  s.write(Buffer.from('a'));
  s.write(Buffer.from('b'));
  for await (const c of readChunks(s)) {
    assert.equal(String(c), 'a');
    break;
  }
  assert.equal(s.destroyed, true);
});
