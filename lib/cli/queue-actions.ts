/**
 * What each `sluice queue …` command does (queue-command.ts declares them): one or more calls
 * to the API and the printing. Each returns the exit code: 0 done, 1 failed (one line on stderr
 * says why), 2 a wrong argument.
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ApiClient, ApiClientError, resolveTarget } from './api-client.js';
import { age, clip, parseDuration, table } from './format.js';

type Argv = Record<string, unknown>;

class UsageError extends Error {}

interface ListedRow {
  id: string;
  seq: number;
  cursor: string;
  zone: string;
  recipient: string;
  from: string | null;
  status: string;
  created: number;
  due: number;
  attempts: number;
  lastResponse: string | null;
  category: string | null;
}

interface ActionResult {
  action: string;
  dryRun: boolean;
  matched: number;
  changed: number;
  busy: number;
  messages: number;
}

const out = (line: string): void => void process.stdout.write(line + "\n");
const err = (line: string) => process.stderr.write(line + '\n');

async function client(argv: Argv): Promise<ApiClient> {
  return new ApiClient(await resolveTarget({ url: argv.url as string | undefined, dir: argv.dir as string }));
}

/** Runs a command, turning its errors into a line on stderr and an exit code. */
async function guarded(fn: () => Promise<void>): Promise<number> {
  try {
    await fn();
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      err(`sluice queue: ${e.message}`);
      return 2;
    }
    if (e instanceof ApiClientError) {
      err(`sluice queue: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

function seconds(argv: Argv, name: string): number | undefined {
  const v = argv[name];
  if (v === undefined) return undefined;
  const s = parseDuration(String(v));
  if (s === undefined) throw new UsageError(`--${name}: ${JSON.stringify(v)} is not a duration (90s, 15m, 2h, 7d)`);
  return s;
}

/** The filter options as the API takes them; `target` is ID or ID.SEQ. */
function filterOf(argv: Argv): Record<string, string | number> {
  const f: Record<string, string | number> = {};
  const target = argv.target as string | undefined;
  if (target !== undefined) {
    const m = /^([0-9a-f]{22})(?:\.([0-9a-f]{1,4}))?$/i.exec(target);
    if (!m) throw new UsageError(`${JSON.stringify(target)} is neither a queue id nor ID.SEQ`);
    f.id = m[1]!.toLowerCase();
    if (m[2] !== undefined) f.seq = parseInt(m[2], 16);
  }
  for (const k of ['zone', 'domain', 'sender', 'status', 'category'] as const) if (argv[k] !== undefined) f[k] = String(argv[k]);
  const minAge = seconds(argv, 'min-age');
  const maxAge = seconds(argv, 'max-age');
  if (minAge !== undefined) f.minAge = minAge;
  if (maxAge !== undefined) f.maxAge = maxAge;
  return f;
}

export function list(argv: Argv): Promise<number> {
  return guarded(async () => {
    const api = await client(argv);
    const want = Math.max(1, Number(argv.limit ?? 100));
    const filter = filterOf(argv);
    const rows: ListedRow[] = [];
    let cursor = argv.cursor as string | undefined;
    let next: string | null = null;
    do {
      const q = new URLSearchParams({ ...Object.fromEntries(Object.entries(filter).map(([k, v]) => [k, String(v)])), limit: String(Math.min(1000, want - rows.length)) });
      if (argv.newest) q.set('order', 'newest');
      if (cursor) q.set('cursor', cursor);
      const page = await api.json<{ rows: ListedRow[]; next: string | null }>('GET', `/admin/rows?${q}`);
      rows.push(...page.rows);
      next = page.next;
      cursor = next ?? undefined;
    } while (next && rows.length < want);
    if (argv.json) {
      out(JSON.stringify({ rows, next }));
      return;
    }
    const now = Date.now();
    if (rows.length) {
      out(
        table(
          ['ROW', 'STATUS', 'AGE', 'ZONE', 'FROM', 'RECIPIENT', 'TRIES', 'LAST REPLY'],
          rows.map((r) => [r.cursor, r.status, age(now - r.created), r.zone, r.from === '' ? '<>' : clip(r.from, 40), clip(r.recipient, 40), r.attempts, clip(r.lastResponse ? `${r.category ?? ''} ${r.lastResponse}`.trim() : '', 60)]),
        ),
      );
    } else {
      out('no rows match');
    }
    if (next) err(`more: sluice queue list --cursor ${next} (with the same filters)`);
  });
}

export function show(argv: Argv): Promise<number> {
  return guarded(async () => {
    const api = await client(argv);
    const id = String(argv.id);
    if (!/^[0-9a-f]{22}$/i.test(id)) throw new UsageError(`${JSON.stringify(id)} is not a queue id`);
    if (argv.raw) {
      const res = await api.send('GET', `/fetch/${id.toLowerCase()}`, undefined, {}, 0);
      await pipeline(Readable.fromWeb(res.body!), new Writable({ write: (chunk, _enc, cb) => (process.stdout.write(chunk) ? cb() : process.stdout.once('drain', () => cb())) }));
      return;
    }
    const msg = await api.json<{ meta: Record<string, unknown>; messages: Record<string, unknown>[] }>('GET', `/message/${id.toLowerCase()}?headers=yes`);
    if (argv.json) {
      out(JSON.stringify(msg));
      return;
    }
    const { meta } = msg;
    const from = meta.from === '' ? '<>' : String(meta.from);
    out(`id:        ${String(meta.id)}`);
    out(`queued:    ${new Date(Number(meta.created)).toISOString()} (${age(Date.now() - Number(meta.created))} ago)`);
    out(`from:      ${from}`);
    out(`size:      ${String(meta.size)} bytes`);
    out(`subject:   ${clip(String(meta.subject ?? ''), 200)}`);
    out(`origin:    ${JSON.stringify(meta.origin)}`);
    out('');
    out(
      table(
        ['SEQ', 'STATUS', 'ZONE', 'RECIPIENT', 'TRIES', 'NEXT', 'LAST REPLY'],
        msg.messages.map((r) => {
          const d = r.deferred as { count?: number; next?: number; response?: string | null; category?: string | null } | undefined;
          return [String(r.seq), String(r.status), String(r.zone), String(r.recipient), d?.count ?? 0, r.status === 'HELD' ? 'held' : String(r.queued), clip(d?.response ? `${d.category ?? ''} ${d.response}`.trim() : '', 80)];
        }),
      ),
    );
    out('');
    out(String(meta.headers ?? '').replace(/\r\n/g, '\n').trimEnd());
  });
}

export function summary(argv: Argv): Promise<number> {
  return guarded(async () => {
    const api = await client(argv);
    const q = new URLSearchParams({ status: String(argv.status ?? 'all'), top: String(argv.top ?? 20) });
    if (argv.zone) q.set('zone', String(argv.zone));
    type Line = { total: number; held: number; ages: number[] };
    const shape = await api.json<{ buckets: number[]; total: Line; zones: (Line & { zone: string; domains: (Line & { domain: string })[]; others?: Line & { domains: number } })[] }>('GET', `/admin/summary?${q}`);
    if (argv.json) {
      out(JSON.stringify(shape));
      return;
    }
    const header = ['', 'T', ...shape.buckets.map(String), `${shape.buckets.at(-1)}+`, 'HELD'];
    const line = (name: string, l: Line) => [name, l.total, ...l.ages, l.held];
    const rows: (string | number)[][] = [line('TOTAL', shape.total)];
    for (const z of shape.zones) {
      rows.push(line(`zone ${z.zone}`, z));
      for (const d of z.domains) rows.push(line(`  ${d.domain}`, d));
      if (z.others) rows.push(line(`  (${z.others.domains} more domains)`, z.others));
    }
    out(table(header, rows));
    err('ages in minutes since the message was queued (T: total)');
  });
}

function action(name: 'flush' | 'delete' | 'hold' | 'release') {
  return (argv: Argv): Promise<number> =>
    guarded(async () => {
      const api = await client(argv);
      const filter = filterOf(argv);
      if (!Object.keys(filter).length && !argv.all) throw new UsageError(`${name}: name the rows (ID, ID.SEQ, --zone, --domain, --sender, --status, --min-age, …) or give --all`);
      const body = { ...filter, ...(argv.all ? { all: true } : {}), ...(argv['dry-run'] ? { dryRun: true } : {}) };
      const tty = process.stderr.isTTY;
      const result = await api.stream<ActionResult>(`/admin/${name}`, body, (p) => {
        if (tty) process.stderr.write(`\r${name}: ${p.changed} of ${p.matched} rows in ${p.messages} messages…`);
      });
      if (tty) process.stderr.write('\n');
      if (argv.json) {
        out(JSON.stringify(result));
        return;
      }
      const verb = { flush: 'due now', delete: 'deleted', hold: 'held', release: 'released' }[name];
      out(`${result.dryRun ? 'dry run: would be ' : ''}${verb}: ${result.changed} rows (of ${result.matched} matching, in ${result.messages} messages)${result.busy ? `; ${result.busy} being delivered right now were left alone` : ''}`);
    });
}

export const flush = action('flush');
export const hold = action('hold');
export const release = action('release');
const deleteRows = action('delete');
export { deleteRows as delete };

interface Entry {
  id: string;
  kind: string;
  value: string;
  created: number;
  expires?: number;
  reason?: string;
}

export function suppressList(argv: Argv): Promise<number> {
  return guarded(async () => {
    const { entries } = await (await client(argv)).json<{ entries: Entry[] }>('GET', '/admin/suppression');
    if (argv.json) return out(JSON.stringify({ entries }));
    if (!entries.length) return out('the suppression list is empty');
    out(table(['ID', 'KIND', 'VALUE', 'ADDED', 'EXPIRES', 'REASON'], entries.map((e) => [e.id, e.kind, e.value, new Date(e.created).toISOString(), e.expires ? new Date(e.expires).toISOString() : 'never', clip(e.reason, 60)])));
  });
}

export function suppressAdd(argv: Argv): Promise<number> {
  return guarded(async () => {
    const value = String(argv.value);
    const ttl = seconds(argv, 'ttl');
    const body = { [value.includes('@') ? 'address' : 'domain']: value, ...(ttl !== undefined ? { ttl } : {}), ...(argv.reason ? { reason: String(argv.reason) } : {}) };
    const { entry } = await (await client(argv)).json<{ entry: Entry }>('POST', '/admin/suppression', body);
    if (argv.json) return out(JSON.stringify({ entry }));
    out(`suppressed ${entry.kind} ${entry.value} (id ${entry.id}${entry.expires ? `, until ${new Date(entry.expires).toISOString()}` : ''})`);
  });
}

export function suppressRemove(argv: Argv): Promise<number> {
  return guarded(async () => {
    const { deleted } = await (await client(argv)).json<{ deleted: Entry }>('DELETE', `/admin/suppression/${encodeURIComponent(String(argv.entry))}`);
    if (argv.json) return out(JSON.stringify({ deleted }));
    out(`removed ${deleted.kind} ${deleted.value} from the suppression list`);
  });
}
