/**
 * F9a on the inbound receiver at full size: 10,000 sockets from 200 addresses
 * (50 each, opened 200 every 20 ms) against a child `sluice run` with maxConnectionsPerIp 20,
 * maxClients 5000 and a 30 s idle timeout. Pass: the 30 sockets per address over the cap get
 * 421 4.7.0 and a close within 1 s of it; 20 real transactions from 127.0.0.2, one every 150 ms
 * while the crowd is held, all get 250, p95 ≤ 1 s, max ≤ 2 s; the receiver's RSS grows by at most
 * 300 MB; its event-loop lag while the crowd is held (p99, measured inside the child by
 * loop-probe.ts) stays ≤ 100 ms; every idle socket is closed by the idle timeout within
 * 35 s; the receiver's descriptors are back to where they were (± 20) by 40 s.
 *
 * The crowd opens as fast as the receiver accepts (at most 300 handshakes awaiting a greeting):
 * a faster burst overflows the listener's accept queue, and the kernel then drops handshakes
 * silently, which tests the kernel, not the receiver. The lag during that ramp is reported, not
 * judged: the receiver is accepting flat out then.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { waitFor } from '../helpers/delivery-kit.js';
import { rssBytes, startSluiceWith, type SluiceChild, type LoopLag } from '../helpers/sluice-child.js';
import { deliver, INBOX_DOMAIN, loopbackAddresses, mb, percentile } from './inbound-kit.js';
import { SocketCrowd } from './socket-crowd.js';

const ADDRESSES = loopbackAddresses(2, 200);
const PER_ADDRESS = 50;
const CAP = 20;
const IDLE_TIMEOUT_MS = 30_000;
const REAL_CLIENT = '127.0.0.2';

let child: SluiceChild;
let port: number;
before(async () => {
  child = await startSluiceWith({
    api: { enabled: false },
    inbound: { domains: [INBOX_DOMAIN], maxConnectionsPerIp: CAP, maxClients: 5000, socketTimeout: IDLE_TIMEOUT_MS, checkAuth: false },
  }, { loopProbe: true });
  port = child.port('inbound');
});
after(() => child.stop());

const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

test(`F9a inbound: ${ADDRESSES.length * PER_ADDRESS} sockets from ${ADDRESSES.length} addresses against maxClients 5000`, { timeout: 150_000 }, async () => {
  const fdsBefore = fds(child.pid);
  const rssBefore = rssBytes(child.pid);
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssBytes(child.pid))), 250);
  const lags: Record<string, LoopLag> = {};
  await child.resetLoopLag();
  let crowd: SocketCrowd | undefined;
  const t0 = Date.now();
  try {
    crowd = await SocketCrowd.open({ port, addresses: ADDRESSES, count: ADDRESSES.length * PER_ADDRESS, stepSize: 200, stepPauseMs: 20, maxPending: 300, maxLifeMs: 90_000 });
    const held = crowd.sockets.filter((s) => s.greeting?.startsWith('220'));
    const refused = crowd.sockets.filter((s) => !s.greeting?.startsWith('220'));
    const toGreeting = crowd.sockets.map((s) => (s.greetedAt ?? Infinity) - s.openedAt);
    const silent = crowd.sockets.filter((s) => !s.greeting);
    if (silent.length) console.log(`# no reply: ${silent.length} (${silent.filter((s) => s.connectedAt).length} connected; errors ${[...new Set(silent.map((s) => s.error))].join(',')})`);
    console.log(
      `# ${held.length} held, ${refused.length} refused in ${Date.now() - t0} ms (connect to first reply: p50 ${percentile(toGreeting, 50)} ms, ` +
        `p95 ${percentile(toGreeting, 95)} ms); receiver RSS +${mb(rssBytes(child.pid) - rssBefore).toFixed(0)} MB`,
    );
    assert.equal(held.length, ADDRESSES.length * CAP, 'the cap holds per address, and every address gets its 20');
    await waitFor(() => refused.every((s) => s.closedAt !== undefined), 5000, 'refused sockets closed');
    for (const s of refused) {
      assert.match(s.greeting ?? s.error ?? '', /^421 4\.7\.0 /, `over the cap from ${s.address}`);
      assert.ok(s.closedByServerAt !== undefined && s.closedByServerAt - s.greetedAt! <= 1000, `closed within 1 s of the 421: ${(s.closedByServerAt ?? NaN) - s.greetedAt!} ms`);
    }

    lags.ramp = child.loopLag();
    await child.resetLoopLag();
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await deliver(port, { localAddress: REAL_CLIENT, to: `real@${INBOX_DOMAIN}`, testId: `f9a-slow-${i}` });
      assert.equal(r.outcome, '250', `real message ${i}: ${r.outcome} ${r.text ?? r.errorCode ?? ''} at ${r.stage}`);
      times.push(r.ms);
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    assert.equal(crowd.openCount, held.length, 'the idle crowd was held throughout');
    lags.hold = child.loopLag();
    const p95 = percentile(times, 95);
    console.log(`# at ${Date.now() - t0} ms real client: p50 ${percentile(times, 50)} ms, p95 ${p95} ms, max ${Math.max(...times)} ms`);
    assert.ok(p95 <= 1000 && Math.max(...times) <= 2000, `p95 ${p95} ms, max ${Math.max(...times)} ms`);

    await waitFor(() => crowd!.openCount === 0, IDLE_TIMEOUT_MS + 20_000, 'idle sockets closed by the receiver');
    const late = held.filter((s) => s.closedByServerAt === undefined || s.closedByServerAt - s.openedAt > IDLE_TIMEOUT_MS + 5000);
    assert.equal(late.length, 0, `closed by idleTimeout + 5 s; ${late.length} were not`);
    assert.ok(held.every((s) => /^421 4\.4\.2 /.test(s.lastReply ?? '')), 'each idle socket is told why (421 4.4.2)');
  } finally {
    clearInterval(sampler);
    await crowd?.stop();
  }
  await waitFor(() => Math.abs(fds(child.pid) - fdsBefore) <= 20, 10_000, `receiver descriptors back to ${fdsBefore} ± 20 (now ${fds(child.pid)})`);
  const growth = mb(rssPeak - rssBefore);
  const show = (l: LoopLag | undefined) => (l ? `p50 ${l.p50.toFixed(1)}, p99 ${l.p99.toFixed(1)}, max ${l.max.toFixed(1)} ms` : '-');
  console.log(`# receiver RSS growth ${growth.toFixed(0)} MB; event-loop lag: ramp ${show(lags.ramp)}; held ${show(lags.hold)}`);
  assert.ok(growth <= 300, `receiver RSS grew by ${growth.toFixed(0)} MB`);
  assert.ok(lags.hold && lags.hold.p99 <= 100, `event-loop lag while held: ${show(lags.hold)}`);
});
