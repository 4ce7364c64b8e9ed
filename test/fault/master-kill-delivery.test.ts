/**
 * SIGKILL the master mid-delivery (issue #3, "Bad things that will happen"): Sluice runs as a
 * child process (`sluice run`), delivering to a fakemx that holds its reply to the final dot,
 * so the kill lands while deliveries are in flight. Its workers must notice and leave by
 * themselves (a worker never outlives its master). Restarted on the same app dir, Sluice
 * delivers every accepted message: none lost. Duplicates are counted and reported (the
 * deliveries in flight at the kill may arrive twice: RFC 1047's window, at-least-once).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startFakeMx } from '../helpers/fakemx.js';
import { tempDir } from '../helpers/master.js';
import { childConfig, writeConfig } from '../helpers/app-dir.js';
import { processAlive, startSluice, type SluiceChild } from '../helpers/sluice-child.js';
import { submitter, waitFor } from '../helpers/delivery-kit.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test('SIGKILL the master mid-delivery, restart on the same app dir → every accepted message delivered; workers leave by themselves', async () => {
  const mx = await startFakeMx({ mode: { kind: 'delayDot', ms: 1000 }, tls: false });
  cleanup.push(() => mx.stop());
  const dir = tempDir('sluice-mkill-');
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  writeConfig(
    dir,
    childConfig({
      queue: { retrySchedule: ['1s', '2s', '4s', '8s'], maxQueueTime: '5m' },
      zones: { default: { processes: 2, connections: 10, connectionsPerDomain: 20, route: { host: mx.host, port: mx.port } } },
    }),
  );
  let child: SluiceChild = await startSluice(dir);
  cleanup.push(async () => void (await child.stop()));
  await child.waitForLine(() => child.workerPids().length >= 2, 5000, 'two workers');

  const N = 100;
  const smtp = submitter(child.port('smtp'), 10);
  const acked: string[] = [];
  await Promise.all(
    Array.from({ length: N }, (_, i) =>
      smtp.send({ to: `r${i}@dest.test`, testId: `mk-${i}` }).then(() => {
        acked.push(`mk-${i}`);
      }),
    ),
  );
  smtp.close();
  assert.equal(acked.length, N, 'every message acknowledged before the kill');

  // kill while deliveries wait for their reply after the dot, some already done
  await mx.waitUntil(() => mx.copies >= 10 && mx.transactions.filter((t) => t.outcome === 'open' && t.dataEndAt !== undefined).length >= 3, 20_000, () => 'no delivery in flight');
  const workers = child.workerPids();
  const deliveredBefore = mx.copiesById().size;
  const killedAt = Date.now();
  child.kill('SIGKILL');
  const exit = await child.exited;
  assert.equal(exit.signal, 'SIGKILL');
  await waitFor(() => workers.every((pid) => !processAlive(pid)), 5000, 'orphaned workers exit by themselves');
  const orphansGoneMs = Date.now() - killedAt;

  const restartAt = Date.now();
  child = await startSluice(dir);
  const startedMs = Date.now() - restartAt;
  await mx.waitUntil(() => acked.every((id) => (mx.copiesById().get(id) ?? 0) >= 1), 30_000, () => `not all delivered after the restart: ${mx.copiesById().size}/${N}`);
  const copies = mx.copiesById();
  let duplicates = 0;
  for (const id of acked) duplicates += (copies.get(id) ?? 0) - 1;
  await waitFor(async () => {
    const q = (await (await fetch(`http://127.0.0.1:${child.port('api')}/queue/default`)).json()) as { queued: number; deferred: number };
    return q.queued + q.deferred === 0;
  }, 10_000, 'queue empty after the restart');
  console.log(`# master kill: ${N} accepted, ${deliveredBefore} delivered before the kill, lost 0, duplicates ${duplicates}; orphaned workers gone ${orphansGoneMs} ms after the kill; restart to STARTED ${startedMs} ms`);
  const stop = await child.stop();
  assert.equal(stop.code, 0, 'a clean stop exits 0');
  assert.ok(duplicates <= 20, `duplicates ${duplicates} ≤ deliveries in flight (2 workers × 10)`);
});
