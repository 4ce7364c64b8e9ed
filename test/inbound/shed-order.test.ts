/**
 * The order of the receiver's refusals at connect: a client over its own limits (here the
 * connection rate) is refused before the guard sheds anyone to make room for it, so that a flood
 * from one address cannot close other clients' idle sessions one by one while being refused itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startReceiver } from '../helpers/inbound.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

test('a full server refuses a client over its connection rate without shedding an idle session for it', { timeout: 30_000 }, async () => {
  const r = await startReceiver({ maxClients: 1, throttle: { connectionsPerMinutePerIp: 1 } });
  try {
    // the flooder spends its one connection of the minute
    const first = await SmtpTalk.connect(r.port, '127.0.0.1', '127.9.3.2');
    await first.expect(220);
    // QUIT, so the server has let the connection go when the client sees it closed (the server
    // may see a client's own close only after the next connection)
    await first.send('QUIT', 221);
    await first.waitClosed(5000);
    const idle = await r.session('127.9.3.1');
    // past the guard's "no progress" age, the idle session is one the guard could shed
    await new Promise((resolve) => setTimeout(resolve, 1300));
    const again = await SmtpTalk.connect(r.port, '127.0.0.1', '127.9.3.2');
    assert.match((await again.next(5000))?.text ?? '(closed)', /^421 4\.7\.0 .*connections per minute/);
    again.close();
    await idle.send('NOOP', 250);
    idle.close();
  } finally {
    await r.stop();
  }
});
