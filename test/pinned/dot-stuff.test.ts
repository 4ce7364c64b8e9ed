/**
 * The fast DATA encoder must give byte for byte what nodemailer's DataStream gives, for any
 * input split anywhere: bare CR, bare LF, CRLF, dots at line starts, chunk edges between CR and
 * LF or before a dot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, type Transform } from 'node:stream';
import { text } from 'node:stream/consumers';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream.js';
import { fastTransform, originalTransform } from '../../lib/pinned/dot-stuff.js';
import { seededRandom } from '../helpers/seeded.js';
import { withPrivateMembers } from '../../lib/pinned/internals.js';

type Ctor = new () => Transform & { inByteCount: number; outByteCount: number };

async function encode(chunks: Buffer[], transform: unknown): Promise<{ out: string; inBytes: number; outBytes: number }> {
  const stream = new (withPrivateMembers<Ctor>(DataStream))();
  stream._transform = transform as Transform['_transform'];
  const out = text(Readable.from(chunks).pipe(stream));
  const result = await out;
  return { out: result, inBytes: stream.inByteCount, outBytes: stream.outByteCount };
}

const ALPHABET = ['a', 'b', '.', '.', '\r\n', '\r\n', '\r\n.', '\r', '\n', ' ', 'é'];

function randomMessage(random: () => number, cleanOnly: boolean): Buffer {
  const parts: string[] = [];
  const n = 1 + Math.floor(random() * 200);
  for (let i = 0; i < n; i++) {
    let piece = ALPHABET[Math.floor(random() * ALPHABET.length)]!;
    if (cleanOnly && (piece === '\r' || piece === '\n')) piece = '\r\n';
    parts.push(piece);
  }
  return Buffer.from(parts.join(''), 'latin1');
}

function split(buf: Buffer, random: () => number): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < buf.length) {
    const len = 1 + Math.floor(random() * 40);
    out.push(buf.subarray(at, at + len));
    at += len;
  }
  return out;
}

test('the fast encoder matches nodemailer DataStream on 4,000 random messages split at random places', async () => {
  const random = seededRandom(20261123);
  for (let i = 0; i < 4000; i++) {
    const message = randomMessage(random, i % 2 === 0);
    const chunks = split(message, random);
    const want = await encode(chunks, originalTransform);
    const got = await encode(chunks, fastTransform);
    assert.deepEqual(got, want, `case ${i}: ${JSON.stringify(message.toString('latin1'))} in ${chunks.length} chunks`);
  }
});

test('edge cases: a leading dot, a chunk ending in CR, a dot after a chunk edge, strings', async () => {
  const cases: (Buffer | string)[][] = [
    [Buffer.from('.starts with a dot\r\n')],
    [Buffer.from('line\r'), Buffer.from('\n.dot after the edge\r\n')],
    [Buffer.from('line\r\n'), Buffer.from('.dot\r\n..two\r\n')],
    [Buffer.from('bare cr\r'), Buffer.from('x\r\n')],
    [Buffer.from('a\r\n'), Buffer.from('\nbare lf at the start')],
    [Buffer.from('')],
    ['a string\r\n.dot\r\n'],
  ];
  for (const chunks of cases) {
    const bufs = chunks.map((c) => (typeof c === 'string' ? Buffer.from(c) : c));
    assert.deepEqual(await encode(bufs, fastTransform), await encode(bufs, originalTransform), JSON.stringify(chunks.map(String)));
  }
});

test('a clean 100 KB body passes through as the same buffer (no copy) when it has no dots', async () => {
  const body = Buffer.from('0123456789'.repeat(7).concat('\r\n').repeat(1400));
  const pushed: Buffer[] = [];
  const state = { lastByte: 0x0a as number | false, inByteCount: 0, outByteCount: 0, push: (b: Buffer) => pushed.push(b) > 0 };
  fastTransform.call(state, body, 'latin1', () => undefined);
  assert.equal(pushed.length, 1);
  assert.equal(pushed[0], body);
});
