/**
 * The POP3 door's pure parts: the line reader (limits, CR handling, lines split anywhere), TOP's
 * cut (the same for a message split at every place, with LF or CRLF line ends), and the
 * multi-line encoding of a message (dots stuffed, CRLF, the terminator).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineReader } from '../../../lib/inbound/pop3/line-reader.js';
import { multilineBody, multilineText } from '../../../lib/inbound/pop3/multiline.js';
import { topOf } from '../../../lib/inbound/pop3/top.js';
import { seededRandom } from '../../helpers/seeded.js';

async function collect(chunks: AsyncIterable<Buffer>): Promise<string> {
  const out: Buffer[] = [];
  for await (const c of chunks) out.push(c);
  return Buffer.concat(out).toString('latin1');
}

async function* chunked(text: string, cuts: number[]): AsyncGenerator<Buffer> {
  let from = 0;
  for (const at of [...cuts, text.length]) {
    yield Buffer.from(text.slice(from, at), 'latin1');
    from = at;
  }
}

/** TOP by the book, on the whole text: headers, the empty line, `n` body lines. */
function topReference(text: string, n: number): string {
  const lines = text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  const blank = lines.findIndex((l) => l === '\n' || l === '\r\n');
  if (blank === -1) return text;
  return lines.slice(0, blank + 1 + n).join('');
}

test('the line reader: lines split anywhere, CR dropped before LF, bare LF taken, the limit enforced', () => {
  const reader = new LineReader(16);
  assert.deepEqual(reader.push(Buffer.from('US')), { lines: [], tooLong: false });
  assert.equal(reader.partial, 2);
  assert.deepEqual(reader.push(Buffer.from('ER a\r\nSTAT\nLI')), { lines: ['USER a', 'STAT'], tooLong: false });
  assert.deepEqual(reader.push(Buffer.from('ST\r\n\r\n')), { lines: ['LIST', ''], tooLong: false });
  assert.equal(reader.partial, 0);
  assert.deepEqual(reader.push(Buffer.from('USER é\r\n')).lines, ['USER é'], 'UTF-8');
  // 16 bytes with the line end is the most
  assert.deepEqual(reader.push(Buffer.from('x'.repeat(14) + '\r\n')), { lines: ['x'.repeat(14)], tooLong: false });
  assert.deepEqual(reader.push(Buffer.from('x'.repeat(15) + '\r\n')), { lines: [], tooLong: true });
  assert.deepEqual(reader.push(Buffer.from('STAT\r\n')), { lines: [], tooLong: true }, 'nothing is read after a line too long');
  // an unfinished line is refused as soon as it cannot end within the limit
  const trickle = new LineReader(16);
  assert.equal(trickle.push(Buffer.from('y'.repeat(15))).tooLong, false);
  assert.equal(trickle.push(Buffer.from('y')).tooLong, true);
});

test("TOP's cut is the same wherever the message is split, with CRLF or LF line ends", async () => {
  const random = seededRandom(7);
  const messages = [
    'Subject: a\r\nFrom: b@c.test\r\n\r\nline 1\r\nline 2\r\nline 3\r\n',
    'Subject: a\nFrom: b@c.test\n\nline 1\nline 2\nline 3',
    'Subject: only headers\r\nX: y\r\n',
    'Subject: empty body\r\n\r\n',
    'Subject: x\r\n\r\n\r\n\r\nafter two empty lines\r\n',
    'Subject: cr\r\nX: a\rb\r\n\r\nbody\r\n',
  ];
  for (const text of messages) {
    for (const n of [0, 1, 2, 10]) {
      const want = topReference(text, n);
      for (let round = 0; round < 30; round++) {
        const cuts = [...new Set(Array.from({ length: Math.floor(random() * 6) }, () => Math.floor(random() * text.length)))].sort((a, b) => a - b);
        assert.equal(await collect(topOf(chunked(text, cuts), n)), want, `${JSON.stringify(text)} n=${n} cuts=${cuts}`);
      }
    }
  }
});

test('TOP stops reading the stored chunks at the cut', async () => {
  let read = 0;
  async function* chunks(): AsyncGenerator<Buffer> {
    for (const c of ['Subject: a\r\n\r\nline 1\r\n', 'line 2\r\n', 'line 3\r\n', 'line 4\r\n']) {
      read++;
      yield Buffer.from(c);
    }
  }
  assert.equal(await collect(topOf(chunks(), 1)), 'Subject: a\r\n\r\nline 1\r\n');
  assert.equal(read, 1);
});

test('a message as a multi-line body: dots stuffed, bare LF and CR made CRLF, one terminator', async () => {
  const cases: [string, string][] = [
    ['a\r\n.b\r\n..c\r\n', 'a\r\n..b\r\n...c\r\n.\r\n'],
    ['.first\r\nlast', '..first\r\nlast\r\n.\r\n'],
    ['bare\nlf\n.dot\n', 'bare\r\nlf\r\n..dot\r\n.\r\n'],
    ['', '\r\n.\r\n'],
  ];
  for (const [input, want] of cases) {
    const random = seededRandom(input.length + 1);
    const cuts = [...new Set([Math.floor(random() * input.length), Math.floor(random() * input.length)])].sort((a, b) => a - b);
    assert.equal(await collect(multilineBody(chunked(input, cuts))), want, JSON.stringify(input));
  }
  assert.deepEqual(multilineText(['1 20', '.x']), ['1 20', '..x', '.']);
});
