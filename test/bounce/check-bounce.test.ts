import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkBounce, type CheckBounceOptions } from '../../lib/bounce/check-bounce.js';

const BIN = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `sluice ARGS` with `stdin` piped in; killed (and failed) after 15 s. */
function sluice(args: string[], stdin?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`sluice ${args.join(' ')} did not exit within 15 s`));
    }, 15_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(stdin ?? '');
  });
}

const fields = (out: string) => Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));

/** Started at once and awaited by the tests: each run is a node start-up, so they overlap. */
function started(args: string[], stdin?: string): Promise<Run> {
  const p = sluice(args, stdin);
  p.catch(() => {}); // awaited (and reported) by its test
  return p;
}

const dir = mkdtempSync(path.join(tmpdir(), 'sluice-cb-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const goodRules = path.join(dir, 'rules.txt');
writeFileSync(goodRules, 'spam bounce /message blocked/i Blocked as spam\n');
const badRules = path.join(dir, 'bad.txt');
writeFileSync(badRules, '# fine\nspam nope /x/\n');

const runs = {
  gmail: started(
    ['check-bounce'],
    '550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n' +
      "550-5.1.1 double-checking the recipient's email address for typos or\r\n" +
      '550 5.1.1  https://support.google.com/mail/?p=NoSuchUser a1b2 - gsmtp\r\n',
  ),
  json: started(['check-bounce', '--json', '--response', '554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org']),
  bad: started(['check-bounce', '--rules', badRules, '-r', '550 x']),
  empty: started(['check-bounce'], ''),
};

test('check-bounce reads a multi-line reply from stdin and prints action, category, status, message and rule', async () => {
  const r = await runs.gmail;
  assert.equal(r.code, 0, r.stderr);
  const f = fields(r.stdout);
  assert.equal(f.action, 'bounce');
  assert.equal(f.category, 'unknown-user');
  assert.equal(f.status, '5.1.1');
  assert.equal(f.message, 'Recipient address does not exist');
  assert.match(f.rule ?? '', /^config\/bounce-rules\.txt:\d+ +unknown-user bounce \/account that you tried/);
  assert.match(f.reply ?? '', /^550 5\.1\.1 The email account .* typos or https:\/\/support\.google\.com/);
});

test('check-bounce --response --json prints the classification as JSON, with the remote status kept', async () => {
  const r = await runs.json;
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as Record<string, unknown> & { matchedRule: { pattern: string; id: string } };
  assert.equal(j.action, 'defer');
  assert.equal(j.category, 'blocklist');
  assert.equal(j.status, '4.7.1');
  assert.equal(j.remoteStatus, '5.7.1');
  assert.equal(j.responseCode, 554);
  assert.equal(j.rule, j.matchedRule.id);
  assert.match(j.matchedRule.pattern, /blocked using/);
});

test('check-bounce names a bad rules file as file:line and exits 1', async () => {
  const bad = await runs.bad;
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /bad\.txt:2: unknown action "nope"/);
});

/** The command in-process (the spawned runs above prove the CLI wiring; these cover the cases). */
function inProcess(opts: CheckBounceOptions, stdin = ''): { code: number; out: Record<string, string>; err: string } {
  const out: string[] = [];
  const err: string[] = [];
  const code = checkBounce(opts, { readStdin: () => stdin, out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: fields(out.join('\n')), err: err.join('\n') };
}

test('check-bounce says when no rule matched, classifies error codes, and uses --rules', () => {
  assert.equal(inProcess({}, '550 5.7.1 Message blocked\n').out.rule, '(none: 5xx bounces, category from the enhanced status 5.7.1)');
  const refused = inProcess({ code: 'ECONNREFUSED' }).out;
  assert.deepEqual([refused.action, refused.category, refused.status], ['defer', 'network', '4.4.1']);
  const nx = inProcess({ code: 'enotfound' }).out;
  assert.deepEqual([nx.action, nx.category, nx.status], ['bounce', 'dns', '5.1.2']);
  const dot = inProcess({ code: 'ETIMEDOUT', phase: 'DOT' }).out;
  assert.match(dot.message ?? '', /possible duplicate/);
  const own = inProcess({ rules: goodRules, response: '550 5.7.1 Message blocked' }).out;
  assert.deepEqual([own.category, own.message], ['spam', 'Blocked as spam']);
});

test('check-bounce with nothing on stdin fails with a hint', async () => {
  const r = await runs.empty;
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no reply given/);
});
