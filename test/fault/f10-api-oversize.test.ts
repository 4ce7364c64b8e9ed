/**
 * F10 (c): oversize through the HTTP door.
 * - A 12 MB JSON body against api.maxBodySize = 10MB → 413 within 1 s, with and without a
 *   Content-Length (chunked), no queue entry, bounded memory.
 * - A JSON body under the API limit whose message is over smtp.maxSize → 413 from ingest, and
 *   nothing stored: not a key more in LevelDB (body chunks streamed before the limit was seen
 *   are discarded).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Readable } from 'node:stream';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { isErrorShape, postJson, type Json } from '../helpers/http.js';
import { queueKeyCount } from '../helpers/queue-census.js';

let m: TestMaster;
before(async () => {
  m = await startMaster({ api: { maxBodySize: '10MB' }, smtp: { maxSize: '1MB' }, queue: { chunkSize: '64KB' } });
});
after(() => m.stop());

function keyCount(): Promise<number> {
  return queueKeyCount(m.master.store);
}

/** POSTs with node:http so the reply can be read even if the server stops reading the upload. */
function rawPost(body: Buffer, chunked: boolean): Promise<{ status: number; body: Json; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const headers: Record<string, string | number> = { 'content-type': 'application/json' };
    if (!chunked) headers['content-length'] = body.length;
    const req = http.request(`${m.api}/send`, { method: 'POST', headers, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Json, ms: performance.now() - started });
      });
    });
    req.on('timeout', () => req.destroy(new Error('no reply within 10 s')));
    // the server may close the socket before the whole upload is written; the reply is what counts
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err)));
    if (chunked) {
      Readable.from((function* () {
        for (let i = 0; i < body.length; i += 256 * 1024) yield body.subarray(i, i + 256 * 1024);
      })()).pipe(req);
    } else {
      req.end(body);
    }
  });
}

test('F10c: a 12 MB JSON body against a 10 MB limit → 413 within 1 s, nothing queued, memory bounded', async (t) => {
  const big = Buffer.from(JSON.stringify({ from: 'a@src.test', to: 'r@dest.test', text: 'x'.repeat(12 * 1024 * 1024) }));
  assert.ok(big.length > 12 * 1024 * 1024);
  const keysBefore = await keyCount();
  for (const chunked of [false, true]) {
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    const r = await rawPost(big, chunked);
    const rssGrowthMb = (process.memoryUsage().rss - rssBefore) / 1024 / 1024;
    t.diagnostic(`${chunked ? 'chunked' : 'content-length'}: ${r.status} in ${r.ms.toFixed(1)} ms, RSS growth ${rssGrowthMb.toFixed(1)} MB`);
    assert.equal(r.status, 413, JSON.stringify(r.body));
    assert.ok(isErrorShape(r.body));
    assert.equal(r.body.error, 'PayloadTooLarge');
    assert.ok(r.ms <= 1000, `413 took ${r.ms.toFixed(0)} ms`);
    // the test process holds the server too, so this bounds both
    assert.ok(rssGrowthMb <= 50, `RSS grew ${rssGrowthMb.toFixed(1)} MB`);
  }
  assert.equal(await keyCount(), keysBefore, 'no queue keys');
  const ok = await postJson(`${m.api}/send`, { from: 'a@src.test', to: 'r@dest.test', text: 'still serving' });
  assert.equal(ok.status, 200);
});

test('a message over smtp.maxSize through /send → 413, and not a key is left in the queue', async () => {
  const keysBefore = await keyCount();
  // 2 MB of attachment: the JSON is under api.maxBodySize, the composed message over smtp.maxSize
  const r = await postJson(`${m.api}/send`, {
    from: 'a@src.test',
    to: 'r@dest.test',
    text: 'big',
    attachments: [{ filename: 'big.bin', content: Buffer.alloc(2 * 1024 * 1024, 7).toString('base64'), encoding: 'base64' }],
  });
  assert.equal(r.status, 413, JSON.stringify(r.body));
  assert.ok(isErrorShape(r.body));
  assert.equal(r.body.error, 'MessageTooLarge');
  assert.match(String(r.body.message), /maximum message size 1048576/);
  assert.equal(await keyCount(), keysBefore, 'chunks written before the limit was seen are gone');
  assert.equal(m.master.store.counters.totals().queued, 1, 'only the earlier message');
  // just under the limit is accepted
  const fits = await postJson(`${m.api}/send`, {
    from: 'a@src.test',
    to: 'r@dest.test',
    attachments: [{ filename: 'fits.bin', content: Buffer.alloc(600 * 1024, 7).toString('base64'), encoding: 'base64' }],
  });
  assert.equal(fits.status, 200, JSON.stringify(fits.body));
});
