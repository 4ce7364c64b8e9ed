/**
 * The spam score through the receiver: messages sent over SMTP get `spam` from a model trained in
 * the test (in the full message, the inbox listing and Mailsac's shape); an inbox with no model
 * gives null; a model written while the receiver runs is used from then on, without a restart.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { parseRaw } from '../../lib/inbound/parse/parse-message.js';
import { BayesTrainer } from '../../lib/inbound/spam/bayes.js';
import { writeModelFile } from '../../lib/inbound/spam/model.js';
import { tokenize } from '../../lib/inbound/spam/tokens.js';
import { captureLog } from '../helpers/capture-log.js';
import { startReceiver, type TestReceiver } from '../helpers/inbound.js';
import { tempDir } from '../helpers/master.js';
import { HAM, HAMMY, SPAM, SPAMMY, toEml, type CorpusMail } from './spam-corpus.js';

const receivers: TestReceiver[] = [];
after(async () => {
  for (const r of receivers) await r.stop();
});

async function trainInto(file: string): Promise<void> {
  const t = new BayesTrainer(50_000);
  for (const [label, mails] of [['spam', SPAM], ['ham', HAM]] as const) {
    for (const [i, m] of mails.entries()) t.add(tokenize(await parseRaw([Buffer.from(toEml(m, i))])), label);
  }
  writeModelFile(file, t.build());
}

/** Sends the message as written (its own headers) to sam@inbox.test over SMTP. */
const sendMail = (r: TestReceiver, mail: CorpusMail, n: number) => r.send({ envelope: { from: 'sender@src.test', to: ['sam@inbox.test'] }, raw: toEml(mail, n) });

interface Listed {
  messages: { id: string; spam: number | null }[];
}

test('a model in the app dir: a spammy message gets a high score and a hammy one a low one, in the message, the listing and the Mailsac routes', async () => {
  const dir = tempDir();
  await trainInto(path.join(dir, 'spam-model.json'));
  const r = await startReceiver({ api: { ratePerMinute: 0 } }, {}, dir);
  receivers.push(r);
  const spamId = await sendMail(r, SPAMMY, 1);
  const hamId = await sendMail(r, HAMMY, 2);

  const spam = (await r.json<{ spam: number | null }>(`/api/messages/${spamId}`)).body.spam;
  const ham = (await r.json<{ spam: number | null }>(`/api/messages/${hamId}`)).body.spam;
  assert.ok(spam !== null && spam > 0.9, `spammy: ${spam}`);
  assert.ok(ham !== null && ham < 0.1, `hammy: ${ham}`);

  const listed = (await r.json<Listed>('/api/inboxes/sam@inbox.test/messages')).body.messages;
  assert.deepEqual(listed.map((m) => [m.id, m.spam]), [
    [hamId, ham],
    [spamId, spam],
  ]);
  const mailsac = (await r.json<{ _id: string; spam: number | null }[]>('/api/addresses/sam@inbox.test/messages')).body;
  assert.deepEqual(mailsac.map((m) => [m._id, m.spam]), [
    [hamId, ham],
    [spamId, spam],
  ]);
});

test('no model: spam is null; a model written while the receiver runs is loaded within seconds and scores the next message', async () => {
  const dir = tempDir();
  const log = captureLog('info');
  const r = await startReceiver({ api: { ratePerMinute: 0 } }, {}, dir, log.logger);
  receivers.push(r);
  assert.equal(log.events('SPAM_MODEL_MISSING').length, 1);
  const before = await sendMail(r, SPAMMY, 3);
  assert.equal((await r.json<{ spam: number | null }>(`/api/messages/${before}`)).body.spam, null);
  assert.equal((await r.json<Listed>('/api/inboxes/sam@inbox.test/messages')).body.messages[0]!.spam, null);

  await trainInto(path.join(dir, 'spam-model.json'));
  const deadline = Date.now() + 10_000;
  while (!log.events('SPAM_MODEL_LOADED').length) {
    assert.ok(Date.now() < deadline, 'the model was not loaded within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const afterId = await sendMail(r, SPAMMY, 4);
  const spam = (await r.json<{ spam: number | null }>(`/api/messages/${afterId}`)).body.spam;
  assert.ok(spam !== null && spam > 0.9, `spammy after the model came: ${spam}`);
  assert.equal((await r.json<{ spam: number | null }>(`/api/messages/${before}`)).body.spam, null, 'a message is scored once, when it is parsed');
});
