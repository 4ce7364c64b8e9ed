import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { hashPassword } from '../../lib/accept/passwords.js';
import { loadConfig } from '../../lib/config/load.js';
import { loadPlugins } from '../../lib/plugins/loader.js';
import { HookRunner } from '../../lib/plugins/runner.js';
import { captureLog } from '../helpers/capture-log.js';
import { startMaster, tempDir, testOverrides, type TestMaster } from '../helpers/master.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

/** The auth endpoint: users in a table; "slow" never answers in time; "broken" gets a 500. */
const USERS: Record<string, string> = { 'bob@example.test': 'bob-pw', 'carol:x': 'never' };
const requests: { user: string; transport: string | null }[] = [];
let mode: 'normal' | 'slow' | 'broken' = 'normal';
const endpoint = http.createServer((req, res) => {
  const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
  const [user = '', pass = ''] = basic ? Buffer.from(basic, 'base64').toString('utf8').split(/:(.*)/s) : [];
  requests.push({ user, transport: new URL(req.url ?? '/', 'http://x').searchParams.get('transport') });
  if (mode === 'slow') return void setTimeout(() => res.end('late'), 2000);
  if (mode === 'broken') return void res.writeHead(500).end('oops');
  res.writeHead(USERS[user] !== undefined && USERS[user] === pass ? 200 : 401).end();
});

let m: TestMaster;
before(async () => {
  await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
  const port = (endpoint.address() as AddressInfo).port;
  m = await startMaster({
    smtp: { allowInsecureAuth: true, auth: 'always', users: { alice: await hashPassword('alice-pw') } },
    plugins: { 'core/http-auth': { enabled: ['main'], url: `http://127.0.0.1:${port}/auth`, timeout: '300ms', cacheTtl: '60s', failureCacheTtl: '0s' } },
  });
});
after(async () => {
  await m.stop();
  endpoint.closeAllConnections();
  await new Promise((resolve) => endpoint.close(resolve));
});

async function login(user: string, pass: string, code: number): Promise<string> {
  const c = await SmtpTalk.connect(m.smtpPort);
  try {
    await c.expect(220);
    await c.send('EHLO client.test', 250);
    const r = await c.send(`AUTH PLAIN ${Buffer.from(`\0${user}\0${pass}`).toString('base64')}`, code);
    if (code === 235) await c.send('MAIL FROM:<x@src.test>', 250);
    return r.text;
  } finally {
    c.close();
  }
}

test('core/http-auth accepts a login the endpoint accepts (Basic auth, transport=SMTP) and refuses one it refuses', async () => {
  mode = 'normal';
  requests.length = 0;
  assert.match(await login('bob@example.test', 'bob-pw', 235), /^235 /);
  assert.deepEqual(requests, [{ user: 'bob@example.test', transport: 'SMTP' }]);
  assert.equal(await login('bob@example.test', 'guess', 535), '535 5.7.8 Authentication credentials invalid');
  assert.equal(requests.length, 2);
});

test('an accepted login is cached: the next one does not ask the endpoint again; a wrong password is not taken from the cache', async () => {
  mode = 'normal';
  await login('bob@example.test', 'bob-pw', 235);
  requests.length = 0;
  await login('bob@example.test', 'bob-pw', 235);
  assert.equal(requests.length, 0, 'served from the cache');
  await login('bob@example.test', 'bob-pw-but-wrong', 535);
  assert.equal(requests.length, 1, 'another password is another cache key');
});

test('users from [smtp.users] still log in when the endpoint says no', async () => {
  mode = 'normal';
  assert.match(await login('alice', 'alice-pw', 235), /^235 /);
  await login('alice', 'nope', 535);
});

test('an endpoint that fails or is too slow gives 454 4.7.0 (try again later), not a refusal', async () => {
  mode = 'broken';
  assert.equal(await login('dave@example.test', 'pw', 454), '454 4.7.0 Temporary authentication failure, try again later');
  mode = 'slow';
  const t0 = Date.now();
  assert.equal(await login('erin@example.test', 'pw', 454), '454 4.7.0 Temporary authentication failure, try again later');
  assert.ok(Date.now() - t0 < 1500, 'the timeout of 300 ms applies');
  mode = 'normal';
});

test('a user name with ":" is not sent to the endpoint (Basic auth cannot carry it)', async () => {
  mode = 'normal';
  requests.length = 0;
  await login('carol:x', 'never', 535);
  assert.equal(requests.length, 0);
});

test('plain http is refused at start unless the endpoint is on loopback: passwords must not cross a network in clear', async () => {
  const dir = tempDir();
  try {
    const load = (url: string) => {
      const { config } = loadConfig({ appDir: dir, env: {}, overrides: testOverrides({ plugins: { 'core/http-auth': { enabled: ['main'], url } } }) });
      const log = captureLog();
      return loadPlugins({ config, process: 'main', hooks: new HookRunner(log.logger, config.hooks.timeout), logger: log.logger });
    };
    for (const url of ['http://auth.example.test/smtp', 'http://192.0.2.10:8080/smtp', 'http://[2001:db8::1]/smtp']) {
      await assert.rejects(load(url), (err: Error) => {
        assert.match(err.message, /core\/http-auth/);
        assert.match(err.message, /https/);
        return true;
      }, url);
    }
    for (const url of ['https://auth.example.test/smtp', 'http://127.0.0.1:9/smtp', 'http://localhost:9/smtp', 'http://[::1]:9/smtp']) {
      const loaded = await load(url);
      await loaded.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
