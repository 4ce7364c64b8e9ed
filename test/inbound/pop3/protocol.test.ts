/**
 * The POP3 door (lib/inbound/pop3/) over a raw socket against a real receiver and inbox store:
 * every command, its errors, DELE with QUIT (removed) and with RSET or a lost connection (kept),
 * login refusals (wrong key, public inbox: one answer, after the delay), the per-address limits
 * on failed logins and connections, pipelining, a half-closing client, the line limit.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startReceiver, type TestReceiver } from '../../helpers/inbound.js';
import { Pop3Talk } from '../../helpers/pop3-talk.js';

let r: TestReceiver;
let port: number;
const LOGIN_DELAY_MS = 300;

before(async () => {
  r = await startReceiver({ api: { ratePerMinute: 0 }, pop3: { loginFailureDelay: `${LOGIN_DELAY_MS}ms`, maxLoginFailures: 4, maxConnectionsPerIp: 3 } });
  port = r.m.port('pop3');
});
after(() => r.stop());

async function reserve(target: string): Promise<string> {
  const res = await r.json<{ key: string }>('/api/private', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ target }) });
  assert.equal(res.status, 201);
  return res.body.key;
}

/** The inbox's ids, newest first, through the API. */
async function listed(address: string, key: string): Promise<string[]> {
  const res = await r.json<{ messages: { id: string }[] }>(`/api/inboxes/${address}/messages`, { headers: { 'x-inbox-key': key } });
  return res.body.messages.map((m) => m.id);
}

async function rawOf(id: string, key: string): Promise<Buffer> {
  const res = await fetch(`${r.api}/api/messages/${id}/raw`, { headers: { 'x-inbox-key': key } });
  assert.equal(res.status, 200);
  return Buffer.from(await res.arrayBuffer());
}

async function login(address: string, key: string, localAddress?: string): Promise<{ talk: Pop3Talk; status: string }> {
  const { talk } = await Pop3Talk.connect(port, { localAddress });
  await talk.ok(`USER ${address}`);
  return { talk, status: await talk.ok(`PASS ${key}`) };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('a private inbox over a raw socket: CAPA, USER and PASS, STAT, LIST, UIDL, RETR, TOP, NOOP, QUIT', async () => {
  const key = await reserve('qa@inbox.test');
  const ids: string[] = [];
  ids.push(await r.send({ to: 'qa@inbox.test', subject: 'first', text: 'one\n.a line with a leading dot\n..two dots\nlast line' }));
  ids.push(await r.send({ to: 'qa@inbox.test', subject: 'second', text: 'line 1\nline 2\nline 3\nline 4' }));
  ids.push(await r.send({ to: 'qa@inbox.test', subject: 'third', text: 'x'.repeat(200_000) }));
  const raws = await Promise.all(ids.map((id) => rawOf(id, key)));

  const { talk, greeting } = await Pop3Talk.connect(port);
  assert.match(greeting, /^\+OK sluice\.test Sluice POP3 server ready$/);
  const capa = await talk.multi('CAPA');
  assert.deepEqual(capa.lines, ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'USER', 'IMPLEMENTATION Sluice'], 'no STLS: no TLS key is configured');
  await talk.ok('USER QA@Inbox.test');
  const total = raws.reduce((n, b) => n + b.length, 0);
  assert.equal(await talk.ok(`PASS ${key}`), `+OK qa@inbox.test has 3 messages (${total} octets)`);
  assert.equal(await talk.ok('STAT'), `+OK 3 ${total}`);

  const list = await talk.multi('LIST');
  assert.equal(list.status, `+OK 3 messages (${total} octets)`);
  assert.deepEqual(list.lines, raws.map((b, i) => `${i + 1} ${b.length}`), 'oldest first, sizes as stored');
  assert.equal(await talk.ok('LIST 2'), `+OK 2 ${raws[1]!.length}`);
  const uidl = await talk.multi('UIDL');
  assert.deepEqual(uidl.lines, ids.map((id, i) => `${i + 1} ${id}`), 'UIDL gives the message ids');
  assert.equal(await talk.ok('UIDL 3'), `+OK 3 ${ids[2]}`);

  for (const [i, raw] of raws.entries()) {
    const retr = await talk.message(`RETR ${i + 1}`);
    assert.equal(retr.status, `+OK ${raw.length} octets`);
    assert.equal(sha(retr.bytes), sha(raw), `RETR ${i + 1} gives the message byte for byte`);
  }
  // SMTP un-stuffed these lines on the way in; RETR stuffed them again (the client un-stuffs)
  assert.ok(raws[0]!.includes('\r\n.a line with a leading dot\r\n..two dots\r\n'), 'the stored message has its leading dots');

  const head = raws[1]!.subarray(0, raws[1]!.indexOf('\r\n\r\n') + 4);
  assert.equal((await talk.message('TOP 2 0')).bytes.toString('latin1'), head.toString('latin1'), 'TOP n 0: the header block and the empty line');
  const top2 = (await talk.message('TOP 2 2')).bytes.toString('latin1');
  assert.equal(top2, `${head.toString('latin1')}line 1\r\nline 2\r\n`);
  assert.equal(sha((await talk.message('TOP 2 1000')).bytes), sha(raws[1]!), 'more lines than the body has: all of it');
  assert.equal(await talk.ok('NOOP'), '+OK');
  assert.match(await talk.ok('QUIT'), /^\+OK Bye; 0 messages deleted$/);
  await talk.waitClosed();
  assert.deepEqual(await listed('qa@inbox.test', key), [...ids].reverse(), 'QUIT without DELE removes nothing');
});

