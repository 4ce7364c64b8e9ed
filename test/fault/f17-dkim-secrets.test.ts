/**
 * F17: DKIM private keys never leave their boundary. Sluice runs as a child
 * process (so its stdout/stderr and /proc entries are real) with a key for src.test; a message
 * is signed and delivered; then every API route is called with valid, invalid and oversized
 * parameters, plus unknown routes and wrong methods. A second run has a broken key file (PEM
 * armour around bytes of our choosing) to drive the key-loading error path.
 *
 * Pass: 0 matches of "PRIVATE KEY" and of the key's first base64 bytes in every response body and
 * header, in stdout and stderr of the whole process tree, and in /proc/<pid>/environ and
 * /proc/<pid>/cmdline of the master and its workers. API responses do not name the key file.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startFakeMx } from '../helpers/fakemx.js';
import { tempDir } from '../helpers/master.js';
import { childConfig, writeConfig } from '../helpers/app-dir.js';
import { startSluice, type SluiceChild } from '../helpers/sluice-child.js';

const SLUICE_BIN = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url));

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

function procText(pid: number, what: 'environ' | 'cmdline'): string {
  try {
    return readFileSync(`/proc/${pid}/${what}`).toString('latin1');
  } catch {
    return '';
  }
}

function writeKey(dir: string, name: string, pem: string): string {
  const file = path.join(dir, 'keys', name);
  writeFileSync(file, pem, { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

test('F17: the DKIM private key appears in no API response, log line, stderr, environment or command line', async () => {
  const mx = await startFakeMx({ tls: false });
  cleanup.push(() => mx.stop());
  const dir = tempDir('sluice-f17-');
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(path.join(dir, 'keys'));
  const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const keyFile = writeKey(dir, 'src.test.s1.pem', pem);
  const keyBytes = pem.split('\n')[1]!.slice(0, 40); // the first 30 bytes of the key, base64
  const keyMiddle = pem.split('\n')[3]!.slice(0, 40); // bytes only this key has (the start is an ASN.1 header)
  const needles = ['PRIVATE KEY', keyBytes, keyMiddle];

  writeConfig(dir, childConfig({
    dkim: { keys: [{ domain: 'src.test', selector: 's1', privateKey: 'keys/src.test.s1.pem' }] },
    zones: { default: { processes: 2, connections: 2, route: { host: mx.host, port: mx.port } } },
  }));
  let child: SluiceChild = await startSluice(dir);
  cleanup.push(async () => void (await child.stop()));
  await child.waitForLine((l) => l.event === 'WORKER_READY', 10_000, 'a ready worker');
  const api = `http://127.0.0.1:${child.port('api')}`;

  // a signed delivery, so the key is in use
  const sent = await fetch(`${api}/send`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ from: 'a@src.test', to: 'b@dest.test', subject: 'signed', text: 'hello', headers: { 'X-Test-Id': 'f17' } }) });
  assert.equal(sent.status, 200);
  const { id } = (await sent.json()) as { id: string };
  await mx.waitFor(1, 10_000);
  assert.match(mx.messages[0]!.data!.toString('latin1'), /^DKIM-Signature: .*d=src\.test; s=s1/m, 'the message was signed');

  const big = 'x'.repeat(70_000);
  const calls: [string, string, unknown?][] = [
    ['GET', '/health'], ['GET', '/metrics'], ['GET', '/'], ['GET', '/nope'], ['GET', `/${big}`], ['GET', '/documentation'], ['GET', '/config'],
    ['GET', '/queue/default'], ['GET', '/queue/nozone'], ['GET', `/queue/${big}`], ['GET', '/queue/%00%ff'], ['PUT', '/queue/default'],
    ['GET', `/message/${id}`], ['GET', '/message/nope'], ['GET', '/message/01a2000000000000000000'], ['GET', `/message/${big.slice(0, 2000)}`],
    ['DELETE', '/message/nope'], ['POST', '/message/nope/retry'], ['POST', `/message/${id}/retry`], ['PATCH', `/message/${id}`],
    ['POST', '/send', { from: 'a@src.test', to: 'b@dest.test', text: 'x' }],
    ['POST', '/send', { from: 'a@src.test', to: 'b@dest.test', attachments: [{ path: keyFile }] }],
    ['POST', '/send', { from: 'a@src.test', to: 'b@dest.test', raw: { path: keyFile } }],
    ['POST', '/send', { from: 'a@src.test', to: 'b@dest.test', text: { path: keyFile } }],
    ['POST', '/send', { from: 'a@src.test', to: 'b@dest.test', attachments: [{ href: `file://${keyFile}` }] }],
    ['POST', '/send', { from: 'not an address', to: [] }],
    ['POST', '/send', { from: 'a@src.test', to: 'b@dest.test', headers: { 'X-Sending-Zone': 'nozone' }, text: 'x' }],
    ['POST', '/send', '{bad json'],
    ['POST', '/send', { from: 'a@src.test', to: 'b@dest.test', text: 'y'.repeat(40 * 1024 * 1024) }],
    ['POST', '/send', { from: 'a@src.test', to: Array.from({ length: 200 }, (_, i) => `r${i}@dest.test`), text: 'x' }],
  ];
  const responses: string[] = [];
  for (const [method, url, body] of calls) {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      init.headers = { 'content-type': 'application/json' };
    }
    let text: string;
    try {
      const res = await fetch(`${api}${url}`, init);
      text = `${method} ${url.slice(0, 80)} → ${res.status} ${JSON.stringify([...res.headers])} ${await res.text()}`;
      assert.ok(res.status < 500 || res.status === 503 || res.status === 507, `${method} ${url.slice(0, 60)}: ${res.status} ${text.slice(0, 300)}`);
    } catch (err) {
      text = `${method} ${url.slice(0, 80)} → ${(err as Error).message}`;
    }
    responses.push(text);
  }
  await new Promise((r) => setTimeout(r, 300)); // let the last log lines arrive

  const pids = [child.pid, ...child.workerPids()];
  const places: [string, string][] = [
    ['API responses', responses.join('\n')],
    ['stdout', child.stdout()],
    ['stderr', child.stderr()],
    ...pids.flatMap((pid): [string, string][] => [
      [`/proc/${pid}/environ`, procText(pid, 'environ')],
      [`/proc/${pid}/cmdline`, procText(pid, 'cmdline')],
    ]),
  ];
  for (const [where, text] of places) for (const needle of needles) assert.ok(!text.includes(needle), `${where} contains ${needle === 'PRIVATE KEY' ? needle : 'key bytes'}`);
  assert.ok(!responses.join('\n').includes(keyFile), 'no API response names the key file');
  assert.ok(procText(child.pid, 'environ').length > 0, 'the environment was readable (the check is real)');
  console.log(`# F17: ${calls.length} API calls, ${pids.length} processes, ${child.stdout().split('\n').length} log lines: 0 matches`);
  await child.stop();

  // the key-loading error path: PEM armour around bytes we know, and a group-readable key
  const marker = 'U0VDUkVUTUFSS0VSU0VDUkVUTUFSS0VS';
  writeKey(dir, 'broken.pem', `-----BEGIN PRIVATE KEY-----\n${marker}${keyMiddle}\n-----END PRIVATE KEY-----\n`);
  writeConfig(dir, childConfig({
    dkim: { keys: [{ domain: 'broken.test', selector: 'b1', privateKey: 'keys/broken.pem' }] },
    zones: { default: { processes: 1, connections: 1, route: { host: mx.host, port: mx.port } } },
  }));
  // the master checks every key before it forks a worker: it refuses to start, in one line
  const run = spawnSync(process.execPath, [SLUICE_BIN, 'run', '-d', dir], { encoding: 'utf8', timeout: 20_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  assert.notEqual(run.status, 0, 'a broken DKIM key stops the start');
  const stderrLines = run.stderr.trim().split('\n');
  assert.equal(stderrLines.length, 1, run.stderr);
  const all = `${run.stdout}\n${run.stderr}`;
  for (const needle of [...needles, marker]) assert.ok(!all.includes(needle), `the key error path leaks ${needle === 'PRIVATE KEY' ? needle : 'key bytes'}`);
  assert.match(stderrLines[0]!, /b1|broken/, 'the error names the selector or the file');
  const failed = { msg: stderrLines[0] };
  console.log(`# F17 error path: "${String(failed.msg)}"`);
});
