import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLineEndNormalizer } from '../../lib/message/line-ends.js';

/** Runs `input` through the normaliser cut into chunks of `size` bytes. */
function normalize(input: string, size: number): string {
  const n = createLineEndNormalizer();
  const bytes = Buffer.from(input, 'latin1');
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(n.push(bytes.subarray(i, i + size)));
  out.push(n.end());
  return Buffer.concat(out).toString('latin1');
}

const cases: [string, string, string][] = [
  ['clean CRLF passes unchanged', 'a\r\nb\r\n', 'a\r\nb\r\n'],
  ['bare LF becomes CRLF', 'a\nb\n', 'a\r\nb\r\n'],
  ['bare CR becomes CRLF', 'a\rb\r', 'a\r\nb\r\n'],
  ['CR CR LF is a bare CR then a CRLF', 'a\r\r\nb', 'a\r\n\r\nb'],
  ['LF CR is two line ends', 'a\n\rb', 'a\r\n\r\nb'],
  ['the smtpsmug endings all become plain lines', '\n.\n|\r.\r|\r.\n|\n.\r', '\r\n.\r\n|\r\n.\r\n|\r\n.\r\n|\r\n.\r\n'],
  ['NUL bytes are dropped (no "\\r\\n\\0.\\r\\n" smuggling)', 'x\r\n\0.\r\ny\0z', 'x\r\n.\r\nyz'],
  ['a CR at the very end is a line end', 'a\r', 'a\r\n'],
];

for (const [name, input, expected] of cases) {
  test(`line ends: ${name}, at every chunk size`, () => {
    for (const size of [1, 2, 3, 7, 1024]) assert.equal(JSON.stringify(normalize(input, size)), JSON.stringify(expected), `chunk size ${size}`);
  });
}