test('DELE then QUIT removes the messages; DELE then RSET, or a connection lost, keeps them', async () => {
  const key = await reserve('dele@inbox.test');
  const ids = [await r.send({ to: 'dele@inbox.test', subject: 'a' }), await r.send({ to: 'dele@inbox.test', subject: 'b' }), await r.send({ to: 'dele@inbox.test', subject: 'c' })];

  // RSET unmarks
  let { talk } = await login('dele@inbox.test', key);
  assert.match(await talk.ok('DELE 1'), /^\+OK Message 1 marked as deleted/);
  assert.match(await talk.err('DELE 1'), /^-ERR Message 1 is marked as deleted/);
  assert.match(await talk.err('RETR 1'), /marked as deleted/);
  assert.match(await talk.err('LIST 1'), /marked as deleted/);
  assert.deepEqual((await talk.multi('LIST')).lines.map((l) => l.split(' ')[0]), ['2', '3'], 'a marked message is not listed');
  assert.match(await talk.ok('STAT'), /^\+OK 2 /);
  assert.match(await talk.ok('RSET'), /^\+OK Maildrop has 3 messages/);
  assert.match(await talk.ok('STAT'), /^\+OK 3 /);
  await talk.ok('QUIT');
  assert.equal((await listed('dele@inbox.test', key)).length, 3);

  // a session that ends without QUIT removes nothing
  ({ talk } = await login('dele@inbox.test', key));
  await talk.ok('DELE 1');
  await talk.ok('DELE 2');
  talk.close();
  await talk.waitClosed();
  // the next session proves the server saw the close: its maildrop still has all three
  ({ talk } = await login('dele@inbox.test', key));
  assert.match(await talk.ok('STAT'), /^\+OK 3 /);

  // DELE then QUIT: gone from the inbox, raw bytes and all
  await talk.ok('DELE 1');
  await talk.ok('DELE 3');
  assert.equal(await talk.ok('QUIT'), '+OK Bye; 2 messages deleted');
  await talk.waitClosed();
  assert.deepEqual(await listed('dele@inbox.test', key), [ids[1]]);
  assert.equal((await r.json(`/api/messages/${ids[0]}`, { headers: { 'x-inbox-key': key } })).status, 404);
  const left = await r.inbox.footprint(ids[0]!);
  assert.deepEqual([left.envelope, left.raw], [false, 0], 'nothing of it is left in the store');
});

test('the maildrop is a snapshot: mail arriving after login is not in it, a message deleted meanwhile is refused', async () => {
  const key = await reserve('snap@inbox.test');
  const first = await r.send({ to: 'snap@inbox.test', subject: 'before' });
  const { talk, status } = await login('snap@inbox.test', key);
  assert.match(status, /has 1 messages/);
  await r.send({ to: 'snap@inbox.test', subject: 'after' });
  assert.match(await talk.ok('STAT'), /^\+OK 1 /);
  assert.equal((await r.json(`/api/inboxes/snap@inbox.test/messages/${first}`, { method: 'DELETE', headers: { 'x-inbox-key': key } })).status, 204);
  assert.match(await talk.err('RETR 1'), /^-ERR \[SYS\/PERM\] Message 1 is no longer in the inbox/);
  await talk.ok('QUIT');
});

test('a plus tag in USER reads only the mail with that tag', async () => {
  const key = await reserve('tags@inbox.test');
  const tagged = await r.send({ to: 'tags+signup@inbox.test' });
  await r.send({ to: 'tags@inbox.test' });
  const { talk, status } = await login('tags+signup@inbox.test', key);
  assert.match(status, /^\+OK tags@inbox\.test has 1 messages/);
  assert.deepEqual((await talk.multi('UIDL')).lines, [`1 ${tagged}`]);
  await talk.ok('QUIT');
});

