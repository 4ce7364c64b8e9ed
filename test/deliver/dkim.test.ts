/**
 * DKIM signing at delivery, checked by independent verifiers: mailauth's dkimVerify (its own
 * header and body canonicalisers, public keys served by an injected resolver) and, when Debian's
 * python3-dkim is installed, dkimpy. Keys are generated here and loaded from PEM files the way
 * the worker loads [[dkim.keys]]. The body hash is made exactly as ingest makes it: the CRLF
 * normaliser, then BodyHasher, chunk by chunk.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { DkimKeyError, dkimDnsRecord, keysFor, loadDkimKeys, type DkimKey } from '../../lib/deliver/dkim/keys.js';
import { dkimSignatures, dkimSignaturesAsync, fromDomainOf } from '../../lib/deliver/dkim/sign.js';
import { BodyHasher } from '../../lib/message/body-hash.js';
import { createLineEndNormalizer } from '../../lib/message/line-ends.js';

let dir: string;
let rsaPem: string;
let edPem: string;
let rsaKey: DkimKey;
let edKey: DkimKey;
/** TXT records by name, built from the public keys here (not by the code under test) */
const records = new Map<string, string>();

function pemFile(name: string, pem: string, mode = 0o600): string {
  const file = path.join(dir, name);
  writeFileSync(file, pem, { mode });
  chmodSync(file, mode); // whatever the umask
  return file;
}

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sluice-dkim-'));
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ed = generateKeyPairSync('ed25519');
  rsaPem = rsa.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  edPem = ed.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const loaded = loadDkimKeys([
    { domain: 'example.test', selector: 'rsa1', privateKey: pemFile('rsa.pem', rsaPem), algorithm: 'rsa-sha256' },
    { domain: 'Example.TEST.', selector: 'ed1', privateKey: pemFile('ed.pem', edPem), algorithm: 'ed25519-sha256' },
  ]);
  assert.deepEqual(loaded.warnings, []);
  [rsaKey, edKey] = loaded.keys as [DkimKey, DkimKey];
  assert.equal(edKey.domain, 'example.test');
  records.set('rsa1._domainkey.example.test', `v=DKIM1; k=rsa; p=${der(rsa.publicKey).toString('base64')}`);
  // RFC 8463: the raw 32-byte key, the last 32 bytes of its SubjectPublicKeyInfo
  records.set('ed1._domainkey.example.test', `v=DKIM1; k=ed25519; p=${der(ed.publicKey).subarray(-32).toString('base64')}`);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function der(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' });
}

async function resolver(name: string, rrtype: string): Promise<string[][]> {
  const rr = rrtype === 'TXT' ? records.get(name) : undefined;
  if (rr) return [[rr]];
  throw Object.assign(new Error(`no ${rrtype} for ${name}`), { code: 'ENOTFOUND' });
}

/** The stored body and its hash, made as ingest makes them, in small chunks to cross boundaries. */
function ingestBody(raw: Buffer, chunkBytes = 7): { body: Buffer; bodyHash: string } {
  const normalizer = createLineEndNormalizer();
  const hasher = new BodyHasher();
  const out: Buffer[] = [];
  const take = (b: Buffer) => {
    hasher.update(b);
    out.push(b);
  };
  for (let i = 0; i < raw.length; i += chunkBytes) take(normalizer.push(raw.subarray(i, i + chunkBytes)));
  take(normalizer.end());
  return { body: Buffer.concat(out), bodyHash: hasher.digest() };
}

const HEADERS = [
  'Received: from client.test (127.0.0.1) by sluice.test; Mon, 23 Nov 2026 05:27:31 +0000',
  'From: "Sender, Jr." <sender@example.test>',
  'To: a@dest.test,',
  '\tb@dest.test',
  'cc:   c@dest.test  ',
  'Subject:  Hello   \t world',
  'Date: Mon, 23 Nov 2026 05:27:31 +0000',
  'Message-ID: <abc@example.test>',
  'MIME-Version: 1.0',
  'Content-Type: text/plain; charset=utf-8',
  'Content-Transfer-Encoding: 8bit',
  'List-Unsubscribe: <mailto:unsub@example.test>',
  'X-Mailer: test',
].join('\r\n') + '\r\n\r\n';

