/**
 * Large base64 and hex attachment content is decoded in pieces (lib/api/piecewise-content.ts): the
 * bytes are exactly those of a whole decode, whatever the piece boundaries cut (an encoding unit,
 * a line break, the padding), and the message the composer builds carries the same attachment.
 * Content that would decode differently in pieces is left whole.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { simpleParser } from 'mailparser';
import { compose } from '../../lib/api/compose.js';
import { PIECEWISE_MIN_CHARS, piecewiseDecoded } from '../../lib/api/piecewise-content.js';

async function drain(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

const wrap = (text: string, width: number, eol: string) => text.replace(new RegExp(`(.{${width}})`, 'g'), `$1${eol}`);

test('pieces decode to the bytes of a whole decode: base64 plain, wrapped, padded; hex', async () => {
  // sizes around the 256 KB piece: every padding length, and units cut by the piece's end
  for (const bytes of [PIECEWISE_MIN_CHARS, 196_608, 196_609, 196_610, 600_001, 1_048_577]) {
    const data = randomBytes(bytes);
    const plain = data.toString('base64');
    for (const text of [plain, wrap(plain, 76, '\r\n'), wrap(plain, 64, '\n'), ` ${wrap(plain, 1000, ' ')}\n`]) {
      if (text.length < PIECEWISE_MIN_CHARS) continue;
      const stream = piecewiseDecoded(text, 'base64');
      assert.ok(stream, `base64 of ${bytes} bytes is decoded in pieces`);
      assert.ok((await drain(stream)).equals(Buffer.from(text, 'base64')), `base64 of ${bytes} bytes, ${text.length} chars`);
    }
    const hex = data.toString('hex');
    assert.ok((await drain(piecewiseDecoded(hex, 'hex')!)).equals(data), `hex of ${bytes} bytes`);
  }
});

test('content that could decode differently in pieces, or is short, stays whole', () => {
  const big = randomBytes(300_000).toString('base64');
  assert.equal(piecewiseDecoded(big.slice(0, 1000), 'base64'), undefined, 'short');
  assert.equal(piecewiseDecoded(`${big}=${big}`, 'base64'), undefined, 'padding in the middle');
  assert.equal(piecewiseDecoded(big.replace(/\+/g, '-'), 'base64'), undefined, 'base64url characters');
  assert.equal(piecewiseDecoded(`${big}!`, 'base64'), undefined, 'a character outside base64');
  assert.equal(piecewiseDecoded(`${randomBytes(200_000).toString('hex')}a`, 'hex'), undefined, 'odd hex');
  assert.equal(piecewiseDecoded(big, 'utf8'), undefined, 'text encodings');
});

test('the composed message carries the attachment byte for byte', async () => {
  const data = randomBytes(700_001);
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const { mail } = compose({
    from: 'a@src.test',
    to: 'b@dest.test',
    text: 'see attached',
    attachments: [
      { filename: 'data.bin', content: wrap(data.toString('base64'), 76, '\r\n'), encoding: 'base64' },
      { filename: 'data.hex', content: data.toString('hex'), encoding: 'hex', contentType: 'application/octet-stream' },
      { filename: 'small.bin', content: data.subarray(0, 100).toString('base64'), encoding: 'base64' },
    ],
  });
  const parsed = await simpleParser(await drain(mail.createReadStream() as unknown as Readable));
  assert.deepEqual(
    parsed.attachments.map((a) => [a.filename, sha(a.content)]),
    [
      ['data.bin', sha(data)],
      ['data.hex', sha(data)],
      ['small.bin', sha(data.subarray(0, 100))],
    ],
  );
});
