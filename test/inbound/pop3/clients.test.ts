/**
 * Real POP3 clients against the POP3 door: curl's pop3:// (list, fetch, refused a wrong key),
 * Python's poplib (the same), and STLS with a self-signed certificate through poplib's stls() and
 * through a raw TLS upgrade, where nothing sent in the clear after STLS counts inside TLS.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { startReceiver, type TestReceiver } from '../../helpers/inbound.js';
import { Pop3Talk } from '../../helpers/pop3-talk.js';
import { testCert } from '../../helpers/test-cert.js';

interface Run {
  code: number;
  stdout: Buffer;
  stderr: string;
}

function run(cmd: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'buffer', timeout: 30_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr: stderr.toString() });
    });
  });
}

let plain: TestReceiver;
let secure: TestReceiver;

before(async () => {
  const cert = testCert();
  [plain, secure] = await Promise.all([
    startReceiver({ api: { ratePerMinute: 0 }, pop3: { loginFailureDelay: '100ms' } }),
    // the POP3 door takes the receiver's certificate when it has none of its own
    startReceiver({ api: { ratePerMinute: 0 }, key: cert.keyFile, cert: cert.certFile }),
  ]);
});
after(() => Promise.all([plain.stop(), secure.stop()]));

async function seeded(r: TestReceiver, address: string, subjects: string[]): Promise<{ key: string; ids: string[]; raws: Buffer[] }> {
  const res = await r.json<{ key: string }>('/api/private', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ target: address }) });
  const key = res.body.key;
  const ids: string[] = [];
  for (const subject of subjects) ids.push(await r.send({ to: address, subject, text: `${subject}\n.dot line\nend` }));
  const raws = await Promise.all(ids.map(async (id) => Buffer.from(await (await fetch(`${r.api}/api/messages/${id}/raw`, { headers: { 'x-inbox-key': key } })).arrayBuffer())));
  return { key, ids, raws };
}

test('curl pop3:// lists and fetches a private inbox, and is refused a wrong key', async () => {
  const { key, raws } = await seeded(plain, 'curl@inbox.test', ['one', 'two']);
  const url = `pop3://127.0.0.1:${plain.m.port('pop3')}/`;
  const list = await run('curl', ['-sS', '--max-time', '20', '--user', `curl@inbox.test:${key}`, url]);
  assert.equal(list.code, 0, list.stderr);
  assert.equal(list.stdout.toString(), raws.map((b, i) => `${i + 1} ${b.length}\r\n`).join(''));
  const fetched = await run('curl', ['-sS', '--max-time', '20', '--user', `curl@inbox.test:${key}`, `${url}2`]);
  assert.equal(fetched.code, 0, fetched.stderr);
  assert.ok(fetched.stdout.equals(raws[1]!), 'curl gets message 2 byte for byte');
  const refused = await run('curl', ['-sS', '--max-time', '20', '--user', 'curl@inbox.test:not-the-key', url]);
  assert.equal(refused.code, 67, `curl exits with "login denied" (67): ${refused.stderr}`);
});

const POPLIB = `
import json, poplib, ssl, sys
port, user, key, cafile = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
p = poplib.POP3('127.0.0.1', port, timeout=20)
out = {'welcome': p.getwelcome().decode(), 'capa': sorted(p.capa().keys())}
if cafile:
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False  # the test certificate names localhost
    p.stls(ctx)
    out['tls'] = p.sock.version()
    out['capa_tls'] = sorted(p.capa().keys())
p.user(user)
try:
    p.pass_(key)
except poplib.error_proto as e:
    out['refused'] = e.args[0].decode()
    print(json.dumps(out))
    sys.exit(0)
out['stat'] = list(p.stat())
out['list'] = [l.decode() for l in p.list()[1]]
out['uidl'] = [l.decode() for l in p.uidl()[1]]
out['messages'] = [b'\\r\\n'.join(p.retr(i + 1)[1]).decode('latin1') for i in range(out['stat'][0])]
out['top'] = b'\\r\\n'.join(p.top(1, 1)[1]).decode('latin1')
p.dele(1)
out['quit'] = p.quit().decode()
print(json.dumps(out))
`;

interface PoplibOut {
  welcome: string;
  capa: string[];
  tls?: string;
  capa_tls?: string[];
  refused?: string;
  stat?: [number, number];
  list?: string[];
  uidl?: string[];
  messages?: string[];
  top?: string;
  quit?: string;
}

async function poplib(r: TestReceiver, user: string, key: string, cafile = ''): Promise<PoplibOut> {
  const res = await run('python3', ['-c', POPLIB, String(r.m.port('pop3')), user, key, cafile]);
  assert.equal(res.code, 0, res.stderr);
  return JSON.parse(res.stdout.toString()) as PoplibOut;
}

test("Python's poplib lists, fetches, reads the top of and deletes from a private inbox, and is refused a wrong key", async () => {
  const { key, ids, raws } = await seeded(plain, 'python@inbox.test', ['alpha', 'beta']);
  const out = await poplib(plain, 'python@inbox.test', key);
  assert.match(out.welcome, /^\+OK /);
  assert.deepEqual(out.capa, ['AUTH-RESP-CODE', 'IMPLEMENTATION', 'PIPELINING', 'RESP-CODES', 'TOP', 'UIDL', 'USER']);
  assert.deepEqual(out.stat, [2, raws[0]!.length + raws[1]!.length]);
  assert.deepEqual(out.list, raws.map((b, i) => `${i + 1} ${b.length}`));
  assert.deepEqual(out.uidl, ids.map((id, i) => `${i + 1} ${id}`));
  // poplib gives the lines without their line ends: the last CRLF is not in its join
  assert.deepEqual(out.messages, raws.map((b) => b.toString('latin1').replace(/\r\n$/, '')));
  const head = raws[0]!.toString('latin1').split('\r\n\r\n')[0]!;
  assert.equal(out.top, `${head}\r\n\r\nalpha`);
  assert.match(out.quit!, /^\+OK Bye; 1 message deleted$/);
  const left = await plain.json<{ messages: { id: string }[] }>('/api/inboxes/python@inbox.test/messages', { headers: { 'x-inbox-key': key } });
  assert.deepEqual(left.body.messages.map((m) => m.id), [ids[1]]);

  const wrong = await poplib(plain, 'python@inbox.test', 'not-the-key');
  assert.match(wrong.refused!, /^-ERR \[AUTH\] Wrong address or key/);
});

test("STLS with a self-signed certificate through poplib's stls(): USER is offered only inside TLS", async () => {
  const { key, raws } = await seeded(secure, 'tls@inbox.test', ['secret']);
  const out = await poplib(secure, 'tls@inbox.test', key, testCert().certFile);
  assert.ok(out.capa.includes('STLS') && !out.capa.includes('USER'), `before TLS: ${out.capa.join(' ')}`);
  assert.match(out.tls!, /^TLSv1\.[23]$/);
  assert.ok(out.capa_tls!.includes('USER') && !out.capa_tls!.includes('STLS'), `inside TLS: ${out.capa_tls!.join(' ')}`);
  assert.deepEqual(out.messages, [raws[0]!.toString('latin1').replace(/\r\n$/, '')]);
});

test('STLS over a raw socket: no login in the clear, and commands sent in the clear after STLS do not count inside TLS', async () => {
  const { key } = await seeded(secure, 'raw-tls@inbox.test', ['x']);
  const { talk } = await Pop3Talk.connect(secure.m.port('pop3'));
  assert.equal(await talk.err('USER raw-tls@inbox.test'), '-ERR [AUTH] Issue STLS first: logins are refused without TLS here');
  // an attacker in the middle appends a command to the client's STLS (CVE-2011-0411's pattern)
  talk.write('STLS\r\nUSER raw-tls@inbox.test\r\n');
  assert.equal(await talk.next(), '+OK Begin TLS negotiation now');
  const inside = await talk.startTls(testCert().cert);
  assert.equal(await inside.err(`PASS ${key}`), '-ERR PASS must follow USER', 'the USER sent in the clear was dropped');
  assert.equal(await inside.err('STLS'), '-ERR TLS is already active');
  await inside.ok('USER raw-tls@inbox.test');
  assert.match(await inside.ok(`PASS ${key}`), /has 1 messages/);
  await inside.ok('QUIT');
  await inside.waitClosed();
});

test('STLS where no certificate is configured says so', async () => {
  const { talk } = await Pop3Talk.connect(plain.m.port('pop3'));
  assert.equal(await talk.err('STLS'), '-ERR STLS is not offered: no TLS key and certificate are configured');
  await talk.ok('QUIT');
});
