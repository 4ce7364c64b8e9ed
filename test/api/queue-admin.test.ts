/**
 * Queue administration over the HTTP API on a queue with queued, deferred and held rows: list
 * with each filter and cursor pages, summary by age, flush, delete (with a dry run, one row, by
 * domain, by sender), hold and release, and the counters and index keys staying right after
 * each. No workers run: every change is the operator's.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { postJson, request, type Json, type SendReply } from '../helpers/http.js';
import { deferRow } from '../helpers/queue-states.js';

let m: TestMaster;
before(async () => {
  m = await startMaster({ zones: { bulk: { processes: 0, recipientDomains: ['bulk.test'] } } });
});
after(() => m.stop());

async function send(from: string, to: string[]): Promise<SendReply> {
  const r = await postJson(`${m.api}/send`, { from, to, subject: 'admin', text: 'x' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body as unknown as SendReply;
}

type Row = { id: string; seq: number; cursor: string; status: string; recipient: string; zone: string; from: string; category: string | null };

async function list(query = ''): Promise<{ rows: Row[]; next: string | null; scanned: number }> {
  const r = await request(`${m.api}/admin/rows${query}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body as unknown as { rows: Row[]; next: string | null; scanned: number };
}

async function act(action: string, body: Json): Promise<Json> {
  const r = await postJson(`${m.api}/admin/${action}`, body);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

/** Every row has exactly one index key (s: pending, h: held), and the counters match the rows. */
async function consistent(): Promise<void> {
  const census = await m.master.store.census();
  assert.equal(census.schedule + census.hold, census.row, JSON.stringify(census));
  const counted = { queued: 0, deferred: 0, held: 0 };
  for await (const row of m.master.store.rowsOldestFirst()) {
    counted[row.status]++;
    if (row.status !== 'held') assert.ok(await m.master.store.isScheduled(row), `${row.id}.${row.seq} scheduled`);
  }
  assert.deepEqual(m.master.store.counters.totals(), counted);
}

