/**
 * `sluice queue …` as a child process against a running master over real sockets, on a queue
 * with queued, deferred and held rows: every command in table and JSON form, the token from
 * SLUICE_API__TOKEN or the app dir's config, and the failures (wrong token, nothing listening,
 * a bulk action without a filter, a bad duration) each with one line and its exit code.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { startMaster, tempDir, type TestMaster } from '../helpers/master.js';
import { postJson, type SendReply } from '../helpers/http.js';
import { deferRow } from '../helpers/queue-states.js';
import { runCli } from './sluice-cli.js';
import { createServer } from 'node:net';

/** A loopback port nothing listens on (one that was free a moment ago). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const TOKEN = 'cli-test-token-0123456789';
let m: TestMaster;
let ids: string[];

before(async () => {
  m = await startMaster({ api: { token: TOKEN } });
  ids = [];
  for (const [from, to] of [['a@src.test', ['q1@dest.test', 'q2@other.test']], ['b@src.test', ['q3@dest.test']], ['c@src.test', ['q4@dest.test']]] as const) {
    const r = await postJson(`${m.api}/send`, { from, to, subject: 'cli', text: 'hello from the cli test' }, { authorization: `Bearer ${TOKEN}` });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    ids.push((r.body as unknown as SendReply).id);
  }
  await deferRow(m.master.store, ids[1]!, 1, { reply: '451 4.7.1 greylisted, come back later' });
});
after(() => m.stop());

const env = { SLUICE_API__TOKEN: TOKEN };
const q = (...args: string[]) => runCli(['queue', ...args, '--url', m.api], { env });
const json = async (...args: string[]) => {
  const r = await q(...args, '--json');
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
};

test('sluice queue: list, show, summary, hold, release, flush, delete and suppress', async () => {
  // list: a table, filters, JSON
  const table = await q('list');
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^ROW\s+STATUS\s+AGE\s+ZONE\s+FROM\s+RECIPIENT\s+TRIES\s+LAST REPLY/);
  assert.equal(table.stdout.trim().split('\n').length, 1 + 4);
  assert.match(table.stdout, new RegExp(`${ids[1]}\\.001\\s+deferred.*greylist 451 4\\.7\\.1`));
  const deferred = (await json('list', '--status', 'deferred')).rows as { cursor: string }[];
  assert.deepEqual(deferred.map((r) => r.cursor), [`${ids[1]}.001`]);
  assert.equal(((await json('list', '--domain', 'dest.test', '--sender', 'c@src.test')).rows as unknown[]).length, 1);
  assert.equal(((await json('list', '--min-age', '1h')).rows as unknown[]).length, 0);
  const paged = await q('list', '--limit', '2');
  assert.match(paged.stderr, /more: sluice queue list --cursor [0-9a-f]{22}\.[0-9a-f]{3}/);

  // show: rows and headers; --raw: the stored message
  const shown = await q('show', ids[0]!);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /from:\s+a@src\.test/);
  assert.match(shown.stdout, /q2@other\.test/);
  assert.match(shown.stdout, /^Subject: cli$/m);
  const raw = await q('show', ids[0]!, '--raw');
  assert.equal(raw.code, 0, raw.stderr);
  assert.match(raw.stdout, /^Subject: cli\r$/m);
  assert.match(raw.stdout, /hello from the cli test/);

  // summary
  const summary = await q('summary');
  assert.equal(summary.code, 0, summary.stderr);
  assert.match(summary.stdout, /^TOTAL\s+4\s+4\s/m);
  assert.match(summary.stdout, /^\s+dest\.test\s+3\s/m);

  // hold by domain (dry run first), release one message, flush the deferred row
  const dry = await q('hold', '--domain', 'dest.test', '--dry-run');
  assert.match(dry.stdout, /dry run: would be held: 3 rows/);
  assert.equal(((await json('list', '--status', 'held')).rows as unknown[]).length, 0);
  const held = await json('hold', '--domain', 'dest.test');
  assert.equal(held.changed, 3);
  assert.equal(((await json('list', '--status', 'held')).rows as unknown[]).length, 3);
  const heldShape = await json('summary', '--status', 'held');
  assert.equal((heldShape.total as { held: number }).held, 3);
  const rel = await q('release', ids[2]!);
  assert.match(rel.stdout, /released: 1 rows/);
  assert.equal((await json('release', `${ids[1]}.001`)).changed, 1);
  const flushed = await json('flush', '--status', 'deferred');
  assert.equal(flushed.changed, 0, 'release made the row due already');

  // delete one row, then by sender
  assert.equal((await json('delete', `${ids[0]}.002`)).changed, 1);
  const bySender = await q('delete', '--sender', 'c@src.test');
  assert.match(bySender.stdout, /deleted: 1 rows/);
  assert.deepEqual(((await json('list')).rows as { cursor: string }[]).map((r) => r.cursor), [`${ids[0]}.001`, `${ids[1]}.001`]);

  // suppression
  const added = await q('suppress', 'add', 'Someone@Dest.test', '--ttl', '2h', '--reason', 'asked to stop');
  assert.match(added.stdout, /suppressed address someone@dest\.test \(id [0-9a-f]{24}, until /);
  assert.match((await q('suppress', 'add', 'other.test')).stdout, /suppressed domain other\.test/);
  const listed = await q('suppress', 'list');
  assert.match(listed.stdout, /address\s+someone@dest\.test.*asked to stop/);
  assert.match((await q('suppress', 'remove', 'other.test')).stdout, /removed domain other\.test/);
  assert.equal(((await json('suppress', 'list')).entries as unknown[]).length, 1);
});

test('sluice queue: failures say why, with exit codes', async () => {
  const noFilter = await q('delete');
  assert.equal(noFilter.code, 2);
  assert.match(noFilter.stderr, /name the rows .* or give --all/);
  const badAge = await q('list', '--min-age', 'soon');
  assert.equal(badAge.code, 2);
  assert.match(badAge.stderr, /--min-age: "soon" is not a duration/);
  const badId = await q('show', 'nope');
  assert.equal(badId.code, 2);
  const missing = await q('show', '0'.repeat(22));
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /404: No message/);
  const wrongToken = await runCli(['queue', 'list', '--url', m.api], { env: { SLUICE_API__TOKEN: 'wrong' } });
  assert.equal(wrongToken.code, 1);
  assert.match(wrongToken.stderr, /401: A valid API token is required/);
  const closed = await closedPort();
  const nobody = await runCli(['queue', 'list', '--url', `http://127.0.0.1:${closed}`], { env });
  assert.equal(nobody.code, 1);
  assert.match(nobody.stderr, new RegExp(`cannot reach Sluice's API at http://127\\.0\\.0\\.1:${closed} \\(ECONNREFUSED\\)`));
  const badSuppress = await q('suppress', 'add', 'not an address');
  assert.equal(badSuppress.code, 1);
  assert.match(badSuppress.stderr, /400: domain: "not an address" is not a domain name/);
});

test("sluice queue finds the API and its token in the app dir's config", async () => {
  const dir = tempDir();
  writeFileSync(path.join(dir, 'config.toml'), `[api]\nhost = "127.0.0.1"\nport = ${m.apiPort}\ntoken = "${TOKEN}"\n`);
  const r = await runCli(['queue', 'list', '-d', dir, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(Array.isArray((JSON.parse(r.stdout) as { rows: unknown[] }).rows));
});