test('commands out of place, unknown commands and bad arguments get -ERR with a reason', async () => {
  const key = await reserve('errors@inbox.test');
  await r.send({ to: 'errors@inbox.test' });
  const { talk } = await Pop3Talk.connect(port);
  assert.equal(await talk.err('STAT'), '-ERR STAT needs a login first (USER, then PASS)');
  assert.equal(await talk.err('RETR 1'), '-ERR RETR needs a login first (USER, then PASS)');
  assert.equal(await talk.err('PASS nothing'), '-ERR PASS must follow USER');
  assert.match(await talk.err('USER not-an-address'), /^-ERR USER takes the address of a private inbox/);
  assert.match(await talk.err('USER'), /^-ERR Syntax: USER address/);
  assert.match(await talk.err('XYZZY'), /^-ERR Unknown command "XYZZY"/);
  assert.match(await talk.err('APOP errors@inbox.test 0123456789abcdef'), /^-ERR Unknown command "APOP"/);
  await talk.ok('USER errors@inbox.test');
  await talk.ok(`PASS ${key}`);
  assert.equal(await talk.err('USER errors@inbox.test'), '-ERR USER is not allowed after login');
  assert.equal(await talk.err('STLS'), '-ERR STLS is not allowed after login');
  assert.match(await talk.err('RETR 2'), /^-ERR No message "2": the maildrop has messages 1 to 1/);
  assert.match(await talk.err('RETR 0'), /^-ERR No message "0"/);
  assert.match(await talk.err('RETR one'), /^-ERR No message "one"/);
  assert.match(await talk.err('RETR'), /^-ERR Syntax: RETR n/);
  assert.match(await talk.err('LIST 1 2'), /^-ERR Syntax: LIST \[n\]/);
  assert.match(await talk.err('TOP 1'), /^-ERR Syntax: TOP n lines/);
  assert.match(await talk.err('TOP 1 -1'), /^-ERR Syntax: TOP n lines/);
  assert.match(await talk.err('DELE 7'), /^-ERR No message "7"/);
  assert.match(await talk.ok('stat'), /^\+OK 1 /, 'commands are case-insensitive');
  await talk.ok('QUIT');
});

test('a wrong key and an inbox that is not private get the same answer, after the same delay', async () => {
  const key = await reserve('guarded@inbox.test');
  const other = await reserve('other@inbox.test');
  await r.send({ to: 'public@inbox.test' });
  const answers: string[] = [];
  for (const [user, pass] of [
    ['guarded@inbox.test', 'wrong'],
    ['guarded@inbox.test', other],
    ['public@inbox.test', key],
    ['public@inbox.test', ''],
  ] as const) {
    const { talk } = await Pop3Talk.connect(port, { localAddress: '127.0.0.20' });
    await talk.ok(`USER ${user}`);
    const started = Date.now();
    answers.push(await talk.err(`PASS ${pass}`));
    assert.ok(Date.now() - started >= LOGIN_DELAY_MS - 20, `${user}: answered after ${Date.now() - started} ms`);
    assert.match(await talk.err('STAT'), /needs a login first/, 'still not logged in');
    await talk.ok('QUIT');
  }
  assert.deepEqual(new Set(answers), new Set(['-ERR [AUTH] Wrong address or key: POP3 serves private inboxes, with the key from POST /api/private as the password']));
});

test('a domain reservation logs in any address under it with the domain key', async () => {
  const key = await reserve('team.wild.test');
  const id = await r.send({ to: 'anyone@team.wild.test' });
  const { talk } = await login('anyone@team.wild.test', key);
  assert.deepEqual((await talk.multi('UIDL')).lines, [`1 ${id}`]);
  await talk.ok('QUIT');
});

test('failed logins: three on one connection close it; past maxLoginFailures one address is refused at once', async () => {
  const key = await reserve('locked@inbox.test');
  const from = '127.0.0.21';
  const { talk } = await Pop3Talk.connect(port, { localAddress: from });
  for (let i = 0; i < 2; i++) {
    await talk.ok('USER locked@inbox.test');
    assert.match(await talk.err('PASS bad'), /^-ERR \[AUTH\] Wrong address or key/);
  }
  await talk.ok('USER locked@inbox.test');
  assert.equal(await talk.err('PASS bad'), '-ERR [AUTH] Too many failed logins on this connection; closing');
  await talk.waitClosed();

  // the fourth failure from this address blocks it: then even the right key is refused, at once
  const second = await login('locked@inbox.test', key, from).catch(() => undefined);
  assert.ok(second, 'three failures are under the limit of four');
  await second.talk.ok('QUIT');
  const { talk: third } = await Pop3Talk.connect(port, { localAddress: from });
  await third.ok('USER locked@inbox.test');
  await third.err('PASS bad');
  await third.ok('USER locked@inbox.test');
  const started = Date.now();
  assert.match(await third.err(`PASS ${key}`), /^-ERR \[SYS\/TEMP\] Too many failed logins from your address; try again in \d+ minutes?$/);
  assert.ok(Date.now() - started < LOGIN_DELAY_MS, 'a blocked address costs no delay');
  await third.waitClosed();
  // another address is not affected
  const elsewhere = await login('locked@inbox.test', key, '127.0.0.22');
  await elsewhere.talk.ok('QUIT');
});

