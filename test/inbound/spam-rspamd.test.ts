/**
 * Rspamd's part of the spam score, against a real Rspamd (Debian's package, started on loopback
 * with a private config by test/helpers/rspamd.ts): GTUBE sent over SMTP to the receiver scores
 * 1.0, a plain message 0, a rule worth 4.5 of the reject threshold 15 scores 0.3; "both" takes
 * the higher of Rspamd and the model. Rspamd down or slow: the message is still stored, with the
 * model's score or null, the 250 never waits for it, and the outage is logged once.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parseRaw } from '../../lib/inbound/parse/parse-message.js';
import { BayesTrainer } from '../../lib/inbound/spam/bayes.js';
import { writeModelFile } from '../../lib/inbound/spam/model.js';
import { RspamdScore, rspamdShare } from '../../lib/inbound/spam/rspamd.js';
import { tokenize } from '../../lib/inbound/spam/tokens.js';
import type { InboundEnvelope } from '../../lib/inbound/store/types.js';
import { startBlackhole } from '../helpers/blackhole.js';
import { captureLog } from '../helpers/capture-log.js';
import { startReceiver, type TestReceiver } from '../helpers/inbound.js';
import { tempDir } from '../helpers/master.js';
import { GTUBE, rspamdInstalled, startRspamd, type TestRspamd } from '../helpers/rspamd.js';
import { HAM, HAMMY, SPAM, SPAMMY, toEml, type CorpusMail } from './spam-corpus.js';

// CI installs rspamd; elsewhere the tests that need it are skipped with the reason
const skip = !rspamdInstalled() && process.env.CI !== 'true' ? 'rspamd is not installed (apt-get install rspamd)' : false;

let rspamd: TestRspamd | undefined;
const receivers: TestReceiver[] = [];
before(async () => {
  if (!skip) rspamd = await startRspamd();
});
after(async () => {
  for (const r of receivers) await r.stop();
  await rspamd?.stop();
});

const plain = (subject: string, text: string): CorpusMail => ({ from: 'Bob <bob@partner.test>', subject, text });
const sendMail = (r: TestReceiver, mail: CorpusMail, n: number) => r.send({ envelope: { from: 'sender@src.test', to: ['sam@inbox.test'] }, raw: toEml(mail, n) });
const spamOf = async (r: TestReceiver, id: string) => (await r.json<{ spam: number | null }>(`/api/messages/${id}`)).body.spam;

/** An app dir with a model trained on the test corpus. */
async function trainedDir(): Promise<string> {
  const dir = tempDir();
  const t = new BayesTrainer(50_000);
  for (const [label, mails] of [['spam', SPAM], ['ham', HAM]] as const) {
    for (const [i, m] of mails.entries()) t.add(tokenize(await parseRaw([Buffer.from(toEml(m, i))])), label);
  }
  writeModelFile(path.join(dir, 'spam-model.json'), t.build());
  return dir;
}

