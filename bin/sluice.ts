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
import { createLogger } from '../lib/log/logger.js';
import { PluginLoadError } from '../lib/plugins/facade.js';
import { checkPlugins } from '../lib/plugins/loader.js';
import { HookRunner } from '../lib/plugins/runner.js';

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
    async (argv) => {
      try {
        const loaded = loadConfig({ appDir: argv.dir });
        // plugins load as they would at start (each for its processes), then stop again
        const plugins = await checkPlugins(loaded.config, createLogger('silent'), () => new HookRunner(createLogger('silent'), loaded.config.hooks.timeout));
        console.log(`config ok (${loaded.files.join(' + ')})`);
        if (plugins.length) console.log(`plugins ok: ${plugins.join(', ')}`);
        if (argv.print) console.log(JSON.stringify(redact(loaded.config), null, 2));
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
      const password = argv.password ?? readFileSync(0, 'utf8').replace(/\r?\n$/, '');
      if (!password) {
        console.error('sluice hash-password: empty password');
        process.exitCode = 1;
        return;
      }
      console.log(await hashPassword(password));
    },
  )
  .demandCommand(1, 'name a command: run, create, check-config or hash-password')
  .strict()
  .version(pkg.version)
  .help()
  .alias('h', 'help')
  .parseAsync();

/** The config as printed by check-config: secrets replaced. */
function redact(config: unknown): unknown {
  return JSON.parse(JSON.stringify(config, (key, value) => (['token', 'users'].includes(key) && value ? '(set)' : value)));
}
