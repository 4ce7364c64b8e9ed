/**
 * The short CLI commands, run as real child processes: --help, --version, create,
 * check-config and hash-password.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { verifyPassword } from '../../lib/accept/passwords.js';
import { lines, runCli, SLUICE_BIN } from './sluice-cli.js';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('--help lists the commands and --version prints the package version', async () => {
  const help = await runCli(['--help']);
  assert.equal(help.code, 0, help.stderr);
  for (const cmd of ['run', 'create <dir>', 'check-config', 'hash-password']) assert.match(help.stdout, new RegExp(`sluice ${cmd}`));
  const pkg = JSON.parse(readFileSync(path.join(path.dirname(SLUICE_BIN), '..', '..', 'package.json'), 'utf8')) as { version: string };
  const version = await runCli(['--version']);
  assert.equal(version.code, 0);
  assert.equal(version.stdout.trim(), pkg.version);
  const none = await runCli([]);
  assert.notEqual(none.code, 0);
  assert.match(none.stderr, /name a command/);
});

test('create makes an app dir that passes check-config, and refuses to overwrite it', async (t) => {
  const dir = path.join(tempDir(t), 'app');
  const made = await runCli(['create', dir]);
  assert.equal(made.code, 0, made.stderr);
  assert.match(made.stdout, /created /);
  for (const sub of ['plugins', 'keys', 'data']) assert.ok(statSync(path.join(dir, sub)).isDirectory(), sub);
  assert.equal(statSync(path.join(dir, 'keys')).mode & 0o077, 0, 'keys/ is private');
  assert.match(readFileSync(path.join(dir, 'config.toml'), 'utf8'), /\[smtp\]/);

  const check = await runCli(['check-config', '-d', dir]);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /^config ok/);

  writeFileSync(path.join(dir, 'config.toml'), '# mine\n');
  const again = await runCli(['create', dir]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /exists already; not overwriting it/);
  assert.equal(readFileSync(path.join(dir, 'config.toml'), 'utf8'), '# mine\n', 'the existing config is untouched');
});

test("create puts an example plugin (a plain ES module) and a commented block for it in the app dir", async (t) => {
  const dir = path.join(tempDir(t), 'app');
  assert.equal((await runCli(['create', dir])).code, 0);
  const plugin = (await import(pathToFileURL(path.join(dir, 'plugins', 'my-plugin.mjs')).href)) as { title: string; init: unknown };
  assert.equal(plugin.title, 'My plugin');
  assert.equal(typeof plugin.init, 'function');
  assert.match(readFileSync(path.join(dir, 'config.toml'), 'utf8'), /# path = "plugins\/my-plugin\.mjs"/);
  // that it loads and works end to end is test/plugins/headers-and-example.test.ts
});

test('check-config prints one line per problem, each naming its key, and exits 1', async (t) => {
  const dir = tempDir(t);
  writeFileSync(path.join(dir, 'config.toml'), '[smtp]\nprot = 2600\nmaxSize = "big"\n');
  const res = await runCli(['check-config', '-d', dir], { env: { SLUICE_API__PORT: 'eighty' } });
  assert.equal(res.code, 1);
  assert.equal(res.stdout, '');
  assert.deepEqual(lines(res.stderr), [
    'config error: smtp.prot: unknown key (did you mean "port"?)',
    'config error: smtp.maxSize: expected a size like "25MB" or a number of bytes of at least 1KB, got "big"',
    'config error: api.port: expected a whole number from 0 to 65535, got "eighty" (set by SLUICE_API__PORT)',
  ]);
});

test('check-config --print shows the merged config with secrets hidden', async (t) => {
  const dir = tempDir(t);
  writeFileSync(path.join(dir, 'config.toml'), '[api]\ntoken = "s3cret"\n[smtp.users]\nalice = "scrypt$1$2$3$4$5"\n');
  const res = await runCli(['check-config', '-d', dir, '--print']);
  assert.equal(res.code, 0, res.stderr);
  assert.doesNotMatch(res.stdout, /s3cret|scrypt\$/);
  const json = JSON.parse(res.stdout.slice(res.stdout.indexOf('{'))) as { smtp: { port: number }; api: { token: string } };
  assert.equal(json.smtp.port, 2525);
  assert.equal(json.api.token, '(set)');
});

test('hash-password prints a scrypt hash that verifyPassword accepts, from an argument or stdin', async () => {
  const fromArg = await runCli(['hash-password', 'correct horse']);
  assert.equal(fromArg.code, 0, fromArg.stderr);
  const hash = fromArg.stdout.trim();
  assert.match(hash, /^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
  assert.equal(await verifyPassword('correct horse', hash), true);
  assert.equal(await verifyPassword('wrong horse', hash), false);

  const fromStdin = await runCli(['hash-password'], { input: 'battery staple\n' });
  assert.equal(fromStdin.code, 0, fromStdin.stderr);
  const hash2 = fromStdin.stdout.trim();
  assert.notEqual(hash2, hash);
  assert.equal(await verifyPassword('battery staple', hash2), true, 'the trailing newline is not part of the password');

  const empty = await runCli(['hash-password'], { input: '' });
  assert.equal(empty.code, 1);
  assert.match(empty.stderr, /empty password/);
  assert.equal(existsSync(SLUICE_BIN), true);
});
