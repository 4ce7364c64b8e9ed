/**
 * Issue 8, item 8: the HTTP API against clients that hold it up.
 * - A request whose body trickles in is cut off by api.requestTimeout (408), so slow bodies do
 *   not hold sockets for ever; so is one that never finishes its headers.
 * - At most api.maxConnections connections at once; the extra ones are closed at once.
 * - POST /send with 35 MB of address lists (millions of addresses): 400 "too many recipients",
 *   counted before any address is parsed in full, and the master's event loop never stalls more
 *   than 100 ms meanwhile (the master runs in this process: its loop is this loop).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { budgetMs } from '../helpers/budget.js';
import { startMaster, type TestMaster } from '../helpers/master.js';
import type { Json } from '../helpers/http.js';

/** short deadlines and a small cap for the slow-client tests; the defaults for the large bodies */
let m: TestMaster;
let big: TestMaster;
let port = 0;
before(async () => {
  m = await startMaster({ api: { requestTimeout: '1s', maxConnections: 20 } });
  big = await startMaster({ smtp: { maxSize: '30MB' } });
  port = m.apiPort;
});
after(async () => {
  await m.stop();
  await big.stop();
});

/**
 * Timing under a shared CPU (two test files at once, other work on the machine): a stall that is
 * the neighbour's is not ours, and a real one (a parse on the event loop) happens every time; so
 * the bound is checked against the best of up to three tries.
 */
async function bestOf<T extends { lagMs: number }>(tries: number, run: () => Promise<T>, boundMs: number): Promise<T> {
  let best: T | undefined;
  for (let i = 0; i < tries && !(best && best.lagMs <= boundMs); i++) {
    const r = await run();
    if (!best || r.lagMs < best.lagMs) best = r;
  }
  return best!;
}

/** POSTs `body` to /send of `big`, measuring the longest stall of this process's event loop meanwhile. */
async function postMeasured(body: Buffer): Promise<{ status: number; body: Json; ms: number; lagMs: number }> {
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const r = await post(body);
  lag.disable();
  return { ...r, lagMs: lag.max / 1e6 };
}

function connect(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

/** What the server sent, once it closes the connection (or `giveUpMs` passes). */
function untilClosed(s: net.Socket, giveUpMs: number): Promise<{ closed: boolean; text: string; ms: number }> {
  const started = performance.now();
  const parts: Buffer[] = [];
  s.on('data', (d: Buffer) => parts.push(d));
  s.on('error', () => undefined);
  return new Promise((resolve) => {
    // closed before anyone listened: a connection dropped as it was accepted
    if (s.destroyed) return resolve({ closed: true, text: '', ms: 0 });
    const done = (closed: boolean) => {
      clearTimeout(timer);
      resolve({ closed, text: Buffer.concat(parts).toString('latin1'), ms: performance.now() - started });
    };
    const timer = setTimeout(() => done(false), giveUpMs);
    s.once('close', () => done(true));
  });
}

test('a body trickled a byte at a time is cut off by api.requestTimeout with 408', async () => {
  const s = await connect();
  s.write('POST /send HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{');
  const trickle = setInterval(() => s.write(' '), 100);
  try {
    const r = await untilClosed(s, 6000);
    assert.ok(r.closed, `still open after ${r.ms.toFixed(0)} ms`);
    assert.match(r.text, /^HTTP\/1\.1 408 /);
    assert.ok(r.ms < 4000, `closed after ${r.ms.toFixed(0)} ms`);
  } finally {
    clearInterval(trickle);
    s.destroy();
  }
});

test('headers that never end are cut off too', async () => {
  const s = await connect();
  s.write('POST /send HTTP/1.1\r\nHost: x\r\n');
  const trickle = setInterval(() => s.write('X-A: b\r\n'), 100);
  try {
    const r = await untilClosed(s, 6000);
    assert.ok(r.closed, `still open after ${r.ms.toFixed(0)} ms`);
    assert.ok(r.ms < 4000, `closed after ${r.ms.toFixed(0)} ms`);
  } finally {
    clearInterval(trickle);
    s.destroy();
  }
});

test('connections over api.maxConnections are closed at once; the API still answers', async () => {
  const sockets: net.Socket[] = [];
  for (let i = 0; i < 30; i++) sockets.push(await connect());
  const closedAt = sockets.map((s) => untilClosed(s, 800));
  const results = await Promise.all(closedAt);
  const closed = results.filter((r) => r.closed).length;
  for (const s of sockets) s.destroy();
  assert.ok(closed >= 10, `${closed} of 30 connections closed (cap 20)`);
  // once the master has seen those go, it answers again
  const deadline = performance.now() + 5000;
  let status = 0;
  while (status !== 200 && performance.now() < deadline) {
    status = await fetch(`${m.api}/health`, { signal: AbortSignal.timeout(1000) }).then(
      (res) => res.status,
      () => 0,
    );
  }
  assert.equal(status, 200);
});

/** POSTs a prepared body with node:http; the reply once it comes. */
function post(body: Buffer): Promise<{ status: number; body: Json; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request(`${big.api}/send`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) as Json, ms: performance.now() - started }));
    });
    req.setTimeout(60_000, () => req.destroy(new Error('no reply within 60 s')));
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err)));
    // written in pieces, so that the client's own writes are not one long task on this loop
    let at = 0;
    const next = () => {
      while (at < body.length) {
        const piece = body.subarray(at, at + 256 * 1024);
        at += piece.length;
        if (!req.write(piece)) return void req.once('drain', next);
      }
      req.end();
    };
    next();
  });
}

test('POST /send with 35 MB of address lists → 400 too many recipients, and the loop never stalls over 100 ms', async (t) => {
  const list = Array.from({ length: 400 }, (_, i) => `u${i}@d.test`).join(',');
  const field = Array.from({ length: 3000 }, () => list.slice(0, 4000));
  const body = Buffer.from(JSON.stringify({ from: 'a@src.test', to: field, cc: field, bcc: field, text: 'x' }));
  assert.ok(body.length > 34 * 1024 * 1024, `${(body.length / 1024 / 1024).toFixed(1)} MB`);
  // 100 ms on a machine that runs this alone, stretched when it is busier than its cores
  const boundMs = budgetMs(100);
  const r = await bestOf(3, () => postMeasured(body), boundMs);
  const lagMs = r.lagMs;
  t.diagnostic(`${(body.length / 1024 / 1024).toFixed(1)} MB: ${r.status} in ${r.ms.toFixed(0)} ms, loop stalled ${lagMs.toFixed(0)} ms at most (bound ${boundMs} ms)`);
  assert.equal(r.status, 400, JSON.stringify(r.body).slice(0, 300));
  assert.match(String(r.body.message), /too many recipients/);
  assert.ok(lagMs <= boundMs, `the event loop stalled ${lagMs.toFixed(0)} ms (bound ${boundMs} ms)`);
});

test('a real 20 MB attachment still goes through /send (parsed in the worker)', async (t) => {
  const content = Buffer.alloc(20 * 1024 * 1024, 7).toString('base64');
  const body = Buffer.from(JSON.stringify({ from: 'a@src.test', to: 'r@dest.test', text: 'big', attachments: [{ filename: 'big.bin', content, encoding: 'base64' }] }));
  const r = await postMeasured(body);
  t.diagnostic(`${(body.length / 1024 / 1024).toFixed(1)} MB: ${r.status} in ${r.ms.toFixed(0)} ms, loop stalled ${r.lagMs.toFixed(0)} ms at most`);
  assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
});
