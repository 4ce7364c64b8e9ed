/**
 * F16 (slow set, needs root): a client that is not on loopback must authenticate. The client
 * runs in its own network namespace, joined to the host by a veth pair 10.231.0.1/30 (host) ↔
 * 10.231.0.2/30 (namespace), as the fault plan sets it up; traffic flows only between those
 * two ends. The master listens on 10.231.0.1 as well ([smtp.interfaces.ext]).
 *
 * From the namespace, MAIL FROM without AUTH → 530 5.7.0. From 127.0.0.1 → 250, on the main
 * listener and on the same ext listener.
 *
 * No silent skip: if the namespace cannot be made, the test fails and says why.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

// names only this test uses, so a leftover of a crashed run can be removed by name
const NS = 'sluice-f16';
const VETH_HOST = 'sl16-host';
const VETH_NS = 'sl16-ns';
const HOST_IP = '10.231.0.1';
const NS_IP = '10.231.0.2';

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function quietly(fn: () => unknown): void {
  try {
    fn();
  } catch {
    // it was not there
  }
}

function teardown(): void {
  quietly(() => ip('link', 'del', VETH_HOST)); // takes its peer with it
  quietly(() => ip('netns', 'del', NS));
}

function setup(): void {
  teardown(); // a leftover of an earlier run that died before its finally
  if (ip('-4', 'addr', 'show').includes(`${HOST_IP}/`)) throw new Error(`${HOST_IP} is already on an interface of this host; F16 needs it`);
  ip('netns', 'add', NS);
  ip('link', 'add', VETH_HOST, 'type', 'veth', 'peer', 'name', VETH_NS);
  ip('link', 'set', VETH_NS, 'netns', NS);
  ip('addr', 'add', `${HOST_IP}/30`, 'dev', VETH_HOST);
  ip('link', 'set', VETH_HOST, 'up');
  ip('netns', 'exec', NS, 'ip', 'addr', 'add', `${NS_IP}/30`, 'dev', VETH_NS);
  ip('netns', 'exec', NS, 'ip', 'link', 'set', VETH_NS, 'up');
  ip('netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up');
}

/**
 * An SMTP session run from inside the namespace by a tiny node client: sends each line, returns
 * every reply line it got (the greeting first). Asynchronous: the master runs in this process.
 */
async function talkFromNamespace(port: number, lines: string[]): Promise<string[]> {
  const script = `
    const net = require('node:net');
    const lines = ${JSON.stringify(lines)};
    const replies = [];
    let buf = '';
    const s = net.connect({ host: ${JSON.stringify(HOST_IP)}, port: ${port} });
    const timer = setTimeout(() => { console.log(JSON.stringify(replies.concat('TIMEOUT'))); process.exit(0); }, 10000);
    s.on('error', (e) => { console.log(JSON.stringify(replies.concat('ERROR ' + e.code))); process.exit(0); });
    s.on('data', (d) => {
      buf += d;
      let m;
      while ((m = /^(?:\\d{3}-[^\\n]*\\n)*\\d{3}(?: [^\\n]*)?\\r?\\n/.exec(buf))) {
        buf = buf.slice(m[0].length);
        replies.push(m[0].trimEnd().split(/\\r?\\n/).pop());
        const next = lines.shift();
        if (next === undefined) { clearTimeout(timer); console.log(JSON.stringify(replies)); s.destroy(); return; }
        s.write(next + '\\r\\n');
      }
    });
  `;
  const { stdout } = await promisify(execFile)('ip', ['netns', 'exec', NS, process.execPath, '-e', script], { encoding: 'utf8', timeout: 20_000 });
  return JSON.parse(stdout.trim()) as string[];
}

let m: TestMaster;

before(() => {
  try {
    setup();
  } catch (err) {
    teardown();
    const e = err as { stderr?: string; message: string };
    throw new Error(`F16 cannot build its network namespace (it needs root and iproute2): ${(e.stderr || e.message).trim()}`);
  }
});

after(async () => {
  await m?.stop();
  teardown();
});

test('F16: MAIL FROM without AUTH from a non-local client (own netns over veth) gets 530 5.7.0; from 127.0.0.1 it gets 250', { timeout: 60_000 }, async () => {
  m = await startMaster({ smtp: { interfaces: { ext: { host: HOST_IP, port: 0 } } } });
  const extPort = m.port('smtp.interfaces.ext');

  const replies = await talkFromNamespace(extPort, ['EHLO outside.test', 'MAIL FROM:<a@src.test>', 'QUIT']);
  assert.match(replies[0] ?? '', /^220 /, `greeting: ${JSON.stringify(replies)}`);
  assert.match(replies[1] ?? '', /^250 /, `EHLO: ${JSON.stringify(replies)}`);
  assert.match(replies[2] ?? '', /^530 5\.7\.0 /, `MAIL FROM without AUTH from ${NS_IP}: ${JSON.stringify(replies)}`);

  for (const [name, port, host] of [
    ['main listener', m.smtpPort, '127.0.0.1'],
    ['ext listener', extPort, HOST_IP],
  ] as const) {
    const c = await SmtpTalk.connect(port, host, '127.0.0.1');
    await c.expect(220);
    await c.send('EHLO local.test', 250);
    const r = await c.send('MAIL FROM:<a@src.test>', 250);
    assert.match(r.text, /^250 /, name);
    await c.send('RCPT TO:<r@dest.test>', 250);
    await c.send('QUIT', 221);
    c.close();
  }
});