/** A loopback port where nothing listens: one a server held and gave back. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

test('the share of the reject threshold: score / required_score clamped to 0..1; a reject verdict is 1; no threshold: 15', () => {
  assert.equal(rspamdShare({ action: 'no action', score: 4.5, requiredScore: 15 }), 0.3);
  assert.equal(rspamdShare({ action: 'no action', score: -3, requiredScore: 15 }), 0);
  assert.equal(rspamdShare({ action: 'add header', score: 40, requiredScore: 15 }), 1);
  assert.equal(rspamdShare({ action: 'reject', score: 2, requiredScore: 15 }), 1);
  assert.equal(rspamdShare({ action: 'no action', score: 6, requiredScore: NaN }), 0.4);
  assert.equal(rspamdShare({ action: 'no action', score: 6, requiredScore: 0 }), 0.4);
});

test('mode "rspamd" with a real Rspamd: GTUBE over SMTP scores 1.0, a plain message 0, a rule worth 4.5 (threshold 15) 0.3', { skip }, async () => {
  const r = await startReceiver({ api: { ratePerMinute: 0 }, spam: { mode: 'rspamd', rspamd: { url: rspamd!.url } } });
  receivers.push(r);
  const gtube = await sendMail(r, plain('test', `This is the GTUBE test.\n${GTUBE}\n`), 1);
  const normal = await sendMail(r, plain('Re: notes from yesterday', 'Hi Alice,\nthanks for the notes, see you on Monday.\nBob'), 2);
  const suspect = await sendMail(r, plain('odd', 'Somewhat odd: SLUICE-SUSPECT\n'), 3);
  assert.equal(await spamOf(r, gtube), 1);
  assert.equal(await spamOf(r, normal), 0);
  assert.equal(await spamOf(r, suspect), 0.3);
});

test('mode "both": the higher of Rspamd and the model (GTUBE in a hammy message is 1.0; a spammy message Rspamd lets pass keeps the model\'s score)', { skip }, async () => {
  const r = await startReceiver({ api: { ratePerMinute: 0 }, spam: { mode: 'both', rspamd: { url: rspamd!.url } } }, {}, await trainedDir());
  receivers.push(r);
  const gtube = await sendMail(r, { ...HAMMY, text: `${HAMMY.text}\n${GTUBE}\n` }, 1);
  const spammy = await sendMail(r, SPAMMY, 2);
  const hammy = await sendMail(r, HAMMY, 3);
  assert.equal(await spamOf(r, gtube), 1);
  const s = await spamOf(r, spammy);
  assert.ok(s !== null && s > 0.9, `spammy: ${s}`);
  const h = await spamOf(r, hammy);
  assert.ok(h !== null && h < 0.1, `hammy: ${h}`);
});

test('Rspamd down: every message is stored; "both" keeps the model\'s score, "rspamd" gives null; the outage is logged once', async () => {
  const url = `http://127.0.0.1:${await closedPort()}`;
  const log = captureLog('info');
  const both = await startReceiver({ api: { ratePerMinute: 0 }, spam: { mode: 'both', rspamd: { url } } }, {}, await trainedDir(), log.logger);
  receivers.push(both);
  const only = await startReceiver({ api: { ratePerMinute: 0 }, spam: { mode: 'rspamd', rspamd: { url } } });
  receivers.push(only);
  const ids = [await sendMail(both, SPAMMY, 1), await sendMail(both, HAMMY, 2), await sendMail(both, SPAMMY, 3)];
  const scores = await Promise.all(ids.map((id) => spamOf(both, id)));
  assert.ok(scores[0]! > 0.9 && scores[1]! < 0.1 && scores[2]! > 0.9, `scores: ${scores.join(', ')}`);
  const unavailable = log.events('RSPAMD_UNAVAILABLE');
  assert.equal(unavailable.length, 1, 'one line for the outage');
  assert.match(String(unavailable[0]!.reason), /cannot reach Rspamd: ECONNREFUSED/);
  assert.equal(await spamOf(only, await sendMail(only, SPAMMY, 4)), null);
});

test('Rspamd slow (connections hang): the 250 does not wait; the first message waits at most the timeout, the next ones not at all', async () => {
  const hole = await startBlackhole();
  try {
    const timeoutMs = 1500;
    const r = await startReceiver({ api: { ratePerMinute: 0 }, spam: { mode: 'rspamd', rspamd: { url: `http://127.0.0.1:${hole.port}`, timeout: timeoutMs, retryAfter: '10m' } } });
    receivers.push(r);
    let t0 = Date.now();
    const first = await sendMail(r, SPAMMY, 1);
    assert.ok(Date.now() - t0 < timeoutMs, `the 250 came after ${Date.now() - t0} ms`);
    assert.equal(await spamOf(r, first), null);
    assert.ok(Date.now() - t0 >= timeoutMs - 50, 'the first read waited for the timeout');
    t0 = Date.now();
    const second = await sendMail(r, SPAMMY, 2);
    assert.equal(await spamOf(r, second), null);
    assert.ok(Date.now() - t0 < timeoutMs, `the next message waited ${Date.now() - t0} ms`);
  } finally {
    await hole.stop();
  }
});

test('Rspamd back after an outage: asked again after retryAfter, logged RSPAMD_RECOVERED with the messages that went without its score', { skip }, async () => {
  // a link to the real Rspamd that the test cuts and restores
  let up = false;
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const link = net.createServer((client) => {
    connections++;
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    if (!up) return void client.destroy();
    const upstream = net.connect(rspamd!.port, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => link.listen(0, '127.0.0.1', resolve));
  try {
    const log = captureLog('info');
    let now = 1_000_000;
    const scorer = new RspamdScore({ url: `http://127.0.0.1:${(link.address() as net.AddressInfo).port}`, timeoutMs: 5000, maxSizeBytes: 1024 * 1024, retryAfterMs: 30_000 }, log.logger, () => now);
    const envelope: InboundEnvelope = { id: 'test-1', receivedAt: now, size: 200, chunks: 1, from: 'a@src.test', rcpts: [{ address: 'sam@inbox.test', inbox: 'sam@inbox.test', tag: '' }], inboxes: ['sam@inbox.test'], client: { ip: '127.0.0.1', helo: 'client.test', tls: false } };
    const raw = (body: string) => () => Readable.from([Buffer.from(`From: a@src.test\r\nTo: sam@inbox.test\r\nSubject: t\r\n\r\n${body}\r\n`)]);

    assert.equal(await scorer.score(envelope, raw('one')), null);
    assert.equal(await scorer.score(envelope, raw('two')), null);
    assert.equal(connections, 1, 'within retryAfter Rspamd is not asked');
    now += 30_000;
    assert.equal(await scorer.score(envelope, raw('three')), null);
    assert.equal(connections, 2);
    assert.equal(log.events('RSPAMD_UNAVAILABLE').length, 1, 'still one line for the outage');

    up = true;
    assert.equal(await scorer.score(envelope, raw('four')), null, 'still paused');
    now += 30_000;
    assert.equal(await scorer.score(envelope, raw(GTUBE)), 1);
    assert.deepEqual(log.events('RSPAMD_RECOVERED').map((l) => l.skipped), [4]);
    assert.equal(await scorer.score(envelope, raw('hello')), 0);
  } finally {
    // fetch keeps its connections open for the next request: end them, or close() waits for them
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => link.close(resolve));
  }
});
