import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SmtpError } from '../../lib/errors/smtp-error.js';
import type { HookEnvelope } from '../../lib/plugins/hooks.js';
import { HookRunner } from '../../lib/plugins/runner.js';
import { captureLog } from '../helpers/capture-log.js';

const session = {} as never;
const address = { address: 'r@dest.test', args: false } as never;

test('gate handlers run in registration order, each once; the first rejection stops the chain with its reply', async () => {
  const { logger } = captureLog();
  const hooks = new HookRunner(logger, 1000);
  const calls: string[] = [];
  hooks.add('smtp:rcpt_to', 'a', async () => void calls.push('a'));
  hooks.add('smtp:rcpt_to', 'b', async () => {
    calls.push('b');
    throw Object.assign(new Error('No such user here'), { responseCode: 550, enhancedStatus: '5.1.1' });
  });
  hooks.add('smtp:rcpt_to', 'c', async () => void calls.push('c'));
  const err = await hooks.run('smtp:rcpt_to', address, session).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof SmtpError);
  assert.equal(err.responseCode, 550);
  assert.equal(err.enhancedStatus, '5.1.1');
  assert.equal(err.replyText, '5.1.1 No such user here');
  assert.deepEqual(calls, ['a', 'b']);
});

test('a rejection without an enhanced status gets a generic one of its class; a bad one is replaced', async () => {
  const hooks = new HookRunner(captureLog().logger, 1000);
  hooks.add('smtp:mail_from', 'p', () => {
    throw Object.assign(new Error('go away\r\nInjected: header'), { responseCode: 421 });
  });
  hooks.add('smtp:rcpt_to', 'p', () => {
    throw Object.assign(new Error('nope'), { responseCode: 554, enhancedStatus: 'bogus' });
  });
  const e1 = (await hooks.run('smtp:mail_from', address, session).catch((e: unknown) => e)) as SmtpError;
  assert.equal(e1.responseCode, 421);
  assert.equal(e1.enhancedStatus, '4.0.0');
  assert.equal(e1.message, 'go away Injected: header', 'a reply text stays on one line');
  const e2 = (await hooks.run('smtp:rcpt_to', address, session).catch((e: unknown) => e)) as SmtpError;
  assert.equal(e2.enhancedStatus, '5.0.0');
});

test('a handler that throws anything else, or a 2xx "code", is a 451 logged with the plugin name', async () => {
  const log = captureLog();
  const hooks = new HookRunner(log.logger, 1000);
  hooks.add('smtp:connect', 'buggy', () => {
    throw new TypeError('cannot read properties of undefined');
  });
  hooks.add('smtp:data', 'weird', () => {
    throw Object.assign(new Error('ok?'), { responseCode: 250 });
  });
  hooks.add('smtp:mail_from', 'strings', () => Promise.reject('a string'));
  for (const run of [() => hooks.run('smtp:connect', session), () => hooks.run('smtp:data', {} as HookEnvelope, session), () => hooks.run('smtp:mail_from', address, session)]) {
    const e = (await run().catch((x: unknown) => x)) as SmtpError;
    assert.ok(e instanceof SmtpError);
    assert.equal(e.responseCode, 451);
    assert.equal(e.enhancedStatus, '4.3.0');
  }
  const failed = log.events('HOOK_FAILED');
  assert.deepEqual(failed.map((l) => [l.hook, l.plugin]), [['smtp:connect', 'buggy'], ['smtp:data', 'weird'], ['smtp:mail_from', 'strings']]);
});

test('a handler that takes too long is a 451 after the time limit, and its late failure is not unhandled', async () => {
  const log = captureLog();
  const hooks = new HookRunner(log.logger, 100);
  hooks.add('smtp:connect', 'slow', () => new Promise((_, reject) => setTimeout(() => reject(new Error('late')), 300)));
  const t0 = Date.now();
  const e = (await hooks.run('smtp:connect', session).catch((x: unknown) => x)) as SmtpError;
  const took = Date.now() - t0;
  assert.equal(e.responseCode, 451);
  assert.ok(took >= 90 && took < 1000, `took ${took} ms`);
  assert.match(String((log.events('HOOK_FAILED')[0]?.err as { message?: string })?.message), /timed out after 100 ms/);
  await new Promise((r) => setTimeout(r, 300)); // the late rejection lands here, handled
});

test('notify runs every handler even when one fails or times out, and never throws', async () => {
  const log = captureLog();
  const hooks = new HookRunner(log.logger, 100);
  const calls: string[] = [];
  hooks.add('queue:release', 'a', () => {
    calls.push('a');
    throw new Error('boom');
  });
  hooks.add('queue:release', 'b', () => new Promise(() => calls.push('b'))); // never settles
  hooks.add('queue:release', 'c', (zone, data) => void calls.push(`c:${zone}:${data.reason}`));
  await hooks.notify('queue:release', 'default', { id: 'x', seq: 1, recipient: 'r@d.test', domain: 'd.test', reason: 'deleted' });
  assert.deepEqual(calls, ['a', 'b', 'c:default:deleted']);
  assert.deepEqual(log.events('HOOK_FAILED').map((l) => l.plugin), ['a', 'b']);
});

test('an unknown hook name or a handler that is not a function is refused, naming the plugin', () => {
  const hooks = new HookRunner(captureLog().logger, 100);
  assert.throws(() => hooks.add('smtp:rcpt' as never, 'p1', () => undefined), /plugin p1: unknown hook "smtp:rcpt"/);
  assert.throws(() => hooks.add('smtp:rcpt_to', 'p2', 'nope' as never), /plugin p2: the handler for "smtp:rcpt_to" is not a function/);
  assert.equal(hooks.has('smtp:rcpt_to'), false);
});