const BODIES: Record<string, Buffer> = {
  plain: Buffer.from('Hello there.\r\nSecond line.\r\n'),
  'trailing blank lines': Buffer.from('text\r\n\r\n\r\n\r\n'),
  'long lines': Buffer.from(`${'x'.repeat(5000)}\r\n${'word '.repeat(2000)}\r\n`),
  '8-bit UTF-8': Buffer.from('Grüße — à la carte, non\u00a0breaking, 日本語\r\n'),
  'whitespace runs': Buffer.from('a  \t b   \r\n   \r\n\t\r\n c\t\td  \r\n'),
  empty: Buffer.alloc(0),
  'no final line break': Buffer.from('last line without CRLF'),
  'bare LF and CR (normalised at ingest)': Buffer.from('one\ntwo\rthree\r\n\n'),
};

function signedMessage(headers: string, rawBody: Buffer, keys: readonly DkimKey[]): Buffer {
  const { body, bodyHash } = ingestBody(rawBody);
  const sigs = dkimSignatures(headers, bodyHash, keys);
  return Buffer.concat([Buffer.from(sigs + headers, 'latin1'), body]);
}

async function verify(message: Buffer): Promise<{ result: string; selector: string; comment?: string }[]> {
  const res = await dkimVerify(message, { resolver });
  return res.results.map((r) => ({ result: r.status.result, selector: r.selector ?? '', comment: r.status.comment || undefined }));
}

for (const [name, rawBody] of Object.entries(BODIES)) {
  test(`rsa-sha256 and ed25519-sha256 both verify: ${name}`, async () => {
    for (const key of [rsaKey, edKey]) {
      const results = await verify(signedMessage(HEADERS, rawBody, [key]));
      assert.deepEqual(results, [{ result: 'pass', selector: key.selector, comment: undefined }], `${key.algorithm}, ${name}`);
    }
  });
}

test('two keys at once give two signatures, both pass', async () => {
  const keys = keysFor(fromDomainOf(HEADERS) ?? '', [rsaKey, edKey]);
  assert.equal(keys.length, 2);
  const message = signedMessage(HEADERS, BODIES.plain!, keys);
  assert.equal((message.toString('latin1').match(/^DKIM-Signature:/gm) ?? []).length, 2);
  const results = await verify(message);
  assert.deepEqual(results.map((r) => [r.selector, r.result]).sort(), [
    ['ed1', 'pass'],
    ['rsa1', 'pass'],
  ]);
});

test('dkimSignaturesAsync (thread pool) gives the same fields as dkimSignatures', async () => {
  // RSA PKCS#1 v1.5 and Ed25519 are deterministic, so with the same t= the bytes must match
  const now = new Date();
  const { bodyHash } = ingestBody(BODIES.plain!);
  const sync = dkimSignatures(HEADERS, bodyHash, [rsaKey, edKey], { now });
  assert.equal(await dkimSignaturesAsync(HEADERS, bodyHash, [rsaKey, edKey], { now }), sync);
});

test('a tampered body or signed header fails; an added From fails (oversigned); an added unsigned header or refolding passes', async () => {
  const message = signedMessage(HEADERS, BODIES.plain!, [rsaKey, edKey]).toString('latin1');
  const cases: [string, string, 'pass' | 'not pass'][] = [
    ['body changed', message.replace('Hello there.', 'Jello there.'), 'not pass'],
    ['body line added', `${message}P.S. click here\r\n`, 'not pass'],
    ['subject changed', message.replace('Subject:  Hello', 'Subject:  Jello'), 'not pass'],
    ['second From on top', message.replace('Received:', 'From: ceo@bank.test\r\nReceived:'), 'not pass'],
    ['second From at the end', message.replace('X-Mailer: test\r\n', 'X-Mailer: test\r\nFrom: ceo@bank.test\r\n'), 'not pass'],
    ['unsigned header added', message.replace('X-Mailer: test\r\n', 'X-Mailer: test\r\nX-Spam: no\r\n'), 'pass'],
    ['subject refolded', message.replace('Subject:  Hello   \t world', 'SUBJECT: Hello\r\n world'), 'pass'],
  ];
  for (const [what, tampered, expected] of cases) {
    const results = await verify(Buffer.from(tampered, 'latin1'));
    assert.equal(results.length, 2, what);
    for (const r of results) assert.equal(r.result === 'pass' ? 'pass' : 'not pass', expected, `${what}: ${r.selector} ${r.result} ${r.comment ?? ''}`);
  }
});

