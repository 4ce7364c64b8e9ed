/**
 * core/http-bounce under a flood: 10,000 bounces at once against an endpoint that holds every
 * request. Requests in flight stay within `concurrency`; what is dropped from a full outbox
 * (maxPending) is never sent and never retried; at stop, requests in flight are aborted.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../../lib/config/load.js';
import { parseHeaders } from '../../lib/message/headers.js';
import type { BounceInfo } from '../../lib/plugins/hooks.js';
import { loadPlugins } from '../../lib/plugins/loader.js';
import { HookRunner } from '../../lib/plugins/runner.js';
import { captureLog } from '../helpers/capture-log.js';
import { rmSync } from 'node:fs';
import { tempDir, testOverrides } from '../helpers/master.js';
import { waitFor } from '../helpers/plugins.js';

/** The endpoint: holds requests while `holding`, then answers each with `status`. */
let holding = true;
let status = 500;
let open = 0;
let maxOpen = 0;
/** bounce id → requests for it */
const tries = new Map<string, number>();
let requests = 0;
const held: http.ServerResponse[] = [];
const endpoint = http.createServer((req, res) => {
  open++;
  maxOpen = Math.max(maxOpen, open);
  requests++;
  const parts: Buffer[] = [];
  req.on('data', (d: Buffer) => parts.push(d));
  req.on('end', () => {
    const id = String((JSON.parse(Buffer.concat(parts).toString()) as { id: string }).id);
    tries.set(id, (tries.get(id) ?? 0) + 1);
    if (holding) held.push(res);
    else res.writeHead(status).end();
  });
  res.on('close', () => open--);
});
let url = '';
before(async () => {
  await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/bounces`;
});
after(async () => {
  endpoint.closeAllConnections();
  await new Promise((resolve) => endpoint.close(resolve));
});

function bounce(n: number): BounceInfo {
  return {
    id: `msg${n}`,
    seq: 1,
    zone: 'default',
    from: 'sender@src.test',
    to: `r${n}@dest.test`,
    messageId: `<${n}@src.test>`,
    headers: parseHeaders(Buffer.from('Subject: x\r\n\r\n')),
    response: '550 5.1.1 no such user',
    attempts: 1,
    time: Date.now(),
    dsn: true,
  };
}

/** core/http-bounce loaded as the master loads it, with these options. */
async function loadBouncePlugin(t: { after(fn: () => unknown): void }, options: Record<string, unknown>) {
  const dir = tempDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { config } = loadConfig({ appDir: dir, env: {}, overrides: testOverrides({ plugins: { 'core/http-bounce': { enabled: ['main'], url, ...options } } }) });
  const log = captureLog();
  const hooks = new HookRunner(log.logger, config.hooks.timeout);
  const loaded = await loadPlugins({ config, process: 'main', hooks, logger: log.logger });
  return { hooks, log, loaded };
}

function reset(hold: boolean, answer: number): void {
  holding = hold;
  status = answer;
  maxOpen = open;
  requests = 0;
  tries.clear();
}

test('10,000 bounces at once: at most `concurrency` requests in flight; dropped ones are never sent and their retries stop', async (t) => {
  reset(true, 500);
  const { hooks, log, loaded } = await loadBouncePlugin(t, { maxPending: 100, retryDelay: '20ms', maxAttempts: 3, timeout: '20s' });
  try {
    for (let n = 0; n < 10_000; n++) await hooks.notify('queue:bounce', bounce(n));
    // what reaches the endpoint while it holds everything
    await waitFor(() => requests >= 4, 10_000, 'the first requests');
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(maxOpen <= 4, `${maxOpen} requests in flight at once (bound 4)`);

    // let everything through with a 500: what is still kept is retried, up to maxAttempts
    holding = false;
    for (const res of held.splice(0)) res.writeHead(status).end();
    status = 500;
    await waitFor(() => open === 0 && requests >= 100 * 3, 20_000, 'the kept bounces, tried three times');
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(maxOpen <= 4, `${maxOpen} requests in flight at once (bound 4)`);
    // the first four were in flight before the flood and stayed; of the rest only the newest 96
    // were kept; each was tried three times, and nothing else was ever sent
    const first = [...tries].filter(([id]) => Number(id.slice(3)) < 4);
    const newest = [...tries].filter(([id]) => Number(id.slice(3)) >= 10_000 - 96);
    t.diagnostic(`${tries.size} bounces sent, ${requests} requests, ${maxOpen} at most in flight`);
    assert.equal(first.length, 4, 'the four in flight');
    assert.equal(newest.length, 96, 'the newest 96');
    assert.equal(tries.size, 100, 'no dropped bounce was sent');
    for (const [id, n] of [...first, ...newest]) assert.equal(n, 3, `${id} tried ${n} times`);
    const dropLines = log.lines.filter((l) => /dropped/.test(String(l.msg)));
    assert.ok(dropLines.length > 0, 'the drops are logged');
    assert.ok(dropLines.length < 10, `${dropLines.length} log lines about drops: not one per drop`);
  } finally {
    await loaded.stop();
  }
});

test('a bounce dropped while it waits for its retry is not retried', async (t) => {
  reset(false, 500);
  const { hooks, loaded } = await loadBouncePlugin(t, { maxPending: 2, concurrency: 1, retryDelay: '2s', maxAttempts: 5 });
  try {
    await hooks.notify('queue:bounce', bounce(1));
    await waitFor(() => tries.get('msg1') === 1 && open === 0, 5000, 'the first attempt answered');
    // the endpoint counts a try before the sender has read the answer; while msg1 is still in
    // flight the sender would drop msg2 instead (the oldest not in flight). Its retry is 2 s
    // away: well inside that, msg1 is waiting for it
    await new Promise((resolve) => setTimeout(resolve, 700));
    // msg1 waits for its retry; two more push it out
    await hooks.notify('queue:bounce', bounce(2));
    await hooks.notify('queue:bounce', bounce(3));
    await waitFor(() => (tries.get('msg2') ?? 0) >= 2 && (tries.get('msg3') ?? 0) >= 2, 10_000, 'the others retried');
    assert.equal(tries.get('msg1'), 1, 'the dropped one was tried once, never again');
  } finally {
    await loaded.stop();
  }
});

test('stopping aborts the requests in flight', async (t) => {
  reset(true, 200);
  const { hooks, loaded } = await loadBouncePlugin(t, { timeout: '60s' });
  for (let n = 0; n < 3; n++) await hooks.notify('queue:bounce', bounce(n));
  await waitFor(() => open === 3, 5000, 'three requests held');
  await loaded.stop();
  await waitFor(() => open === 0, 5000, 'the requests closed by the client');
  held.length = 0;
});
