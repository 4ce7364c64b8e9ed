/**
 * The config loader: layers (defaults ← app config.toml ← SLUICE_ env), validation that names
 * the key and what was expected, all problems together, paths, freezing, units.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, listeners, loadConfig, type LoadedConfig } from '../../lib/config/load.js';
import { parseDuration, parseSize } from '../../lib/config/spec.js';

/** A fresh app dir with an optional config.toml; removed when the test ends. */
function appDir(t: { after(fn: () => void): void }, toml?: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  if (toml !== undefined) writeFileSync(path.join(dir, 'config.toml'), toml);
  return dir;
}

function load(dir: string, env: Record<string, string> = {}): LoadedConfig {
  return loadConfig({ appDir: dir, env });
}

/** The problems a load reports (fails the test if it loads). */
function problems(dir: string, env: Record<string, string> = {}): string[] {
  try {
    load(dir, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail('expected the config to be refused');
}

test('the built-in defaults load on their own, with units parsed and loopback listeners', (t) => {
  const dir = appDir(t);
  const { config, files } = load(dir);
  assert.equal(files.length, 1, 'no config.toml: only the defaults were read');
  assert.equal(config.smtp.host, '127.0.0.1');
  assert.equal(config.smtp.port, 2525);
  assert.equal(config.smtp.maxSize, 25 * 1024 * 1024);
  assert.equal(config.smtp.socketTimeout, 60_000);
  assert.equal(config.smtp.dataTimeout, 10 * 60_000);
  assert.deepEqual(config.smtp.trustedNetworks, ['127.0.0.0/8', '::1/128']);
  assert.equal(config.smtp.key, undefined);
  assert.equal(config.api.host, '127.0.0.1');
  assert.equal(config.api.port, 8080);
  assert.equal(config.api.token, undefined);
  assert.deepEqual(Object.keys(config.zones), ['default']);
  assert.equal(config.zones.default!.processes, 1);
  assert.equal(config.zones.default!.connectionsPerDomain, 5, 'zone keys not set anywhere get the schema default');
  assert.equal(config.queue.path, path.join(dir, 'data', 'queue'));
});

test("the app dir's config.toml is laid over the defaults, table by table", (t) => {
  const dir = appDir(t, '[smtp]\nport = 2600\nmaxSize = "1MB"\n[zones.bulk]\nsenderDomains = ["news.example.test"]\n');
  const { config, files } = load(dir);
  assert.equal(files[1], path.join(dir, 'config.toml'));
  assert.equal(config.smtp.port, 2600);
  assert.equal(config.smtp.maxSize, 1024 * 1024);
  assert.equal(config.smtp.host, '127.0.0.1', 'keys the file leaves out keep their defaults');
  assert.deepEqual(Object.keys(config.zones).sort(), ['bulk', 'default']);
  assert.deepEqual(config.zones.bulk!.senderDomains, ['news.example.test']);
  assert.equal(config.zones.bulk!.processes, 1);
});

test('SLUICE_ environment variables are laid over both, nested levels and lists included', (t) => {
  const dir = appDir(t, '[smtp]\nport = 2600\n[zones.Bulk]\nprocesses = 2\n');
  const { config } = load(dir, {
    SLUICE_SMTP__PORT: '2700',
    SLUICE_SMTP__MAXSIZE: '2MB',
    SLUICE_SMTP__TRUSTEDNETWORKS: '["10.0.0.0/8"]',
    SLUICE_SMTP__REVERSELOOKUP: 'true',
    SLUICE_ZONES__BULK__PROCESSES: '4',
    SLUICE_ZONES__TRANSACTIONAL__RECIPIENTDOMAINS: '["bank.example.test"]',
    SLUICE_HOSTNAME: 'mta.example.test',
    SLUICE_API__TOKEN: '1234',
    OTHER_VARIABLE: 'ignored',
  });
  assert.equal(config.smtp.port, 2700);
  assert.equal(config.smtp.maxSize, 2 * 1024 * 1024);
  assert.deepEqual(config.smtp.trustedNetworks, ['10.0.0.0/8']);
  assert.equal(config.smtp.reverseLookup, true);
  assert.equal(config.zones.Bulk!.processes, 4, 'a user-named table from the file is matched without regard to case');
  assert.equal(config.zones.bulk, undefined);
  assert.deepEqual(config.zones.transactional!.recipientDomains, ['bank.example.test'], 'a new zone can come from the environment alone');
  assert.equal(config.hostname, 'mta.example.test');
  assert.equal(config.api.token, '1234', 'a string key keeps the raw text, even when it looks like a number');
});

test('an empty environment value unsets an optional key and is a bad value for the others', (t) => {
  const dir = appDir(t, '[api]\ntoken = "from-the-file"\n');
  assert.equal(load(dir, { SLUICE_API__TOKEN: '' }).config.api.token, undefined);
  assert.deepEqual(problems(dir, { SLUICE_SMTP__PORT: '' }), ['smtp.port: expected a whole number from 0 to 65535, got "" (set by SLUICE_SMTP__PORT)']);
});

test('an unknown key stops the load with a line naming it, inside user-named tables too', (t) => {
  const dir = appDir(
    t,
    ['[smtp]', 'prot = 2600', '[smtp.interfaces.submission]', 'port = 2587', 'maxsize = "1MB"', 'users = {}', '[zones.bulk]', 'procesess = 2', '[routes."example.test"]', 'host = "127.0.0.1"', 'prt = 1'].join('\n'),
  );
  const lines = problems(dir);
  const expectLine = (re: RegExp) => assert.ok(lines.some((l) => re.test(l)), `no line like ${re} in:\n${lines.join('\n')}`);
  expectLine(/^smtp\.prot: unknown key \(did you mean "port"\?\)$/);
  expectLine(/^smtp\.interfaces\.submission\.maxsize: unknown key \(did you mean "maxSize"\?\)$/);
  expectLine(/^smtp\.interfaces\.submission\.users: unknown key/);
  expectLine(/^zones\.bulk\.procesess: unknown key \(did you mean "processes"\?\)$/);
  expectLine(/^routes\."example\.test"\.prt: unknown key/);
  assert.equal(lines.length, 5, lines.join('\n'));
});

test('a key far from every known one lists the known keys', (t) => {
  const lines = problems(appDir(t, '[api]\nwhatever = 1\n'));
  assert.deepEqual(lines, ['api.whatever: unknown key (known keys: enabled, host, port, token, maxBodySize, maxRecipients, requestTimeout, idleTimeout, maxConnections, replyShape)']);
});

test('a bad value names the key, what was expected and what was given', (t) => {
  const dir = appDir(t, '[smtp]\nport = "x"\nmaxSize = "lots"\nauth = "sometimes"\nsocketTimeout = "5 parsecs"\n');
  assert.deepEqual(problems(dir), [
    'smtp.port: expected a whole number from 0 to 65535, got "x"',
    'smtp.maxSize: expected a size like "25MB" or a number of bytes of at least 1KB, got "lots"',
    'smtp.socketTimeout: expected a duration like "30s", "5m", "100ms" or a number of milliseconds of at least 100ms, got "5 parsecs"',
    'smtp.auth: expected one of "always", "untrusted", got "sometimes"',
  ]);
});

test('a bad value from the environment names the variable too', (t) => {
  const lines = problems(appDir(t), { SLUICE_SMTP__PORT: 'x', SLUICE_SMTP__TRUSTEDNETWORKS: '10.0.0.0/8' });
  assert.deepEqual(lines, [
    'smtp.port: expected a whole number from 0 to 65535, got "x" (set by SLUICE_SMTP__PORT)',
    'smtp.trustedNetworks: expected a list (each a CIDR block like "127.0.0.0/8" or an IP address), got "10.0.0.0/8" (set by SLUICE_SMTP__TRUSTEDNETWORKS)',
  ]);
});

test('SLUICE_ names that match no key are refused with a clear reason', (t) => {
  const lines = problems(appDir(t), {
    SLUICE_SMTP__PROT: '1',
    SLUICE_SMTP_PORT: '1',
    SLUICE_NOPE: '1',
    SLUICE_SMTP__PORT__X: '1',
    SLUICE_ZONES____PROCESSES: '1',
  });
  assert.deepEqual(lines, [
    'SLUICE_NOPE: not a config key: the top level has no key "nope" (known keys: hostname, log, smtp, api, channel, queue, delivery, events, tlsPolicies, zones, routes, dns, dkim, inbound, hooks, plugins)',
    'SLUICE_SMTP_PORT: not a config key: the top level has no key "smtp_port" (known keys: hostname, log, smtp, api, channel, queue, delivery, events, tlsPolicies, zones, routes, dns, dkim, inbound, hooks, plugins; levels are separated by a double underscore, e.g. SLUICE_SMTP__PORT)',
    'SLUICE_SMTP__PORT__X: not a config key: smtp.port takes no sub-keys',
    'SLUICE_SMTP__PROT: not a config key: [smtp] has no key "prot" (did you mean "port"?)',
    'SLUICE_ZONES____PROCESSES: not a config key: an empty level (three or more underscores in a row?)',
  ]);
});

test('an interface takes any listener key, inherits the rest from [smtp], and can come from env', (t) => {
  const dir = appDir(t, '[smtp]\nmaxSize = "10MB"\n[smtp.interfaces.submission]\nport = 2587\nauth = "always"\n');
  const { config } = load(dir, { SLUICE_SMTP__INTERFACES__SMTPS__PORT: '2465', SLUICE_SMTP__INTERFACES__SMTPS__MAXSIZE: '1MB' });
  const byName = Object.fromEntries(listeners(config));
  assert.deepEqual(Object.keys(byName), ['smtp', 'smtp.interfaces.submission', 'smtp.interfaces.smtps']);
  assert.equal(byName['smtp.interfaces.submission']!.port, 2587);
  assert.equal(byName['smtp.interfaces.submission']!.auth, 'always');
  assert.equal(byName['smtp.interfaces.submission']!.maxSize, 10 * 1024 * 1024, 'inherited from [smtp]');
  assert.equal(byName['smtp.interfaces.smtps']!.maxSize, 1024 * 1024);
  assert.equal(config.smtp.interfaces.submission!.maxSize, undefined, 'the interface table itself keeps only what was set');
});

test('a value that is wrong inside an interface is reported with its full path', (t) => {
  const dir = appDir(t, '[smtp.interfaces.x]\ntrustedNetworks = ["10.0.0.0/33"]\nproxyProtocol = ["not-an-ip"]\n');
  assert.deepEqual(problems(dir), [
    'smtp.interfaces.x.proxyProtocol[0]: expected an IP address or CIDR block of a proxy, got "not-an-ip"',
    'smtp.interfaces.x.trustedNetworks[0]: expected a CIDR block like "127.0.0.0/8" or an IP address, got "10.0.0.0/33"',
  ]);
});

test('invalid TOML names the file and the line', (t) => {
  const dir = appDir(t, 'hostname = "a.test"\n[smtp\nport = 1\n');
  const lines = problems(dir);
  assert.equal(lines.length, 1);
  assert.ok(lines[0]!.startsWith(`${path.join(dir, 'config.toml')}:2:`), lines[0]);
  assert.match(lines[0]!, /not valid TOML/);
});

test('several problems are reported together, one line each', (t) => {
  const dir = appDir(t, 'hostname = "bad host"\n[smtp]\nport = 70000\nbogus = 1\n[api]\nmaxRecipients = 0\n[zones.default]\nprocesses = -1\n');
  const lines = problems(dir, { SLUICE_QUEUE__CHUNKSIZE: '1B' });
  assert.equal(lines.length, 6, lines.join('\n'));
  for (const key of ['hostname', 'smtp.port', 'smtp.bogus', 'api.maxRecipients', 'zones.default.processes', 'queue.chunkSize']) {
    assert.ok(lines.some((l) => l.startsWith(`${key}:`)), `${key} missing from:\n${lines.join('\n')}`);
  }
  for (const line of lines) assert.doesNotMatch(line, /\n/);
});

test('rules across keys: a token beyond loopback, key and cert together, one listener per address', (t) => {
  const dir = appDir(t, '[api]\nhost = "0.0.0.0"\nport = 2525\n[smtp]\nkey = "keys/k.pem"\n[smtp.interfaces.again]\nport = 2525\n');
  assert.deepEqual(problems(dir), [
    'api.token: required when api.host (0.0.0.0) is not a loopback address',
    'smtp.key / smtp.cert: set both or neither',
    'smtp.interfaces.again.key / smtp.interfaces.again.cert: set both or neither',
    'smtp.interfaces.again.port: 127.0.0.1:2525 is taken by smtp already',
  ]);
});

test('rules across keys: the POP3 door has key and cert together and an address of its own', (t) => {
  const dir = appDir(t, '[inbound.pop3]\nport = 2526\nkey = "keys/pop3.key"\n');
  assert.deepEqual(problems(dir), ['inbound.pop3.key / inbound.pop3.cert: set both or neither', 'inbound.pop3.port: 127.0.0.1:2526 is taken by inbound already']);
  const fine = load(appDir(t, '[inbound.pop3]\nkey = "keys/pop3.key"\ncert = "keys/pop3.crt"\n'));
  assert.equal(fine.config.inbound.pop3.key, path.join(fine.appDir, 'keys/pop3.key'), 'relative to the app dir');
  assert.equal(fine.config.inbound.pop3.cert, path.join(fine.appDir, 'keys/pop3.crt'));
  assert.equal(load(appDir(t, '[inbound.pop3]\nenabled = false\nport = 2526\nkey = "k"\n')).config.inbound.pop3.enabled, false, 'a door that is off is not checked');
});

test('rules across keys: a delivery attempt must end inside its lease', (t) => {
  const dir = appDir(t, '[queue]\nleaseTimeout = "2m"\n[delivery]\nattemptTimeout = "2m"\n');
  assert.deepEqual(problems(dir), ['delivery.attemptTimeout: must be shorter than queue.leaseTimeout (120000 ms is not less than 120000 ms)']);
  assert.equal(load(dir, { SLUICE_DELIVERY__ATTEMPTTIMEOUT: '"90s"' }).config.delivery.attemptTimeout, 90_000);
});

test('rules across keys: spam mode "rspamd" needs rspamd.url; the model path resolves against the app dir', (t) => {
  const dir = appDir(t, '[inbound.spam]\nmode = "rspamd"\n');
  assert.deepEqual(problems(dir), ['inbound.spam.rspamd.url: needed when inbound.spam.mode is "rspamd" (or choose mode "bayes" or "both")']);
  const { config } = load(dir, { SLUICE_INBOUND__SPAM__RSPAMD__URL: 'http://127.0.0.1:11333' });
  assert.equal(config.inbound.spam.rspamd.url, 'http://127.0.0.1:11333');
  assert.equal(config.inbound.spam.model, path.join(dir, 'spam-model.json'));
});

test('the default zone stays: layers merge into it and cannot replace it with a non-table', (t) => {
  assert.deepEqual(Object.keys(load(appDir(t), { SLUICE_ZONES: '{}' }).config.zones), ['default']);
  assert.deepEqual(problems(appDir(t), { SLUICE_ZONES__DEFAULT: '1' }), ['zones.default: expected a table, got 1 (set by SLUICE_ZONES__DEFAULT)']);
});

test('relative paths resolve against the app dir; absolute ones stay', (t) => {
  const abs = path.join(tmpdir(), 'elsewhere', 'q');
  const dir = appDir(
    t,
    [
      '[smtp]',
      'key = "keys/smtp.key"',
      'cert = "keys/smtp.crt"',
      '[smtp.interfaces.smtps]',
      'port = 2465',
      'key = "keys/other.key"',
      'cert = "keys/other.crt"',
      '[queue]',
      `path = ${JSON.stringify(abs)}`,
      '[[dkim.keys]]',
      'domain = "example.test"',
      'selector = "s1"',
      'privateKey = "keys/example.test.s1.pem"',
      '[plugins."my-guard"]',
      'enabled = ["main"]',
      'path = "plugins/my-guard.js"',
    ].join('\n'),
  );
  const { config, appDir: resolved } = load(dir);
  assert.equal(resolved, dir);
  assert.equal(config.smtp.key, path.join(dir, 'keys/smtp.key'));
  assert.equal(config.smtp.cert, path.join(dir, 'keys/smtp.crt'));
  assert.equal(config.smtp.interfaces.smtps!.key, path.join(dir, 'keys/other.key'));
  assert.equal(config.queue.path, abs);
  assert.equal(config.dkim.keys[0]!.privateKey, path.join(dir, 'keys/example.test.s1.pem'));
  assert.equal(config.dkim.keys[0]!.algorithm, 'rsa-sha256');
  assert.equal(config.plugins['my-guard']!.path, path.join(dir, 'plugins/my-guard.js'));
});

test('the result is deep-frozen', (t) => {
  const { config } = load(appDir(t));
  for (const part of [config, config.smtp, config.smtp.trustedNetworks, config.zones, config.zones.default!, config.zones.default!.pool]) {
    assert.ok(Object.isFrozen(part));
  }
  assert.throws(() => {
    (config.smtp as { port: number }).port = 1;
  }, TypeError);
  assert.throws(() => {
    (config.smtp.trustedNetworks as string[]).push('0.0.0.0/0');
  }, TypeError);
});

test('a missing app dir is an error, not a silent start with defaults', (t) => {
  const dir = path.join(appDir(t), 'typo');
  assert.deepEqual(problems(dir), [`${dir}: the app dir does not exist (make one with: sluice create ${dir})`]);
  const file = path.join(appDir(t), 'file');
  writeFileSync(file, '');
  assert.deepEqual(problems(file), [`${file}: the app dir is not a directory`]);
});

test('sizes and durations parse with units; plain numbers are bytes and milliseconds', (t) => {
  const cases: [unknown, number | undefined][] = [
    ['25MB', 25 * 1024 * 1024],
    ['25 mb', 25 * 1024 * 1024],
    ['64KB', 64 * 1024],
    ['64K', 64 * 1024],
    ['1GiB', 1024 ** 3],
    ['1.5KB', 1536],
    ['100B', 100],
    ['100', 100],
    [4096, 4096],
    [-1, undefined],
    [1.5, undefined],
    ['25XB', undefined],
    ['MB', undefined],
    [true, undefined],
  ];
  for (const [input, want] of cases) assert.equal(parseSize(input), want, `parseSize(${JSON.stringify(input)})`);
  const durations: [unknown, number | undefined][] = [
    ['30s', 30_000],
    ['100ms', 100],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1.5s', 1500],
    [250, 250],
    ['30', undefined],
    ['30 seconds', undefined],
    [Infinity, undefined],
    [-5, undefined],
  ];
  for (const [input, want] of durations) assert.equal(parseDuration(input), want, `parseDuration(${JSON.stringify(input)})`);
  const { config } = load(appDir(t, '[queue]\nchunkSize = "128KB"\ngcInterval = "30s"\n'));
  assert.equal(config.queue.chunkSize, 128 * 1024);
  assert.equal(config.queue.gcInterval, 30_000);
});