test('h= lists every present signed field bottom-up once, plus one extra from; nothing unsigned', () => {
  const headers = 'From: a@example.test\r\nTo: x@dest.test\r\nTo: y@dest.test\r\nX-Other: 1\r\nReceived: x\r\n\r\n';
  const sig = dkimSignatures(headers, ingestBody(Buffer.from('x')).bodyHash, [rsaKey], { now: new Date(1_800_000_000_000) });
  const unfolded = sig.replace(/\r\n[ \t]/g, ' ');
  assert.match(unfolded, /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=example\.test; s=rsa1; t=1800000000; h=from:from:to:to; bh=/);
  assert.ok(sig.endsWith('\r\n'));
  for (const line of sig.split('\r\n')) assert.ok(line.length <= 78, `folded: ${line.length}`);
  assert.throws(() => dkimSignatures(headers, 'not-a-hash', [rsaKey]), TypeError);
});

test('keysFor: the From domain or a parent of it, case and trailing dot ignored; fromDomainOf reads the From header', () => {
  const sub: DkimKey = { ...rsaKey, domain: 'news.example.test', selector: 'n1' };
  const keys = [rsaKey, edKey, sub];
  assert.deepEqual(keysFor('example.test', keys).map((k) => k.selector), ['rsa1', 'ed1']);
  assert.deepEqual(keysFor('News.Example.Test.', keys).map((k) => k.selector), ['n1', 'rsa1', 'ed1']);
  assert.deepEqual(keysFor('a.b.example.test', keys).map((k) => k.selector), ['rsa1', 'ed1']);
  assert.deepEqual(keysFor('notexample.test', keys), []);
  assert.deepEqual(keysFor('other.test', keys), []);
  assert.deepEqual(keysFor('', keys), []);
  assert.equal(fromDomainOf(HEADERS), 'example.test');
  assert.equal(fromDomainOf('Subject: x\r\nfrom:  "A, B" <a@News.Example.TEST>\r\n\r\n'), 'news.example.test');
  assert.equal(fromDomainOf('Subject: no from\r\n\r\n'), undefined);
  assert.equal(fromDomainOf('From: undisclosed-recipients:;\r\n\r\n'), undefined);
});

test('dkimDnsRecord publishes the public key a verifier accepts', () => {
  assert.equal(dkimDnsRecord(rsaKey), records.get('rsa1._domainkey.example.test'));
  assert.equal(dkimDnsRecord(edKey), records.get('ed1._domainkey.example.test'));
});

test('loadDkimKeys: missing file, wrong key type, not a key, group-readable file', () => {
  const missing = path.join(dir, 'nope.pem');
  assert.throws(
    () => loadDkimKeys([{ domain: 'example.test', selector: 's9', privateKey: missing, algorithm: 'rsa-sha256' }]),
    (err: unknown) => err instanceof DkimKeyError && err.message.includes(missing) && err.message.includes('"s9"') && /does not exist/.test(err.message),
  );
  assert.throws(
    () => loadDkimKeys([{ domain: 'example.test', selector: 's2', privateKey: pemFile('ed2.pem', edPem), algorithm: 'rsa-sha256' }]),
    (err: unknown) => err instanceof DkimKeyError && /ed25519 key but is declared rsa-sha256/.test(err.message),
  );
  assert.throws(
    () => loadDkimKeys([{ domain: 'example.test', selector: 's3', privateKey: pemFile('rsa3.pem', rsaPem), algorithm: 'ed25519-sha256' }]),
    (err: unknown) => err instanceof DkimKeyError && /rsa key but is declared ed25519-sha256/.test(err.message),
  );
  assert.throws(
    () => loadDkimKeys([{ domain: 'example.test', selector: 's4', privateKey: pemFile('junk.pem', 'not a key\n'), algorithm: 'rsa-sha256' }]),
    (err: unknown) => err instanceof DkimKeyError && /not an unencrypted PEM private key/.test(err.message),
  );
  const dup = pemFile('dup.pem', rsaPem);
  assert.throws(
    () =>
      loadDkimKeys([
        { domain: 'example.test', selector: 'd', privateKey: dup, algorithm: 'rsa-sha256' },
        { domain: 'EXAMPLE.test', selector: 'd', privateKey: dup, algorithm: 'rsa-sha256' },
      ]),
    /configured twice/,
  );
  const open = pemFile('open.pem', rsaPem, 0o644);
  const { keys, warnings } = loadDkimKeys([{ domain: 'example.test', selector: 's5', privateKey: open, algorithm: 'rsa-sha256' }]);
  assert.equal(keys.length, 1);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /mode 0644/);
  assert.ok(warnings[0]!.includes(open) && warnings[0]!.includes('"s5"'));
  const ro = pemFile('ro.pem', edPem, 0o400);
  assert.deepEqual(loadDkimKeys([{ domain: 'example.test', selector: 's6', privateKey: ro, algorithm: 'ed25519-sha256' }]).warnings, []);
});

