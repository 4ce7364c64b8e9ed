/**
 * F9b on the inbound receiver: slowloris. Three crowds trickle at once, each
 * from its own addresses, with the deadlines compressed (command 3 s, DATA 4 s, session 8 s; the
 * idle timeout, 60 s, never fires: every trickler sends something each 500 ms):
 *
 * - 200 sockets send one byte of a command line every 500 ms and never its end: each is closed
 *   with 421 4.4.2 within commandTimeout + 5 s of its greeting;
 * - 100 sockets give an envelope and DATA, then one byte of the message every 500 ms: each is
 *   closed with 421 4.4.2 within dataTimeout + 5 s, and nothing of theirs is stored;
 * - 20 sockets trickle "NOOP\r\n" a byte every 500 ms: each line is complete within the command
 *   deadline, and is progress, so only the session deadline ends them: closed with 421 4.4.2
 *   within sessionTimeout + 5 s.
 *
 * Meanwhile a real client delivers 10 messages: all 250, p95 ≤ 1 s.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../helpers/delivery-kit.js';
import { deliver, loopbackAddresses, percentile, startInbound, type InboundMaster } from './inbound-kit.js';
import { SocketCrowd, type CrowdSocket } from './socket-crowd.js';

const COMMAND_TIMEOUT_MS = 3000;
const DATA_TIMEOUT_MS = 4000;
const SESSION_TIMEOUT_MS = 8000;
const SLACK_MS = 5000;
const TRICKLE_EVERY_MS = 500;
const VICTIM = 'victim@inbox.test';

let m: InboundMaster;
before(async () => {
  m = await startInbound({
    api: { enabled: false },
    inbound: {
      commandTimeout: COMMAND_TIMEOUT_MS,
      dataTimeout: DATA_TIMEOUT_MS,
      sessionTimeout: SESSION_TIMEOUT_MS,
      socketTimeout: 60_000,
      maxConnectionsPerIp: 20,
      checkAuth: false,
    },
  });
});
after(() => m.stop());

/** Each socket was closed by the server with a 421 4.4.2 naming `what`, within `limitMs` of its greeting. */
function assertClosedBy(sockets: CrowdSocket[], what: RegExp, limitMs: number, label: string): void {
  const lifetimes = sockets.map((s) => (s.closedByServerAt ?? Infinity) - (s.greetedAt ?? s.openedAt));
  const worst = Math.max(...lifetimes);
  console.log(`# ${label}: ${sockets.length} closed after ${percentile(lifetimes, 50)} ms (p50), ${worst} ms (max)`);
  assert.ok(worst <= limitMs, `${label}: every one closed within ${limitMs} ms of its greeting; the slowest took ${worst} ms`);
  const wrong = sockets.filter((s) => !(/^421 4\.4\.2 /.test(s.lastReply ?? '') && what.test(s.lastReply ?? '')));
  assert.equal(wrong.length, 0, `${label}: told why (${wrong[0]?.lastReply ?? wrong[0]?.error})`);
}

test('F9b inbound: command, DATA and line tricklers are closed by their deadlines while a real client gets its 250s', { timeout: 60_000 }, async () => {
  const common = { port: m.inboundPort, trickleEveryMs: TRICKLE_EVERY_MS, maxLifeMs: 30_000 };
  const crowds = await Promise.all([
    SocketCrowd.open({ ...common, addresses: loopbackAddresses(3, 10), count: 200, trickle: 'EHLO slow.loris.test' }),
    SocketCrowd.open({
      ...common,
      addresses: loopbackAddresses(4, 5),
      count: 100,
      preamble: `EHLO slow.test\r\nMAIL FROM:<loris@src.test>\r\nRCPT TO:<${VICTIM}>\r\nDATA\r\n`,
      trickleAfter: /^354 /,
      trickle: 'Subject: slow\r\n\r\nx',
    }),
    SocketCrowd.open({ ...common, addresses: loopbackAddresses(5, 1), count: 20, trickle: 'NOOP\r\n' }),
  ]);
  try {
    for (const crowd of crowds) assert.ok(crowd.sockets.every((s) => s.greeting?.startsWith('220')), 'every trickler is greeted');
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await deliver(m.inboundPort, { localAddress: '127.0.0.2', to: 'real@inbox.test', testId: `f9b-${i}` });
      assert.equal(r.outcome, '250', `real message ${i}: ${r.outcome} ${r.text ?? r.errorCode ?? ''}`);
      times.push(r.ms);
    }
    console.log(`# real client: p50 ${percentile(times, 50)} ms, p95 ${percentile(times, 95)} ms`);
    assert.ok(percentile(times, 95) <= 1000, `p95 ${percentile(times, 95)} ms`);
    assert.ok(crowds.every((c) => c.openCount > 0), 'the real client was served while the tricklers were still there');

    await waitFor(() => crowds.every((c) => c.openCount === 0), SESSION_TIMEOUT_MS + SLACK_MS + 5000, 'every trickler closed by the receiver');
    const [command, data, lines] = crowds as [SocketCrowd, SocketCrowd, SocketCrowd];
    assertClosedBy(command.sockets, /Command timed out/, COMMAND_TIMEOUT_MS + SLACK_MS, 'command-line tricklers');
    assertClosedBy(data.sockets, /Data transfer timed out/, DATA_TIMEOUT_MS + SLACK_MS, 'DATA tricklers');
    assertClosedBy(lines.sockets, /Session timed out/, SESSION_TIMEOUT_MS + SLACK_MS, 'NOOP tricklers');
    assert.equal(await m.master.inbound!.inbox.count(VICTIM), 0, 'nothing of a message cut off by the deadline is stored');
  } finally {
    for (const c of crowds) await c.stop();
  }
});
