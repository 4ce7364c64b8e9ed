/**
 * F15, slow set: the whole `sluice run` in a child process under `strace -f -e trace=openat`,
 * attacked through POST /send with every path/href vector. Pass: every vector → 400, 0 hits on a
 * loopback canary HTTP server, and 0 openat of the named files (/etc/passwd, /etc/shadow, and a
 * canary file of our own that nothing else could have a reason to open). A positive control
 * proves strace sees the child's opens at all: its config.toml shows up in the trace.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startCanary, type Canary } from '../helpers/canary.js';
import { isErrorShape, postJson, type Json } from '../helpers/http.js';
import { tempDir } from '../helpers/master.js';

const SLUICE_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/sluice.js');
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
const hasStrace = spawnSync('strace', ['-V']).status === 0;

let dir: string;
let traceFile: string;
let secretFile: string;
let canary: Canary;
let child: ChildProcess | undefined;
let sluicePid = 0;
let api = '';

before(async () => {
  if (!hasStrace) return;
  dir = tempDir('sluice-f15-');
  traceFile = path.join(dir, 'openat.trace');
  secretFile = path.join(dir, 'secret-canary.txt');
  writeFileSync(secretFile, 'TOP SECRET CANARY\n');
  writeFileSync(
    path.join(dir, 'config.toml'),
    ['hostname = "sluice.test"', '[log]', 'level = "info"', '[smtp]', 'port = 0', '[api]', 'port = 0', '[channel]', 'port = 0', '[inbound]', 'port = 0', '[inbound.pop3]', 'port = 0', '[queue]', 'minFreeSpace = 0', '[zones.default]', 'processes = 0', '[dns]', 'servers = ["127.0.0.1:9"]', ''].join('\n'),
  );
  canary = await startCanary();
  child = spawn('strace', ['-f', '-e', 'trace=openat', '-o', traceFile, process.execPath, SLUICE_BIN, 'run', '-d', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // only our config.toml configures it: no SLUICE_… variables of the test runner's environment
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SLUICE_'))),
  });
  const stderr: string[] = [];
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  const listening = new Promise<{ port: number; pid: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no API LISTENING line within ${START_TIMEOUT_MS} ms: ${stderr.join('')}`)), START_TIMEOUT_MS);
    child!.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sluice exited early (${code}): ${stderr.join('')}`));
    });
    readline.createInterface({ input: child!.stdout! }).on('line', (line) => {
      let entry: Json;
      try {
        entry = JSON.parse(line) as Json;
      } catch {
        return;
      }
      if (entry.event === 'LISTENING' && entry.kind === 'api') {
        clearTimeout(timer);
        resolve({ port: Number(entry.port), pid: Number(entry.pid) });
      }
    });
  });
  const { port, pid } = await listening;
  sluicePid = pid;
  api = `http://127.0.0.1:${port}`;
});

after(async () => {
  if (!hasStrace) return;
  await stopChild();
  await canary.close();
  rmSync(dir, { recursive: true, force: true });
});

/** SIGTERM to Sluice by its PID (strace then exits with it); SIGKILL to our strace if it hangs. */
async function stopChild(): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child!.once('exit', () => resolve()));
  if (sluicePid) process.kill(sluicePid, 'SIGTERM');
  const timer = setTimeout(() => child?.pid && process.kill(child.pid, 'SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

function openCount(trace: string, file: string): number {
  return trace.split('\n').filter((l) => l.includes('openat(') && l.includes(`"${file}"`)).length;
}

test('F15 under strace: path/href vectors → 400, 0 canary hits, 0 openat of the named files', { skip: !hasStrace && 'strace is not installed' }, async (t) => {
  const c = canary.url;
  const base = { from: 'a@src.test', to: 'r@dest.test', subject: 'f15' };
  const vectors: Json[] = [
    { text: 'x', attachments: [{ path: '/etc/passwd' }] },
    { text: 'x', attachments: [{ path: 'file:///etc/passwd' }] },
    { text: 'x', attachments: [{ path: secretFile }] },
    { text: 'x', attachments: [{ path: `file://${secretFile}` }] },
    { text: 'x', attachments: [{ href: `${c}/attachment` }] },
    { text: 'x', attachments: [{ path: `${c}/attachment-path` }] },
    { raw: { path: '/etc/shadow' } },
    { raw: { path: secretFile } },
    { text: { path: secretFile } },
    { html: { path: `${c}/html` } },
    { watchHtml: { path: secretFile } },
    { text: 'x', icalEvent: { path: secretFile } },
    { text: 'x', amp: { href: `${c}/amp` } },
    { text: 'x', alternatives: [{ contentType: 'text/x-a', path: secretFile }] },
    { text: 'x', alternatives: [{ contentType: 'text/x-a', href: `${c}/alt` }] },
    { text: 'x', attachments: [{ path: 'data:text/plain;base64,aGVsbG8=' }] },
  ];
  let worst = 0;
  for (const extra of vectors) {
    const r = await postJson(`${api}/send`, { ...base, ...extra });
    worst = Math.max(worst, r.ms);
    assert.equal(r.status, 400, `${JSON.stringify(extra)} → ${JSON.stringify(r.body)}`);
    assert.ok(isErrorShape(r.body));
  }
  // a normal message still goes through the traced process
  const ok = await postJson(`${api}/send`, { ...base, text: secretFile });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));

  await stopChild();
  const trace = readFileSync(traceFile, 'utf8');
  t.diagnostic(`${vectors.length} vectors, slowest 400 ${worst.toFixed(1)} ms under strace; trace ${trace.split('\n').length} lines`);
  assert.ok(openCount(trace, path.join(dir, 'config.toml')) >= 1, 'positive control: strace saw the child open its config.toml');
  for (const file of ['/etc/passwd', '/etc/shadow', secretFile]) {
    assert.equal(openCount(trace, file), 0, `openat of ${file}`);
  }
  assert.deepEqual(canary.hits, [], 'canary hits');
});
