/**
 * Issue 8, item 7: the data channel before a worker has said hello. A local process that is not
 * a worker may send a few KB at most (a hello frame is a few hundred bytes) and hold a few
 * connections at most; a flood of connections pushes out the oldest unauthenticated ones, so a
 * worker connecting now is not locked out. A channel.host beyond loopback is refused unless the
 * config says so.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import net from 'node:net';
import { loadConfig } from '../../lib/config/load.js';
import { FRAME_JSON } from '../../lib/channel/frames.js';
import { startMaster, tempDir, testOverrides, type TestMaster } from '../helpers/master.js';

let m: TestMaster;
let port = 0;
before(async () => {
  m = await startMaster();
  port = m.master.listening.find((l) => l.kind === 'channel')!.port;
});
after(() => m.stop());

function connect(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

const closed = (s: net.Socket) => new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));

test('before hello: a frame that announces 39 MB is cut off within a few KB, at once', async () => {
  const s = await connect();
  s.on('error', () => undefined);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(39 * 1024 * 1024, 0);
  head[4] = FRAME_JSON;
  const started = performance.now();
  // 64 KB of the frame, then nothing: a master that buffers toward 39 MB waits for the rest
  s.write(Buffer.concat([head, Buffer.alloc(64 * 1024, 0x20)]));
  const hungUp = await Promise.race([closed(s).then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 1500))]);
  const ms = performance.now() - started;
  s.destroy();
  assert.ok(hungUp, `still open after ${ms.toFixed(0)} ms with 64 KB of an unauthenticated frame buffered`);
});

test('connections that never say hello: only a few are kept, the oldest go first', async () => {
  const flood: net.Socket[] = [];
  for (let i = 0; i < 50; i++) {
    const s = await connect();
    s.on('error', () => undefined);
    flood.push(s);
  }
  const deadline = performance.now() + 1500;
  while (performance.now() < deadline && flood.filter((s) => !s.destroyed).length > 8) await new Promise((resolve) => setTimeout(resolve, 20));
  const open = flood.map((s, i) => (s.destroyed ? -1 : i)).filter((i) => i >= 0);
  assert.ok(open.length <= 8, `${open.length} of 50 unauthenticated connections still open after 1.5 s`);
  assert.ok(open.every((i) => i >= 40), `the newest are the ones kept (open: ${open.join(', ')})`);
  for (const s of flood) s.destroy();
});

test('a channel.host beyond loopback is refused unless channel.allowNonLoopback says so', () => {
  const dir = tempDir();
  try {
    assert.throws(
      () => loadConfig({ appDir: dir, env: {}, overrides: testOverrides({ channel: { host: '0.0.0.0' } }) }),
      (err: Error) => /channel\.host: .*not a loopback address.*channel\.allowNonLoopback/.test(err.message),
    );
    const { config } = loadConfig({ appDir: dir, env: {}, overrides: testOverrides({ channel: { host: '0.0.0.0', allowNonLoopback: true } }) });
    assert.equal(config.channel.host, '0.0.0.0');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
