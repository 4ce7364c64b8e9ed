/**
 * The composer's second wall. send-checks refuses path/href before the composer runs; these
 * tests take that first wall away and feed the real MailComposer (file and URL access disabled)
 * straight into a real ingest on a real queue, to prove that if a path ever slipped through, the
 * client would get a 400 (not a 500 or a 503), nothing would be read or fetched, and nothing
 * would be stored.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import MailComposer from 'nodemailer/lib/mail-composer';
import { Ingest } from '../../lib/accept/ingest.js';
import { ComposedSource, compose } from '../../lib/api/compose.js';
import { HttpError, httpFromSmtp } from '../../lib/api/errors.js';
import { SmtpError } from '../../lib/errors/smtp-error.js';
import { createLogger } from '../../lib/log/logger.js';
import { DiskGuard } from '../../lib/queue/disk-space.js';
import { ZoneSelector } from '../../lib/zones/select.js';
import { startCanary, type Canary } from '../helpers/canary.js';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { queueKeyCount } from '../helpers/queue-census.js';

let m: TestMaster;
let canary: Canary;
let ingest: Ingest;
before(async () => {
  [m, canary] = await Promise.all([startMaster(), startCanary()]);
  const { config, store, hooks } = m.master;
  ingest = new Ingest({ config, store, hooks, zones: new ZoneSelector(config), disk: new DiskGuard(config.queue.path, 0), logger: createLogger('silent') });
});
after(() => Promise.all([m.stop(), canary.close()]));

function keyCount(): Promise<number> {
  return queueKeyCount(m.master.store);
}

for (const [label, extra, code] of [
  ['a file path', { attachments: [{ path: '/etc/passwd' }] }, 'EFILEACCESS'],
  ['a URL', { html: { href: 'CANARY/x' } }, 'EURLACCESS'],
] as const) {
  test(`composer refusal of ${label} during streaming → 400 via ingest, nothing stored, no fetch`, async () => {
    const json = JSON.parse(JSON.stringify(extra).replace('CANARY', canary.url)) as Record<string, unknown>;
    const mail = new MailComposer({ from: 'a@src.test', to: 'r@dest.test', text: 'x', ...json, disableFileAccess: true, disableUrlAccess: true }).compile();
    const source = new ComposedSource(mail.createReadStream());
    const before = await keyCount();
    const err = await ingest.ingest({ from: 'a@src.test', to: ['r@dest.test'], origin: { via: 'api' }, source, maxSizeBytes: 1 << 20 }).then(
      () => assert.fail('ingest accepted it'),
      (e: unknown) => e,
    );
    // ingest sees a permanent rejection (logged as NOQUEUE, not as a storage failure) …
    assert.ok(err instanceof SmtpError);
    assert.equal(err.responseCode, 554);
    assert.equal(httpFromSmtp(err).statusCode, 400);
    // … and the route answers with the precise 400 it kept
    assert.ok(source.failure instanceof HttpError);
    assert.equal(source.failure.statusCode, 400);
    assert.match(source.failure.message, new RegExp(code));
    assert.equal(await keyCount(), before);
    assert.deepEqual(canary.hits, []);
  });
}

test('compose: envelope parts replace only what they name; priority headers as the Mailer adds them', async () => {
  const a = compose({ from: 'h@src.test', to: 't@dest.test', bcc: 'b@dest.test', text: 'x', envelope: { from: 'e@src.test' } });
  assert.equal(a.from, 'e@src.test');
  assert.deepEqual(a.to, ['t@dest.test', 'b@dest.test']);
  const b = compose({ from: 'h@src.test', to: 't@dest.test', text: 'x', envelope: { cc: 'c@dest.test' } });
  assert.equal(b.from, 'h@src.test');
  assert.deepEqual(b.to, ['c@dest.test']);
  const c = compose({ from: 'h@src.test', to: ['t@dest.test', 't@dest.test'], text: 'x', priority: 'low' });
  assert.deepEqual(c.to, ['t@dest.test']);
  const head = (await c.mail.build()).toString().split('\r\n\r\n')[0]!;
  assert.match(head, /^X-Priority: 5 \(Lowest\)$/m);
  assert.match(head, /^Importance: Low$/m);
});
