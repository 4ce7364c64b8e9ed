import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { createAppDir } from '../../lib/app/create.js';
import { startMaster, tempDir, type TestMaster } from '../helpers/master.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

const masters: TestMaster[] = [];
after(async () => {
  for (const m of masters) await m.stop();
});

async function send(m: TestMaster, raw: string): Promise<string> {
  const c = await SmtpTalk.connect(m.smtpPort);
  try {
    await c.expect(220);
    await c.send('EHLO client.test', 250);
    await c.send('MAIL FROM:<a@src.test>', 250);
    await c.send('RCPT TO:<r@dest.test>', 250);
    await c.send('DATA', 354);
    c.write(`${raw}\r\n.\r\n`);
    const id = /queued as (\w+)/.exec((await c.expect(250)).text)![1]!;
    return (await m.master.store.getMeta(id))!.headers;
  } finally {
    c.close();
  }
}

test('core/headers removes, rewrites, sets and adds headers by rule, before Sluice adds its own', async () => {
  const m = await startMaster({
    plugins: {
      'core/headers': {
        enabled: ['main'],
        remove: ['Bcc', 'X-Originating-IP'],
        add: { 'X-Mailer': 'Sluice' },
        set: { Organization: 'Example Org' },
        rewrite: [{ header: 'Subject', match: '^\\[ext\\]\\s*', replace: '' }],
      },
    },
  });
  masters.push(m);
  const headers = await send(m, 'From: a@src.test\r\nTo: r@dest.test\r\nBcc: hidden@dest.test\r\nX-Originating-IP: [192.0.2.1]\r\nSubject: [ext] Quarterly report\r\nOrganization: Old Org\r\n\r\nbody');
  assert.doesNotMatch(headers, /^Bcc:/im);
  assert.doesNotMatch(headers, /^X-Originating-IP:/im);
  assert.match(headers, /^Subject: Quarterly report\r\n/m);
  assert.match(headers, /^Organization: Example Org\r\n/m);
  assert.equal(headers.match(/^Organization:/gim)?.length, 1);
  assert.match(headers, /^X-Mailer: Sluice\r\n/m);
  assert.match(headers, /^Message-ID: /m, "Sluice's own headers are still added");
  // the order of the other headers is kept: To stays between From and Subject
  assert.match(headers, /From: a@src\.test\r\nTo: r@dest\.test\r\nSubject: Quarterly report\r\n/);

  const kept = await send(m, 'From: a@src.test\r\nX-Mailer: Own Client 1.0\r\nSubject: plain\r\n\r\nbody');
  assert.match(kept, /^X-Mailer: Own Client 1\.0\r\n/m, '"add" leaves a header the message already has');
  assert.equal(kept.match(/^X-Mailer:/gim)?.length, 1);
});

test('core/headers refuses a rule it cannot use, naming the plugin and the key', async () => {
  const bad = await startMaster({ plugins: { 'core/headers': { enabled: ['main'], rewrite: [{ header: 'Subject', match: '([' }] } } }).catch((e: Error) => e);
  assert.match(String(bad), /plugin "core\/headers": init failed: rewrite\[0\]\.match: not a regular expression/);
  const typo = await startMaster({ plugins: { 'core/headers': { enabled: ['main'], remvoe: ['Bcc'] } } }).catch((e: Error) => e);
  assert.match(String(typo), /plugins\."core\/headers"\.remvoe: unknown key/);
});

test('the example plugin of `sluice create` loads once its config block is uncommented, and works', async () => {
  const dir = tempDir();
  createAppDir(dir);
  const configFile = path.join(dir, 'config.toml');
  const config = readFileSync(configFile, 'utf8');
  const block = /# \[plugins\."my-plugin"\]\n(?:# .*\n)+?(?=#\n)/.exec(config)?.[0];
  assert.ok(block, 'config.toml has a commented [plugins."my-plugin"] block');
  writeFileSync(configFile, config.replace(block, block.replace(/^# /gm, '')));
  const m = await startMaster({}, dir);
  masters.push(m);
  assert.deepEqual(m.master.plugins?.plugins.map((p) => [p.name, p.title]), [['my-plugin', 'My plugin']]);

  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: m.smtpPort, ignoreTLS: true });
  await assert.rejects(transport.sendMail({ from: 'a@src.test', to: 'x@blocked.example.test', text: 'x' }), /550 5\.7\.1 Mail to blocked\.example\.test is not accepted here/);
  const info = await transport.sendMail({ from: 'a@src.test', to: 'x@dest.test', subject: 'hi', text: 'x' });
  const id = /queued as (\w+)/.exec(info.response)![1]!;
  assert.match((await m.master.store.getMeta(id))!.headers, /^X-My-Plugin: seen\r\n/m);
});
