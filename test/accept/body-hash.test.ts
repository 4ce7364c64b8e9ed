/**
 * The DKIM relaxed body hash stored with a message (meta.bodyHash, computed chunk by chunk while
 * the body streamed in) equals what two independent implementations compute over the stored
 * body bytes read back from LevelDB: mailauth's canonicaliser (the verifier receivers run) and a
 * whole-body transcription of RFC 6376 §3.4.4 written here. Messages come over a real SMTP
 * socket, and also straight into ingest() with chunk boundaries at every awkward offset.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { Ingest } from '../../lib/accept/ingest.js';
import { createLogger } from '../../lib/log/logger.js';
import { DiskGuard } from '../../lib/queue/disk-space.js';
import { ZoneSelector } from '../../lib/zones/select.js';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

interface MailauthHasher {
  update(chunk: Buffer): void;
  digest(encoding: 'base64'): string;
}
const require = createRequire(import.meta.url);
const { dkimBody } = require('mailauth/lib/dkim/body/index.js') as { dkimBody: (canon: string, algo: string) => MailauthHasher };

/** RFC 6376 §3.4.4 as written, over the whole body at once. */
function rfcRelaxedHash(body: Buffer): string {
  const lines = body.toString('latin1').split('\r\n');
  const canon = lines.map((l) => l.replace(/[ \t]+/g, ' ').replace(/ $/, ''));
  while (canon.length && canon[canon.length - 1] === '') canon.pop();
  const text = canon.length ? canon.join('\r\n') + '\r\n' : '';
  return createHash('sha256').update(Buffer.from(text, 'latin1')).digest('base64');
}

function mailauthHash(body: Buffer, pieceBytes = 7919): string {
  const hasher = dkimBody('relaxed', 'sha256');
  for (let i = 0; i < body.length; i += pieceBytes) hasher.update(body.subarray(i, i + pieceBytes));
  return hasher.digest('base64');
}

let m: TestMaster;
let ingest: Ingest;
before(async () => {
  m = await startMaster({ api: { enabled: false }, smtp: { maxSize: '4MB' } });
  const { config, hooks } = m.master;
  ingest = new Ingest({
    config,
    store: m.master.store,
    hooks,
    zones: new ZoneSelector(config),
    disk: new DiskGuard(config.queue.path, 0),
    logger: createLogger('silent'),
  });
});
after(() => m.stop());

async function storedBody(id: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of m.master.store.readBody(id)) parts.push(c);
  return Buffer.concat(parts);
}

/** Checks the stored hash against both references and returns the stored body. */
async function checkHash(id: string): Promise<Buffer> {
  const meta = await m.master.store.getMeta(id);
  assert.ok(meta);
  const body = await storedBody(id);
  assert.equal(body.length, meta.bodySize);
  assert.equal(meta.bodyHash, mailauthHash(body), 'mailauth');
  assert.equal(meta.bodyHash, rfcRelaxedHash(body), 'RFC transcription');
  assert.doesNotMatch(body.toString('latin1'), /\r(?!\n)|(?<!\r)\n/, 'no bare CR or LF stored');
  return body;
}

async function viaSmtp(data: string | Buffer): Promise<string> {
  const c = await SmtpTalk.connect(m.smtpPort);
  try {
    await c.expect(220);
    await c.send('EHLO client.test', 250);
    await c.send('MAIL FROM:<a@x.test> BODY=8BITMIME', 250);
    await c.send('RCPT TO:<r@y.test>', 250);
    await c.send('DATA', 354);
    c.write(data);
    c.write('\r\n.\r\n');
    const id = /queued as ([0-9a-f]+)/.exec((await c.expect(250)).text)?.[1];
    assert.ok(id);
    return id;
  } finally {
    c.close();
  }
}

async function viaIngest(pieces: Buffer[]): Promise<string> {
  async function* source() {
    for (const p of pieces) yield p;
  }
  const result = await ingest.ingest({
    from: 'a@x.test',
    to: ['r@y.test'],
    origin: { via: 'api' },
    source: source(),
    maxSizeBytes: 4 * 1024 * 1024,
  });
  return result.id;
}

