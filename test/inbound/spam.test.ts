/**
 * The spam classifier's parts (lib/inbound/spam/): the tokeniser, the Naive Bayes arithmetic
 * against a hand-worked example, the trainer's vocabulary cap, the model file (format, version,
 * atomic write, the receiver's watch on it), the mbox splitter, and a model trained on a small
 * realistic corpus telling an unseen spammy message from an unseen hammy one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseRaw } from '../../lib/inbound/parse/parse-message.js';
import { BayesClassifier, BayesTrainer } from '../../lib/inbound/spam/bayes.js';
import { corpusMessages, emptyCount } from '../../lib/inbound/spam/corpus.js';
import { mboxMessages } from '../../lib/inbound/spam/mbox.js';
import { SpamModelFile } from '../../lib/inbound/spam/model-file.js';
import { MODEL_VERSION, parseModel, serializeModel, writeModelFile, type SpamModel } from '../../lib/inbound/spam/model.js';
import { MAX_TOKENS, tokenize, type SpamInput } from '../../lib/inbound/spam/tokens.js';
import { captureLog, type CapturedLog } from '../helpers/capture-log.js';
import { tempDir } from '../helpers/master.js';
import { HAM, HAMMY, SPAM, SPAMMY, toEml, toMbox, type CorpusMail } from './spam-corpus.js';

const input = (over: Partial<SpamInput>): SpamInput => ({ headers: [], from: null, replyTo: [], subject: '', text: null, html: null, links: [], attachments: [], ...over });
const model = (spam: number, ham: number, vocabulary: Record<string, [number, number]>): SpamModel => ({ trainedAt: '', messages: { spam, ham }, vocabulary: new Map(Object.entries(vocabulary)) });

async function tokensOf(mail: CorpusMail, n: number): Promise<string[]> {
  return tokenize(await parseRaw([Buffer.from(toEml(mail, n))]));
}

/** Polls `done` every 20 ms for at most `ms` (the model file is checked once a second). */
/** Polls `done`; the file watch polls too, so a loaded machine needs a margin (15 s). */
async function until(done: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`not done within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('tokens: header facts, link hosts, attachments, the subject marked, words in lower case, numbers by length, shapes', () => {
  const tokens = tokenize(
    input({
      headers: [
        { name: 'X-Mailer', value: 'PHPMailer 6.1.4 (https://github.test/phpmailer)' },
        { name: 'List-Unsubscribe', value: '<https://news.test/u>' },
        { name: 'Message-ID', value: '<1@news.test>' },
      ],
      from: { name: 'News', address: 'letters@News.Test' },
      replyTo: [{ name: '', address: 'other@elsewhere.test' }],
      subject: 'WIN a Prize!!',
      text: "Don't miss it: $50 off, code 482913. Visit https://www.shop.test/x?y=1 or mail me@shop.test",
      links: [
        { url: 'https://www.shop.test/x?y=1', text: '' },
        { url: 'https://shop.test/other', text: '' },
        { url: 'http://192.0.2.7/login', text: '' },
      ],
      attachments: [{ index: 0, filename: 'invoice.ZIP', contentType: 'Application/Zip', size: 1, sha256: '', md5: '', contentId: null, disposition: 'attachment', related: false }],
    }),
  );
  assert.deepEqual(tokens, [
    'from:news.test',
    'reply-to:other-domain',
    'x-mailer:phpmailer',
    'list-unsubscribe:yes',
    'date:none',
    'html:no',
    'links:1-3',
    'url:shop.test',
    'url:ip',
    'attachment:application/zip',
    'attachment-ext:zip',
    'subject:shape:!!',
    'subject:win',
    'subject:prize',
    'shape:money',
    "don't",
    'miss',
    'it',
    'num:2',
    'off',
    'code',
    'num:6',
    'visit',
    'or',
    'mail',
  ]);
});

test('tokens: base64-like runs are skipped, unspaced scripts become pairs, text comes from the HTML when there is none, and a message gives at most MAX_TOKENS', () => {
  assert.deepEqual(tokenize(input({ text: 'ok QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODkw' })).slice(-1), ['ok']);
  assert.deepEqual(tokenize(input({ text: '验证码是' })).filter((t) => !t.includes(':')), ['验证', '证码', '码是']);
  assert.deepEqual(tokenize(input({ html: '<p>Hello <b>there</b></p>' })).filter((t) => !t.includes(':')), ['hello', 'there']);
  const long = tokenize(input({ subject: 'big', text: 'word '.repeat(50_000) }));
  assert.equal(long.length, MAX_TOKENS);
  assert.ok(long.includes('subject:big'), 'headers and subject come before the body');
});

test('Naive Bayes: the score is the hand-worked posterior (Laplace smoothing, priors from the message counts); unknown tokens are left out', () => {
  // spam saw "cash" 3 times and "hello" once (4 tokens); ham saw "cash" once and "hello" 5 times (6)
  const c = new BayesClassifier(model(2, 3, { cash: [3, 1], hello: [1, 5] }));
  const v = 2;
  const pSpam = (2 / 5) * ((3 + 1) / (4 + v)) ** 2 * ((1 + 1) / (4 + v));
  const pHam = (3 / 5) * ((1 + 1) / (6 + v)) ** 2 * ((5 + 1) / (6 + v));
  const expected = pSpam / (pSpam + pHam);
  const got = c.score(['cash', 'cash', 'hello', 'never-seen'])!;
  assert.ok(Math.abs(got - expected) < 1e-12, `${got} vs ${expected}`);
  assert.equal(c.score(['never-seen']), null, 'no known token: no evidence, no score');
  assert.equal(c.score([]), null);
});

test('Naive Bayes: a model without spam or without ham scores nothing; long messages stay within 0..1', () => {
  assert.equal(new BayesClassifier(model(0, 0, {})).score(['x']), null);
  assert.equal(new BayesClassifier(model(5, 0, { x: [5, 0] })).score(['x']), null);
  assert.equal(new BayesClassifier(model(0, 5, { x: [0, 5] })).usable, false);
  const c = new BayesClassifier(model(1, 1, { a: [100, 0], b: [0, 100] }));
  assert.equal(c.score(Array(5000).fill('a')), 1);
  assert.equal(c.score(Array(5000).fill('b')), 0);
});

test('the trainer keeps the most frequent tokens up to the cap, in token order, with counts per class', () => {
  const t = new BayesTrainer(2);
  t.add(['a', 'b', 'b', 'c'], 'spam');
  t.add(['b', 'c', 'c', 'd'], 'ham');
  const m = t.build(new Date(0));
  assert.deepEqual(m.messages, { spam: 1, ham: 1 });
  assert.deepEqual([...m.vocabulary], [
    ['b', [2, 1]],
    ['c', [1, 2]],
  ]);
  assert.equal(m.seen, 4);
  assert.equal(m.trainedAt, '1970-01-01T00:00:00.000Z');
});

test('the model file: a round trip keeps every count; another format or version, or bad counts, are refused with the reason', () => {
  const m = model(3, 4, { 'subject:win': [3, 0], 'url:acme.test': [0, 4], '"quoted"': [1, 1] });
  const back = parseModel(serializeModel(m));
  assert.deepEqual(back.messages, m.messages);
  assert.deepEqual([...back.vocabulary], [...m.vocabulary]);
  const ok = JSON.parse(serializeModel(m)) as Record<string, unknown>;
  assert.throws(() => parseModel('{'), /not JSON/);
  assert.throws(() => parseModel(JSON.stringify({ ...ok, format: 'other' })), /not a Sluice spam model/);
  assert.throws(() => parseModel(JSON.stringify({ ...ok, version: MODEL_VERSION + 1 })), /model version 2, this Sluice reads version 1: train it again/);
  assert.throws(() => parseModel(JSON.stringify({ ...ok, messages: { spam: -1, ham: 2 } })), /"messages" must hold/);
  assert.throws(() => parseModel(JSON.stringify({ ...ok, vocabulary: { x: [1] } })), /vocabulary "x": expected \[spam, ham\] counts/);
});

test('writeModelFile replaces the file whole and leaves no temporary file behind', () => {
  const dir = tempDir();
  try {
    const file = path.join(dir, 'spam-model.json');
    writeModelFile(file, model(1, 1, { a: [1, 0] }));
    writeModelFile(file, model(2, 2, { b: [0, 1] }));
    assert.deepEqual(readdirSync(dir), ['spam-model.json']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the receiver watches the model file: none → no classifier; written → loaded; broken → the previous one stays; removed → none', async () => {
  const dir = tempDir();
  const log: CapturedLog = captureLog();
  const file = path.join(dir, 'spam-model.json');
  const watched = new SpamModelFile(file, log.logger);
  try {
    watched.start();
    assert.equal(watched.classifier, undefined);
    assert.equal(log.events('SPAM_MODEL_MISSING').length, 1);

    writeModelFile(file, model(1, 1, { cash: [3, 0], hello: [0, 3] }));
    await until(() => watched.classifier !== undefined);
    assert.ok(watched.classifier!.score(['cash'])! > 0.5);
    assert.deepEqual(log.events('SPAM_MODEL_LOADED').map((l) => [l.spam, l.ham, l.vocabulary]), [[1, 1, 2]]);

    writeFileSync(file, '{"format":"sluice-spam-model","version":99}');
    await until(() => log.events('SPAM_MODEL_INVALID').length > 0);
    assert.match(String(log.events('SPAM_MODEL_INVALID')[0]!.msg), /model version 99.*the model loaded before stays in use/);
    assert.ok(watched.classifier, 'the loaded model stays');

    rmSync(file);
    await until(() => watched.classifier === undefined);
    assert.equal(log.events('SPAM_MODEL_MISSING').length, 2);
  } finally {
    watched.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mbox: messages split at "From " lines after an empty line, ">From " unquoted once, an oversized message skipped and reported', async () => {
  const dir = tempDir();
  try {
    const file = path.join(dir, 'box');
    const big = 'x'.repeat(3000);
    writeFileSync(
      file,
      [
        'From a@src.test Thu Dec  4 10:00:00 2026',
        'Subject: one',
        '',
        'Hello.',
        'From the middle of a paragraph stays.',
        '>From here too',
        '>>From kept once',
        '',
        'From b@src.test Thu Dec  4 10:01:00 2026',
        'Subject: big',
        '',
        big,
        '',
        'From c@src.test Thu Dec  4 10:02:00 2026',
        'Subject: three',
        '',
        'last line without an end',
      ].join('\n'),
    );
    const got: (string | null)[] = [];
    for await (const m of mboxMessages(file, 2000)) got.push(m === null ? null : m.toString());
    assert.deepEqual(got, ['Subject: one\n\nHello.\nFrom the middle of a paragraph stays.\nFrom here too\n>From kept once\n\n', null, 'Subject: three\n\nlast line without an end']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a corpus folder: .eml files and mbox files in subfolders, hidden and other files skipped and counted', async () => {
  const dir = tempDir();
  try {
    mkdirSync(path.join(dir, 'sub'));
    writeFileSync(path.join(dir, 'a.eml'), toEml(HAM[0]!, 1));
    writeFileSync(path.join(dir, 'sub', 'box.mbox'), toMbox(HAM.slice(1, 4)));
    writeFileSync(path.join(dir, 'notes.txt'), 'not mail');
    writeFileSync(path.join(dir, '.hidden.eml'), toEml(HAM[5]!, 5));
    const count = emptyCount();
    const subjects: string[] = [];
    for await (const raw of corpusMessages(dir, count, 1024 * 1024)) subjects.push((await parseRaw([raw])).subject);
    assert.deepEqual(subjects, [HAM[0]!.subject, HAM[1]!.subject, HAM[2]!.subject, HAM[3]!.subject]);
    assert.deepEqual(count, { files: 2, messages: 4, skippedFiles: 1, tooBig: 0 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('trained on 20 spam and 20 ham messages, the model scores an unseen spammy message above 0.9 and an unseen hammy one below 0.1', async () => {
  const t = new BayesTrainer(50_000);
  for (const [i, m] of SPAM.entries()) t.add(await tokensOf(m, i), 'spam');
  for (const [i, m] of HAM.entries()) t.add(await tokensOf(m, 100 + i), 'ham');
  const c = new BayesClassifier(t.build());
  const spammy = c.score(await tokensOf(SPAMMY, 200))!;
  const hammy = c.score(await tokensOf(HAMMY, 201))!;
  assert.ok(spammy > 0.9, `spammy ${spammy}`);
  assert.ok(hammy < 0.1, `hammy ${hammy}`);

  // leave one out: each of the 40 scored by a model trained on the other 39
  const all = [...SPAM.map((m) => ({ m, spam: true })), ...HAM.map((m) => ({ m, spam: false }))];
  const tokens = await Promise.all(all.map((x, i) => tokensOf(x.m, i)));
  const wrong: string[] = [];
  for (const [k, x] of all.entries()) {
    const loo = new BayesTrainer(50_000);
    all.forEach((y, i) => i !== k && loo.add(tokens[i]!, y.spam ? 'spam' : 'ham'));
    const s = new BayesClassifier(loo.build()).score(tokens[k]!)!;
    if (s >= 0.5 !== x.spam) wrong.push(`${x.m.subject}: ${s.toFixed(3)}`);
  }
  assert.ok(wrong.length <= 3, `misjudged: ${wrong.join('; ')}`);
});
