#!/usr/bin/env node
/**
 * The `sluice` command line. Thin: each command loads what it needs and calls into lib/.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { runCommand } from '../lib/app/run.js';
import { createAppDir } from '../lib/app/create.js';
import { ConfigError, loadConfig } from '../lib/config/load.js';
import { hashPassword } from '../lib/accept/passwords.js';
import { checkBounce } from '../lib/bounce/check-bounce.js';

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
    'run Sluice (the master, its listeners and its workers)',
    (y) => y.option('dir', appDirOption),
    async (argv) => {
      process.exitCode = await runCommand(argv.dir);
    },
  )
  .command(
    'create <dir>',
    'make a new app dir with a config.toml, plugins/ and keys/',
    (y) => y.positional('dir', { type: 'string', demandOption: true }),
    (argv) => {
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
    'load and validate the config, print the result',
    (y) => y.option('dir', appDirOption).option('print', { type: 'boolean', default: false, describe: 'print the merged config as JSON' }),
    (argv) => {
      try {
        const loaded = loadConfig({ appDir: argv.dir });
        console.log(`config ok (${loaded.files.join(' + ')})`);
        if (argv.print) console.log(JSON.stringify(redact(loaded.config), null, 2));
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        for (const line of err.problems) console.error(`config error: ${line}`);
        process.exitCode = 1;
      }
    },
  )
  .command(
    'hash-password [password]',
    'print a password hash for [smtp.users] (reads stdin when no password is given)',
    (y) => y.positional('password', { type: 'string' }),
    async (argv) => {
      const password = argv.password ?? readFileSync(0, 'utf8').replace(/\r?\n$/, '');
      if (!password) {
        console.error('sluice hash-password: empty password');
        process.exitCode = 1;
        return;
      }
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
    (argv) => {
      process.exitCode = checkBounce(argv, {
        readStdin: () => readFileSync(0, 'utf8'),
        out: (line) => console.log(line),
        err: (line) => console.error(line),
      });
    },
  )
  .demandCommand(1, 'name a command: run, create, check-config, check-bounce or hash-password')
  .strict()
  .version(pkg.version)
  .help()
  .alias('h', 'help')
  .parseAsync();

/** The config as printed by check-config: secrets replaced. */
function redact(config: unknown): unknown {
  return JSON.parse(JSON.stringify(config, (key, value) => (['token', 'users'].includes(key) && value ? '(set)' : value)));
}
