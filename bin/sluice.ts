#!/usr/bin/env -S MALLOC_ARENA_MAX=1 node --max-semi-space-size=2 --heap-growing-percent=20
/**
 * The `sluice` command line. Thin: each command imports what it needs when it runs (so --help
 * does not load the SMTP server and LevelDB) and calls into lib/.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { queueCommand } from '../lib/cli/queue-command.js';

const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string };

const appDirOption = {
  alias: 'd',
  type: 'string',
  default: '.',
  describe: 'the app dir: config.toml is read from it and relative paths start there',
} as const;

await yargs(hideBin(process.argv))
  .scriptName('sluice')
  .usage('$0 <command> [options]')
  .command(
    'run',
    'run Sluice from an app dir: the SMTP and HTTP listeners and the queue',
    (y) => y.option('dir', appDirOption),
    async (argv) => {
      const { runCommand } = await import('../lib/app/run.js');
      process.exitCode = await runCommand(argv.dir);
    },
  )
  .command(
    'create <dir>',
    'make a new app dir: config.toml, plugins/ (with an example), keys/, data/',
    (y) => y.positional('dir', { type: 'string', demandOption: true }),
    async (argv) => {
      const { createAppDir } = await import('../lib/app/create.js');
      try {
        const created = createAppDir(argv.dir);
        console.log(`created ${created}\nnext: edit ${created}/config.toml, then: sluice run -d ${argv.dir}`);
      } catch (err) {
        console.error(`sluice create: ${(err as Error).message}`);
        process.exitCode = 1;
      }
    },
  )
  .command(
    'check-config',
    'load and validate the config; print "config ok" or one line per problem',
    (y) => y.option('dir', appDirOption).option('print', { type: 'boolean', default: false, describe: 'print the merged config as JSON' }),
    async (argv) => {
      const { ConfigError, loadConfig } = await import('../lib/config/load.js');
      const { configSchema } = await import('../lib/config/schema.js');
      const { redactSecrets } = await import('../lib/config/secrets.js');
      const { createLogger } = await import('../lib/log/logger.js');
      const { PluginLoadError } = await import('../lib/plugins/facade.js');
      const { checkPlugins } = await import('../lib/plugins/loader.js');
      const { HookRunner } = await import('../lib/plugins/runner.js');
      try {
        const loaded = loadConfig({ appDir: argv.dir });
        // plugins load as they would at start (each for its processes), then stop again
        const plugins = await checkPlugins(loaded.config, createLogger('silent'), () => new HookRunner(createLogger('silent'), loaded.config.hooks.timeout));
        console.log(`config ok (${loaded.files.join(' + ')})`);
        if (plugins.length) console.log(`plugins ok: ${plugins.join(', ')}`);
        if (argv.print) console.log(JSON.stringify(redactSecrets(configSchema, loaded.config), null, 2));
      } catch (err) {
        if (err instanceof PluginLoadError) {
          console.error(`plugin error: ${err.message}`);
        } else if (err instanceof ConfigError) {
          for (const line of err.problems) console.error(`config error: ${line}`);
        } else {
          throw err;
        }
        process.exitCode = 1;
      }
    },
  )
  .command(
    'hash-password [password]',
    'print a password hash for [smtp.users] (reads stdin when no password is given)',
    (y) => y.positional('password', { type: 'string' }),
    async (argv) => {
      const password = argv.password ?? (await readPassword());
      if (!password) {
        console.error('sluice hash-password: empty password');
        process.exitCode = 1;
        return;
      }
      const { hashPassword } = await import('../lib/accept/passwords.js');
      console.log(await hashPassword(password));
    },
  )
  .command(
    'check-bounce',
    'show how an SMTP reply (from stdin, or --response) is classified: action, category, status, rule',
    (y) =>
      y
        .option('response', { alias: 'r', type: 'string', describe: 'the reply, e.g. "550 5.1.1 <x@y.test>: user unknown" (default: read stdin)' })
        .option('code', { type: 'string', describe: 'an error code instead of a reply: ECONNREFUSED, ETIMEDOUT, ENOTFOUND, ETLS, ...' })
        .option('phase', { type: 'string', describe: 'the SMTP phase: CONN, HELO, MAIL, RCPT, DATA, DOT' })
        .option('rules', { type: 'string', describe: 'a rules file to use instead of the shipped config/bounce-rules.txt' })
        .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' }),
    async (argv) => {
      const { checkBounce } = await import('../lib/bounce/check-bounce.js');
      process.exitCode = checkBounce(argv, {
        readStdin: () => readFileSync(0, 'utf8'),
        out: (line) => console.log(line),
        err: (line) => console.error(line),
      });
    },
  )
  .command('queue', "administer the running instance's queue over its API: list, show, summary, flush, delete, hold, release, suppress", queueCommand)
  .command('spam', 'the spam score of the inbox: train its classifier', (y) =>
    y
      .command(
        'train',
        'train the Naive Bayes model from spam and ham (folders of .eml files, mbox files) and write it',
        (t) =>
          t
            .option('spam', { type: 'string', array: true, demandOption: true, describe: 'a folder of spam (.eml files, mbox files) or an mbox file; may be given more than once' })
            .option('ham', { type: 'string', array: true, demandOption: true, describe: 'the same for wanted mail' })
            .option('dir', appDirOption)
            .option('out', { type: 'string', describe: "where to write the model (default: the app dir's inbound.spam.model)" })
            .option('max-vocabulary', { type: 'number', default: 50_000, describe: 'the most frequent tokens the model keeps' }),
        async (argv) => {
          const { trainCommand } = await import('../lib/inbound/spam/train.js');
          process.exitCode = await trainCommand(
            { spam: argv.spam, ham: argv.ham, appDir: argv.dir, out: argv.out, maxVocabulary: argv.maxVocabulary },
            { out: (line) => console.log(line), err: (line) => console.error(line) },
          );
        },
      )
      .demandCommand(1, 'name a spam command: train'),
  )
  .example('$0 create /var/lib/sluice', 'make an app dir')
  .example('$0 check-config -d /var/lib/sluice', 'check its config')
  .example('$0 run -d /var/lib/sluice', 'run it')
  .example('$0 hash-password < secret.txt', 'hash a password for [smtp.users]')
  .epilogue('Config: config/default.toml, then DIR/config.toml, then SLUICE_… environment variables (SLUICE_SMTP__PORT=2600).')
  .example('echo "550 5.1.1 <x@y.test>: user unknown" | $0 check-bounce', 'how a reply is classified')
  .example('$0 spam train --spam corpus/spam --ham corpus/ham -d /var/lib/sluice', "train the inbox's spam model")
  .example('$0 queue list --status deferred --domain dest.test', 'the deferred rows to one domain')
  .example('$0 queue hold --domain dest.test', 'stop sending to a domain until released')
  .demandCommand(1, 'name a command: run, create, check-config, check-bounce, hash-password, queue or spam')
  .strict()
  .version(pkg.version)
  .help()
  .alias('h', 'help')
  .parseAsync();

/**
 * The password from stdin: typed at a terminal without echo (one line), or piped (all of it,
 * less one trailing newline). Better than an argument, which lands in shell history and `ps`.
 */
async function readPassword(): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) return readFileSync(0, 'utf8').replace(/\r?\n$/, '');
  process.stderr.write('Password: ');
  stdin.setRawMode(true);
  stdin.resume();
  let typed = '';
  try {
    for await (const chunk of stdin) {
      for (const ch of String(chunk)) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return typed;
        if (ch === '\u0003') return ''; // Ctrl-C: nothing hashed
        typed = ch === '\u007f' || ch === '\b' ? typed.slice(0, -1) : typed + ch;
      }
    }
    return typed;
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
}