/** A long line with whitespace runs every so often, so some straddle any chunk boundary. */
function longLine(bytes: number): string {
  let s = '';
  let i = 0;
  while (s.length < bytes) s += `word${i++}` + (i % 3 === 0 ? ' \t  ' : i % 5 === 0 ? '\t' : ' ');
  return s.slice(0, bytes);
}

const HEAD = 'Subject: body hash\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n';

// The SMTP payload; the data ends with "\r\n" before the terminator, so SMTP bodies always end
// with CRLF. Bare CR and LF are sent as they are and must be stored as CRLF.
const SMTP_CASES: [name: string, body: string | Buffer][] = [
  ['trailing blank lines', 'last line\r\n\r\n\r\n\r\n'],
  ['trailing lines of only whitespace', 'text\r\n \t \r\n\t\r\n  '],
  ['a line over 998 bytes', longLine(5000)],
  ['a line over 64 KB with whitespace runs across chunk boundaries', longLine(200 * 1024) + '\r\n' + longLine(70 * 1024)],
  ['8-bit UTF-8', Buffer.from('Grüße aus Köln — ✓ 日本語のテキスト\r\nçà et là  \t  encore\r\n')],
  ['whitespace runs and trailing whitespace', 'a  \t b\t\t\r\n   leading\r\ntrailing   \r\n\t\r\nend'],
  ['empty body', ''],
  ['only blank lines', '\r\n\r\n\r\n'],
  ['bare LF and bare CR', 'one\ntwo\rthree\r\n\nfour\r\rfive  \n\n'],
  ['leading dots (dot-stuffed on the wire)', '..one dot\r\n...two dots\r\n'],
];

for (const [name, body] of SMTP_CASES) {
  test(`SMTP: stored body hash matches mailauth and RFC 6376 — ${name}`, async () => {
    const payload = Buffer.concat([Buffer.from(HEAD), Buffer.isBuffer(body) ? body : Buffer.from(body, 'latin1')]);
    await checkHash(await viaSmtp(payload));
  });
}

test('SMTP: bare LF and CR are stored as CRLF, and dot-stuffing is undone', async () => {
  const body = await checkHash(await viaSmtp(HEAD + 'one\ntwo\rthree\r\n..dot'));
  assert.equal(body.toString('latin1'), 'one\r\ntwo\r\nthree\r\n.dot\r\n');
});

// Straight into ingest (the path POST /send takes too), with exact chunk boundaries.
const RAW_CASES: [name: string, message: string][] = [
  ['a body without a final CRLF', HEAD + 'no line end at the end'],
  ['a body that ends in whitespace without CRLF', HEAD + 'text \t '],
  ['a body that ends in a bare CR', HEAD + 'text\r'],
  ['bare CR, bare LF and CR CR LF', HEAD + 'a\rb\nc\r\r\nd\n\re \r\n\r\n'],
  ['header/body boundary split every way', 'Subject: s\r\n\r\n  x  \r\n\r\n'],
  ['headers only, no blank line', 'Subject: only headers\r\n'],
  ['no header block at all', '\r\n  body only\r\n'],
  ['no header block, bare LF first', '\nbody after a bare LF\n'],
  ['empty message', ''],
];

for (const [name, message] of RAW_CASES) {
  test(`ingest: the hash holds at every chunk boundary — ${name}`, async () => {
    const bytes = Buffer.from(message, 'latin1');
    const hashes = new Set<string>();
    const bodies = new Set<string>();
    // one piece, every single byte, and every two-piece split
    const splits: Buffer[][] = [[bytes], [...bytes].map((b) => Buffer.from([b]))];
    for (let at = 1; at < bytes.length; at++) splits.push([bytes.subarray(0, at), bytes.subarray(at)]);
    // all at once: their commits share fsyncs (group commit), which keeps this fast
    await Promise.all(
      splits.map(async (pieces) => {
        const id = await viaIngest(pieces);
        const body = await checkHash(id);
        hashes.add((await m.master.store.getMeta(id))!.bodyHash);
        bodies.add(body.toString('latin1'));
      }),
    );
    assert.equal(hashes.size, 1, 'the same hash whatever the chunking');
    assert.equal(bodies.size, 1, 'the same stored body whatever the chunking');
  });
}
