/**
 * F15 (1, 3, 9, 10): hostile request bodies against POST /send. Broken JSON → 400 fast; a JSON
 * nesting bomb (100,000 `[`, open or closed, bare or inside a field) → 400 with no crash and the
 * event loop still responsive (a second request answers, loop lag stays small); prototype
 * poisoning → 400; 101 recipients with the default limit of 100 → 400; a wrong Content-Type →
 * 415. Never a 5xx, always JSON `{ error, message }`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { budgetMs } from '../helpers/budget.js';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { isErrorShape, postJson, request, type ApiReply } from '../helpers/http.js';

let m: TestMaster;
before(async () => {
  m = await startMaster();
});
after(() => m.stop());

const json = { 'content-type': 'application/json' };
const post = (body: string | Buffer, headers: Record<string, string> = json) => request(`${m.api}/send`, { method: 'POST', body, headers });

function assertClientError(r: ApiReply, status: number, label: string): void {
  assert.equal(r.status, status, `${label}: ${JSON.stringify(r.body).slice(0, 300)}`);
  assert.ok(isErrorShape(r.body), `${label}: JSON error shape, no stack`);
}

/**
 * Timing under a shared CPU: tests run two files at once on small machines, so one slow sample
 * can be the neighbour's fault. A real problem (a quadratic parse, a blocking loop) is slow every
 * time; so a bound is checked against the best of up to three tries.
 */
async function bestOf<T extends { ms: number }>(tries: number, run: () => Promise<T>, boundMs: number): Promise<T> {
  let best: T | undefined;
  for (let i = 0; i < tries && !(best && best.ms <= boundMs); i++) {
    const r = await run();
    if (!best || r.ms < best.ms) best = r;
  }
  return best!;
}

test('(1) broken JSON → 400 within 100 ms', async () => {
  await post('{"warm": true}'); // the first request pays for lazy set-up
  for (const body of ['{bad json', '{"from": "a@src.test",', '{"a":1}}', '\u0000', '[}']) {
    const r = await bestOf(3, () => post(body), 100);
    assertClientError(r, 400, body);
    assert.ok(r.ms <= 100, `${JSON.stringify(body)} took ${r.ms.toFixed(1)} ms`);
  }
});

test('(3) nesting bombs → 400, no crash, the loop stays responsive', async (t) => {
  const depth = 100_000;
  const bombs: [string, string][] = [
    ['open [', '['.repeat(depth)],
    ['closed [ ]', '['.repeat(depth) + ']'.repeat(depth)],
    ['inside to', `{"from":"a@src.test","to":${'['.repeat(depth)}${']'.repeat(depth)},"text":"x"}`],
    ['deep objects in headers', `{"from":"a@src.test","to":"r@dest.test","headers":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`],
    ['deep objects in attachment', `{"from":"a@src.test","to":"r@dest.test","attachments":[{"content":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}]}`],
  ];
  for (const [label, body] of bombs) {
    // the server runs in this process, so the loop's delay while it handles the bomb is its lag
    const attempt = async () => {
      const lag = monitorEventLoopDelay({ resolution: 10 });
      lag.enable();
      const [bomb, probe] = await Promise.all([post(body), request(`${m.api}/health`)]);
      lag.disable();
      return { bomb, probe, ms: lag.max / 1e6 };
    };
    const { bomb, probe, ms: lagMs } = await bestOf(3, attempt, 200);
    assertClientError(bomb, 400, label);
    assert.ok(bomb.ms < budgetMs(1000), `${label}: ${bomb.ms.toFixed(0)} ms`);
    assert.equal(probe.status, 200, `${label}: a second request answers`);
    t.diagnostic(`${label}: 400 in ${bomb.ms.toFixed(1)} ms, loop lag ${lagMs.toFixed(1)} ms`);
    assert.ok(lagMs <= budgetMs(200), `${label}: event loop lag ${lagMs.toFixed(1)} ms`);
  }
  // still serving real mail afterwards
  const after = await postJson(`${m.api}/send`, { from: 'a@src.test', to: 'r@dest.test', text: 'after the bombs' });
  assert.equal(after.status, 200);
});

test('prototype poisoning in the JSON → 400', async () => {
  const r = await post('{"from":"a@src.test","to":"r@dest.test","text":"x","__proto__":{"polluted":true}}');
  assertClientError(r, 400, '__proto__');
  const c = await post('{"from":"a@src.test","to":"r@dest.test","text":"x","constructor":{"prototype":{"polluted":true}}}');
  assertClientError(c, 400, 'constructor.prototype');
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('(9) 101 recipients with the default limit of 100 → 400; 100 → 200', async () => {
  const rcpts = Array.from({ length: 101 }, (_, i) => `r${i}@dest.test`);
  const over = await postJson(`${m.api}/send`, { from: 'a@src.test', to: rcpts.slice(0, 50), cc: rcpts.slice(50, 90), bcc: rcpts.slice(90), text: 'x' });
  assertClientError(over, 400, '101 recipients');
  assert.match(String(over.body.message), /too many recipients \(more than 100\); at most 100/);
  const atLimit = await postJson(`${m.api}/send`, { from: 'a@src.test', to: rcpts.slice(0, 100), text: 'x' });
  assert.equal(atLimit.status, 200);
});

test('(10) wrong Content-Type → 415, JSON reply', async () => {
  for (const type of ['text/plain', 'application/xml', 'application/octet-stream', 'text/json']) {
    assertClientError(await post('{"from":"a@src.test"}', { 'content-type': type }), 415, type);
  }
  // no Content-Type at all with a body: 415 as well
  const none = await request(`${m.api}/send`, { method: 'POST', body: Buffer.from('{}') });
  assertClientError(none, 415, 'no content-type');
});

test('unknown routes and methods answer JSON 404, not HTML', async () => {
  for (const [method, path] of [['GET', '/nope'], ['PUT', '/send'], ['GET', '/send']] as const) {
    const r = await request(m.api + path, { method });
    assertClientError(r, 404, `${method} ${path}`);
  }
});
