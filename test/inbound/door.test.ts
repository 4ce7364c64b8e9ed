/**
 * The receiver's SMTP door on its own thread (lib/inbound/door/): when the thread dies, the
 * sessions it held are cut off, a message it was handing over is not kept, a new thread listens
 * on the same port and the counters carry on; its log lines reach the master's log; what one side
 * says in one turn goes as one batch. (A store that cannot write refusing the next MAIL, the
 * master's state reaching the door: test/inbound/durability.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import { BatchedPort } from '../../lib/inbound/door/batched-port.js';
import { DOOR_RESTART_MS } from '../../lib/inbound/door/smtp-door.js';
import { captureLog } from '../helpers/capture-log.js';
import { startReceiver } from '../helpers/inbound.js';
import { tempDir } from '../helpers/master.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { waitFor } from '../helpers/wait.js';

function series(text: string, name: string): number {
  const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

test('the door thread dies: its sessions are cut off, the message it was handing over is not kept, a new thread listens on the same port, the counters carry on', { timeout: 60_000 }, async () => {
  const log = captureLog('info');
  const r = await startReceiver({}, {}, tempDir(), log.logger);
  try {
    await r.send({ to: 'before@inbox.test', subject: 'before' });
    const metrics = async () => (await fetch(`${r.api}/metrics`)).text();
    const acceptedBefore = series(await metrics(), 'sluice_inbound_connections_total{result="accepted"}');
    assert.ok(acceptedBefore >= 1, `accepted ${acceptedBefore}`);

    // a message half sent: its first bytes reach the master, its end never comes
    const c = await r.session();
    await c.send('MAIL FROM:<half@src.test>', 250);
    await c.send('RCPT TO:<half@inbox.test>', 250);
    await c.send('DATA', 354);
    c.write('Subject: half\r\n\r\n' + 'x'.repeat(100_000) + '\r\n');
    await new Promise((resolve) => setTimeout(resolve, 200));

    const door = r.m.master.inbound!.door!;
    const thread = door.thread!;
    const portBefore = r.port;
    await thread.terminate();
    assert.equal(await c.next(5000), undefined, 'the half-sent session is cut off without a reply');

    // a new thread listens on the same port after the first pause
    await waitFor(() => door.thread !== undefined && door.thread !== thread, DOOR_RESTART_MS.first + 10_000, 'a new door thread');
    const again = await waitForGreeting(portBefore);
    again.close();
    const id = await r.send({ to: 'after@inbox.test', subject: 'after' });
    assert.ok(id);

    const failed = log.events('INBOUND_DOOR_FAILED');
    assert.equal(failed.length, 1, JSON.stringify(failed));
    assert.equal(failed[0]!.restartInMs, DOOR_RESTART_MS.first);
    assert.equal(await r.inbox.count('half@inbox.test'), 0, 'nothing of the cut-off message is listed');
    assert.equal(r.inbox.stats().messages, 2, 'the messages before and after are stored, nothing else');
    const acceptedAfter = series(await metrics(), 'sluice_inbound_connections_total{result="accepted"}');
    assert.ok(acceptedAfter >= acceptedBefore + 2, `the connections of the old thread still count: ${acceptedBefore} → ${acceptedAfter}`);
  } finally {
    await r.stop();
  }
});

async function waitForGreeting(port: number): Promise<SmtpTalk> {
  const end = Date.now() + 10_000;
  for (;;) {
    try {
      const c = await SmtpTalk.connect(port);
      const reply = await c.next(5000);
      if (reply?.code === 220) return c;
      c.close();
    } catch {
      // not listening yet
    }
    if (Date.now() > end) throw new Error(`no greeting on port ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test("the door's log lines reach the master's log with their fields", async () => {
  const log = captureLog('info');
  const r = await startReceiver({}, {}, tempDir(), log.logger);
  try {
    // the blocklist is read on the door's thread at start
    await waitFor(() => log.events('BLOCKLIST_LOADED').length > 0, 5000, 'BLOCKLIST_LOADED from the door thread');
    const line = log.events('BLOCKLIST_LOADED')[0]!;
    assert.equal(line.entries, 0);
    assert.equal(line.component, 'inbound');
    assert.match(String(line.msg), /inbound blocklist loaded/);
  } finally {
    await r.stop();
  }
});

test('what one side says in one turn leaves as one batch, in order', async () => {
  const { port1, port2 } = new MessageChannel();
  const received: unknown[][] = [];
  port2.on('message', (batch: unknown[]) => received.push(batch));
  const batches = new BatchedPort<number>(port1);
  for (let i = 0; i < 5; i++) batches.send(i);
  await new Promise((resolve) => setTimeout(resolve, 50));
  batches.send(5);
  await waitFor(() => received.length === 2, 2000, 'two batches');
  assert.deepEqual(received, [[0, 1, 2, 3, 4], [5]]);
  port1.close();
});
