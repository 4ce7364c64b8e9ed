/**
 * The API token: with api.token set, every route needs `Authorization: Bearer <token>` (401 JSON
 * otherwise, before the body is even parsed); and the config refuses to put the API on a
 * non-loopback address without a token.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../lib/config/load.js';
import { startMaster, tempDir, testOverrides, type TestMaster } from '../helpers/master.js';
import { isErrorShape, postJson, request } from '../helpers/http.js';
import { rmSync } from 'node:fs';

const TOKEN = 's3cret-token-for-tests';
let m: TestMaster;
before(async () => {
  m = await startMaster({ api: { token: TOKEN } });
});
after(() => m.stop());

const message = { from: 'a@src.test', to: 'r@dest.test', subject: 'token', text: 'x' };

test('without a token, or with a wrong one, every route is 401 JSON and nothing is queued', async () => {
  const wrong = [
    undefined,
    `Bearer ${TOKEN}x`,
    `Bearer ${TOKEN.slice(0, -1)}`,
    `bearer ${TOKEN}`,
    TOKEN,
    `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}`,
    `Bearer  ${TOKEN}`,
    'Bearer ',
  ];
  for (const auth of wrong) {
    const headers: Record<string, string> = auth === undefined ? {} : { authorization: auth };
    for (const [method, path] of [['GET', '/health'], ['GET', '/queue/default'], ['GET', '/message/ffffffffffffffffffffff'], ['DELETE', '/message/ffffffffffffffffffffff'], ['GET', '/nope']] as const) {
      const r = await request(m.api + path, { method, headers });
      assert.equal(r.status, 401, `${method} ${path} with ${String(auth)}`);
      assert.ok(isErrorShape(r.body));
      assert.equal(r.body.error, 'Unauthorized');
    }
    const send = await postJson(`${m.api}/send`, message, headers);
    assert.equal(send.status, 401);
    // even a body that would be a 400 or 415 is refused first for lack of a token
    const bad = await request(`${m.api}/send`, { method: 'POST', body: '{bad', headers: { ...headers, 'content-type': 'application/json' } });
    assert.equal(bad.status, 401);
  }
  assert.equal(m.master.store.counters.totals().queued, 0);
});

test('with the right token the routes work', async () => {
  const auth = { authorization: `Bearer ${TOKEN}` };
  const sent = await postJson(`${m.api}/send`, message, auth);
  assert.equal(sent.status, 200, JSON.stringify(sent.body));
  assert.equal((await request(`${m.api}/message/${String(sent.body.id)}`, { headers: auth })).status, 200);
  assert.equal((await request(`${m.api}/queue/default`, { headers: auth })).status, 200);
  assert.equal((await request(`${m.api}/health`, { headers: auth })).status, 200);
});

test('config: api.host beyond loopback without a token is refused naming api.token', () => {
  const dir = tempDir();
  try {
    for (const host of ['0.0.0.0', '::', '192.0.2.10']) {
      assert.throws(
        () => loadConfig({ appDir: dir, env: {}, overrides: testOverrides({ api: { host } }) }),
        (err: unknown) => err instanceof ConfigError && err.problems.some((p) => /^api\.token: required when api\.host/.test(p)),
        host,
      );
    }
    // the same through the environment layer
    assert.throws(
      () => loadConfig({ appDir: dir, env: { SLUICE_API__HOST: '0.0.0.0' }, overrides: testOverrides() }),
      (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.startsWith('api.token:')),
    );
    // with a token, or on loopback, it loads
    assert.equal(loadConfig({ appDir: dir, env: {}, overrides: testOverrides({ api: { host: '0.0.0.0', token: 't' } }) }).config.api.host, '0.0.0.0');
    for (const host of ['127.0.0.1', '127.0.0.2', '::1', 'localhost']) {
      assert.equal(loadConfig({ appDir: dir, env: {}, overrides: testOverrides({ api: { host } }) }).config.api.host, host);
    }
    // an API that is switched off needs no token
    assert.doesNotThrow(() => loadConfig({ appDir: dir, env: {}, overrides: testOverrides({ api: { host: '0.0.0.0', enabled: false } }) }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
