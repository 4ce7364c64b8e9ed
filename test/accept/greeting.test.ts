/** The greeting names the host and Sluice once: "220 <hostname> ESMTP Sluice". */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startMaster } from '../helpers/master.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

test('the 220 greeting is "<hostname> ESMTP Sluice"', async () => {
  const m = await startMaster();
  try {
    const c = await SmtpTalk.connect(m.smtpPort);
    const greeting = await c.expect(220);
    assert.equal(greeting.text, '220 sluice.test ESMTP Sluice');
    c.close();
  } finally {
    await m.stop();
  }
});
