/**
 * `sluice spam train`, run as a real child process: from folders of .eml files into the app dir's
 * configured model (which a receiver on that app dir then uses), from mbox files into --out, and
 * one clear line with exit 1 for every way it cannot train.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseModel } from '../../lib/inbound/spam/model.js';
import { startReceiver } from '../helpers/inbound.js';
import { tempDir } from '../helpers/master.js';
import { HAM, SPAM, SPAMMY, toEml, toMbox } from '../inbound/spam-corpus.js';
import { lines, runCli } from './sluice-cli.js';

function scratch(t: { after(fn: () => void): void }): string {
  const dir = tempDir('sluice-spam-cli-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('folders of .eml files: prints what it read and writes the model to the app dir\'s inbound.spam.model, which the receiver then scores with', async (t) => {
  const dir = scratch(t);
  const app = path.join(dir, 'app');
  mkdirSync(app);
  writeFileSync(path.join(app, 'config.toml'), '[inbound.spam]\nmodel = "models/inbox.json"\n');
  mkdirSync(path.join(app, 'models'));
  for (const [name, mails] of [['spam', SPAM], ['ham', HAM]] as const) {
    mkdirSync(path.join(dir, name));
    mails.forEach((m, i) => writeFileSync(path.join(dir, name, `${String(i).padStart(2, '0')}.eml`), toEml(m, i)));
  }
  writeFileSync(path.join(dir, 'ham', 'README'), 'not a message');

  const res = await runCli(['spam', 'train', '--spam', path.join(dir, 'spam'), '--ham', path.join(dir, 'ham'), '-d', app], { timeoutMs: 60_000 });
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stderr, '');
  const out = lines(res.stdout);
  const file = path.join(app, 'models', 'inbox.json');
  assert.equal(out[0], 'spam: 20 messages from 20 files');
  assert.equal(out[1], 'ham: 20 messages from 20 files, 1 other file skipped');
  assert.match(out[2]!, /^vocabulary: \d+ tokens kept \(of \d+ seen; at most 50000\)$/);
  assert.equal(out[3], `model written to ${file} (a running receiver loads it within a second)`);
  const model = parseModel(readFileSync(file, 'utf8'));
  assert.deepEqual(model.messages, { spam: 20, ham: 20 });

  const r = await startReceiver({ api: { ratePerMinute: 0 } }, {}, app);
  try {
    const id = await r.send({ envelope: { from: 'sender@src.test', to: ['sam@inbox.test'] }, raw: toEml(SPAMMY, 1) });
    const { body } = await r.json<{ spam: number | null }>(`/api/messages/${id}`);
    assert.ok(body.spam !== null && body.spam > 0.9, `spam ${body.spam}`);
  } finally {
    await r.stop();
  }
});

test('mbox files (and a folder holding one): the messages between "From " lines, written to --out with the vocabulary capped', async (t) => {
  const dir = scratch(t);
  writeFileSync(path.join(dir, 'spam.mbox'), toMbox(SPAM));
  mkdirSync(path.join(dir, 'ham'));
  writeFileSync(path.join(dir, 'ham', 'Inbox'), toMbox(HAM.slice(0, 12)));
  writeFileSync(path.join(dir, 'more-ham.mbox'), toMbox(HAM.slice(12)));
  const out = path.join(dir, 'model.json');
  const res = await runCli(['spam', 'train', '--spam', path.join(dir, 'spam.mbox'), '--ham', path.join(dir, 'ham'), '--ham', path.join(dir, 'more-ham.mbox'), '--out', out, '--max-vocabulary', '300'], { timeoutMs: 60_000 });
  assert.equal(res.code, 0, res.stderr);
  assert.deepEqual(lines(res.stdout).slice(0, 2), ['spam: 20 messages from 1 file', 'ham: 20 messages from 2 files']);
  assert.match(res.stdout, /vocabulary: 300 tokens kept \(of \d+ seen; at most 300\)/);
  const model = parseModel(readFileSync(out, 'utf8'));
  assert.deepEqual(model.messages, { spam: 20, ham: 20 });
  assert.equal(model.vocabulary.size, 300);
});

test('what it cannot train on is said in one line, exit 1, and no model is written', async (t) => {
  const dir = scratch(t);
  mkdirSync(path.join(dir, 'spam'));
  writeFileSync(path.join(dir, 'spam', 'a.eml'), toEml(SPAM[0]!, 0));
  mkdirSync(path.join(dir, 'empty'));
  writeFileSync(path.join(dir, 'empty', 'notes.txt'), 'nothing here');
  const out = path.join(dir, 'model.json');
  const cases: [string[], string][] = [
    [['--spam', path.join(dir, 'nope'), '--ham', path.join(dir, 'empty'), '--out', out], `sluice spam train: --spam ${path.join(dir, 'nope')}: no such file or directory`],
    [['--spam', path.join(dir, 'spam'), '--ham', path.join(dir, 'empty'), '--out', out], `sluice spam train: no messages in --ham ${path.join(dir, 'empty')} (looked for .eml files and mbox files)`],
    [['--spam', path.join(dir, 'spam'), '--ham', path.join(dir, 'spam'), '--out', path.join(dir, 'no-dir', 'm.json')], `sluice spam train: the folder for the model, ${path.join(dir, 'no-dir')}: no such file or directory`],
    [['--spam', path.join(dir, 'spam'), '--ham', path.join(dir, 'spam'), '--out', out, '--max-vocabulary', '0'], 'sluice spam train: --max-vocabulary: a whole number from 1 to 1000000, not 0'],
  ];
  for (const [args, expected] of cases) {
    const res = await runCli(['spam', 'train', ...args]);
    assert.equal(res.code, 1, `${args.join(' ')}: ${res.stdout}`);
    assert.deepEqual(lines(res.stderr), [expected]);
  }
  const bad = path.join(dir, 'bad-app');
  mkdirSync(bad);
  writeFileSync(path.join(bad, 'config.toml'), '[inbound.spam]\nmode = "sometimes"\n');
  const res = await runCli(['spam', 'train', '--spam', path.join(dir, 'spam'), '--ham', path.join(dir, 'spam'), '-d', bad]);
  assert.equal(res.code, 1);
  assert.deepEqual(lines(res.stderr), [`sluice spam train: the config of ${bad} does not load (inbound.spam.mode: expected one of "bayes", "rspamd", "both", got "sometimes"); fix it (sluice check-config) or give --out`]);
  assert.throws(() => readFileSync(out), /ENOENT/, 'no model was written');

  const missing = await runCli(['spam', 'train', '--ham', path.join(dir, 'spam')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Missing required argument: spam/);
  const bare = await runCli(['spam']);
  assert.equal(bare.code, 1);
  assert.match(bare.stderr, /name a spam command: train/);
});
