/**
 * F9b on the inbound receiver, the crowd bigger than the server: 150
 * tricklers from 15 addresses (10 each, the per-IP cap) against maxClients 100, with deadlines
 * long enough (30 s and more) that only the shedding can make room. Like a slowloris tool, a
 * trickler the server closes comes back a second later, so the server stays full and churning.
 * Two thirds trickle a command line, a third a message after DATA; none makes progress.
 *
 * Pass: while the server is full, ten real clients (ten addresses, all at once) each get 250
 * within 2 s of connecting; the tricklers that made room were told why (421 4.4.2, "idle").
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../helpers/delivery-kit.js';
import { deliver, loopbackAddresses, percentile, startInbound, type InboundMaster } from './inbound-kit.js';
import { SocketCrowd } from './socket-crowd.js';

const MAX_CLIENTS = 100;
const PER_IP = 10;

let m: InboundMaster;
before(async () => {
  m = await startInbound({
    api: { enabled: false },
    inbound: {
      maxClients: MAX_CLIENTS,
      maxConnectionsPerIp: PER_IP,
      commandTimeout: 30_000,
      dataTimeout: 60_000,
      socketTimeout: 60_000,
      checkAuth: false,
    },
  });
});
after(() => m.stop());

test(`F9b inbound: 150 tricklers against maxClients ${MAX_CLIENTS}; ten real clients at once each get 250 within 2 s`, { timeout: 60_000 }, async () => {
  const common = { port: m.inboundPort, trickleEveryMs: 300, reconnectAfterMs: 1000, maxReconnects: 2000, maxLifeMs: 40_000 };
  const crowds = await Promise.all([
    SocketCrowd.open({ ...common, addresses: loopbackAddresses(6, 10), count: 100, trickle: 'EHLO slow.loris.test' }),
    SocketCrowd.open({
      ...common,
      addresses: loopbackAddresses(7, 5),
      count: 50,
      preamble: 'EHLO slow.test\r\nMAIL FROM:<loris@src.test>\r\nRCPT TO:<victim@inbox.test>\r\nDATA\r\n',
      trickleAfter: /^354 /,
      trickle: 'x',
    }),
  ]);
  const open = () => crowds.reduce((n, c) => n + c.openCount, 0);
  try {
    // the server full of tricklers for two seconds (beyond the first round of reconnections)
    let fullSince = Infinity;
    await waitFor(() => {
      if (open() < MAX_CLIENTS - 5) fullSince = Infinity;
      else fullSince = Math.min(fullSince, Date.now());
      return Date.now() - fullSince >= 2000;
    }, 20_000, 'the server full of tricklers for 2 s');
    const results = await Promise.all(
      loopbackAddresses(8, 10).map((localAddress, i) => deliver(m.inboundPort, { localAddress, to: 'real@inbox.test', testId: `f9b-shed-${i}`, timeoutMs: 5000 })),
    );
    const times = results.map((r) => r.ms);
    console.log(`# real clients: ${results.map((r) => r.outcome).join(' ')}; p50 ${percentile(times, 50)} ms, max ${Math.max(...times)} ms; tricklers open ${open()}`);
    for (const [i, r] of results.entries()) {
      assert.equal(r.outcome, '250', `real client ${i}: ${r.outcome} ${r.text ?? r.errorCode ?? ''} at ${r.stage}`);
      assert.ok(r.ms <= 2000, `real client ${i}: 250 after ${r.ms} ms`);
    }
    const sockets = crowds.flatMap((c) => c.sockets);
    const shed = sockets.filter((s) => /^421 4\.4\.2 .*idle/.test(s.lastReply ?? ''));
    const turnedAway = sockets.filter((s) => s.greeting && !s.greeting.startsWith('220'));
    console.log(`# trickler connections: ${sockets.length}; shed ${shed.length}; refused at the greeting ${turnedAway.length} (${[...new Set(turnedAway.map((s) => s.greeting!.slice(0, 40)))].join(' | ')})`);
    assert.ok(shed.length > 0, 'tricklers were shed to make room');
    assert.equal(await m.master.inbound!.inbox.count('victim@inbox.test'), 0, 'nothing of the tricklers is stored');
  } finally {
    for (const c of crowds) await c.stop();
  }
});
