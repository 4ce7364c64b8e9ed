/**
 * Delivery to Postfix's smtp-sink (the postfix package; .ci/run installs it): an SMTP server that
 * is neither ours nor nodemailer's, told to accept, to soft-reject RCPT (-r), to hard-reject RCPT
 * (-f), to answer 421 and hang up after MAIL (-Q) or to hang up without a word after the final
 * dot (-q). One sink per behaviour, each the static route of its own domain. What must happen:
 * accepted mail is delivered once; 450 defers with the reply kept; 500 bounces with one DSN to
 * the sender (routed to the accepting sink); 421 defers; a connection dropped after the data
 * defers (the message may have arrived: at-least-once, it is sent again later).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { messageOf, startLoggedMaster, submitter, waitFor, type LoggedMaster } from '../helpers/delivery-kit.js';

const SMTP_SINK = '/usr/sbin/smtp-sink';

interface Sink {
  port: number;
  /** finished DATA transactions, from smtp-sink's own counter (-c) */
  messages(): number;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function startSink(options: string[]): Promise<Sink> {
  const port = await freePort();
  // as root smtp-sink must be told whom to run as
  const user = process.getuid?.() === 0 ? ['-u', 'nobody'] : [];
  const child: ChildProcess = spawn(SMTP_SINK, ['-c', ...user, ...options, `127.0.0.1:${port}`, '64'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let mesg = 0;
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out = (out + d.toString('latin1')).slice(-200);
    const all = [...out.matchAll(/mesg=(\d+)/g)];
    if (all.length) mesg = Number(all[all.length - 1]![1]);
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let gone = false;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      gone = true;
      resolve();
    }),
  );
  // listening once a connection goes through (a connection alone is no message for its counter)
  await waitFor(
    () => {
      if (gone) throw new Error(`smtp-sink exited: ${stderr.trim()}`);
      return new Promise<boolean>((resolve) => {
        const probe = connect(port, '127.0.0.1');
        probe.once('connect', () => {
          probe.destroy();
          resolve(true);
        });
        probe.once('error', () => resolve(false));
      });
    },
    5000,
    `smtp-sink listening on ${port}`,
  );
  return {
    port,
    messages: () => mesg,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

const stops: (() => Promise<void>)[] = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
});

test('delivery to Postfix smtp-sink: accept, 450, 500 with a DSN, 421, and a hang-up after the data', { skip: existsSync(SMTP_SINK) ? false : `${SMTP_SINK} is missing (apt-get install postfix)` }, async () => {
  const sinks = {
    accept: await startSink([]),
    soft: await startSink(['-r', 'RCPT']),
    hard: await startSink(['-f', 'RCPT']),
    busy: await startSink(['-Q', 'MAIL']),
    drop: await startSink(['-q', '.']),
  };
  for (const s of Object.values(sinks)) stops.push(() => s.stop());
  const route = (s: Sink) => ({ host: '127.0.0.1', port: s.port, tls: 'none' });
  const m: LoggedMaster = await startLoggedMaster({
    queue: { retrySchedule: ['1h'] },
    delivery: { unreachableHold: '0s' },
    zones: { default: { processes: 1, connections: 4 } },
    routes: {
      'accept.test': route(sinks.accept),
      // where the DSNs to our senders go
      'src.test': route(sinks.accept),
      'soft.test': route(sinks.soft),
      'hard.test': route(sinks.hard),
      'busy.test': route(sinks.busy),
      'drop.test': route(sinks.drop),
    },
  });
  stops.push(() => m.stop());
  const smtp = submitter(m.smtpPort);
  stops.push(async () => smtp.close());

  const ids = {
    accept: await smtp.send({ to: 'u@accept.test', testId: 'sink-accept' }),
    soft: await smtp.send({ to: 'u@soft.test', testId: 'sink-soft' }),
    hard: await smtp.send({ to: 'u@hard.test', testId: 'sink-hard' }),
    busy: await smtp.send({ to: 'u@busy.test', testId: 'sink-busy' }),
    drop: await smtp.send({ to: 'u@drop.test', testId: 'sink-drop' }),
  };
  const outcome = (id: string) => m.logs.find((l) => l.id === id && ['DELIVERED', 'DEFERRED', 'BOUNCED'].includes(String(l.event)));
  await waitFor(() => Object.values(ids).every((id) => outcome(id) !== undefined), 20_000, 'an outcome for every message');
  const seen = Object.fromEntries(Object.entries(ids).map(([k, id]) => [k, outcome(id)!]));
  console.log(`# smtp-sink outcomes: ${JSON.stringify(Object.fromEntries(Object.entries(seen).map(([k, l]) => [k, `${String(l.event)} ${String(l.status)} ${String(l.response).slice(0, 60)}`])))}`);

  assert.equal(seen.accept!.event, 'DELIVERED');
  assert.equal(seen.soft!.event, 'DEFERRED');
  assert.equal(seen.soft!.status, '4.3.0');
  assert.match(String(seen.soft!.response), /^450 4\.3\.0/);
  assert.equal(seen.hard!.event, 'BOUNCED');
  assert.equal(seen.hard!.status, '5.3.0');
  assert.equal(seen.busy!.event, 'DEFERRED');
  assert.match(String(seen.busy!.response), /421/);
  assert.equal(seen.drop!.event, 'DEFERRED', 'no reply to the data: it may have arrived, so it is sent again later');

  // the accepted message and the DSN for hard.test both reach the accepting sink, once each
  await waitFor(() => sinks.accept.messages() >= 2, 10_000, 'the message and the DSN at the accepting sink');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(sinks.accept.messages(), 2);
  assert.equal(m.events('BOUNCED').filter((l) => l.id === ids.hard).length, 1);
  // deferred rows stay, with the reply that deferred them
  for (const key of ['soft', 'busy', 'drop'] as const) {
    const row = (await messageOf(m.api, ids[key]))?.messages[0];
    assert.equal(row?.status, 'DEFERRED', key);
    assert.equal(row?.deferred?.count, 1, key);
  }
  assert.equal(await messageOf(m.api, ids.accept), undefined, 'delivered mail has left the queue');
  assert.equal(await messageOf(m.api, ids.hard), undefined, 'bounced mail has left the queue');
});