test('connections per client address are capped; the cap frees up as they close', async () => {
  const from = '127.0.0.23';
  const open = [];
  for (let i = 0; i < 3; i++) open.push((await Pop3Talk.connect(port, { localAddress: from })).talk);
  const { talk: over, greeting } = await Pop3Talk.connect(port, { localAddress: from, greeting: 'any' });
  assert.equal(greeting, '-ERR [SYS/TEMP] Too many connections from your address; try again later');
  await over.waitClosed();
  const { talk: other } = await Pop3Talk.connect(port, { localAddress: '127.0.0.24' });
  await other.ok('QUIT');
  await open[0]!.ok('QUIT');
  await open[0]!.waitClosed();
  // the server counts the close when its socket closes: a bounded wait for that
  let again: Pop3Talk | undefined;
  for (let i = 0; i < 50 && !again; i++) {
    const attempt = await Pop3Talk.connect(port, { localAddress: from, greeting: 'any' });
    if (attempt.greeting.startsWith('+OK')) again = attempt.talk;
    else await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.ok(again, 'a connection is taken again once one has closed');
  for (const t of [...open.slice(1), again]) t.close();
});

test('connections in all are capped too', async () => {
  const small = await startReceiver({ pop3: { maxClients: 2 } });
  try {
    const open = [];
    for (const from of ['127.0.0.25', '127.0.0.26']) open.push((await Pop3Talk.connect(small.m.port('pop3'), { localAddress: from })).talk);
    const { talk, greeting } = await Pop3Talk.connect(small.m.port('pop3'), { localAddress: '127.0.0.27', greeting: 'any' });
    assert.equal(greeting, '-ERR [SYS/TEMP] Too many connected clients; try again in a moment');
    await talk.waitClosed();
    for (const t of open) t.close();
  } finally {
    await small.stop();
  }
});

test('commands per session are bounded by the maildrop, and so are failed commands', async () => {
  const key = await reserve('chatty@inbox.test');
  await r.send({ to: 'chatty@inbox.test' });
  // 200 commands, and 5 more for its one message: USER, PASS, then 203 NOOPs pass and one more does not
  const { talk } = await login('chatty@inbox.test', key);
  talk.write('NOOP\r\n'.repeat(204));
  const replies: string[] = [];
  for (let line = await talk.next(); line !== undefined; line = await talk.next()) replies.push(line);
  assert.equal(replies.length, 204);
  assert.ok(replies.slice(0, 203).every((l) => l === '+OK'));
  assert.equal(replies[203], '-ERR More than 205 commands in one session; closing (nothing was deleted)');

  const { talk: wrong } = await Pop3Talk.connect(port);
  wrong.write('STAT\r\n'.repeat(25));
  const errors: string[] = [];
  for (let line = await wrong.next(); line !== undefined; line = await wrong.next()) errors.push(line);
  assert.equal(errors.length, 21, 'twenty refusals, then the close');
  assert.equal(errors[20], '-ERR Too many failed commands; closing');
});

test('pipelined commands are answered in order, and a client that half-closes still gets every reply', async () => {
  const key = await reserve('pipe@inbox.test');
  await r.send({ to: 'pipe@inbox.test' });
  const { talk } = await Pop3Talk.connect(port);
  talk.write(`CAPA\r\nUSER pipe@inbox.test\r\nPASS ${key}\r\nSTAT\r\nLIST\r\nUIDL 1\r\nNOOP\r\nQUIT\r\n`);
  talk.socket.end();
  const lines: string[] = [];
  for (let line = await talk.next(); line !== undefined; line = await talk.next()) lines.push(line);
  const statuses = lines.filter((l) => /^[+-]/.test(l));
  assert.equal(statuses.length, 8, lines.join('\n'));
  assert.ok(statuses.every((l) => l.startsWith('+OK')), lines.join('\n'));
  assert.match(statuses[2]!, /has 1 messages/);
  assert.match(statuses[7]!, /^\+OK Bye/);
});

test('a command line over 512 bytes is refused and the connection closed', async () => {
  const { talk } = await Pop3Talk.connect(port);
  await talk.err(`USER ${'a'.repeat(600)}@inbox.test`).then(
    (line) => assert.equal(line, '-ERR Command line longer than 512 bytes; closing'),
  );
  await talk.waitClosed();
});