test('list, summary, hold, release, flush and delete over the API', async () => {
  const a = await send('alice@src.test', ['r1@dest.test', 'r2@dest.test', 'r3@other.test']);
  const b = await send('bob@src.test', ['r4@dest.test', 'r5@bulk.test']);
  const c = await send('carol@src.test', ['r6@other.test']);
  await deferRow(m.master.store, a.id, 2, { reply: '421 4.7.0 try later', category: 'rate-limit' });
  await deferRow(m.master.store, b.id, 1);
  await consistent();

  // list: everything, oldest first; filters one by one
  const all = await list();
  assert.deepEqual(all.rows.map((r) => r.cursor), [`${a.id}.001`, `${a.id}.002`, `${a.id}.003`, `${b.id}.001`, `${b.id}.002`, `${c.id}.001`]);
  assert.equal(all.next, null);
  assert.equal(all.rows[0]!.from, 'alice@src.test');
  assert.deepEqual((await list('?order=newest')).rows.map((r) => r.cursor)[0], `${c.id}.001`);
  assert.deepEqual((await list('?status=deferred')).rows.map((r) => r.cursor), [`${a.id}.002`, `${b.id}.001`]);
  assert.deepEqual((await list('?domain=dest.test&status=queued')).rows.map((r) => r.cursor), [`${a.id}.001`]);
  assert.deepEqual((await list('?zone=bulk')).rows.map((r) => r.recipient), ['r5@bulk.test']);
  assert.deepEqual((await list('?sender=bob@src.test')).rows.map((r) => r.cursor), [`${b.id}.001`, `${b.id}.002`]);
  assert.deepEqual((await list('?sender=@SRC.test&category=rate-limit')).rows.map((r) => r.cursor), [`${a.id}.002`]);
  assert.equal((await list('?minAge=3600')).rows.length, 0);
  assert.equal((await list('?maxAge=3600')).rows.length, 6);
  // cursor pages of two
  const pages: string[] = [];
  let cursor: string | null = '';
  while (cursor !== null) {
    const page = await list(`?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
    pages.push(...page.rows.map((r) => r.cursor));
    cursor = page.next;
  }
  assert.deepEqual(pages, all.rows.map((r) => r.cursor));
  // bad requests name the field
  for (const q of ['?status=gone', '?cursor=zzz', '?limit=0', '?seq=1', '?id=nope']) {
    const r = await request(`${m.api}/admin/rows${q}`);
    assert.equal(r.status, 400, `${q}: ${JSON.stringify(r.body)}`);
  }

  // summary: per zone and domain, all young
  const shape = (await request(`${m.api}/admin/summary`)).body as { total: { total: number; ages: number[] }; zones: { zone: string; total: number; domains: { domain: string; total: number }[] }[] };
  assert.equal(shape.total.total, 6);
  assert.equal(shape.total.ages[0], 6);
  const def = shape.zones.find((z) => z.zone === 'default')!;
  assert.deepEqual(def.domains.map((d) => [d.domain, d.total]), [['dest.test', 3], ['other.test', 2]]);

  // hold every row to dest.test: out of the schedule, counted as held
  const held = await act('hold', { domain: 'dest.test' });
  assert.deepEqual({ matched: held.matched, changed: held.changed, busy: held.busy, messages: held.messages }, { matched: 3, changed: 3, busy: 0, messages: 2 });
  assert.equal(m.master.store.counters.totals().held, 3);
  assert.deepEqual((await list('?status=held')).rows.map((r) => r.cursor), [`${a.id}.001`, `${a.id}.002`, `${b.id}.001`]);
  const heldShape = (await request(`${m.api}/admin/summary?status=held`)).body as { total: { total: number; held: number } };
  assert.deepEqual([heldShape.total.total, heldShape.total.held], [3, 3]);
  const msg = await request(`${m.api}/message/${a.id}`);
  assert.deepEqual((msg.body.messages as { status: string }[]).map((r) => r.status), ['HELD', 'HELD', 'QUEUED']);
  assert.equal((await request(`${m.api}/queue/default`)).body.held, 3);
  await consistent();
  // flush leaves held rows alone; the deferred rows left are made due
  const flushed = await act('flush', { status: 'deferred' });
  assert.equal(flushed.changed, 0);

  // release: due now, deferred again where tried before
  const released = await act('release', { id: a.id });
  assert.equal(released.changed, 2);
  const aRows = (await list(`?id=${a.id}`)).rows;
  assert.deepEqual(aRows.map((r) => r.status), ['queued', 'deferred', 'queued']);
  await consistent();

  // flush: the deferred rows waiting for their retry become due now
  await deferRow(m.master.store, c.id, 1);
  const dry = await act('flush', { status: 'deferred', dryRun: true });
  assert.deepEqual([dry.dryRun, dry.changed], [true, 1]);
  const f = await act('flush', { status: 'deferred' });
  assert.equal(f.changed, 1);
  const [row] = await m.master.store.getRowsAt(c.id, [1]);
  assert.ok(row!.due <= Date.now());
  await consistent();

  // delete: a dry run counts, one row, then by sender (the whole message goes, body too)
  const dryDel = await act('delete', { domain: 'other.test', dryRun: true });
  assert.deepEqual([dryDel.matched, dryDel.changed], [2, 2]);
  assert.equal((await list('?domain=other.test')).rows.length, 2);
  const one = await act('delete', { id: a.id, seq: 3 });
  assert.equal(one.changed, 1);
  assert.deepEqual((await list(`?id=${a.id}`)).rows.map((r) => r.seq), [1, 2]);
  const bySender = await act('delete', { sender: 'bob@src.test' });
  assert.equal(bySender.changed, 2);
  assert.equal((await m.master.store.census(b.id)).meta, 0);
  assert.equal((await m.master.store.census(b.id)).body, 0);
  await consistent();

  // a bulk action needs a filter or all: true
  const refused = await postJson(`${m.api}/admin/delete`, {});
  assert.equal(refused.status, 400);
  assert.match(String(refused.body.message), /all/);

  // NDJSON: progress lines, the result last
  const res = await fetch(`${m.api}/admin/hold`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/x-ndjson' }, body: JSON.stringify({ all: true }) });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /ndjson/);
  const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as Json);
  assert.ok(lines.some((l) => l.progress));
  assert.equal((lines.at(-1)!.result as Json).changed, 3);
  const all2 = await act('release', { all: true });
  assert.equal(all2.changed, 3);
  await consistent();
});
