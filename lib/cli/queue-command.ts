/**
 * `sluice queue …`: Postfix's postqueue, postsuper, postcat and qshape for Sluice, over the HTTP
 * API of the running instance (queue-actions.ts does the calls and the printing). Read-only
 * commands print tables (or JSON with --json); changing ones report progress on stderr and what
 * they changed on stdout, and take --dry-run.
 */
import type { Argv } from 'yargs';

const filterOptions = {
  zone: { type: 'string', describe: 'sending zone' },
  domain: { type: 'string', describe: 'recipient domain' },
  sender: { type: 'string', describe: 'envelope sender: an address, @domain, or "<>" for the null sender' },
  status: { type: 'string', choices: ['queued', 'deferred', 'held'], describe: 'queued (not tried yet), deferred (waiting to retry) or held' },
  'min-age': { type: 'string', describe: 'queued at least this long ago: 90s, 15m, 2h, 7d' },
  'max-age': { type: 'string', describe: 'queued at most this long ago' },
  category: { type: 'string', describe: 'class of the last reply: greylist, blocklist, mailbox-full, unknown-user, policy, network, tls, …' },
} as const;

const common = {
  url: { type: 'string', describe: "the API's address (default: from the app dir's config, api.host and api.port)" },
  dir: { alias: 'd', type: 'string', default: '.', describe: 'the app dir whose config names the API and its token' },
  json: { type: 'boolean', default: false, describe: 'print JSON (for scripts)' },
} as const;

const run = (name: keyof typeof import('./queue-actions.js')) => async (argv: Record<string, unknown>) => {
  const actions = await import('./queue-actions.js');
  process.exitCode = await actions[name](argv);
};

const changing = (y: Argv, what: string) =>
  y
    .positional('target', { type: 'string', describe: 'one message (ID) or one row (ID.SEQ, as list prints it)' })
    .options(filterOptions)
    .option('all', { type: 'boolean', default: false, describe: `${what} every row (needed when nothing else is named)` })
    .option('dry-run', { type: 'boolean', default: false, describe: 'count what would change, change nothing' })
    .options(common);

export function queueCommand(y: Argv): Argv {
  return y
    .command(
      'list',
      'list delivery rows, oldest first, with filters (postqueue -p)',
      (c) =>
        c
          .options(filterOptions)
          .option('newest', { type: 'boolean', default: false, describe: 'newest first' })
          .option('limit', { type: 'number', default: 100, describe: 'rows to print at most' })
          .option('cursor', { type: 'string', describe: 'go on from where an earlier list stopped (it prints the cursor)' })
          .options(common),
      run('list'),
    )
    .command(
      'show <id>',
      'a message: its rows, attempts, last replies and stored headers (--raw: the message itself, like postcat -q)',
      (c) => c.positional('id', { type: 'string', demandOption: true }).option('raw', { type: 'boolean', default: false, describe: 'write the stored message (message/rfc822) to stdout' }).options(common),
      run('show'),
    )
    .command(
      'summary',
      'rows per zone and recipient domain, by age (qshape)',
      (c) =>
        c
          .option('zone', { type: 'string', describe: 'one zone' })
          .option('status', { type: 'string', choices: ['pending', 'held', 'all'], default: 'all', describe: 'pending (queued and deferred), held, or all' })
          .option('top', { type: 'number', default: 20, describe: 'domains per zone, largest first; the rest are summed' })
          .options(common),
      run('summary'),
    )
    .command('flush [target]', 'retry now: a message, a row, or the rows a filter selects (postqueue -f, -i, -s)', (c) => changing(c, 'flush'), run('flush'))
    .command('delete [target]', 'remove from the queue, without a bounce (postsuper -d)', (c) => changing(c, 'delete'), run('delete'))
    .command('hold [target]', 'put on hold: no attempt, no expiry, until released (postsuper -h)', (c) => changing(c, 'hold'), run('hold'))
    .command('release [target]', 'release held rows: due now (postsuper -H)', (c) => changing(c, 'release'), run('release'))
    .command('suppress', 'the suppression list: addresses and domains that get no mail', (s) =>
      s
        .command('list', 'every entry in force', (c) => c.options(common), run('suppressList'))
        .command(
          'add <value>',
          'suppress an address (a@b.test) or a domain (b.test)',
          (c) =>
            c
              .positional('value', { type: 'string', demandOption: true })
              .option('ttl', { type: 'string', describe: 'expire after: 90s, 15m, 2h, 7d (default: never)' })
              .option('reason', { type: 'string', describe: 'a note kept with the entry' })
              .options(common),
          run('suppressAdd'),
        )
        .command('remove <entry>', 'remove an entry (its id, address or domain)', (c) => c.positional('entry', { type: 'string', demandOption: true }).options(common), run('suppressRemove'))
        .demandCommand(1, 'name a suppress command: list, add or remove'),
    )
    .demandCommand(1, 'name a queue command: list, show, summary, flush, delete, hold, release or suppress');
}
