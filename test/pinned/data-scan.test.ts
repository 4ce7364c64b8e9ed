/**
 * The fast end-of-DATA scan must behave exactly as smtp-server's own: for random messages (dots
 * at line starts, escape dots, bare CR and LF, a terminator and a pipelined command after it)
 * split at random places, the same bytes come out of data mode and the same commands follow.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { fastFeed, installFastDataScan, originalFeed } from '../../lib/pinned/data-scan.js';
import { seededRandom } from '../helpers/seeded.js';
import { withPrivateMembers } from '../../lib/pinned/internals.js';

interface Outcome {
  data: string;
  commands: string[];
  /** smtp-server's count of the message's bytes */
  counted: number;
  /** data mode ended (a terminator was found) */
  ended: boolean;
}

async function run(feed: unknown, chunks: Buffer[]): Promise<Outcome> {
  const stream = new SMTPStream() as SMTPStream & { oncommand: (cmd: Buffer, cb?: () => void) => void };
  withPrivateMembers<{ _feedDataStream: unknown }>(stream)._feedDataStream = feed;
  const commands: string[] = [];
  stream.oncommand = (cmd, cb) => {
    commands.push(cmd.toString('latin1'));
    cb?.();
  };
  const data = stream.startDataMode(1e9);
  const parts: Buffer[] = [];
  let ended = false;
  data.on('data', (d: Buffer) => parts.push(d));
  data.on('end', () => {
    ended = true;
    stream.continue();
  });
  for (const c of chunks) stream.write(c);
  await new Promise<void>((resolve) => stream.end(() => resolve()));
  await new Promise((r) => setImmediate(r));
  return { data: Buffer.concat(parts).toString('latin1'), commands, counted: withPrivateMembers<{ dataBytes: number }>(stream).dataBytes, ended };
}

const PIECES = ['text', 'x', '.', '..', '\r\n', '\r\n', '\r\n.', '\r\n..', '\r\n.\r\n', '\n', '\r', ' '];

function randomWire(random: () => number): Buffer {
  const n = 1 + Math.floor(random() * 120);
  let s = '';
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(random() * PIECES.length)];
  // most messages end properly and have a command pipelined behind them
  if (random() < 0.8) s += '\r\n.\r\nQUIT\r\n';
  return Buffer.from(s, 'latin1');
}

function split(buf: Buffer, random: () => number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < buf.length; ) {
    const len = 1 + Math.floor(random() * (random() < 0.5 ? 8 : 300));
    out.push(buf.subarray(at, at + len));
    at += len;
  }
  return out;
}

test('the fast scan ends data mode and unescapes exactly as smtp-server does, on 3,000 random messages split anywhere', async () => {
  const random = seededRandom(1123);
  for (let i = 0; i < 3000; i++) {
    const wire = randomWire(random);
    const chunks = split(wire, random);
    const want = await run(originalFeed, chunks);
    const got = await run(fastFeed, chunks);
    const what = `case ${i}: ${JSON.stringify(wire.toString('latin1'))} in ${chunks.length} chunks`;
    if (want.ended) {
      assert.deepEqual(got, want, what);
    } else {
      // no terminator (the client went away): smtp-server destroys the data stream, so nothing
      // of it is used; the fast scan holds one chunk back and has passed on a prefix
      assert.equal(got.ended, false, what);
      assert.ok(want.data.startsWith(got.data), what);
      assert.equal(got.counted, got.data.length, what);
    }
  }
});

test('every split of a message into three chunks, the terminator and escape dots at every seam', async () => {
  for (const text of ['hello there\r\n..dot\r\n.\r\nQUIT\r\n', 'first line\r\nsecond\r\n.\r\nQUIT\r\n']) {
    const wire = Buffer.from(text, 'latin1');
    for (let a = 1; a < wire.length; a++) {
      for (let b = a + 1; b < wire.length; b++) {
        const chunks = [wire.subarray(0, a), wire.subarray(a, b), wire.subarray(b)];
        const want = await run(originalFeed, chunks);
        assert.equal(want.ended, true);
        assert.deepEqual(await run(fastFeed, chunks), want, `${JSON.stringify(text)} cut at ${a} and ${b}`);
      }
    }
  }
});

test('a plain 100 KB message in big chunks: the fast path passes it on and the terminator still ends it', async () => {
  const body = Buffer.from('0123456789abcdef'.repeat(4).concat('\r\n').repeat(1600));
  const wire = Buffer.concat([body, Buffer.from('.\r\nQUIT\r\n')]);
  const chunks = split(wire, seededRandom(7)).map((c) => Buffer.from(c));
  const got = await run(fastFeed, chunks);
  assert.equal(got.data, body.toString('latin1'));
  assert.deepEqual(got.commands, ['QUIT']);
});

test('installFastDataScan puts the fast scan on every SMTPStream', () => {
  installFastDataScan();
  assert.equal(withPrivateMembers<{ _feedDataStream: unknown }>(SMTPStream.prototype)._feedDataStream, fastFeed);
});