test('F17: no error, warning or printed key object carries the private key', () => {
  // a PEM whose base64 is damaged halfway, and a PEM of the wrong type: the errors come from
  // parsing the key material, the likeliest place for it to leak into a message
  const lines = rsaPem.split('\n');
  lines[10] = '!!!!' + lines[10]!.slice(4);
  const texts: string[] = [];
  const attempts: [string, string, string][] = [
    ['broken.pem', lines.join('\n'), 'rsa-sha256'],
    ['ed-as-rsa.pem', edPem, 'rsa-sha256'],
    ['public.pem', generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }).toString(), 'ed25519-sha256'],
  ];
  for (const [file, pem, algorithm] of attempts) {
    try {
      loadDkimKeys([{ domain: 'example.test', selector: 'leak', privateKey: pemFile(file, pem), algorithm }]);
      assert.fail(`${file} loaded`);
    } catch (err) {
      assert.ok(err instanceof DkimKeyError, String(err));
      texts.push(err.message, String(err.stack), inspect(err), JSON.stringify(err));
    }
  }
  const loose = loadDkimKeys([{ domain: 'example.test', selector: 'loose', privateKey: pemFile('loose.pem', rsaPem, 0o664), algorithm: 'rsa-sha256' }]);
  texts.push(...loose.warnings, JSON.stringify(loose.keys), inspect(loose.keys, { depth: 10 }), JSON.stringify([rsaKey, edKey]), inspect([rsaKey, edKey]));
  const secrets = ['PRIVATE KEY'];
  for (const pem of [rsaPem, edPem]) {
    const body = pem.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
    secrets.push(body.slice(0, 40), Buffer.from(body, 'base64').subarray(0, 32).toString('base64'), Buffer.from(body, 'base64').subarray(0, 32).toString('hex'));
  }
  for (const text of texts) for (const secret of secrets) assert.ok(!text.includes(secret), `leaked ${secret.slice(0, 12)}… in: ${text.slice(0, 200)}`);
});

/** dkimpy from Debian's python3-dkim: a second verifier written to the RFC by other people.
 * Reads a JSON list of base64 messages; prints, per message, the result of each signature. */
const DKIMPY = `
import sys, json, os, base64, dkim
recs = json.loads(os.environ['DKIM_RECORDS'])
def dnsfunc(name, timeout=5):
    return recs.get(name.decode().rstrip('.'), '').encode()
def check(msg):
    n = sum(1 for l in msg.split(b'\\r\\n\\r\\n', 1)[0].split(b'\\r\\n') if l.lower().startswith(b'dkim-signature:'))
    return [bool(dkim.DKIM(msg).verify(idx=i, dnsfunc=dnsfunc)) for i in range(n)]
print(json.dumps([check(base64.b64decode(m)) for m in json.load(sys.stdin)]))
`;
// Debian's module lives with Debian's interpreter, which a pyenv or venv on PATH may hide
const python = ['python3', '/usr/bin/python3'].find((bin) => spawnSync(bin, ['-c', 'import dkim, nacl'], { stdio: 'ignore' }).status === 0);

test('dkimpy verifies too, including raw UTF-8 in signed headers', { skip: python ? false : 'python3-dkim not installed' }, () => {
  // "à" is C3 A0 in UTF-8: RFC 6376 folds only SP and HTAB, so the A0 byte must stay as it is
  const utf8Headers = Buffer.from('From: Zoë <zoe@example.test>\r\nSubject: à la carte \u00a0 déjà vu\r\nTo: a@dest.test\r\n\r\n', 'utf8').toString('latin1');
  const messages: Buffer[] = [];
  for (const [headers, body] of [
    [HEADERS, BODIES['whitespace runs']!],
    [HEADERS, BODIES.empty!],
    [utf8Headers, BODIES['8-bit UTF-8']!],
  ] as const) {
    const message = signedMessage(headers, body, [rsaKey, edKey]);
    messages.push(message, Buffer.from(message.toString('latin1').replace('To: a@dest.test', 'To: b@dest.test'), 'latin1'));
  }
  const env = { ...process.env, DKIM_RECORDS: JSON.stringify(Object.fromEntries(records)) };
  const input = JSON.stringify(messages.map((m) => m.toString('base64')));
  const run = spawnSync(python!, ['-c', DKIMPY], { input, env, encoding: 'utf8', timeout: 20_000 });
  assert.equal(run.status, 0, run.stderr);
  // each signed message passes both signatures, its tampered copy fails both
  assert.deepEqual(JSON.parse(run.stdout), messages.map((_, i) => (i % 2 === 0 ? [true, true] : [false, false])));
});
