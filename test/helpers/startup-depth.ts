/**
 * Start-up on a deep queue (issue #13): a child `sluice run` on a queue the fixture writer filled
 * with `rows` rows (10 recipients a message, due in an hour). The master must listen without
 * reading them all first (QUEUE_OPENED, then LISTENING, QUEUE_LOADED when the count is done), say
 * "loading" in GET /health meanwhile, and count every row once done.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fillQueue } from '../../bench/queue-fill.js';
import { childConfig, writeConfig } from './app-dir.js';
import { startSluice } from './sluice-child.js';
import { tempDir } from './test-config.js';

export async function checkStartupOnDeepQueue(rows: number, opts: { expectListeningFirst: boolean; loadTimeoutMs: number }): Promise<{ listenedBeforeLoaded: boolean; countMs: number }> {
  const dir = tempDir();
  try {
    await fillQueue(path.join(dir, 'queue'), { rows, rowsPerMessage: 10, domains: 1000, dueFrom: Date.now() + 3_600_000, bodyBytes: 512 });
    writeConfig(dir, childConfig({ queue: { path: 'queue' }, zones: { default: { processes: 0 } }, inbound: { enabled: false } }));
    const child = await startSluice(dir, { readyTimeoutMs: 60_000 });
    try {
      const opened = child.lines.findIndex((l) => l.event === 'QUEUE_OPENED');
      const listening = child.lines.findIndex((l) => l.event === 'LISTENING' && l.kind === 'smtp');
      assert.ok(opened >= 0 && listening > opened, 'QUEUE_OPENED, then the SMTP listener');
      const loadedEarly = child.lines.findIndex((l) => l.event === 'QUEUE_LOADED');
      const listenedBeforeLoaded = loadedEarly < 0 || loadedEarly > listening;
      if (opts.expectListeningFirst) {
        assert.ok(listenedBeforeLoaded, 'listening before the rows were counted');
        const health = (await (await fetch(`http://127.0.0.1:${child.port('api')}/health`)).json()) as { queue: { loading: boolean; queued: number | null } };
        assert.ok(health.queue.loading || child.lines.some((l) => l.event === 'QUEUE_LOADED'), 'loading, or the count just ended');
        if (health.queue.loading) assert.equal(health.queue.queued, null, 'no partial figure while loading');
      }
      const loaded = await child.waitForLine((l) => l.event === 'QUEUE_LOADED', opts.loadTimeoutMs, 'QUEUE_LOADED');
      assert.equal(loaded.rows, rows);
      const after = (await (await fetch(`http://127.0.0.1:${child.port('api')}/health`)).json()) as { queue: { loading: boolean; queued: number; deferred: number } };
      assert.equal(after.queue.loading, false);
      assert.equal(after.queue.queued + after.queue.deferred, rows, 'every row counted once');
      const zone = await fetch(`http://127.0.0.1:${child.port('api')}/queue/default`);
      assert.equal(zone.status, 200);
      assert.equal(((await zone.json()) as { domains: unknown[] }).domains.length, 1000);
      return { listenedBeforeLoaded, countMs: Number(loaded.ms) };
    } finally {
      await child.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
