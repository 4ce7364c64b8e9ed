/**
 * F11 on the submission door: malformed commands and protocol abuse, as golden
 * transcripts (transcript.ts: each case is the bytes the client sends and the replies it must get,
 * down to the server closing the connection). The fuzz half of F11 is f11-fuzz.slow.test.ts; the
 * inbound receiver's transcripts are f11-inbound-protocol-abuse.test.ts.
 *
 * Policies of this door (the shared ones are in transcript.ts): AUTH where it is not offered is
 * 503 5.5.1, STARTTLS where it is not offered is 500.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { testCert } from '../helpers/test-cert.js';
import { line, play, protocolCases, type Step, type Transcript } from './transcript.js';
import { messageCount as countMessages } from '../helpers/queue-census.js';

type Listener = 'smtp' | 'tls' | 'early' | 'noauth';

interface Case extends Transcript {
  listener?: Listener;
}

const EHLO: Step[] = [line('EHLO client.test'), { reply: 250 }];

/** this door's own rows: its other listeners, and what only submission offers */
const OWN_CASES: Case[] = [
  { name: 'talking before the greeting', listener: 'early', greet: false, steps: [line('EHLO client.test'), { reply: 421, text: /too soon/ }, { closed: true }] },
  {
    name: 'AUTH when it is not offered',
    listener: 'noauth',
    steps: [line('EHLO client.test'), { reply: 250, text: /^(?![\s\S]*AUTH)/ }, line('AUTH PLAIN AGFsaWNlAHB3'), { reply: 503, text: /^503 5\.5\.1 / }],
  },
  { name: 'STARTTLS with an argument', listener: 'tls', steps: [...EHLO, line('STARTTLS now'), { reply: 501 }, line('NOOP'), { reply: 250 }] },
  { name: 'STARTTLS when it is not offered', steps: [...EHLO, line('STARTTLS'), { reply: [500, 502] }, line('NOOP'), { reply: 250 }] },
];

const CASES: Case[] = [
  ...protocolCases({ from: 'a@x.test', rcpt: 'r@y.test', maxRecipients: 1000, nthRcpt: (i) => `r${i}@y.test`, stored: (id) => stored(id) }),
  ...OWN_CASES,
];

let m: TestMaster;
const ports = new Map<Listener, number>();
before(async () => {
  const { keyFile: key, certFile: cert } = testCert();
  m = await startMaster({
    api: { enabled: false },
    smtp: {
      interfaces: {
        tls: { port: 0, key, cert },
        early: { port: 0, greetingDelay: '200ms' },
        noauth: { port: 0, authMethods: [] },
      },
    },
  });
  ports.set('smtp', m.smtpPort);
  for (const name of ['tls', 'early', 'noauth'] as const) ports.set(name, m.port(`smtp.interfaces.${name}`));
});
after(() => m.stop());

/** A queued message as text: its header block and its body. */
async function stored(id: string): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of m.master.store.readBody(id)) parts.push(c);
  return (await m.master.store.getMeta(id))!.headers + Buffer.concat(parts).toString('latin1');
}

function messageCount(): Promise<number> {
  return countMessages(m.master.store);
}

for (const c of CASES) {
  test(`F11 transcript: ${c.name}`, async () => {
    const before = await messageCount();
    const ids = await play(ports.get(c.listener ?? 'smtp')!, c);
    const stored = (await messageCount()) - before;
    assert.equal(stored, ids.length, 'exactly the messages that got 250 are stored');
    await c.check?.(ids);
  });
}
